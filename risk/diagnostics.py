"""Diagnostics of the deployed model and the ingested data, stored in the ledger so that trends exist.

Reads the deployed model (verified), testdata.csv, finaldata.csv and requirements.txt. Timings: the medians
of the real ingestion and training runs the ledger records, and fresh runs (medians of several) in scratch
copies on at most SAMPLE_BYTES of the input folder, which says how much (pipeline outputs are never touched).
Writes diagnostics.json to the model folder and one row to the ledger's `diagnostics` table; the index's
latest versions are cached in the ledger (`package_versions`) and looked up at most daily.
GET /diagnostics answers from the newest recorded run plus what is cheap now (the model's predictions on the
test data, the dependencies), so a request never reads the history.
Run: python diagnostics.py [--config PATH] [--json]
"""
from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from risk import catalog, contract, performance, registry, store, summary
from risk.config import Config
from risk.errors import RiskError
from risk.files import atomic_write_text
from risk.ledger import LedgerReader, read_once, recorded
from risk.scoring import read_labelled_csv

logger = logging.getLogger(__name__)
REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"
PIP_TIMEOUT_SECONDS = 10  # one `pip index versions` call
LATEST_TTL_SECONDS = 24 * 3600  # a cached latest version is looked up again at most daily
LATEST_WAIT_SECONDS = 3.0  # GET /diagnostics waits at most this long for lookups; the rest say "unknown" for now
REPEATS = 3  # timing runs; the medians are reported
SAMPLE_BYTES = 8 << 20  # fresh timings run on at most this much of the input folder (whole lines)
TIMED_STAGES = ("ingestion", "training")
UNKNOWN = "unknown"


def model_predictions(model: object, frame: pd.DataFrame) -> list[int]:
    """The model's 0/1 calls on a frame's rows (performance.predictions: the project's one decision rule)."""
    return performance.predictions(model, contract.matrix(frame)).tolist()


def summary_statistics(frame: pd.DataFrame) -> dict:
    """Mean, median and standard deviation (n - 1) of each feature (risk/summary.py)."""
    return summary.statistics(summary.of_frame(frame))


def missing_share(frame: pd.DataFrame) -> dict:
    """Share of missing values per column of the raw data (0.0 to 1.0; risk/summary.py)."""
    return summary.missing(summary.of_frame(frame))


def _timed(function: object, *args: object) -> float:
    """Seconds one call takes; the stage's own lines are held back: a scratch run is not news, and a file it
    rejects again would read in the cron log as a fresh rejection (errors still show)."""
    stage_logger = logging.getLogger(function.__module__)
    level = stage_logger.level
    stage_logger.setLevel(logging.ERROR)
    try:
        start = time.perf_counter()
        function(*args)
        return time.perf_counter() - start
    finally:
        stage_logger.setLevel(level)


def input_sample(source: Path, target: Path, limit: int = SAMPLE_BYTES) -> dict:
    """Copy the input folder's CSVs into `target`, in name order, up to `limit` bytes (the last one cut at a
    line end); {"bytes", "of_bytes", "files", "of_files"} of what was copied."""
    target.mkdir(parents=True)
    files = sorted(p for p in source.glob("*.csv") if p.is_file())
    copied = files_copied = 0
    for path in files:
        room = limit - copied
        if room <= 0:
            break
        with open(path, "rb") as handle:
            data = handle.read(room + 1)
        if len(data) > room:
            data = data[:data.rfind(b"\n", 0, room) + 1]
        if data:
            (target / path.name).write_bytes(data)
            copied, files_copied = copied + len(data), files_copied + 1
    return {"bytes": copied, "of_bytes": sum(p.stat().st_size for p in files), "files": files_copied,
            "of_files": len(files)}


def _scratch_run(config: Config, root: Path) -> tuple[float, float]:
    """(ingestion, training) seconds on the sampled input in `root`, in a fresh scratch copy of the outputs."""
    import shutil

    from risk import ingestion, training

    for folder in ("ingesteddata", "models", "production"):
        shutil.rmtree(root / folder, ignore_errors=True)
    copy = config._replace(config_path=root / "config.json", input_folder=root / "input",
                           output_folder=root / "ingesteddata", model_folder=root / "models",
                           prod_folder=root / "production")
    return _timed(ingestion.run_ingestion, copy), _timed(training.run_training, copy)


