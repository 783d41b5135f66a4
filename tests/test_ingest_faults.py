"""SIGKILL ingestion at random instants on multi-file input; after a clean rerun every good row is in
finaldata.csv exactly once and the ledger, the rejects file, the index and ingestedfiles.txt agree with it."""
from __future__ import annotations

import csv
import itertools
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, runs, synthetic_frame

import ingestion as ingestion_cli
from risk import catalog, store
from risk.config import Config
from risk.ledger import Ledger

pytestmark = pytest.mark.system

KILLS = 12  # one in each twelfth of [0, 2.5 x one file's work] (stratified: spread as the 22 uniform ones were)
MAX_RUNS = 60  # a run that ends before its instant does not count: its twelfth is aimed at again
ROWS = 20_000
BAD_EVERY = 997  # one bad line in every this many
SEED = 4


def write_input(config: Config, number: int) -> tuple[pd.DataFrame, int]:
    """An input file: fresh rows, a slice of the previous file's rows (duplicates) and some bad lines."""
    frame = pd.concat([synthetic_frame(ROWS, seed=number), synthetic_frame(ROWS // 5, seed=max(number - 1, 0))])
    lines = frame.to_csv(index=False, header=False).splitlines()
    bad = 0
    for at in range(BAD_EVERY // 2, len(lines), BAD_EVERY):
        lines[at:at] = [f"bad{at},-1,2,3,0"]
        bad += 1
    header = ",".join(frame.columns)
    (config.input_folder / f"batch{number:03d}.csv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return frame, bad


def command(config: Config) -> list[str]:
    return [sys.executable, str(REPO / "ingestion.py"), "--config", str(config.config_path)]


def last_run(config: Config) -> dict:
    with Ledger(config.ledger_path) as ledger:
        newest = runs(ledger, limit=1)
    return newest[0] if newest else {"id": 0}


def killed_at(config: Config, seconds: float) -> bool:
    """Run ingestion and SIGKILL it `seconds` after it starts work; True when it was still running then."""
    after = last_run(config)["id"]
    process = subprocess.Popen(command(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while process.poll() is None and last_run(config)["id"] == after and time.monotonic() < deadline:
        time.sleep(0.002)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        return True
    return False


def assert_agrees(config: Config, frames: list[pd.DataFrame], bad_rows: int) -> None:
    expected = pd.concat(frames, ignore_index=True).drop_duplicates().reset_index(drop=True)
    data = pd.read_csv(config.output_folder / catalog.FINALDATA)
    pd.testing.assert_frame_equal(data, expected, check_dtype=False)  # every good row once, in order
    size = (config.output_folder / catalog.FINALDATA).stat().st_size
    with Ledger(config.ledger_path) as ledger:
        ingested = ledger.files.records(status="ingested")
        rejected = [r for r in ledger.files.rejected_rows() if r["row"] is not None]
        keys = store.load_index(config, ledger).keys()  # the live segments the ledger names
    assert [f["name"] for f in ingested] == sorted(p.name for p in config.input_folder.glob("*.csv"))
    assert sum(f["rows"] for f in ingested) == len(data)
    assert ingested[-1]["data_end"] == size
    assert all(a["data_end"] == b["data_start"] for a, b in itertools.pairwise(ingested))
    assert len(rejected) == bad_rows
    with open(config.output_folder / catalog.REJECTS, encoding="utf-8", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == bad_rows
    assert len(keys) == len(np.unique(keys)) == len(data)
    listed = (config.output_folder / catalog.INGESTEDFILES).read_text(encoding="utf-8").split()
    assert listed == [f["name"] for f in ingested]


def test_sigkill_at_random_instants_then_a_clean_run_has_every_good_row_once(config: Config) -> None:
    rng = random.Random(SEED)
    for path in config.input_folder.iterdir():
        path.unlink()
    frames, bad_rows = [], 0
    frame, bad = write_input(config, 0)
    frames.append(frame)
    bad_rows += bad
    subprocess.run(command(config), check=True, capture_output=True, timeout=120)
    run = last_run(config)
    window = (pd.Timestamp(run["ended_at"]) - pd.Timestamp(run["started_at"])).total_seconds()  # one file's work
    killed = runs = 0
    while killed < KILLS and runs < MAX_RUNS:
        runs += 1
        for _ in range(rng.choice((1, 2, 3))):  # a few new files per run: kills land between files too
            frame, bad = write_input(config, len(frames))
            frames.append(frame)
            bad_rows += bad
        killed += killed_at(config, (killed + rng.random()) * 2.5 * window / KILLS)
    assert killed == KILLS, f"only {killed} of {runs} runs were killed mid-way"
    assert ingestion_cli.main(["--config", str(config.config_path)]) == 0
    assert_agrees(config, frames, bad_rows)
