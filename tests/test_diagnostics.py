"""diagnostics.py: predictions, summary statistics, missing values, timings, dependencies and the report."""
from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import COURSE_PREDICTIONS, REPO, snapshot

import diagnostics as diagnostics_cli
from app import create_app
from risk import catalog, contract, diagnostics, store
from risk.config import Config
from risk.ledger import Ledger

SECTIONS = {"model_version", "predictions", "summary_statistics", "missing_share", "execution_time", "dependencies"}


@pytest.fixture(autouse=True)
def fresh_latest_cache() -> Iterator[None]:
    diagnostics._latest_cached.cache_clear()
    yield
    diagnostics._latest_cached.cache_clear()


@pytest.fixture
def no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip with no usable package index: no config files, no find-links, a closed loopback port."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)  # conftest keeps tests from starting pip: not here
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)


def fake_latest(name: str) -> str:
    return f"latest-{name}"


def test_predictions_of_the_deployed_model_on_the_test_data(deployed: Config) -> None:
    report = diagnostics.diagnose(deployed, timings=False, latest=fake_latest)
    assert report["model_version"] == "1"
    assert len(report["predictions"]) == 5
    assert set(report["predictions"]) <= {0, 1}
    # the course model on testdata.csv: P(leaves) 0.19, 0.96, 1.00, 0.65, 0.80 -> flagged at >= 0.5
    assert report["predictions"] == COURSE_PREDICTIONS


def test_summary_statistics_are_pandas_mean_median_and_std_of_finaldata(deployed: Config) -> None:
    stats = diagnostics.diagnose(deployed, timings=False, latest=fake_latest)["summary_statistics"]
    finaldata = pd.read_csv(deployed.output_folder / catalog.FINALDATA)
    assert set(stats) == set(contract.FEATURES)
    for column in contract.FEATURES:
        expected = {"mean": finaldata[column].mean(), "median": finaldata[column].median(),
                    "std": finaldata[column].std()}
        assert stats[column] == pytest.approx(expected)


def test_ingested_ids_are_text_as_ingestion_kept_them_and_features_numbers(deployed: Config) -> None:
    path = deployed.output_folder / catalog.FINALDATA
    assert path.read_bytes().endswith(b"\n")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("NA,1,2,3,0\n00007,4,5,6,1\n,7,8,9,0\nnan,1,1,1,1\n")
    frame = store.read_history(deployed)
    assert frame[contract.ID_COLUMN].iloc[-4:].fillna("<missing>").tolist() == ["NA", "00007", "<missing>", "nan"]
    assert all(frame[c].dtype == "float64" for c in contract.FEATURES)
    report = diagnostics.diagnose(deployed, timings=False, latest=fake_latest)
    assert report["missing_share"][contract.ID_COLUMN] == pytest.approx(1 / len(frame))  # only the empty cell
    first = contract.FEATURES[0]
    assert report["missing_share"][first] == 0.0
    assert report["summary_statistics"][first]["mean"] == pytest.approx(frame[first].mean())


def test_missing_share_per_column() -> None:
    frame = pd.DataFrame({"a": [1.0, None, 3.0, None], "b": [1, 2, 3, 4], "c": [None, "x", "y", "z"]})
    assert diagnostics.missing_share(frame) == {"a": 0.5, "b": 0.0, "c": 0.25}


def stage_clock(ticks: Iterator[float]) -> SimpleNamespace:
    """The time module as diagnostics sees it, with perf_counter (the stages' clock only) reading `ticks`."""
    return SimpleNamespace(perf_counter=lambda: next(ticks), time=time.time, monotonic=time.monotonic)


