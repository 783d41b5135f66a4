"""Kill the pipeline at random instants: production keeps serving a verified model and the next run recovers.

Also: ten overlapping runs started together, of which exactly one does the work.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, has_pending, runs, synthetic_frame, write_frame

from risk import catalog, contract, performance, registry
from risk.config import Config, load_config
from risk.ledger import Ledger

pytestmark = pytest.mark.system

THIRDS = 3  # kills aimed at each stage: one at a random instant in each third of its window (start, middle, end)
MAX_RUNS = 40  # a run that ends before its instant does not count: its stage and third are aimed at again
SEED = 20261125
OFFLINE = {**os.environ, "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""}
COMMAND = [sys.executable, str(REPO / "fullprocess.py"), "--config"]


def pinned_raw(config: Config) -> Config:
    """Pin the course's drift rule, so that rows labelled against the model always mean a redeploy."""
    data = json.loads(config.config_path.read_text())
    config.config_path.write_text(json.dumps({**data, "drift_method": "raw"}))
    return load_config(config.config_path)


def against_the_model(config: Config, seed: int) -> pd.DataFrame:
    """New rows labelled with the opposite of the deployed model's answers (random labels before a model)."""
    frame = synthetic_frame(40, seed=seed)
    if registry.current_number(config.prod_folder) is not None:
        model = registry.load_model(registry.current(config.prod_folder))
        x = contract.matrix(contract.validate_frame(frame, "rows"))
        frame[contract.TARGET] = 1 - performance.predictions(model, x)
    return frame


STAGES = ("ingestion", "training", "scoring", "deployment")


def stage_windows(config: Config) -> dict[str, tuple[float, float]]:
    """Seconds from spawn to the start and end of each stage, from one clean run that retrains and deploys."""
    start = time.time()
    subprocess.run([*COMMAND, str(config.config_path)], env=OFFLINE, check=True, capture_output=True, timeout=300)
    with Ledger(config.ledger_path) as ledger:
        by_stage = {run["stage"]: run for run in runs(ledger, limit=50)[::-1] if run["stage"] in STAGES}

    def seconds(stamp: str) -> float:
        return pd.Timestamp(stamp).timestamp() - start

    return {s: (seconds(by_stage[s]["started_at"]), seconds(by_stage[s]["ended_at"])) for s in STAGES}


def last_run_id(config: Config) -> int:
    with Ledger(config.ledger_path) as ledger:
        return ledger.db.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0]


def stage_started(config: Config, stage: str, after: int) -> bool:
    with Ledger(config.ledger_path) as ledger:
        row = ledger.db.execute("SELECT 1 FROM runs WHERE stage = ? AND id > ?", (stage, after)).fetchone()
    return row is not None


