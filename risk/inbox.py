"""What is new in the input folder: CSV entries whose (name, content) the ledger has not seen. Stdlib only.

A file is hashed only when its (name, size, mtime) is not already in the ledger, so an idle tick reads
no file contents; a known file touched or copied (a new mtime, the same content) is hashed once and its new
mtime recorded.
"""
from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

from risk.files import sha256_file
from risk.ledger import Ledger

NOT_A_FILE = "-"


class Entry(namedtuple("_Entry", "name path size mtime_ns sha256 problem", defaults=(None,))):
    """One CSV entry of the input folder; `problem` says why it cannot be read as a file, if it cannot."""

    __slots__ = ()


def _problem(path: Path, folder: Path) -> str | None:
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(folder.resolve()):
            return "a link that points outside the input folder"
    if not path.exists():
        return "a broken link"
    if not path.is_file():
        return "not a regular file"
    return None


def shown_name(name: str) -> str:
    """The name as the ledger, logs and reports write it: a byte that is not UTF-8 as `\\xe9`."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _name_problem(name: str) -> str | None:
    """Why a file's name cannot stand in the ledger and ingestedfiles.txt (one name per line), if it cannot."""
    if shown_name(name) != name:
        return "its name is not UTF-8; rename it"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "its name holds a control character (a line break, a tab); rename it"
    return None


def _entry(path: Path, folder: Path, ledger: Ledger) -> Entry:
    problem = _name_problem(path.name) or _problem(path, folder)
    if problem:
        return Entry(shown_name(path.name), path, 0, 0, NOT_A_FILE, problem)
    stat = path.stat()
    sha = ledger.files.sha_by_stat(path.name, stat.st_size, stat.st_mtime_ns)
    if sha == NOT_A_FILE:  # unreadable last time: read it again (a chmod does not change the mtime)
        sha = None
    if sha is not None:
        return Entry(path.name, path, stat.st_size, stat.st_mtime_ns, sha)
    try:
        sha = sha256_file(path)
    except OSError as exc:
        return Entry(path.name, path, stat.st_size, stat.st_mtime_ns, NOT_A_FILE, f"unreadable ({exc.strerror})")
    if ledger.files.seen(path.name, sha):  # known content under a new mtime: hashed this once, not every tick
        ledger.files.note_stat(path.name, sha, stat.st_size, stat.st_mtime_ns)
    return Entry(path.name, path, stat.st_size, stat.st_mtime_ns, sha)


def csv_paths(folder: Path) -> list[Path]:
    """Every entry named *.csv in `folder` (not recursive), sorted by name."""
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if e.name.lower().endswith(".csv"))


def new_entries(folder: Path, ledger: Ledger) -> list[Entry]:
    """CSV entries whose (name, sha256) the ledger has not recorded."""
    found = (_entry(path, folder, ledger) for path in csv_paths(folder))
    return [entry for entry in found if not ledger.files.seen(entry.name, entry.sha256)]
