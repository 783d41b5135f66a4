"""risk.cli: a failure of the environment is one line naming the file and exit 1; a bug keeps its traceback."""
from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, synthetic_frame, write_frame

import deployment as deployment_cli
import ingestion as ingestion_cli
import scoring as scoring_cli
import training as training_cli
from risk import catalog, ingestion, scoring, training
from risk.config import Config
from risk.files import atomic_write_bytes


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def one_line(caplog: pytest.LogCaptureFixture) -> str:
    (record,) = error_records(caplog)
    assert record.exc_info is None  # no traceback without -v
    assert "\n" not in record.getMessage()
    return record.getMessage()


def retrained(config: Config) -> None:
    """A trained and scored model that differs from the deployed one (deployment.py skips the same model)."""
    write_frame(synthetic_frame(40, seed=31), config.input_folder / "fresh.csv")
    ingestion.run_ingestion(config)
    training.run_training(config)
    scoring.run_scoring(config)


def test_a_truncated_model_card_is_one_line_naming_it(deployed: Config, caplog) -> None:
    retrained(deployed)
    card = deployed.model_folder / catalog.CARD
    card.write_bytes(card.read_bytes()[:100])
    assert deployment_cli.main(["--config", str(deployed.config_path)]) == 1
    assert one_line(caplog).startswith(f"{card}: not valid JSON, truncated or corrupt (line ")


@pytest.mark.parametrize("content", [b"garbage, not a model", b""])
def test_a_corrupt_model_is_one_line_naming_it(deployed: Config, caplog, content: bytes) -> None:
    model = deployed.model_folder / catalog.SAFE_MODEL
    model.write_bytes(content)
    assert scoring_cli.main(["--config", str(deployed.config_path)]) == 1
    assert one_line(caplog) == (f"{model}: not the model its card {catalog.CARD} describes (truncated, corrupt or "
                                "replaced): run training.py again")


def test_a_file_where_a_folder_belongs_is_one_line_naming_it(deployed: Config, caplog) -> None:
    training.run_training(deployed)
    scoring.run_scoring(deployed)
    versions = deployed.prod_folder / "versions"
    shutil.rmtree(versions)
    versions.write_text("a file", encoding="utf-8")
    assert deployment_cli.main(["--config", str(deployed.config_path)]) == 1
    assert one_line(caplog).startswith(f"{versions}")


def test_a_full_disk_names_the_file_being_written(config: Config, caplog, monkeypatch) -> None:
    real_fsync = os.fsync

    def full(fd: int) -> None:
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    ingestion.run_ingestion(config)
    monkeypatch.setattr(os, "fsync", full)
    assert training_cli.main(["--config", str(config.config_path)]) == 1
    first_write = config.model_folder / catalog.TRAINED_FILES
    assert one_line(caplog) == f"{first_write}: no space left on the device: free some space and run again"


def test_a_damaged_ledger_is_one_line_naming_it(config: Config, caplog) -> None:
    config.ledger_path.parent.mkdir(parents=True, exist_ok=True)
    config.ledger_path.write_bytes(b"not a database" * 100)
    assert ingestion_cli.main(["--config", str(config.config_path)]) == 1
    assert one_line(caplog).startswith(f"{config.ledger_path}: file is not a database (not an SQLite database")


def test_verbose_adds_the_traceback(deployed: Config, caplog) -> None:
    (deployed.model_folder / catalog.SAFE_MODEL).write_bytes(b"garbage")
    assert scoring_cli.main(["--config", str(deployed.config_path), "-v"]) == 1
    (record,) = error_records(caplog)
    assert record.exc_info is not None
    assert "not the model its card" in record.getMessage()


@pytest.mark.parametrize("error", [KeyError("feature"), json.JSONDecodeError("Expecting value", "", 0),
                                   sqlite3.OperationalError("no such table: runs"), ValueError("a bug")])
def test_a_bug_still_raises_with_its_traceback(config: Config, monkeypatch, error: Exception) -> None:
    def broken(*_args: object) -> None:
        raise error

    monkeypatch.setattr(training, "read_training_arrays", broken)
    with pytest.raises(type(error)):
        training_cli.main(["--config", str(config.config_path)])


def test_a_failed_write_leaves_no_temp_file_and_names_the_target(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    with pytest.raises(OSError, match="Input/output error") as err:
        atomic_write_bytes(tmp_path / "out.bin", b"data")
    assert err.value.filename == str(tmp_path / "out.bin")
    assert list(tmp_path.iterdir()) == []


UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--inh-caps=-all"]


def run_unprivileged(script: str, config: Config) -> subprocess.CompletedProcess:
    """Run a stage as a user the permission bits bind: root without the capabilities that bypass them."""
    prefix = UNPRIVILEGED if os.geteuid() == 0 else []
    assert not prefix or shutil.which("setpriv"), "root needs setpriv (util-linux) for permission bits to bind it"
    return subprocess.run([*prefix, sys.executable, str(REPO / script), "--config", str(config.config_path)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)


@pytest.mark.system
@pytest.mark.parametrize(("script", "folder", "named"), [
    ("ingestion.py", "output_folder", "ledger.sqlite"),
    ("fullprocess.py", "output_folder", ".pipeline.lock"),
    ("training.py", "model_folder", "trainedfiles.txt"),
    ("deployment.py", "prod_folder", "versions/2"),
])
def test_a_read_only_folder_is_one_line_naming_the_file(deployed: Config, script: str, folder: str,
                                                          named: str) -> None:
    shutil.copy(deployed.input_folder / "dataset1.csv", deployed.input_folder / "new.csv")
    if script == "deployment.py":
        retrained(deployed)
    if script == "ingestion.py":  # the folder stays writable; the ledger in it does not
        read_only(deployed.ledger_path)
    else:
        read_only(getattr(deployed, folder))
    done = run_unprivileged(script, deployed)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert f"ERROR {getattr(deployed, folder) / named}: " in lines[0]
    assert "Traceback" not in done.stderr
