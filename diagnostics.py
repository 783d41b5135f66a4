"""Diagnostics of the deployed model and the ingested data.

Reads the deployed model (verified), testdata.csv, finaldata.csv and requirements.txt; times ingestion and
training in a scratch copy (pipeline outputs are never touched). Writes diagnostics.json to the model folder.
Run: python diagnostics.py [--config PATH] [--json]
"""
from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from risk import cli, contract, registry
from risk.config import Config
from risk.errors import MissingInputError, RiskError
from risk.files import atomic_write_text
from risk.ledger import recorded
from risk.views import FINALDATA
from scoring import read_labelled_csv, testdata_file

logger = logging.getLogger(__name__)
REPORT = "diagnostics.json"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
PIP_TIMEOUT_SECONDS = 10
LATEST_CACHE_SECONDS = 3600


def model_predictions(model: object, frame: pd.DataFrame) -> list[int]:
    return [int(p) for p in model.predict(contract.matrix(frame))]


def summary_statistics(frame: pd.DataFrame) -> dict:
    """Mean, median and standard deviation of each numeric feature."""
    x = contract.features(frame)
    return {c: {"mean": float(x[c].mean()), "median": float(x[c].median()), "std": float(x[c].std())} for c in x}


def missing_share(frame: pd.DataFrame) -> dict:
    """Share of missing values per column of the raw data (0.0 to 1.0)."""
    return {str(c): float(v) for c, v in frame.isna().mean().items()}


def _timed(function: object, *args: object) -> float:
    """Seconds one call takes; the stage's own INFO lines are held back (a scratch run is not news)."""
    stage_logger = logging.getLogger(function.__module__)
    level = stage_logger.level
    stage_logger.setLevel(logging.WARNING)
    try:
        start = time.perf_counter()
        function(*args)
        return time.perf_counter() - start
    finally:
        stage_logger.setLevel(level)


def execution_time(config: Config) -> dict:
    """Seconds to ingest the input folder and to train on it, in a scratch copy of the outputs."""
    import ingestion
    import training

    with tempfile.TemporaryDirectory(prefix="diagnostics-") as scratch:
        root = Path(scratch)
        copy = config._replace(config_path=root / "config.json", output_folder=root / "ingesteddata",
                               model_folder=root / "models", prod_folder=root / "production")
        try:
            ingest = _timed(ingestion.run_ingestion, copy)
            train = _timed(training.run_training, copy)
        except RiskError as exc:
            return {"ingestion_seconds": None, "training_seconds": None, "note": str(exc)}
    return {"ingestion_seconds": ingest, "training_seconds": train}


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
    command = [sys.executable, "-m", "pip", "index", "versions", name, "--disable-pip-version-check"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = re.search(r"\(([^)]+)\)", done.stdout.splitlines()[0]) if done.returncode == 0 and done.stdout else None
    return match.group(1) if match else "unknown"


def latest_version(name: str) -> str:
    """The newest release pip's configured index offers, or "unknown" (no network, timeout). Cached 1 h."""
    return _latest_cached(name, int(time.time() // LATEST_CACHE_SECONDS))


def dependencies(requirements: Path, latest: object = latest_version) -> list[dict]:
    """Installed, pinned and latest version of each pinned dependency."""
    pins = pinned_requirements(requirements)
    with ThreadPoolExecutor(max_workers=4) as pool:
        newest = dict(zip(pins, pool.map(latest, pins), strict=False))
    return [{"name": n, "installed": installed_version(n), "pinned": v, "latest": newest[n]} for n, v in pins.items()]


def read_ingested(config: Config) -> pd.DataFrame:
    path = config.output_folder / FINALDATA
    if not path.is_file():
        raise MissingInputError(f"{path}: no ingested data (run ingestion.py first)")
    return pd.read_csv(path)


def diagnose(config: Config, timings: bool = True, latest: object = latest_version) -> dict:
    """Every diagnostic, without writing anything."""
    version = registry.current(config.prod_folder)
    test = read_labelled_csv(testdata_file(config))
    raw = read_ingested(config)
    return {
        "model_version": version.label,
        "predictions": model_predictions(registry.load_model(version), test),
        "summary_statistics": summary_statistics(contract.validate_frame(raw, FINALDATA)),
        "missing_share": missing_share(raw),
        "execution_time": execution_time(config) if timings else None,
        "dependencies": dependencies(REQUIREMENTS, latest),
    }


def run_diagnostics(config: Config, parent_run: int | None = None) -> dict:
    with recorded(config.ledger_path, "diagnostics", parent_run) as (_, _, detail):
        report = diagnose(config)
        atomic_write_text(config.model_folder / REPORT, json.dumps(report, indent=2) + "\n")
        detail.update({"model_version": report["model_version"], "execution_time": report["execution_time"]})
    logger.info("diagnostics: version %s, timings %s -> %s", report["model_version"], report["execution_time"],
                config.model_folder / REPORT)
    return report


def main(argv: list[str] | None = None) -> int:
    return cli.run(cli.parser(__doc__).parse_args(argv), run_diagnostics)


if __name__ == "__main__":
    raise SystemExit(main())
