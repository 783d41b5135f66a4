"""fullprocess.py: the course story (bootstrap, idle, drift, no drift), single flight, recovery, a light idle tick."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import COURSE_F1, REPO, has_pending, runs, snapshot, synthetic_frame, write_frame

import fullprocess
from risk import (
    catalog,
    contract,
    diagnostics,
    drift,
    ingestion,
    methods,
    performance,
    pipeline,
    registry,
    training,
)
from risk.config import Config
from risk.files import single_flight
from risk.ledger import Ledger

HEAVY = ("pandas", "numpy", "sklearn", "flask", "matplotlib")
OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "", "PIP_CONFIG_FILE": os.devnull}
TIMEOUT = 180


@pytest.fixture(autouse=True)
def offline_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Diagnostics after a deploy asks pip for the latest versions; keep that off the network."""
    monkeypatch.setattr(diagnostics, "_latest_cached", lambda name, bucket: "unknown")


def decisions(config: Config) -> list[dict]:
    """The ledger's decisions, oldest first."""
    with Ledger(config.ledger_path) as ledger:
        return ledger.decisions.latest()[::-1]


def last_run(config: Config, stage: str) -> dict:
    with Ledger(config.ledger_path) as ledger:
        return next(run for run in runs(ledger, limit=100) if run["stage"] == stage)


def versions(config: Config) -> list[str]:
    return sorted(p.name for p in registry.versions_folder(config.prod_folder).iterdir())


def judged_rows(config: Config, seed: int, agree: bool) -> pd.DataFrame:
    """New client rows labelled with the deployed model's own answers (agree) or with their opposite."""
    frame = synthetic_frame(60, seed=seed)
    model = registry.load_model(registry.current(config.prod_folder))
    predicted = performance.predictions(model, contract.split_xy(contract.validate_frame(frame, "new rows"))[0])
    assert 0 < predicted.sum() < len(predicted), "the rows must get both answers for F1 to mean something"
    frame[contract.TARGET] = predicted if agree else 1 - predicted
    return frame


def offline_env() -> dict[str, str]:
    return {**os.environ, **OFFLINE_PIP}


@pytest.mark.slow
def test_course_story_bootstrap_idle_drift_then_no_drift(bootstrapped: Config) -> None:
    config = bootstrapped  # the bootstrap run's action, "deployed version 1", is asserted by its fixture
    assert registry.current_number(config.prod_folder) == 1
    [bootstrap] = decisions(config)
    assert bootstrap["verdict"] == "BOOTSTRAP"
    assert bootstrap["evidence"]["files"] == ["dataset1.csv", "dataset2.csv"]

    assert pipeline.run_fullprocess(config) == {"action": "nothing new"}
    assert last_run(config, "fullprocess")["outcome"] == "idle"

    deployed_f1 = float(registry.current(config.prod_folder).manifest["score"])
    assert deployed_f1 == pytest.approx(COURSE_F1)  # the course's 4/7: a deployed score for a drift to fall below
    write_frame(judged_rows(config, seed=1, agree=False), config.input_folder / "dataset5.csv")
    inputs = snapshot(config.input_folder)
    assert pipeline.run_fullprocess(config)["action"] == "deployed version 2"
    drift = decisions(config)[-1]
    assert drift["verdict"] == "DRIFT"
    evidence = drift["evidence"]
    assert (evidence["method"], evidence["new_rows"], evidence["files"]) == ("statistical", 60, ["dataset5.csv"])
    assert evidence["new_f1"] < evidence["expected_f1"] - config.drift_min_f1_drop
    tests = {t["name"]: t for t in evidence["tests"]}
    assert set(tests) == {"f1", "log_loss", *contract.FEATURES}
    assert tests["f1"]["p_adjusted"] < config.drift_alpha
    assert "not shown worse" in evidence["challenger"]["reason"]
    assert evidence["challenger"]["test"]["test"] == "paired bootstrap (percentile), non-inferiority on F1"
    assert registry.current(config.prod_folder).number == 2
    assert versions(config) == ["1", "2"]
    assert json.loads((config.model_folder / catalog.DIAGNOSTICS).read_text())["model_version"] == "2"
    assert (config.model_folder / catalog.PLOT).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert snapshot(config.input_folder) == inputs

    write_frame(judged_rows(config, seed=2, agree=True), config.input_folder / "dataset6.csv")
    assert pipeline.run_fullprocess(config)["action"] == "kept the deployed model"
    calm = decisions(config)[-1]
    assert calm["verdict"] == "NO DRIFT"
    assert calm["evidence"]["new_f1"] == 1.0  # the rows carry the model's own answers
    assert calm["evidence"]["tests"][0]["p_adjusted"] >= config.drift_alpha
    assert calm["evidence"]["files"] == ["dataset6.csv"]
    assert registry.current_number(config.prod_folder) == 2
    assert versions(config) == ["1", "2"]
    assert [d["verdict"] for d in decisions(config)] == ["BOOTSTRAP", "DRIFT", "NO DRIFT"]


