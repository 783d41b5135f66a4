"""risk.files: atomic writes give the mode plain open() gives (0o666 less the umask), folders follow the umask."""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from risk import deployment, ingestion, reporting, scoring, training
from risk.config import Config
from risk.files import atomic_copy, atomic_write_bytes, atomic_write_text, single_flight


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    new = getattr(request, "param", 0o002)
    old = os.umask(new)
    try:
        yield new
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077, 0o000], indirect=True)
@pytest.mark.parametrize("write", [atomic_write_text, atomic_write_bytes])
def test_an_atomic_write_gets_the_mode_open_gives(tmp_path: Path, umask: int, write) -> None:
    data = "x" if write is atomic_write_text else b"x"
    write(tmp_path / "new" / "file", data)
    with open(tmp_path / "plain", "w", encoding="utf-8"):
        pass
    assert mode(tmp_path / "new" / "file") == 0o666 & ~umask == mode(tmp_path / "plain")
    assert mode(tmp_path / "new") == 0o777 & ~umask


def test_a_replaced_file_and_a_copy_get_the_same_mode(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "current"
    target.write_text("1\n", encoding="utf-8")
    target.chmod(0o600)
    atomic_write_text(target, "2\n")
    atomic_copy(target, tmp_path / "copy")
    assert mode(target) == mode(tmp_path / "copy") == 0o664


def test_a_secret_stays_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    atomic_write_text(tmp_path / "token", "s3cret\n", perms=0o600)
    assert mode(tmp_path / "token") == 0o600


def test_the_lock_file_follows_the_umask(tmp_path: Path, umask: int) -> None:
    with single_flight(tmp_path / "out" / ".pipeline.lock") as mine:
        assert mine
    assert mode(tmp_path / "out" / ".pipeline.lock") == 0o664
    assert mode(tmp_path / "out") == 0o775


@pytest.mark.slow
def test_what_the_pipeline_writes_is_readable_by_the_group(umask: int, config: Config) -> None:
    # the stages run here under the umask (the session's deployed template was written under another)
    ingestion.run_ingestion(config)
    training.run_training(config)
    scoring.run_scoring(config)
    deployment.run_deployment(config)
    reporting.run_reporting(config)
    deployed = config
    written = [p for folder in (deployed.output_folder, deployed.model_folder, deployed.prod_folder)
               for p in folder.rglob("*")]
    names = {p.name for p in written}
    assert {"finaldata.csv", "ingestedfiles.txt", "current", "manifest.json", "trainedmodel.pkl",
            "report.pdf", "latest.html"} <= names
    private = [str(p) for p in written if p.is_file() and not mode(p) & stat.S_IRGRP]
    assert private == []
    ours = (".csv", ".txt", ".json", ".pkl", ".pdf", ".html", ".npy", ".lock")
    assert {mode(p) for p in written if p.is_file() and p.suffix in ours} == {0o664}
    assert {mode(p) for p in written if p.is_dir()} == {0o775}
