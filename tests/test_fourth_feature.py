"""A fourth feature, end to end: the SCHEMA line is added to a copy of the code, which migrates the deployed
project's history (killed at two instants first), ingests files that carry the feature, trains, deploys and
serves a four-feature version, then rolls back to the three-feature version and serves it again."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from app import create_app
from risk import catalog, contract
from risk.config import Config
from tests.conftest import REPO, synthetic_frame

pytestmark = pytest.mark.slow
NEW = "quarterly_calls"
NEW_LINE = f'    Column("{NEW}", "feature", minimum=0.0, maximum=MAX_COUNT, fill=0.0),\n'


def code_with_new_feature(folder: Path) -> Path:
    """A copy of the code whose contract has one more feature, added as contributing.md says: one SCHEMA line."""
    for name in ("risk", "templates"):
        shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    for script in REPO.glob("*.py"):
        shutil.copy(script, folder / script.name)
    shutil.copy(REPO / "requirements.txt", folder / "requirements.txt")
    source = (folder / "risk" / "contract.py").read_text(encoding="utf-8").splitlines(keepends=True)
    target = next(i for i, line in enumerate(source) if line.lstrip().startswith("Column(") and '"target"' in line)
    (folder / "risk" / "contract.py").write_text("".join([*source[:target], NEW_LINE, *source[target:]]),
                                                 encoding="utf-8")
    return folder


def run(code: Path, *args: str, config: Config) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(code)}
    return subprocess.run([sys.executable, *args, "--config", str(config.config_path)], cwd=code, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def serve(code: Path, config: Config, record: dict) -> dict:
    """What the API of `code` answers, in a fresh process: /prediction for one record, /ready and /risk."""
    script = ("import json, sys; from app import create_app; from risk.config import load_config; "
              "c = create_app(load_config(sys.argv[1])).test_client(); "
              "p = c.post('/prediction', json={'records': [json.loads(sys.argv[2])]}); r = c.get('/risk?top=3'); "
              "print(json.dumps({'prediction': p.json, 'status': p.status_code, 'risk': r.status_code, "
              "'ready': c.get('/ready').json}))")
    done = subprocess.run([sys.executable, "-c", script, str(config.config_path), json.dumps(record)], cwd=code,
                          env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, text=True, timeout=120,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def killed_at(code: Path, config: Config, patch: str) -> int:
    """Run the migration in a process that dies (os._exit, as a kill would) at the patched step."""
    script = (f"import os, sys; import risk.migrate as m; {patch}; "
              "sys.exit(m.main(['--config', sys.argv[1]]))")
    done = subprocess.run([sys.executable, "-c", script, str(config.config_path)], cwd=code,
                          env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, text=True, timeout=120,
                          check=False)
    return done.returncode


def ledger_ranges(config: Config) -> list[tuple[int, int, int]]:
    with sqlite3.connect(config.ledger_path) as db:
        sql = "SELECT data_start, data_end, rows FROM files WHERE status = 'ingested' ORDER BY id"
        return db.execute(sql).fetchall()


def test_a_fourth_feature_end_to_end(deployed: Config, tmp_path: Path) -> None:
    record = dict(zip(contract.FEATURES, [3.0, 40.0, 12.0], strict=True))
    before = create_app(deployed).test_client().post("/prediction", json={"records": [record]}).json
    history_before = pd.read_csv(deployed.finaldata_path, dtype=str, keep_default_na=False)
    code = code_with_new_feature(tmp_path / "code")

    refused = run(code, "ingestion.py", config=deployed)
    assert refused.returncode == 1
    assert "run `python -m risk.migrate` once to migrate the history" in refused.stderr

    # killed before the ledger moves, then after it moved but before the rename: each rerun recovers
    moving = "import risk.ledger.files as f; f.Files.move_history = lambda *a: os._exit(9)"
    assert killed_at(code, deployed, moving) == 9
    assert killed_at(code, deployed, "m.finish = lambda *a: os._exit(9)") == 9
    migrated = run(code, "-m", "risk.migrate", "--json", config=deployed)
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)["history"] == "migrated"
    header = deployed.finaldata_path.read_bytes().split(b"\n", 1)[0].decode()
    assert header.split(",") == [*contract.COLUMNS[:-1], NEW, contract.TARGET]
    history = pd.read_csv(deployed.finaldata_path, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(history[history_before.columns], history_before)
    assert (history[NEW] == "").all()
    data = deployed.finaldata_path.read_bytes()
    for start, end, rows in ledger_ranges(deployed):  # every file's range holds exactly its rows, whole lines
        assert data[start - 1:start] == b"\n"
        assert data[end - 1:end] == b"\n"
        assert data[start:end].count(b"\n") == rows
    again = run(code, "-m", "risk.migrate", "--json", config=deployed)
    assert json.loads(again.stdout) == {"history": "current", "converted_versions": []}
    assert deployed.finaldata_path.read_bytes() == data

    # a file that carries the feature: ingested, trained on, deployed as version 2 with four features
    frame = synthetic_frame(300, seed=44)
    frame.insert(len(contract.FEATURES) + 1, NEW, (frame[contract.FEATURES[0]] // 7).astype(int))
    frame.to_csv(deployed.input_folder / "withcalls.csv", index=False)
    test = pd.read_csv(deployed.testdata_path)  # the test data carries it too
    test.insert(len(contract.FEATURES) + 1, NEW, (test[contract.FEATURES[0]] // 7).astype(int))
    test.to_csv(deployed.testdata_path, index=False)
    for stage in ("ingestion.py", "training.py", "scoring.py", "deployment.py"):
        done = run(code, stage, config=deployed)
        assert done.returncode == 0, f"{stage}: {done.stderr}"
    card = json.loads((deployed.prod_folder / "versions" / "2" / catalog.CARD).read_text(encoding="utf-8"))
    assert card["features"] == [*contract.FEATURES, NEW]
    four = serve(code, deployed, {**record, NEW: 5.0})
    assert (four["status"], four["risk"]) == (200, 200)
    assert four["prediction"]["model_version"] == four["ready"]["model_version"] == "2"

    # roll back to the three-feature version: it serves, choosing its own three columns by name
    assert run(code, "deployment.py", "--rollback", "1", config=deployed).returncode == 0
    three = serve(code, deployed, {**record, NEW: 5.0})
    assert three["status"] == 200
    assert three["prediction"]["model_version"] == "1"
    assert three["prediction"]["probabilities"] == before["probabilities"]