def only_one_leaver(config: Config) -> None:
    """The first data: 60 clients of whom exactly one left (too few to cross-validate a model on)."""
    for path in config.input_folder.glob("*.csv"):
        path.unlink()
    frame = synthetic_frame(60, seed=7)
    frame[contract.TARGET] = 0
    frame.loc[frame.index[0], contract.TARGET] = 1
    write_frame(frame, config.input_folder / "first.csv")


def test_without_a_reference_the_rows_wait_for_drift_min_rows_holding_both_classes() -> None:
    def decided(labels: list[int]) -> drift.Decision:
        y, n = np.asarray(labels), len(labels)
        batch = drift.Batch(y, np.zeros(n, dtype=int), np.zeros(n), np.zeros((n, len(contract.FEATURES))))
        return methods.statistical(drift.Inputs(batch, None, 0.5, [], contract.FEATURES, drift.Thresholds(min_rows=30)))

    few, one_class, both = decided([0, 1] * 10), decided([0] * 40), decided([0, 1] * 20)
    assert (few.verdict, one_class.verdict, both.verdict) == (drift.INCONCLUSIVE, drift.INCONCLUSIVE, drift.RETRAIN)
    assert "20 new row(s) < drift_min_rows 30" in few.evidence["warning"]
    assert "hold only class [0]" in one_class.evidence["warning"]
    assert both.evidence["warning"].startswith("the deployed model has no cross-validated reference")


@pytest.mark.slow
def test_a_bootstrap_on_one_leaver_warns_and_retrains_when_drifted_data_arrives(
        config: Config, caplog: pytest.LogCaptureFixture) -> None:
    only_one_leaver(config)
    assert pipeline.run_fullprocess(config)["action"] == "deployed version 1"
    [bootstrap] = decisions(config)
    assert "1 leaver" in bootstrap["evidence"]["warning"]
    assert any(r.levelno == logging.WARNING and "1 leaver" in r.getMessage() for r in caplog.records)
    for tick in range(3):  # new data with concept drift (the label rule flipped) arrives at each tick
        write_frame(synthetic_frame(60, seed=10 + tick, flip=True), config.input_folder / f"drifted{tick}.csv")
        pipeline.run_fullprocess(config)
        if registry.current_number(config.prod_folder) == 2:
            break
    assert registry.current_number(config.prod_folder) == 2, [(d["verdict"], d["action"]) for d in decisions(config)]
    assert (tick, decisions(config)[-1]["verdict"]) == (0, "RETRAIN")  # no drift: nothing was tested
    assert "no cross-validated reference" in decisions(config)[-1]["evidence"]["warning"]
    card = json.loads((registry.current(config.prod_folder).folder / catalog.CARD).read_text())
    assert card["expected_performance"]["cv_folds"] >= 2  # the new version has a reference: drift as usual


@pytest.mark.slow
def test_raw_method_is_the_course_rule(bootstrapped: Config) -> None:
    config = bootstrapped._replace(drift_method="raw")  # bootstrapped: the method plays no part in a bootstrap
    deployed_f1 = float(registry.current(config.prod_folder).manifest["score"])
    write_frame(judged_rows(config, seed=1, agree=False), config.input_folder / "dataset5.csv")
    assert pipeline.run_fullprocess(config)["action"] == "deployed version 2"
    drift = decisions(config)[-1]
    assert (drift["verdict"], drift["evidence"]["method"]) == ("DRIFT", "raw")
    assert drift["evidence"]["new_f1"] < drift["evidence"]["deployed_f1"] == pytest.approx(deployed_f1)
    write_frame(judged_rows(config, seed=2, agree=True), config.input_folder / "dataset6.csv")
    assert pipeline.run_fullprocess(config)["action"] == "kept the deployed model"
    calm = decisions(config)[-1]["evidence"]
    assert calm["new_f1"] >= calm["deployed_f1"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["parametric", "nonparametric"])
