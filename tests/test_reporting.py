"""reporting.py: the confusion matrix PNG, and the report's content (risk/report.py) rendered to PDF and HTML."""
from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pytest
from conftest import COURSE_F1, COURSE_MATRIX, runs
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

import reporting as reporting_cli
from risk import catalog, contract, deployment, registry, report, reporting
from risk.config import Config
from risk.ledger import Ledger

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_run_reporting_writes_a_readable_png_and_records_the_counts(deployed: Config) -> None:
    detail = reporting.run_reporting(deployed)
    plot = deployed.model_folder / catalog.PLOT
    assert plot.read_bytes().startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(plot)
    assert image.shape == (400, 500, 4)  # 5 x 4 inches at 100 dpi: 400 rows of 500 RGBA pixels
    counts = detail["confusion_matrix"]
    assert [len(row) for row in counts] == [2, 2]
    assert counts == COURSE_MATRIX
    assert detail["model_version"] == "1"
    with Ledger(deployed.ledger_path) as ledger:
        run = next(r for r in runs(ledger) if r["stage"] == "reporting")
    assert run["outcome"] == "ok"
    assert json.loads(run["detail"])["confusion_matrix"] == counts


def test_the_confusion_matrix_and_f1_are_the_course_known_ones(deployed: Config) -> None:
    with Ledger(deployed.ledger_path) as ledger:
        content = reporting.build_content(reporting.read_inputs(deployed, ledger))
    assert content["confusion"] == COURSE_MATRIX  # conftest: tn 0, fp 2, fn 1, tp 2 on testdata.csv
    assert content["metrics"]["f1"]["value"] == pytest.approx(COURSE_F1)  # 2*2 / (2*2 + 2 + 1) = 4/7


