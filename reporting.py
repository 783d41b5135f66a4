"""Report on the deployed model: its confusion matrix on the test data.

Reads the deployed model (verified) and testdata.csv. Writes confusionmatrix.png to the model folder.
Run: python reporting.py [--config PATH] [--json]
"""
from __future__ import annotations

import io
import logging

import pandas as pd
from sklearn.metrics import confusion_matrix

from risk import cli, contract, registry
from risk.config import Config
from risk.files import atomic_write_bytes
from risk.ledger import recorded
from scoring import read_labelled_csv, testdata_file

logger = logging.getLogger(__name__)
PLOT = "confusionmatrix.png"
LABELS = ["stayed (0)", "exited (1)"]


def confusion_counts(model: object, frame: pd.DataFrame) -> list[list[int]]:
    x, y = contract.split_xy(frame)
    return confusion_matrix(y, model.predict(x), labels=[0, 1]).tolist()


def plot_confusion(counts: list[list[int]], title: str) -> bytes:
    """A labelled heatmap with the count in each cell, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    figure, axes = plt.subplots(figsize=(5, 4), dpi=100)
    sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes,
                xticklabels=LABELS, yticklabels=LABELS)
    axes.set(xlabel="predicted", ylabel="actual", title=title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def run_reporting(config: Config, parent_run: int | None = None) -> dict:
    with recorded(config.ledger_path, "reporting", parent_run) as (_, _, detail):
        version = registry.current(config.prod_folder)
        frame = read_labelled_csv(testdata_file(config))
        counts = confusion_counts(registry.load_model(version), frame)
        title = f"Model version {version.label} on {len(frame)} test rows"
        atomic_write_bytes(config.model_folder / PLOT, plot_confusion(counts, title))
        detail.update({"model_version": version.label, "confusion_matrix": counts,
                       "path": str(config.model_folder / PLOT)})
    logger.info("reporting: confusion matrix %s -> %s", counts, config.model_folder / PLOT)
    return dict(detail)


def main(argv: list[str] | None = None) -> int:
    return cli.run(cli.parser(__doc__).parse_args(argv), run_reporting)


if __name__ == "__main__":
    raise SystemExit(main())