def test_history_methods_compare_with_the_past_scores_of_the_deployed_model(bootstrapped: Config, method: str) -> None:
    config = bootstrapped._replace(drift_method=method)
    write_frame(judged_rows(config, seed=2, agree=True), config.input_folder / "dataset5.csv")
    assert pipeline.run_fullprocess(config)["action"] == "kept the deployed model"
    first = decisions(config)[-1]["evidence"]
    assert len(first["past_scores"]) == 1  # the test-data score recorded when it was deployed
    write_frame(judged_rows(config, seed=1, agree=False), config.input_folder / "dataset6.csv")
    assert pipeline.run_fullprocess(config)["action"] == "deployed version 2"
    drift = decisions(config)[-1]["evidence"]
    assert drift["past_scores"] == [*first["past_scores"], 1.0]  # the kept model's F1 on dataset5 joined them
    assert drift["new_f1"] < drift["threshold"]


@pytest.mark.slow
def test_empty_input_folder_with_a_model_deployed_is_idle(config: Config, capsys: pytest.CaptureFixture) -> None:
    assert fullprocess.main(["--config", str(config.config_path)]) == 0
    for path in config.input_folder.glob("*.csv"):
        path.unlink()  # the operator moved the files away
    capsys.readouterr()
    assert fullprocess.main(["--config", str(config.config_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"action": "nothing new"}
    assert registry.current_number(config.prod_folder) == 1
    assert last_run(config, "fullprocess")["outcome"] == "idle"


def test_no_model_and_empty_input_exits_1_with_one_clear_line(config: Config,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    for path in config.input_folder.glob("*.csv"):
        path.unlink()
    assert fullprocess.main(["--config", str(config.config_path)]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert str(config.input_folder) in errors[0]
    assert "nothing to train on" in errors[0]
    assert registry.current_number(config.prod_folder) is None
    assert last_run(config, "fullprocess")["outcome"] == "failed"


def test_a_held_lock_makes_the_run_leave_at_once(config: Config) -> None:
    with single_flight(config.lock_path) as mine:
        assert mine
        assert pipeline.run_fullprocess(config) == {"action": "another run is in progress"}
    assert registry.current_number(config.prod_folder) is None
    assert not config.ledger_path.exists()


@pytest.mark.slow
def test_five_overlapping_runs_deploy_exactly_once(config: Config) -> None:
    command = [sys.executable, str(REPO / "fullprocess.py"), "--config", str(config.config_path), "--json"]
    runs = [subprocess.Popen(command, cwd=config.root, env=offline_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(5)]
    try:
        outputs = [run.communicate(timeout=TIMEOUT) for run in runs]
    finally:
        for run in runs:
            run.kill()
    assert [run.returncode for run in runs] == [0] * 5, [err for _, err in outputs]
    actions = [json.loads(out)["action"] for out, _ in outputs]
    assert actions.count("deployed version 1") == 1
    assert set(actions) <= {"deployed version 1", "another run is in progress", "nothing new"}
    assert versions(config) == ["1"]
    assert [d["verdict"] for d in decisions(config)] == ["BOOTSTRAP"]


@pytest.mark.slow
def test_a_crash_before_the_decision_is_decided_by_the_next_run(bootstrapped: Config,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config = bootstrapped
    original = pipeline.retrain_and_deploy
    write_frame(judged_rows(config, seed=3, agree=False), config.input_folder / "dataset5.csv")

    def crash(config: Config, run_id: int) -> dict:
        assert registry.current(config.prod_folder).number == 1
        raise RuntimeError("killed during retraining")

    monkeypatch.setattr(pipeline, "retrain_and_deploy", crash)
    with pytest.raises(RuntimeError, match="killed during retraining"):
        pipeline.run_fullprocess(config)
    assert registry.current(config.prod_folder).number == 1
    assert [d["verdict"] for d in decisions(config)] == ["BOOTSTRAP"]
    assert last_run(config, "fullprocess")["outcome"] == "failed"
    with Ledger(config.ledger_path) as ledger:
        assert [f["name"] for f in ledger.files.records(status="ingested", pending=True)] == ["dataset5.csv"]

    serving = []

    def retrain(config: Config, run_id: int) -> dict:
        serving.append(registry.current(config.prod_folder).number)
        return original(config, run_id)

    monkeypatch.setattr(pipeline, "retrain_and_deploy", retrain)
    crashed = last_run(config, "fullprocess")["id"]
    assert pipeline.pending_work(config) == [f"run {crashed} stopped before recording its DRIFT decision",
                                                "ingested data awaits a drift decision"]
    assert pipeline.run_fullprocess(config)["action"] == "deployed version 2"
    assert serving == [1]
    drift = decisions(config)[-1]
    assert (drift["verdict"], drift["evidence"]["files"]) == ("DRIFT", ["dataset5.csv"])
    assert registry.current(config.prod_folder).number == 2
    with Ledger(config.ledger_path) as ledger:
        assert not has_pending(ledger)


@pytest.mark.slow
def test_data_ingested_outside_fullprocess_is_decided_on_the_next_tick(bootstrapped: Config) -> None:
    config = bootstrapped
    write_frame(judged_rows(config, seed=4, agree=True), config.input_folder / "dataset5.csv")
    ingestion.run_ingestion(config)
    assert pipeline.pending_work(config) == ["ingested data awaits a drift decision"]
    assert pipeline.run_fullprocess(config)["action"] == "kept the deployed model"
    decision = decisions(config)[-1]
    assert (decision["verdict"], decision["evidence"]["files"]) == ("NO DRIFT", ["dataset5.csv"])
    assert registry.current(config.prod_folder).number == 1
    assert pipeline.run_fullprocess(config) == {"action": "nothing new"}


@pytest.mark.slow
def test_leftovers_of_a_killed_run_are_cleaned_by_the_next_run(bootstrapped: Config) -> None:
    config = bootstrapped
    unfinished = registry.versions_folder(config.prod_folder) / "2"
    unfinished.mkdir()
    (unfinished / "trainedmodel.pkl").write_bytes(b"half a model")
    temps = [config.prod_folder / ".tmp-current.x", config.output_folder / ".tmp-finaldata.csv.x",
             config.model_folder / ".tmp-trainedmodel.pkl.x"]
    for temp in temps:
        temp.write_bytes(b"partial")
    write_frame(judged_rows(config, seed=3, agree=False), config.input_folder / "dataset5.csv")
    assert pipeline.run_fullprocess(config)["action"] == "deployed version 2"  # the half one was removed first
    assert not any(temp.exists() for temp in temps)
    assert (unfinished / "trainedmodel.pkl").read_bytes() != b"half a model"
    assert registry.current(config.prod_folder).number == 2  # verified: every file matches the manifest


@pytest.mark.slow
def test_the_idle_tick_imports_no_heavy_library(bootstrapped: Config) -> None:
    config = bootstrapped
    script = ("import json, sys, fullprocess; code = fullprocess.main(['--config', sys.argv[1]]); "
              "print(json.dumps(sorted(sys.modules))); raise SystemExit(code)")
    done = subprocess.run([sys.executable, "-c", script, str(config.config_path)], cwd=REPO, env=offline_env(),
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    assert "nothing new" in done.stderr
    modules = {name.split(".")[0] for name in json.loads(done.stdout.splitlines()[-1])}
    assert "fullprocess" in modules
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))
    assert last_run(config, "fullprocess")["outcome"] == "idle"


class Contrarian:
    """A challenger that answers the opposite of the champion: worse on every row the champion gets right."""

    def __init__(self, champion: object) -> None:
        self.champion = champion

    def predict_proba(self, x):
        return self.champion.predict_proba(x)[:, ::-1]


@pytest.mark.slow
def test_a_challenger_worse_than_the_champion_is_not_deployed(bootstrapped: Config,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = bootstrapped
    champion = registry.load_model(registry.current(config.prod_folder))
    write_frame(judged_rows(config, seed=2, agree=True), config.input_folder / "dataset5.csv")
    verdict = drift.Decision(drift.DRIFT, "statistical", {"new_rows": 60}, "a drift, say")
    monkeypatch.setitem(methods.METHODS, "statistical", lambda inputs: verdict)
    monkeypatch.setattr(training, "train_model", lambda frame: Contrarian(champion))
    action = pipeline.run_fullprocess(config)["action"]
    assert action.startswith("kept the champion: challenger worse by more than the margin 0.05 on 60 held-out rows")
    decision = decisions(config)[-1]
    assert (decision["verdict"], decision["action"]) == ("DRIFT", action)
    test = decision["evidence"]["challenger"]["test"]
    assert (test["f1_champion"], test["f1_challenger"], test["f1_difference"]) == (1.0, 0.0, -1.0)
    assert test["inferior"]
    assert registry.current_number(config.prod_folder) == 1
    with Ledger(config.ledger_path) as ledger:
        assert not ledger.files.records(status="ingested", pending=True)  # decided: the same data is not tried again
    assert pipeline.run_fullprocess(config) == {"action": "nothing new"}


@pytest.mark.slow
def test_a_version_made_current_but_not_recorded_is_recorded_by_the_next_run(bootstrapped: Config) -> None:
    from risk import deployment

    config = bootstrapped
    card = json.loads((config.model_folder / catalog.CARD).read_text(encoding="utf-8"))
    sources = deployment.sources(config, card)  # the same model again, deployed as if the run died before recording
    registry.deploy(config.prod_folder, sources, {"score": 0.5, "data_sha256": None, "rows": 0})
    (config.prod_folder / "trainedmodel.pkl").write_bytes(b"stale flat copy")
    assert pipeline.pending_work(config) == ["version 2 is current but the ledger has not recorded it"]
    pipeline.run_fullprocess(config)
    with Ledger(config.ledger_path) as ledger:
        last = ledger.deployments.records()[-1]
    assert (last["version"], last["action"]) == (2, "recovered")
    assert (config.prod_folder / "trainedmodel.pkl").read_bytes() == \
        (registry.versions_folder(config.prod_folder) / "2" / "trainedmodel.pkl").read_bytes()
    assert pipeline.run_fullprocess(config) == {"action": "nothing new"}


def deferred_course_data(config: Config) -> list[dict]:
    """On a bootstrapped project (the fixture asserts "deployed version 1"), the course's 26 new rows: deferred
    (INCONCLUSIVE). Returns the decisions so far."""
    assert [d["verdict"] for d in decisions(config)] == ["BOOTSTRAP"]
    for source in sorted((REPO / "sourcedata").glob("*.csv")):
        (config.input_folder / source.name).write_bytes(source.read_bytes())
    assert pipeline.run_fullprocess(config)["action"].startswith("deferred")
    return decisions(config)


@pytest.mark.slow
def test_a_rejected_file_alone_does_not_decide_the_deferred_rows_again(bootstrapped: Config) -> None:
    config = bootstrapped
    before = deferred_course_data(config)
    (config.input_folder / "bad.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    assert pipeline.run_fullprocess(config)["action"] == pipeline.NOTHING_TO_DECIDE
    assert pipeline.run_fullprocess(config) == {"action": "nothing new"}
    assert decisions(config) == before


@pytest.mark.slow
@pytest.mark.parametrize("files_there", [True, False])
def test_views_behind_are_rewritten_without_deciding_again(bootstrapped: Config, files_there: bool) -> None:
    config = bootstrapped
    before = deferred_course_data(config)
    listed = (config.output_folder / "ingestedfiles.txt").read_bytes()
    (config.output_folder / "ingestedfiles.txt").unlink()
    if not files_there:  # the operator moved the input files away: ingestion has nothing to run on
        for path in config.input_folder.glob("*.csv"):
            path.unlink()
    assert pipeline.pending_work(config) == ["ingested-data views are behind the ledger"]
    assert pipeline.run_fullprocess(config)["action"] == pipeline.NOTHING_TO_DECIDE
    assert (config.output_folder / "ingestedfiles.txt").read_bytes() == listed
    assert pipeline.run_fullprocess(config) == {"action": "nothing new"}
    assert decisions(config) == before


@pytest.mark.slow
def test_a_file_named_with_a_newline_is_decided_at_most_once_then_the_tick_is_idle(bootstrapped: Config) -> None:
    """Rejected for its name (a line break cannot stand in ingestedfiles.txt): one tick that decides nothing, then
    idle, and the deferred course rows are not decided again."""
    config = bootstrapped
    before = deferred_course_data(config)
    write_frame(synthetic_frame(2, seed=8), config.input_folder / "new\nline.csv")
    assert pipeline.run_fullprocess(config)["action"] == pipeline.NOTHING_TO_DECIDE
    for _ in range(3):
        assert pipeline.run_fullprocess(config) == {"action": "nothing new"}
    assert decisions(config) == before
    with Ledger(config.ledger_path) as ledger:
        [rejected] = ledger.files.records(status="rejected")
    assert (rejected["name"], rejected["reason"]) == (
        "new\nline.csv", "its name holds a control character (a line break, a tab); rename it")


@pytest.mark.slow
def test_a_model_trained_and_deployed_by_hand_is_never_drift_tested_on_its_own_rows(bootstrapped: Config) -> None:
    import deployment as deployment_cli
    from risk import scoring

    config = bootstrapped  # version 1, bootstrap
    write_frame(synthetic_frame(60, seed=21), config.input_folder / "by_hand.csv")
    ingestion.run_ingestion(config)
    training.run_training(config)
    scoring.run_scoring(config)
    assert deployment_cli.main(["--config", str(config.config_path)]) == 0  # version 2, trained on by_hand.csv
    with Ledger(config.ledger_path) as ledger:
        assert ledger.files.records(status="ingested", pending=True) == []
    before = decisions(config)
    assert pipeline.run_fullprocess(config)["action"] != "deployed version 3"
    assert decisions(config) == before  # no decision on rows version 2 was trained on