def kill_during(config: Config, stage: str, delay: float) -> bool:
    """Start a run; `delay` seconds after the ledger shows `stage` begun, SIGKILL it. True if it was running."""
    after = last_run_id(config)
    process = subprocess.Popen([*COMMAND, str(config.config_path)], env=OFFLINE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline and not stage_started(config, stage, after):
        time.sleep(0.002)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        return True
    return False


def killed_stages(config: Config) -> dict[str, int]:
    """How many runs of each stage never ended (killed mid-stage), from the ledger."""
    with Ledger(config.ledger_path) as ledger:
        rows = ledger.db.execute("SELECT stage, count(*) FROM runs WHERE ended_at IS NULL GROUP BY stage")
        return dict(rows.fetchall())


def assert_production_verifies(config: Config) -> None:
    if registry.current_number(config.prod_folder) is None:
        return
    version = registry.current(config.prod_folder)  # every file matches its manifest
    assert performance.predictions(registry.load_model(version), np.array([[1.0, 2.0, 3.0]])).shape == (1,)
    flat = config.prod_folder / catalog.MODEL
    if flat.exists():  # the course's flat copy is some complete version's model, never a torn file
        models = {p.read_bytes() for p in registry.versions_folder(config.prod_folder).glob("*/trainedmodel.pkl")}
        assert flat.read_bytes() in models


def assert_everything_agrees(config: Config, written: list[pd.DataFrame]) -> None:
    expected = contract.validate_frame(pd.concat(written, ignore_index=True), "all").drop_duplicates()
    final = contract.read_csv(config.output_folder / "finaldata.csv")
    assert len(final) == len(final.drop_duplicates()) == len(expected)  # every good row exactly once
    key = list(contract.COLUMNS)
    assert final.sort_values(key).reset_index(drop=True).equals(expected.sort_values(key).reset_index(drop=True))
    with Ledger(config.ledger_path) as ledger:
        ingested = sorted(f["name"] for f in ledger.files.records(status="ingested"))
        assert ingested == sorted(p.name for p in config.input_folder.glob("*.csv"))
        assert not has_pending(ledger)
        assert ledger.deployments.records()[-1]["version"] == registry.current(config.prod_folder).number
    names = (config.output_folder / "ingestedfiles.txt").read_text().split()
    assert sorted(names) == ingested
    leftovers = [p for p in config.prod_folder.rglob(".tmp-*")] + [p for p in config.output_folder.rglob(".tmp-*")]
    assert leftovers == []
    assert registry.finished(config.prod_folder) == sorted(
        int(p.name) for p in registry.versions_folder(config.prod_folder).iterdir())


def test_sigkill_at_random_instants_never_breaks_production(bootstrapped: Config, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    config = pinned_raw(bootstrapped)  # version 1, deployed by fullprocess
    written = [pd.read_csv(p) for p in sorted(config.input_folder.glob("*.csv"))]
    written.append(against_the_model(config, seed=99))
    write_frame(written[-1], config.input_folder / "reference.csv")
    windows = stage_windows(config)  # a run that ingests, decides DRIFT, trains, scores and deploys
    # every stage in turn, each third of its window once (stratified: the instants spread over the whole stage
    # as 30 uniform ones did, in 12 runs); then, within MAX_RUNS, the stages no kill has landed in yet (scoring
    # lasts tens of ms: a kill aimed at it can land in deployment)
    plan = [(stage, third) for third in range(THIRDS) for stage in STAGES]
    interrupted = runs = 0
    missing = set(STAGES)
    while (interrupted < len(plan) or missing) and runs < MAX_RUNS:
        frame = against_the_model(config, seed=100 + runs)
        written.append(frame)
        write_frame(frame, config.input_folder / f"batch{runs:02d}.csv")
        stage, third = plan[interrupted] if interrupted < len(plan) else \
            (sorted(missing)[runs % len(missing)], rng.randrange(THIRDS))
        begin, end = windows[stage]
        interrupted += kill_during(config, stage, (end - begin) * (third + rng.random()) / THIRDS)
        runs += 1
        missing -= set(killed_stages(config))
        assert_production_verifies(config)
    assert interrupted >= len(plan), f"only {interrupted} of {runs} runs were killed mid-way"
    hit = killed_stages(config)
    assert {"ingestion", "training", "scoring", "deployment"} <= set(hit), hit
    print("runs killed mid-stage:", hit)
    for _ in range(3):  # clean runs until idle: recovery, then the decision on everything pending
        done = subprocess.run([*COMMAND, str(config.config_path)], env=OFFLINE, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stderr
    assert "nothing new" in done.stderr
    assert_everything_agrees(config, written)


def test_ten_overlapping_runs_do_the_work_exactly_once(config: Config) -> None:
    runs = [subprocess.Popen([*COMMAND, str(config.config_path)], env=OFFLINE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(10)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0] * 10
    workers = [err for _, err in outputs if "deployed version" in err]
    others = [err for _, err in outputs if "another run holds" in err or "nothing new" in err]
    assert (len(workers), len(others)) == (1, 9)
    assert registry.finished(config.prod_folder) == [1]
    with Ledger(config.ledger_path) as ledger:
        assert [d["verdict"] for d in ledger.decisions.latest()] == ["BOOTSTRAP"]
        assert len(ledger.files.records(status="ingested")) == 2


# ---- kills after the switch: the next tick ends where a completed run would have ------------------------------

DIE_IN = """import importlib, os, sys
module, store, method = sys.argv[2].split(".")  # a store's method in risk/ledger/, e.g. decisions.Decisions.record
store = getattr(importlib.import_module(f"risk.ledger.{module}"), store)
setattr(store, method, lambda *args, **kwargs: os._exit(137))  # a SIGKILL at that instant
import fullprocess
raise SystemExit(fullprocess.main(["--config", sys.argv[1]]))
"""


def tick(config: Config) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, str(config.config_path)], env=OFFLINE, capture_output=True, text=True,
                          timeout=300, check=False)


def after_deploy_outputs(config: Config) -> dict[str, bool]:
    reports = config.model_folder / "reports"
    return {"diagnostics.json": (config.model_folder / "diagnostics.json").is_file(),
            "confusionmatrix.png": (config.model_folder / "confusionmatrix.png").is_file(),
            "latest.pdf": (reports / "latest.pdf").is_file(), "latest.html": (reports / "latest.html").is_file()}


def assert_completed(config: Config, verdicts: list[str], version: int) -> None:
    """The state a run that was never killed leaves: decisions, files settled, the version's reports, then idle."""
    from risk import reporting

    with Ledger(config.ledger_path) as ledger:
        assert [d["verdict"] for d in ledger.decisions.latest()][::-1] == verdicts
        assert not has_pending(ledger)
        assert ledger.deployments.records()[-1]["version"] == version
        _, decision = reporting.deciding_record(ledger, version)  # the report names its decision
        assert decision is not None
        assert decision["verdict"] == verdicts[-1]
    assert registry.finished(config.prod_folder)[-1] == registry.current(config.prod_folder).number == version
    assert all(after_deploy_outputs(config).values()), after_deploy_outputs(config)
    assert json.loads((config.model_folder / "diagnostics.json").read_text())["model_version"] == str(version)
    assert (config.model_folder / "reports" / str(version) / "report.pdf").is_file()
    done = tick(config)
    assert (done.returncode, "nothing new" in done.stderr) == (0, True), done.stderr


def test_a_kill_after_the_deploy_leaves_diagnostics_and_report_to_the_next_tick(config: Config) -> None:
    log = config.root / "tick.log"
    with open(log, "w") as err:
        process = subprocess.Popen([*COMMAND, str(config.config_path)], env=OFFLINE, stdout=subprocess.DEVNULL,
                                   stderr=err)
    try:
        deadline = time.monotonic() + 120
        while "fullprocess: deployed version 1" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert not any(after_deploy_outputs(config).values()), "the kill came too late to test anything"
    done = tick(config)
    assert done.returncode == 0, done.stderr
    assert "diagnostics and report" in done.stderr
    assert_completed(config, ["BOOTSTRAP"], 1)


@pytest.mark.parametrize("dies_in", ["deployments.Deployments.record", "decisions.Decisions.record"])
def test_a_kill_between_the_switch_and_the_records_of_a_bootstrap(config: Config, dies_in: str) -> None:
    killed = subprocess.run([sys.executable, "-c", DIE_IN, str(config.config_path), dies_in], cwd=REPO,
                            env=OFFLINE, capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == 137, killed.stderr
    assert registry.current_number(config.prod_folder) == 1  # switched, then killed
    done = tick(config)
    assert done.returncode == 0, done.stderr
    assert "INCONCLUSIVE" not in done.stderr  # the model's own training rows are not new data
    assert_completed(config, ["BOOTSTRAP"], 1)


@pytest.mark.parametrize("dies_in", ["deployments.Deployments.record", "decisions.Decisions.record"])
def test_a_kill_between_the_switch_and_the_records_of_a_drift(bootstrapped: Config, dies_in: str) -> None:
    config = pinned_raw(bootstrapped)  # version 1, deployed by a fullprocess tick
    write_frame(against_the_model(config, seed=7), config.input_folder / "drifted.csv")
    killed = subprocess.run([sys.executable, "-c", DIE_IN, str(config.config_path), dies_in], cwd=REPO,
                            env=OFFLINE, capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == 137, killed.stderr
    assert registry.current_number(config.prod_folder) == 2
    done = tick(config)
    assert done.returncode == 0, done.stderr
    assert "deployed version 3" not in done.stderr  # the drift is not decided (and retrained) twice
    assert_completed(config, ["BOOTSTRAP", "DRIFT"], 2)
    with Ledger(config.ledger_path) as ledger:
        drift = ledger.decisions.latest(1)[0]
    assert (drift["action"], drift["evidence"]["files"]) == ("deployed version 2", ["drifted.csv"])


def test_a_hand_run_ingestion_holding_its_lock_makes_the_tick_leave_with_exit_0(config: Config) -> None:
    hold = ("import sys, time; from pathlib import Path; from risk.files import single_flight\n"
            "with single_flight(Path(sys.argv[1])) as mine:\n"
            "    print(mine, flush=True); sys.stdin.read()")
    with subprocess.Popen([sys.executable, "-c", hold, str(config.output_folder / ".ingestion.lock")], cwd=REPO,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout.readline().strip() == "True"  # an ingestion by hand, holding its lock
            done = tick(config)
        finally:
            holder.communicate(timeout=60)  # closes its stdin: it releases the lock and ends
    assert done.returncode == 0, done.stderr
    assert "another ingestion is running" in done.stderr
    assert registry.current_number(config.prod_folder) is None
    with Ledger(config.ledger_path) as ledger:
        assert ledger.files.records() == []
        assert ledger.decisions.latest() == []
    done = tick(config)  # the next tick picks the data up
    assert (done.returncode, "deployed version 1" in done.stderr) == (0, True), done.stderr