def test_execution_time_is_the_median_of_the_scratch_runs_and_touches_no_project_file(
        deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    # a clock read before and after each stage of each of the 3 runs: ingestion takes 1, 2, 9 s and training 40, 45,
    # 80 s -> medians 2 and 45 (means would be 4 and 55)
    ticks = iter([0, 1, 1, 41, 41, 43, 43, 88, 88, 97, 97, 177])
    monkeypatch.setattr(diagnostics, "time", stage_clock(ticks))
    folders = (deployed.input_folder, deployed.output_folder, deployed.model_folder, deployed.prod_folder)
    before = [snapshot(folder) for folder in folders]
    timings = diagnostics.execution_time(deployed)
    assert (timings["ingestion_seconds"], timings["training_seconds"], timings["repeats"]) == (2, 45, 3)
    assert [snapshot(folder) for folder in folders] == before


def test_scratch_runs_do_not_log_rejections_again(deployed: Config, caplog: pytest.LogCaptureFixture) -> None:
    (deployed.input_folder / "bad.csv").write_text("not,a,client,file\n", encoding="utf-8")
    with caplog.at_level(logging.INFO):
        diagnostics.execution_time(deployed, repeats=1)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_execution_time_with_nothing_to_ingest_says_why(config: Config) -> None:
    for path in config.input_folder.glob("*.csv"):
        path.unlink()
    timings = diagnostics.execution_time(config)
    assert timings["ingestion_seconds"] is None
    assert str(config.input_folder) in timings["note"]


def test_dependencies_lists_installed_pinned_and_latest(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# runtime\npandas==3.1.1\nflask>=3\nNumPy == 2.4.6 ; python_version > '3'\n"
                            "surely-not-installed-pkg==1.0\n")
    rows = diagnostics.dependencies(requirements, latest=fake_latest)
    assert rows == [
        {"name": "pandas", "installed": importlib.metadata.version("pandas"), "pinned": "3.1.1",
         "latest": "latest-pandas", "status": "update available"},
        {"name": "numpy", "installed": importlib.metadata.version("numpy"), "pinned": "2.4.6",
         "latest": "latest-numpy", "status": "update available"},
        {"name": "surely-not-installed-pkg", "installed": "not installed", "pinned": "1.0",
         "latest": "latest-surely-not-installed-pkg", "status": "not installed"},
    ]


def test_the_shipped_requirements_are_all_pinned_and_reported() -> None:
    rows = diagnostics.dependencies(diagnostics.REQUIREMENTS, latest=fake_latest)
    names = [row["name"] for row in rows]
    assert {"pandas", "numpy", "scikit-learn", "flask", "matplotlib"} <= set(names)
    assert all(row["installed"] == row["pinned"] for row in rows), rows
    assert {row["status"] for row in rows} == {"update available"}


def test_status_of_each_dependency() -> None:
    assert diagnostics.status_of("1.0", "1.0", "1.0") == "ok"
    assert diagnostics.status_of("1.0", "1.0", "unknown") == "ok"
    assert diagnostics.status_of("1.0", "1.0", "2.0") == "update available"
    assert diagnostics.status_of("1.1", "1.0", "2.0") == "differs from pin"
    assert diagnostics.status_of("not installed", "1.0", "2.0") == "not installed"


def test_latest_version_without_a_network_is_unknown(no_index: None) -> None:
    start = time.monotonic()
    assert diagnostics.latest_version("pandas") == "unknown"
    assert time.monotonic() - start < diagnostics.PIP_TIMEOUT_SECONDS + 5


@pytest.mark.parametrize("value", ["1", "true", "Yes"])
def test_latest_version_with_no_index_at_all_is_unknown_without_starting_pip(monkeypatch: pytest.MonkeyPatch,
                                                                             no_index: None, value: str) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", value)
    monkeypatch.setattr(diagnostics.subprocess, "run", lambda *a, **k: pytest.fail("pip was started"))
    assert diagnostics.latest_version("pandas") == "unknown"


@pytest.mark.slow
def test_latest_version_gives_up_on_an_index_that_never_answers(monkeypatch: pytest.MonkeyPatch,
                                                                no_index: None) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{silent.getsockname()[1]}/simple")
        monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "60")
        monkeypatch.setattr(diagnostics, "PIP_TIMEOUT_SECONDS", 2)
        start = time.monotonic()
        assert diagnostics.latest_version("pandas") == "unknown"
        assert time.monotonic() - start < 10