def test_plot_confusion_returns_png_bytes() -> None:
    png = reporting.plot_confusion([[1, 2], [0, 2]], "a title")
    assert png.startswith(PNG_SIGNATURE)
    # the IHDR chunk after the 8-byte signature: length, type, then width and height, big-endian: 5 x 4 in at 100 dpi
    assert (png[12:16], int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (b"IHDR", 500, 400)


@pytest.mark.slow
def test_main_json_reports_and_without_a_model_exits_1(deployed: Config, capsys: pytest.CaptureFixture) -> None:
    assert reporting_cli.main(["--config", str(deployed.config_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["path"] == str(deployed.model_folder / catalog.PLOT)
    assert sum(map(sum, printed["confusion_matrix"])) == 5
    (deployed.prod_folder / catalog.CURRENT).unlink()  # nothing deployed any more
    assert reporting_cli.main(["--config", str(deployed.config_path)]) == 1


def test_a_tampered_model_is_not_reported_on(deployed: Config, caplog: pytest.LogCaptureFixture) -> None:
    version = registry.current(deployed.prod_folder)
    version.model_path.write_bytes(version.model_path.read_bytes() + b"tampered")
    assert reporting_cli.main(["--config", str(deployed.config_path)]) == 1
    assert "sha256 does not match" in caplog.text
    assert not (deployed.model_folder / catalog.PLOT).exists()


# The report's content as data (risk/report.py) ------------------------------------------------------------------

def test_metrics_with_ci_are_sklearns_on_the_rows_with_a_bootstrap_interval_around_them() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    proba = np.clip(y * 0.6 + rng.random(200) * 0.5, 0, 1)
    metrics = report.metrics_with_ci(y, proba, 0.5, draws=300)
    predicted = (proba >= 0.5).astype(int)
    assert metrics["f1"]["value"] == pytest.approx(f1_score(y, predicted))
    assert metrics["precision"]["value"] == pytest.approx(precision_score(y, predicted))
    assert metrics["recall"]["value"] == pytest.approx(recall_score(y, predicted))
    assert metrics["auc"]["value"] == pytest.approx(roc_auc_score(y, proba))
    for name in ("f1", "precision", "recall", "auc"):
        assert metrics[name]["low"] <= metrics[name]["value"] <= metrics[name]["high"], name
        assert metrics[name]["draws"] == 300
    assert (metrics["n"], metrics["positives"]) == (200, int(y.sum()))


def test_auc_of_one_class_is_none_and_its_resamples_are_left_out() -> None:
    metrics = report.metrics_with_ci(np.array([1, 1, 1]), np.array([0.9, 0.2, 0.7]), draws=50)
    assert metrics["auc"] == {"value": None, "low": None, "high": None, "draws": 0}
    assert metrics["recall"]["value"] == pytest.approx(2 / 3)


def test_calibration_bins_predicted_against_observed() -> None:
    bins = report.calibration(np.array([0, 0, 1, 1, 1]), np.array([0.05, 0.15, 0.5, 0.95, 1.0]), bins=5)
    assert bins == [{"bin": "0.0-0.2", "predicted": pytest.approx(0.1), "observed": 0.0, "n": 2},
                    {"bin": "0.4-0.6", "predicted": 0.5, "observed": 1.0, "n": 1},
                    {"bin": "0.8-1.0", "predicted": pytest.approx(0.975), "observed": 1.0, "n": 2}]


def test_precision_and_lift_at_capacity_have_known_answers() -> None:
    y, proba = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1]), np.linspace(1, 0, 10)
    at = report.at_capacity(y, proba, capacity=2, draws=200)
    assert (at["k"], at["precision"], at["base_rate"], at["lift"]) == (2, 0.5, 0.3, 1.6667)
    assert 0 <= at["precision_ci95"][0] <= 0.5 <= at["precision_ci95"][1] <= 1
    assert report.at_capacity(y, proba, capacity=20, portfolio=400)["k"] == 1  # 20 calls x 10 / 400 clients
    assert report.at_capacity(y, proba, capacity=40, portfolio=100)["k"] == 4
    assert report.at_capacity(y, proba, capacity=50)["k"] == 10  # never more than the rows


def test_brier_score_and_expected_calibration_error_have_known_answers() -> None:
    assert report.calibration_scores(np.array([0, 1]), np.array([0.1, 0.9])) == {"brier": 0.01, "ece": 0.1, "bins": 5}
    assert report.calibration_scores(np.array([0, 1, 1, 0]), np.full(4, 0.5))["ece"] == 0.0


def test_lineage_totals_and_the_files_behind_the_model() -> None:
    files = [{"name": "a.csv", "status": "ingested", "rows": 10, "rejected_rows": 2, "reason": None, "seen_at": "t"},
             {"name": "b.csv", "status": "rejected", "rows": None, "rejected_rows": None, "reason": "empty",
              "seen_at": "t"},
             {"name": "c.csv", "status": "ingested", "rows": 5, "rejected_rows": 0, "reason": None, "seen_at": "t"}]
    lineage = report.lineage(files, ["a.csv"])
    assert (lineage["ingested_rows"], lineage["rejected_rows"]) == (15, 2)
    assert (lineage["ingested_files"], lineage["rejected_files"]) == (2, 1)
    assert [f["in_model"] for f in lineage["files"]] == [True, False, False]


def test_the_decision_record_says_how_a_version_without_one_became_current() -> None:
    rollback = {"action": "rollback", "actor": "ana", "reason": "v2 misranks"}
    assert report.decision_record(None, rollback) == {"found": False,
                                                      "summary": "made current by a rollback by ana: v2 misranks"}
    assert "by hand" in report.decision_record(None, {"action": "deploy"})["summary"]
    decision = {"created_at": "t", "verdict": "DRIFT", "action": "deployed version 2",
                "evidence": {"method": "statistical", "reason": "F1 dropped", "files": ["x.csv"],
                             "tests": [{"name": "f1", "test": "perm", "n": 60, "statistic": 0.4, "p_adjusted": 0.01,
                                        "effect": 0.4, "flagged": True, "kind": "performance"}]}}
    record = report.decision_record(decision, None)
    assert (record["verdict"], record["files"], record["tests"][0]["flagged"]) == ("DRIFT", ["x.csv"], True)


def test_drift_history_keeps_each_features_effect_in_order() -> None:
    tests = [{"name": contract.FEATURES[0], "kind": "data", "effect": 0.3, "p_adjusted": 0.02, "flagged": True},
             {"name": "f1", "kind": "performance", "effect": 0.1}]
    rows = [{"id": 2, "created_at": "t2", "verdict": "DRIFT", "action": "a", "evidence": {"tests": tests}},
            {"id": 1, "created_at": "t1", "verdict": "BOOTSTRAP", "action": "b", "evidence": {}}]
    history = report.drift_history(rows)
    assert [d["id"] for d in history] == [1, 2]
    assert history[1]["features"] == {contract.FEATURES[0]: {"effect": 0.3, "p_adjusted": 0.02, "flagged": True}}


@pytest.mark.slow
def test_the_report_of_a_deployed_project_renders_to_pdf_and_html(deployed: Config) -> None:
    detail = reporting.run_reporting(deployed)
    pdf = deployed.model_folder / "reports" / "1" / "report.pdf"
    assert detail["pdf"] == str(pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")
    page = (deployed.model_folder / "reports" / catalog.LATEST_HTML).read_text(encoding="utf-8")
    assert "No diagnostics recorded yet." in page
    assert "deployed by hand (deployment.py), not by a decision" in page
    assert set(detail["metrics"]) == {"f1", "precision", "recall", "auc"}


def test_vectorised_bootstrap_scores_match_scikit_learn_with_ties_and_one_class() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.integers(0, 2, 12)
        proba = rng.integers(0, 4, 12) / 4  # many ties
        scores = report._scores(y[None, :] == 1, (proba >= 0.5)[None, :], proba[None, :])
        predicted = (proba >= 0.5).astype(int)
        # docs/data-contract.md: undefined is 1.0 (nothing to find, nothing wrongly flagged)
        assert scores["f1"][0] == pytest.approx(f1_score(y, predicted, zero_division=1.0))
        assert scores["precision"][0] == pytest.approx(precision_score(y, predicted, zero_division=1.0))
        assert scores["recall"][0] == pytest.approx(recall_score(y, predicted, zero_division=1.0))
        if 0 < y.sum() < len(y):
            assert scores["auc"][0] == pytest.approx(roc_auc_score(y, proba))
        else:
            assert np.isnan(scores["auc"][0])


@pytest.mark.slow
def test_reports_of_pruned_versions_are_removed(deployed: Config) -> None:
    stale = deployed.model_folder / catalog.REPORTS / "7"
    stale.mkdir(parents=True)
    (stale / "report.pdf").write_bytes(b"%PDF-")
    detail = reporting.run_reporting(deployed)
    assert detail["pruned_reports"] == ["7"]
    assert not stale.exists()
    assert (deployed.model_folder / catalog.REPORTS / "1" / "report.pdf").is_file()


def test_the_report_keeps_ids_as_ingestion_wrote_them(deployed: Config) -> None:
    """A client called NA, or 0091, is that client: not missing, not 91."""
    data = deployed.output_folder / "finaldata.csv"
    with Ledger(deployed.ledger_path) as ledger:
        before = reporting.build_content(reporting.read_inputs(deployed, ledger))["clients"]["population"]
    # two current clients (exited 0), named as ingestion keeps names
    data.write_text(data.read_text(encoding="utf-8") + "NA,0,0,90000,0\n0091,0,0,80000,0\n", encoding="utf-8")
    with Ledger(deployed.ledger_path) as ledger:
        content = reporting.build_content(reporting.read_inputs(deployed, ledger))
    assert content["clients"]["population"] == before + 2
    assert [client["corporation"] for client in content["clients"]["clients"][:2]] == ["NA", "0091"]


def test_rejected_rows_by_reason_leave_out_whole_file_rejections() -> None:
    rejected = [{"row": None, "reason": "empty file"}, {"row": 3, "reason": "negative"},
                {"row": 9, "reason": "negative"}, {"row": 4, "reason": "missing value"}]
    assert report.rejection_reasons(rejected) == [{"reason": "negative", "rows": 2},
                                                  {"reason": "missing value", "rows": 1}]


@pytest.mark.slow
def test_a_corrupt_previous_version_costs_the_report_only_its_movers(deployed: Config,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    deployment.run_deployment(deployed)  # version 2; version 1 is its predecessor, the movers' baseline
    score = registry.versions_folder(deployed.prod_folder) / "1" / catalog.SCORE
    score.write_bytes(score.read_bytes() + b"x")
    assert reporting_cli.main(["--config", str(deployed.config_path)]) == 0
    assert "no movers in the report: the previous version 1 failed verification" in caplog.text
    assert (deployed.model_folder / catalog.PLOT).exists()


def deployed_by_a_decision(ledger: Ledger) -> int:
    """A pipeline run that decided DRIFT and deployed version 1 (its deployment stage a child run); the decision id."""
    parent = ledger.runs.start("fullprocess")
    ledger.deployments.record(ledger.runs.start("deployment", parent), 1, "a" * 64, 0.5)
    return ledger.decisions.record(parent, "DRIFT", "deployed version 1", {"method": "statistical"}, [])


def test_the_report_attributes_the_deploying_decision_after_more_than_1000_later_ones(tmp_path) -> None:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        deciding = deployed_by_a_decision(ledger)
        for _ in range(1001):
            ledger.decisions.record(ledger.runs.start("fullprocess"), "NO DRIFT", "kept the deployed model", {}, [])
        deployment_row, decision = reporting.deciding_record(ledger, 1)
    assert deployment_row["version"] == 1
    assert decision is not None, "the deploying decision was not found"
    assert (decision["id"], decision["verdict"]) == (deciding, "DRIFT")
    assert report.decision_record(decision, deployment_row)["verdict"] == "DRIFT"


def test_the_report_reads_the_newest_files_and_reasons_up_to_a_cap_and_counts_the_rest(tmp_path) -> None:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        run = ledger.runs.start("ingestion")
        with ledger.transaction():
            for i in range(1200):
                ledger.files.add_rejected_rows(run, f"f{i}.csv", [(2, "x", "-1", f"reason {i % 50:02d}")] * (1 + i % 2))
                ledger.files.add(run, {"name": f"f{i}.csv", "sha256": f"{i:064d}", "size": 1, "mtime_ns": 0,
                                       "status": "rejected" if i % 2 else "ingested", "rows": 10, "rejected_rows": 1})
        deployed_by_a_decision(ledger)
        inputs = reporting.ledger_inputs(ledger, 1)
    shown = report.MAX_FILES
    assert len(inputs["files"]) == shown  # read: the files the report shows, not the whole table
    assert [f["name"] for f in inputs["files"]] == [f"f{i}.csv" for i in range(1200 - shown, 1200)]
    content = reporting.ledger_content(inputs, [])
    lineage = content["lineage"]
    assert (lineage["more_files"], lineage["ingested_files"], lineage["rejected_files"]) == (1200 - shown, 600, 600)
    assert (lineage["ingested_rows"], lineage["rejected_rows"]) == (6000, 1200)
    assert len(content["rejections"]) == reporting.MAX_REASONS < 50
    assert content["rejections"][0] == {"reason": "reason 01", "rows": 48}  # odd files reject two rows each
    assert content["more_rejections"] == {"reasons": 50 - reporting.MAX_REASONS,
                                          "rows": 1800 - sum(r["rows"] for r in content["rejections"])}
