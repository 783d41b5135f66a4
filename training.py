"""Train the attrition-risk model: logistic regression on the contract's features.

Reads finaldata.csv from the output folder. Writes trainedmodel.pkl (a plain pickled scikit-learn estimator)
and then its card trainedmodel.json (features, rows, data fingerprint, and the cross-validated F1 and log-loss
the drift decision compares new data with) to the model folder.
Run: python training.py [--config PATH] [--json]
"""
from __future__ import annotations

from risk import cli
from risk.training import run_training


def main(argv: list[str] | None = None) -> int:
    return cli.run(cli.parser(__doc__).parse_args(argv), run_training)


if __name__ == "__main__":
    raise SystemExit(main())
