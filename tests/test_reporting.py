"""reporting.py: the deployed model's confusion matrix on the test data, as counts and as a PNG."""
from __future__ import annotations

import json

import matplotlib.image
import pytest

import reporting
from risk import contract, registry
from risk.config import Config
from risk.ledger import Ledger

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_run_reporting_writes_a_readable_png_and_records_the_counts(deployed: Config) -> None:
    detail = reporting.run_reporting(deployed)
    plot = deployed.model_folder / reporting.PLOT
    assert plot.read_bytes().startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(plot)
    assert image.shape[0] > 0
    assert image.shape[1] > 0
    counts = detail["confusion_matrix"]
    assert [len(row) for row in counts] == [2, 2]
    assert sum(map(sum, counts)) == 5
    assert detail["model_version"] == "1"
    with Ledger(deployed.ledger_path) as ledger:
        run = next(r for r in ledger.runs() if r["stage"] == "reporting")
    assert run["outcome"] == "ok"
    assert json.loads(run["detail"])["confusion_matrix"] == counts


def test_confusion_counts_match_the_model_answers(deployed: Config) -> None:
    test = contract.read_csv(deployed.test_data / "testdata.csv")
    model = registry.load_model(registry.current(deployed.prod_folder))
    x, y = contract.split_xy(test)
    expected = [[0, 0], [0, 0]]
    for actual, predicted in zip(y.tolist(), model.predict(x).tolist(), strict=True):
        expected[actual][predicted] += 1
    assert reporting.confusion_counts(model, test) == expected


def test_plot_confusion_returns_png_bytes() -> None:
    assert reporting.plot_confusion([[1, 2], [0, 2]], "a title").startswith(PNG_SIGNATURE)


def test_main_json_reports_and_without_a_model_exits_1(deployed: Config, capsys: pytest.CaptureFixture) -> None:
    assert reporting.main(["--config", str(deployed.config_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["path"] == str(deployed.model_folder / reporting.PLOT)
    assert sum(map(sum, printed["confusion_matrix"])) == 5
    (deployed.prod_folder / registry.CURRENT).unlink()  # nothing deployed any more
    assert reporting.main(["--config", str(deployed.config_path)]) == 1


def test_a_tampered_model_is_not_reported_on(deployed: Config, caplog: pytest.LogCaptureFixture) -> None:
    version = registry.current(deployed.prod_folder)
    version.model_path.write_bytes(version.model_path.read_bytes() + b"tampered")
    assert reporting.main(["--config", str(deployed.config_path)]) == 1
    assert "sha256 does not match" in caplog.text
    assert not (deployed.model_folder / reporting.PLOT).exists()