def execution_time(config: Config, repeats: int = REPEATS) -> dict:
    """Median seconds to ingest and to train, over `repeats` scratch runs on at most SAMPLE_BYTES of the input
    folder (`sample` says how much), beside the medians of the real runs the ledger records (`recorded`)."""
    recorded = read_once(config.ledger_path, lambda ledger: ledger.stage_seconds(TIMED_STAGES),
                         {stage: [] for stage in TIMED_STAGES}) if config.ledger_path.is_file() else {}
    real = {stage: {"median_seconds": statistics.median(seconds) if seconds else None, "runs": len(seconds),
                    "seconds": [round(s, 3) for s in seconds]} for stage, seconds in recorded.items()}
    with tempfile.TemporaryDirectory(prefix="diagnostics-") as scratch:
        sample = input_sample(config.input_folder, Path(scratch) / "input")
        if not sample["files"]:
            return {"ingestion_seconds": None, "training_seconds": None, "repeats": 0, "sample": sample,
                    "recorded": real, "note": f"{config.input_folder}: no CSV file to time ingestion and training on"}
        try:
            runs = [_scratch_run(config, Path(scratch)) for _ in range(repeats)]
        except RiskError as exc:
            return {"ingestion_seconds": None, "training_seconds": None, "repeats": 0, "note": str(exc),
                    "sample": sample, "recorded": real}
    return {"ingestion_seconds": statistics.median(r[0] for r in runs),
            "training_seconds": statistics.median(r[1] for r in runs), "repeats": repeats, "sample": sample,
            "recorded": real}


