"""What every script's `main()` shares: the argument parser, logging set-up and error-to-exit-code mapping.

Exit codes: 0 done or nothing to do, 1 expected failure (one log line naming what and why), 2 usage.
A failure of the environment (a folder the user cannot write, a full disk, an unwritable ledger) is expected
too: one line naming the file. With -v any expected failure's line is followed by its traceback.
"""
from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from collections.abc import Callable

from risk.config import Config, load_config
from risk.errors import RiskError

logger = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"  # each stage's outcome line starts with the stage


def parser(description: str | None) -> argparse.ArgumentParser:
    """An argparse parser with the options every script takes."""
    summary = (description or "").strip().splitlines()[0] if description else None
    result = argparse.ArgumentParser(description=summary)
    result.add_argument("--config", metavar="PATH", help="config.json to use (default: the one beside the scripts)")
    result.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    result.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    return result


QUIET_LIBRARIES = ("fontTools", "matplotlib")  # font subsetting in PDFs logs a line per table at INFO


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def run(args: argparse.Namespace, stage: Callable[[Config], object]) -> int:
    """Load the config, run `stage(config)`, print its result with --json; expected failures exit 1."""
    setup_logging(args.verbose)
    config = None
    try:
        config = load_config(args.config)
        result = stage(config)
    except RiskError as exc:
        logger.error("%s", exc, exc_info=exc if args.verbose else None)
        return 1
    except Exception as exc:  # only a failure of the environment is one line; a bug re-raises with its traceback
        line = environment_error(exc, config)
        if line is None:
            raise
        logger.error("%s", line, exc_info=exc if args.verbose else None)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    return 0


OS_HINTS = {
    errno.EACCES: "permission denied to {user}: run as the owner of the folder, or give {user} access to it",
    errno.EPERM: "operation not permitted to {user}: run as the owner of the folder, or give {user} access to it",
    errno.EROFS: "the file system is read-only",
    errno.EEXIST: "exists and is not a folder: check the folder paths in {config}",
    errno.ENOTDIR: "part of this path is a file, not a folder: check the folder paths in {config}",
    errno.ENOSPC: "no space left on the device: free some space and run again",
}
SQLITE_HINTS = {  # primary result codes (sqlite3.SQLITE_*) that say the ledger's file or folder is at fault
    3: "permission denied to {user}: run as the owner of the ledger, or let {user} write it and its folder",
    5: "another process holds the ledger: try again when it ends",
    6: "another process holds the ledger: try again when it ends",
    8: "{user} cannot write the ledger: run as its owner, or let {user} write it and its folder",
    10: "disk I/O error",
    11: "the ledger is damaged: restore it from a backup or move it away",
    13: "no space left on the device: free some space and run again",
    14: "{user} cannot open the ledger: run as its owner, or let {user} write it and its folder",
    26: "not an SQLite database: restore the ledger from a backup or move it away",
}


def environment_error(exc: BaseException, config: Config | None) -> str | None:
    """One line for a failure of the environment (names the file and what to do); None for anything else."""
    where = {"user": user(), "config": config.config_path if config else "the config"}
    sqlite3 = sys.modules.get("sqlite3")  # never imported here: the idle cron tick pays for what it imports
    if isinstance(exc, OSError):
        files = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        text = OS_HINTS.get(exc.errno, exc.strerror or str(exc)).format(**where)
        return f"{files}: {text}" if files else text
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        hint = SQLITE_HINTS.get(getattr(exc, "sqlite_errorcode", -1) & 0xFF)
        ledger = config.ledger_path if config else "the ledger"
        return None if hint is None else f"{ledger}: {exc} ({hint.format(**where)})"
    return None  # a file the project wrote that does not read back is a CorruptFileError (risk.files.read_*)


def user() -> str:
    import getpass
    import os

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a name (a container)
        return f"uid {os.getuid()}"
