"""Fixtures: a miniature project in tmp_path (config + folders + course CSVs), and an app on it."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app import create_app
from risk import contract, deployment, diagnostics, ingestion, pipeline, scoring, training
from risk.config import COURSE_FOLDERS, Config, load_config
from risk.contract import COLUMNS
from risk.ledger import Ledger

# Diagnostics ask pip's index for the newest release of each pin; tests (and the processes they start) stay off
# the network and start no pip at all. tests/test_diagnostics.py unsets this where it tests the lookups.
os.environ["PIP_NO_INDEX"] = "1"

REPO = Path(__file__).resolve().parent.parent
FOLDERS = COURSE_FOLDERS
COURSE_F1 = 4 / 7  # the course's known answer: the practice-data model scored on testdata.csv
# its calls on testdata.csv (labels 1, 0, 0, 1, 1): tp 2 (rows 4, 5), fp 2 (rows 2, 3), fn 1 (row 1), tn 0
# -> F1 = 2*2 / (2*2 + 2 + 1) = 4/7
COURSE_PREDICTIONS = [0, 1, 1, 1, 1]
COURSE_MATRIX = [[0, 2], [1, 2]]  # [[tn, fp], [fn, tp]]
FIRST, SECOND, THIRD = contract.FEATURES[:3]  # tests name features through the contract, never by literal
HEADER = ",".join(contract.COLUMNS)  # a client CSV's header line, without its newline


def record(*values: float) -> dict:
    """One valid API record: `values` for the first features, 1 for any further one (a feature added later)."""
    return {name: values[i] if i < len(values) else 1 for i, name in enumerate(contract.FEATURES)}


def synthetic_frame(n: int, seed: int = 0, flip: bool = False) -> pd.DataFrame:
    """Client rows shaped like the course data; `flip` inverts the label rule (concept drift)."""
    rng = np.random.default_rng(seed)
    month = rng.integers(0, 300, n)
    year = rng.integers(0, 3000, n)
    employees = rng.integers(1, 1000, n)
    risk = 1 / (1 + np.exp(-(month - 120) / 40))
    exited = (rng.random(n) < (1 - risk if flip else risk)).astype(int)
    ids = [f"c{seed}x{i}" for i in range(n)]
    return pd.DataFrame(dict(zip(COLUMNS, [ids, month, year, employees, exited], strict=True)))


# --- reading and seeding the ledger in tests (the product has no use for these) ---------------------------------
def runs(ledger: Ledger, limit: int = 20) -> list[dict]:
    """The newest `limit` runs, newest first."""
    return [dict(r) for r in ledger.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()]


def record_file(ledger: Ledger, run_id: int, name: str, sha256: str, size: int, mtime_ns: int, status: str,
                reason: str | None = None, rows: int | None = None, part: str | None = None) -> int:
    """A file row written directly, as an ingestion would record it."""
    return ledger.files.add(run_id, {"name": name, "sha256": sha256, "size": size, "mtime_ns": mtime_ns,
                                     "status": status, "reason": reason, "rows": rows, "part": part})


def has_pending(ledger: Ledger) -> bool:
    """Ingested data no decision has settled."""
    return bool(ledger.files.records(status="ingested", pending=True))


def has_undeferred_pending(ledger: Ledger) -> bool:
    """Ingested data that no decision has seen yet (neither decided nor deferred)."""
    return ledger.db.execute("SELECT 1 FROM files WHERE status = 'ingested' AND decided_run IS NULL"
                             " AND deferred_run IS NULL").fetchone() is not None


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes, to assert inputs are untouched. SQLite's -shm index of a WAL
    ledger, and an empty -wal, are left out: any reader of a WAL database maps them (a read-only one too)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in paths(folder) if p.is_file()}


def paths(folder: Path) -> list[Path]:
    """Every path under `folder`, sorted, but SQLite's -shm index and an empty -wal (see snapshot)."""
    return [p for p in sorted(folder.rglob("*"))
            if not p.name.endswith("-shm") and not (p.name.endswith("-wal") and p.stat().st_size == 0)]