def pinned_requirements(path: Path) -> dict[str, str]:
    """{name: version} of the `name==version` lines of a requirements file."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def installed_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@functools.lru_cache(maxsize=128)
def _latest_cached(name: str, bucket: int) -> str:
    """One `pip index versions` call (the index pip is configured with); "unknown" on any failure, and at once
    when pip is told to use no index (PIP_NO_INDEX, as on an offline machine): no process to learn nothing."""
    if os.environ.get("PIP_NO_INDEX", "").strip().lower() in ("1", "true", "yes", "on"):
        return UNKNOWN
    command = [sys.executable, "-m", "pip", "index", "versions", name, "--disable-pip-version-check"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return UNKNOWN
    match = re.search(r"\(([^)]+)\)", done.stdout.splitlines()[0]) if done.returncode == 0 and done.stdout else None
    return match.group(1) if match else UNKNOWN


def latest_version(name: str) -> str:
    """The newest release pip's configured index offers, or "unknown" (no network, timeout); one per day."""
    return _latest_cached(name, int(time.time() // LATEST_TTL_SECONDS))


def lookup_all(names: list[str], wait: float, latest: object = None) -> dict[str, str]:
    """Look `names` up at once (daemon threads) and wait at most `wait` seconds; late ones are left out."""
    found: dict[str, str] = {}
    fetch = latest or latest_version
    threads = [threading.Thread(target=lambda n=n: found.__setitem__(n, fetch(n)), daemon=True) for n in names]
    deadline = time.monotonic() + wait
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return dict(found)


def stale(cache: dict[str, tuple[str, float]], names: list[str], at: float) -> list[str]:
    """The names with no cached answer younger than LATEST_TTL_SECONDS."""
    return [n for n in names if n not in cache or at - cache[n][1] >= LATEST_TTL_SECONDS]


def latest_versions(names: list[str], cache: dict[str, tuple[str, float]], wait: float = LATEST_WAIT_SECONDS,
                    latest: object = None) -> tuple[dict[str, str], dict[str, tuple[str, float]]]:
    """({name: latest or "unknown"}, the fresh lookups to cache); only stale names are looked up."""
    at = time.time()
    fresh = {n: (v, at) for n, v in lookup_all(stale(cache, names, at), wait, latest).items()}
    merged = {**cache, **fresh}
    return {n: merged[n][0] if n in merged else UNKNOWN for n in names}, fresh


def dependencies(requirements: Path, latest: object = None, cache: dict[str, tuple[str, float]] | None = None,
                 wait: float = LATEST_WAIT_SECONDS) -> list[dict]:
    """Installed, pinned and latest version of each pinned dependency (`cache` is updated in place)."""
    pins = pinned_requirements(requirements)
    cache = {} if cache is None else cache
    newest, fresh = latest_versions(list(pins), cache, wait, latest)
    cache.update(fresh)
    return [{"name": n, "installed": installed_version(n), "pinned": v, "latest": newest[n],
             "status": status_of(installed_version(n), v, newest[n])} for n, v in pins.items()]


def status_of(installed: str, pinned: str, latest: str) -> str:
    """"ok", "not installed", "differs from pin" or "update available" (pinned behind the index's latest)."""
    if installed == "not installed":
        return installed
    if installed != pinned:
        return "differs from pin"
    return "update available" if latest not in (UNKNOWN, pinned) else "ok"


def cached_versions(config: Config, memory: dict[str, tuple[str, float]]) -> dict[str, tuple[str, float]]:
    """The ledger's cache of latest versions merged with a process's own lookups, the newer of each (read only)."""
    if not config.ledger_path.is_file():  # a GET never creates the ledger
        return dict(memory)
    stored = read_once(config.ledger_path, LedgerReader.package_versions, {})
    return {n: max(stored.get(n, ("", 0.0)), memory.get(n, ("", 0.0)), key=lambda e: e[1])
            for n in {*stored, *memory}}


def history_summaries(config: Config) -> tuple[dict, dict]:
    """(summary statistics, missing shares) of finaldata.csv: from the prepared read state when it covers the
    file exactly (the cost of the client base, not of the history), else from the history read whole."""
    from risk import prepared

    state = prepared.as_of_file(config)
    if state is not None:
        return prepared.summary(state), prepared.missing_share(state)
    summaries = summary.of_frame(store.read_history(config))
    return summary.statistics(summaries), summary.missing(summaries)


def diagnose(config: Config, timings: bool = True, latest: object = None,
             cache: dict[str, tuple[str, float]] | None = None, wait: float = LATEST_WAIT_SECONDS) -> dict:
    """Every diagnostic, without writing anything; `cache` of latest versions gains this call's lookups."""
    version = registry.current(config.prod_folder)
    test = read_labelled_csv(config.testdata_path)
    statistics, missing = history_summaries(config)
    return {
        "model_version": version.label,
        "predictions": model_predictions(registry.load_model(version), test),
        "summary_statistics": statistics,
        "missing_share": missing,
        "execution_time": execution_time(config) if timings else None,
        "dependencies": dependencies(REQUIREMENTS, latest, cache, wait),
    }


def diagnose_online(config: Config, memory: dict[str, tuple[str, float]]) -> dict:
    """What GET /diagnostics answers, writing nothing: the newest recorded diagnostics run (its statistics,
    missing shares and timings, with `recorded_at`) and, checked now, the served version's predictions on the
    test data and the dependencies. Before any run is recorded the statistics are computed now, without
    timings. Lookups the version cache lacked are kept in `memory` (the app's own): a GET never writes.
    """
    cache = cached_versions(config, memory)
    before = dict(cache)
    last = read_once(config.ledger_path, LedgerReader.last_diagnostics, None)
    if last is None:
        report = {**diagnose(config, timings=False, cache=cache), "recorded_at": None}
    else:
        version = registry.current(config.prod_folder)
        test = read_labelled_csv(config.testdata_path)
        report = {"model_version": version.label,
                  "predictions": model_predictions(registry.load_model(version), test),
                  "summary_statistics": last.get("summary_statistics"), "missing_share": last.get("missing_share"),
                  "execution_time": last.get("execution_time"), "recorded_at": last["recorded_at"],
                  "recorded_for_version": last.get("model_version"),
                  "dependencies": dependencies(REQUIREMENTS, None, cache, LATEST_WAIT_SECONDS)}
    memory.update({n: e for n, e in cache.items() if before.get(n) != e})
    return report


def run_diagnostics(config: Config, parent_run: int | None = None) -> dict:
    with recorded(config.ledger_path, "diagnostics", parent_run) as (ledger, run_id, detail):
        cache = ledger.diagnostics.package_versions()
        before = dict(cache)
        report = diagnose(config, cache=cache, wait=PIP_TIMEOUT_SECONDS)
        ledger.diagnostics.store_package_versions({n: e for n, e in cache.items() if before.get(n) != e})
        atomic_write_text(config.model_folder / catalog.DIAGNOSTICS, json.dumps(report, indent=2) + "\n")
        ledger.diagnostics.record(run_id, report)
        detail.update({"model_version": report["model_version"], "execution_time": report["execution_time"]})
    logger.info("diagnostics: version %s, timings %s -> %s", report["model_version"], report["execution_time"],
                config.model_folder / catalog.DIAGNOSTICS)
    return report
