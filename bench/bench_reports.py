"""Diagnostics (offline: diagnostics.py; online: GET /diagnostics on gunicorn) and the report, vs one training run.

The baseline is `training.py` on the same course data, run the way a user or cron runs it (a process, imports
included); diagnostics.py and reporting.py are timed the same way, GET /diagnostics from a loopback client.
Runs alternate the four so that machine noise falls on all. The project is the course's practice data,
deployed once by fullprocess (which also fills the ledger's cache of latest versions: the first diagnostics
run, timed apart, is the one that asks the package index). Targets (issue 8): diagnostics <= 3x, report <= 5x.
Run: .venv/bin/python bench/bench_reports.py [--quick]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, gunicorn, median, project, timed_request

RUNS = 5
DIAGNOSTICS_RATIO = 3.0
REPORT_RATIO = 5.0


def stage(script: str, config: Path) -> float:
    """Wall seconds of `python <script> --config <config>`, which must exit 0."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / script), "--config", str(config)], check=True, capture_output=True,
                   timeout=300)
    return time.perf_counter() - start


def get_diagnostics(port: int) -> float:
    return timed_request(port, "GET", "/diagnostics")[0]


def measure(runs: int = RUNS) -> dict:
    train, offline, online, report = [], [], [], []
    with project() as config, gunicorn(config, workers=2) as port:
        get_diagnostics(port)
        get_diagnostics(port)  # warm-up: each worker loads the model once
        for _ in range(runs):
            train.append(stage("training.py", config))
            offline.append(stage("diagnostics.py", config))
            online.append(get_diagnostics(port))
            report.append(stage("reporting.py", config))
        reports = config.parent / "practicemodels" / "reports"
        sizes = {"pdf_kb": (reports / "latest.pdf").stat().st_size / 1024,
                 "html_kb": (reports / "latest.html").stat().st_size / 1024}
    base = median(train)
    ratios = {"offline": median(offline) / base, "online": median(online) / base, "report": median(report) / base}
    return {
        "name": "diagnostics (diagnostics.py, GET /diagnostics) and the report (reporting.py), course data",
        "training_py_s": base, "diagnostics_py_s": median(offline), "get_diagnostics_s": median(online),
        "reporting_py_s": median(report), "ratio_diagnostics_py": ratios["offline"],
        "ratio_get_diagnostics": ratios["online"], "ratio_reporting_py": ratios["report"], **sizes, "runs": runs,
        "pass": max(ratios["offline"], ratios["online"]) <= DIAGNOSTICS_RATIO and ratios["report"] <= REPORT_RATIO
        and sizes["html_kb"] < 2048,
        "target": f"diagnostics <= {DIAGNOSTICS_RATIO}x and report <= {REPORT_RATIO}x one training.py run, same run;"
                  " HTML < 2 MB",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 5")
    print(measure(runs=3 if parser.parse_args().quick else RUNS))
