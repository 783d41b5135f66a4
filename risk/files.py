"""Atomic file writes, content hashes and the single-flight pipeline lock. Stdlib only.

A write goes to a temp file in the same folder, is flushed and fsynced, then `os.replace`d over the
target and the folder is fsynced (pip's pattern), so a reader sees the old file or the new, never half.
Files and folders get the mode plain open() and mkdir() give (0o666 / 0o777 less the umask), so a group or
another user can read what cron wrote; a secret is written with `perms=0o600`.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from risk.errors import CorruptFileError

TEMP_PREFIX = ".tmp-"
CHUNK = 1 << 20


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_temp(target: Path, perms: int = 0o666) -> tuple[int, str]:
    """A new, empty temp file beside `target`, created with `perms` less the umask (what open() gives).

    Not tempfile.mkstemp: its 0o600 survives os.replace, and no one but the writer could read the file.
    """
    for _ in range(100):
        tmp = target.parent / f"{TEMP_PREFIX}{target.name}.{os.urandom(4).hex()}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, perms), str(tmp)
        except FileExistsError:
            continue
        except OSError as exc:  # name the file being written, not the random temp name
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
    raise FileExistsError(errno.EEXIST, "no free temp file name beside it", str(target))


@contextlib.contextmanager
def atomic_open(target: Path, mode: str = "wb", perms: int = 0o666, **kwargs: object) -> Iterator:
    """Open a temp file beside `target`; on a clean exit it replaces `target`, else it is removed.

    `perms` less the umask is the file's mode: the default is what open() gives; 0o600 for a secret.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp(target, perms)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:  # a write: ENOSPC, EIO
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(target: Path, data: bytes, perms: int = 0o666) -> None:
    with atomic_open(target, "wb", perms) as handle:
        handle.write(data)


def atomic_write_text(target: Path, text: str, perms: int = 0o666) -> None:
    with atomic_open(target, "w", perms, encoding="utf-8", newline="") as handle:
        handle.write(text)


def atomic_copy(source: Path, target: Path) -> None:
    """Copy `source` to `target` so that `target` is never seen half-written."""
    import shutil

    with open(source, "rb") as src, atomic_open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)


def sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_temp_files(folder: Path) -> int:
    """Delete temp files left in `folder` by a killed writer; returns how many."""
    removed = 0
    if folder.is_dir():
        for leftover in folder.glob(TEMP_PREFIX + "*"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed += 1
    return removed


@contextlib.contextmanager
def single_flight(lock_path: Path) -> Iterator[bool]:
    """Hold an exclusive kernel lock on `lock_path` if free; yields False when another run holds it.

    flock dies with its process, so a killed run never leaves a stale lock behind.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)  # less the umask: a run as a group member may lock
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield True
    finally:
        os.close(fd)


REWRITE = "restore it, or run again the stage that writes it"


def read_json(path: Path) -> object:
    """A JSON file the project wrote; CorruptFileError names it when it is truncated or corrupt."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path}: not valid JSON, truncated or corrupt (line {exc.lineno}: {exc.msg}): "
                               f"{REWRITE}") from exc
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{path}: not UTF-8 text (offset {exc.start}): {REWRITE}") from exc
