"""What every script's `main()` shares: the argument parser, logging set-up and error-to-exit-code mapping.

Exit codes: 0 done or nothing to do, 1 expected failure (one log line naming what and why), 2 usage.
"""
from __future__ import annotations

import argparse
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
    try:
        result = stage(load_config(args.config))
    except RiskError as exc:
        logger.error("%s", exc)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    return 0