def test_main_json_prints_every_section_and_writes_the_report(deployed: Config, capsys: pytest.CaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnostics, "_latest_cached", lambda name, bucket: "unknown")
    ticks = iter([0, 1, 1, 41, 41, 43, 43, 88, 88, 97, 97, 177])  # ingestion 1, 2, 9 s; training 40, 45, 80 s
    monkeypatch.setattr(diagnostics, "time", stage_clock(ticks))
    assert diagnostics_cli.main(["--config", str(deployed.config_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == SECTIONS
    assert printed == json.loads((deployed.model_folder / catalog.DIAGNOSTICS).read_text())
    assert printed["model_version"] == "1"
    assert (printed["execution_time"]["ingestion_seconds"], printed["execution_time"]["training_seconds"]) == (2, 45)
    assert printed["execution_time"]["repeats"] == diagnostics.REPEATS
    assert {row["latest"] for row in printed["dependencies"]} == {"unknown"}


def test_main_without_a_deployed_model_exits_1(config: Config, caplog: pytest.LogCaptureFixture) -> None:
    assert diagnostics_cli.main(["--config", str(config.config_path)]) == 1
    assert "no model deployed yet" in caplog.text
    assert not (config.model_folder / catalog.DIAGNOSTICS).exists()


# Timings as medians, the ledger record and the cache of latest versions (issue 8) ------------------------------

def test_execution_time_reports_medians_of_the_repeats(deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = iter([(0.5, 0.1), (0.2, 0.9), (0.3, 0.3)])
    monkeypatch.setattr(diagnostics, "_scratch_run", lambda config, root: next(runs))
    timings = diagnostics.execution_time(deployed, repeats=3)
    assert (timings["ingestion_seconds"], timings["training_seconds"], timings["repeats"]) == (0.3, 0.3, 3)
    assert timings["recorded"]["ingestion"]["runs"] == timings["recorded"]["training"]["runs"] == 1


def test_fresh_timings_run_on_a_bounded_sample_of_whole_lines(config: Config, tmp_path: Path) -> None:
    files = sorted(config.input_folder.glob("*.csv"))
    total = sum(p.stat().st_size for p in files)
    limit = files[0].stat().st_size + 120  # the second file's header and a row or so
    sample = diagnostics.input_sample(config.input_folder, tmp_path / "sample", limit)
    assert sample == {"bytes": sample["bytes"], "of_bytes": total, "files": 2, "of_files": len(files)}
    assert files[0].stat().st_size < sample["bytes"] <= limit
    second = (tmp_path / "sample" / files[1].name).read_bytes()
    assert second.endswith(b"\n")
    assert files[1].read_bytes().startswith(second)


def counting_latest(calls: list[str], answer: str = "9.9") -> object:
    def latest(name: str) -> str:
        calls.append(name)
        return answer
    return latest


def test_only_names_without_a_fresh_cached_answer_are_looked_up() -> None:
    calls: list[str] = []
    now = time.time()
    cache = {"fresh": ("1.0", now - 60), "old": ("1.0", now - diagnostics.LATEST_TTL_SECONDS - 1)}
    newest, found = diagnostics.latest_versions(["fresh", "old", "new"], cache, 5, counting_latest(calls))
    assert sorted(calls) == ["new", "old"]
    assert newest == {"fresh": "1.0", "old": "9.9", "new": "9.9"}
    assert set(found) == {"old", "new"}
    assert all(now <= at <= time.time() for _, at in found.values())


def test_an_answer_waits_for_lookups_only_a_short_while() -> None:
    def slow(name: str) -> str:
        time.sleep(5 if name == "slow" else 0)
        return "2.0"

    start = time.monotonic()
    newest, found = diagnostics.latest_versions(["slow", "quick"], {"slow": ("1.0", 0.0)}, 0.5, slow)
    assert time.monotonic() - start < 2
    assert newest == {"slow": "1.0", "quick": "2.0"}  # an old cached answer beats none; late lookups are dropped
    assert set(found) == {"quick"}


def test_run_diagnostics_stores_the_report_and_looks_up_versions_at_most_daily(
        deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(diagnostics, "latest_version", counting_latest(calls))
    first = diagnostics.run_diagnostics(deployed)
    looked_up = len(calls)
    assert looked_up == len(diagnostics.pinned_requirements(diagnostics.REQUIREMENTS))
    second = diagnostics.run_diagnostics(deployed)
    assert len(calls) == looked_up  # the ledger's cache answered
    assert {row["latest"] for row in second["dependencies"]} == {"9.9"}
    with Ledger(deployed.ledger_path) as ledger:
        stored = ledger.diagnostics.latest()
        cached = ledger.diagnostics.package_versions()
    assert [row["detail"] for row in stored] == [first, second]
    assert stored[-1]["training_seconds"] == second["execution_time"]["training_seconds"]
    assert stored[-1]["repeats"] == diagnostics.REPEATS
    assert {latest for latest, _ in cached.values()} == {"9.9"}


def test_get_diagnostics_returns_what_the_cli_prints_and_writes_nothing(
        deployed: Config, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(diagnostics, "latest_version", counting_latest(calls))
    assert diagnostics_cli.main(["--config", str(deployed.config_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    before, looked_up = snapshot(deployed.root), len(calls)
    answer = create_app(deployed).test_client().get("/diagnostics")
    assert answer.status_code == 200
    served = answer.get_json()
    assert snapshot(deployed.root) == before
    assert len(calls) == looked_up  # served from the ledger's cache
    assert served.pop("recorded_for_version") == printed["model_version"]
    with Ledger(deployed.ledger_path) as ledger:
        [recorded] = ledger.diagnostics.latest()  # the one run the CLI recorded, in UTC to the millisecond
    assert served.pop("recorded_at") == recorded["created_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", recorded["created_at"])
    assert served == printed  # the recorded run, timings included, with the predictions checked now


def test_get_diagnostics_before_any_cache_keeps_its_own_lookups(deployed: Config,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(diagnostics, "latest_version", counting_latest(calls))
    monkeypatch.setattr(diagnostics, "execution_time", lambda config: {"ingestion_seconds": 0.0})
    client = create_app(deployed).test_client()
    client.get("/diagnostics")
    looked_up = len(calls)
    lines = (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = [line.split("==")[0].lower() for line in lines if "==" in line and not line.startswith("#")]
    assert sorted(calls) == sorted(pins)  # each pinned package looked up once (pandas, numpy, ...)
    assert client.get("/diagnostics").status_code == 200
    assert len(calls) == looked_up
    with Ledger(deployed.ledger_path) as ledger:
        assert ledger.diagnostics.package_versions() == {}


def test_get_diagnostics_reads_an_old_ledger_without_migrating_it(deployed: Config,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with contextlib.closing(sqlite3.connect(deployed.ledger_path)) as db:
        db.execute("DROP TABLE package_versions")
        db.execute("PRAGMA user_version = 4")  # the ledger as the release before issue 8 left it
        db.commit()
    monkeypatch.setattr(diagnostics, "latest_version", lambda name: "9.9")
    before = snapshot(deployed.root)
    assert diagnostics.cached_versions(deployed, {}) == {}
    assert snapshot(deployed.root) == before