def make_project(root: Path) -> Path:
    """A project root with config.json, the course's practice files as input and its test data."""
    for folder in FOLDERS.values():
        (root / folder).mkdir(parents=True)
    for source in sorted((REPO / "practicedata").glob("*.csv")):
        shutil.copy(source, root / "sourcedata" / source.name)
    shutil.copy(REPO / "testdata" / "testdata.csv", root / "testdata" / "testdata.csv")
    (root / "config.json").write_text(json.dumps({**FOLDERS, "api_url": "http://127.0.0.1:9"}), encoding="utf-8")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project / "config.json")


@pytest.fixture(scope="session")
def deployed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The miniature project ingested, trained, scored and deployed once per session (nothing in it names its
    own folder: config paths are relative, the ledger and manifests hold names and hashes)."""
    config = load_config(make_project(tmp_path_factory.mktemp("template") / "project") / "config.json")
    ingestion.run_ingestion(config)
    training.run_training(config)
    scoring.run_scoring(config)
    deployment.run_deployment(config)
    return config.root


@pytest.fixture
def deployed(config: Config, deployed_template: Path) -> Config:
    """The project with its input ingested and a first model trained, scored and deployed: a copy of the
    session's template (file times kept, so the inbox sees the same files as unchanged)."""
    shutil.copytree(deployed_template, config.root, symlinks=True, dirs_exist_ok=True)
    return config


@pytest.fixture(scope="session")
def bootstrapped_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The miniature project after one fullprocess run, once per session: its input ingested, the BOOTSTRAP
    decision recorded, version 1 deployed with its diagnostics, report and call list (diagnostics' look-ups of
    the newest releases answer "unknown", as tests/test_fullprocess.py has them)."""
    config = load_config(make_project(tmp_path_factory.mktemp("bootstrapped") / "project") / "config.json")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(diagnostics, "_latest_cached", lambda name, bucket: "unknown")
        assert pipeline.run_fullprocess(config)["action"] == "deployed version 1"
    return config.root


@pytest.fixture
def bootstrapped(config: Config, bootstrapped_template: Path) -> Config:
    """The project as `pipeline.run_fullprocess(config)` leaves it on the course's practice data: a copy of the
    session's template (file times kept, so the inbox sees the same files as ingested and unchanged)."""
    shutil.copytree(bootstrapped_template, config.root, symlinks=True, dirs_exist_ok=True)
    return config


@pytest.fixture(scope="session")
def months_template(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The miniature project after fullprocess on the course data and month 0 of test_calllist's monthly snapshots
    (seed 11): a first model and its call list (key 0); and a copy of it after month 1 too, its own fullprocess
    run: the first list measured (key 1). Built once per session."""
    from test_calllist import monthly_snapshots

    months, base, roots = monthly_snapshots(seed=11), tmp_path_factory.mktemp("months"), {}
    for i in (0, 1):
        roots[i] = base / f"month{i}"
        if i:
            shutil.copytree(roots[i - 1], roots[i], symlinks=True)
        else:
            make_project(roots[i])
        config = load_config(roots[i] / "config.json")
        write_frame(months[i], config.input_folder / f"month{i}.csv")
        pipeline.run_fullprocess(config)
    return roots


@pytest.fixture
def after_month0(config: Config, months_template: dict[int, Path]) -> Config:
    """A copy of the project after fullprocess on the course data and month 0 (seed 11), as months_template says."""
    shutil.copytree(months_template[0], config.root, symlinks=True, dirs_exist_ok=True)
    return config


@pytest.fixture
def after_month1(config: Config, months_template: dict[int, Path]) -> Config:
    """A copy of the project after fullprocess on months 0 and then 1 (seed 11), as months_template says."""
    shutil.copytree(months_template[1], config.root, symlinks=True, dirs_exist_ok=True)
    return config


@pytest.fixture
def app(deployed: Config):
    application = create_app(deployed)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


# The few tests of about 10 s or more, longest first, scheduled before the rest: under xdist a long test that
# starts last makes the whole run that much longer; longest first (the LPT rule) packs two workers best. Order
# within each group, and among the rest, is kept.
LONGEST = ("test_faults.py::test_sigkill", "test_schemathesis.py::", "test_fourth_feature.py::",
           "test_ingest_fast.py::test_the_fast_path_leaves", "test_ingest_faults.py::test_sigkill",
           "test_faults.py::test_a_kill", "test_faults.py::test_ten_overlapping", "test_cron.py::test_the_cron")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: next((i for i, name in enumerate(LONGEST) if name in item.nodeid), len(LONGEST)))
