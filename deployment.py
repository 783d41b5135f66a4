"""Deploy the trained model: a new immutable, verified version in the production folder.

Reads trainedmodel.pkl, its card and latestscore.txt (model folder) and ingestedfiles.txt (output folder).
Writes production_deployment/versions/<N>/ with a manifest of sha256s, then the `current` pointer, then the
course's flat copies (trainedmodel.pkl, latestscore.txt, ingestedfiles.txt); keeps the last `keep_versions`.
Run: python deployment.py [--config PATH]; --list; --rollback [VERSION] [--reason TEXT]
"""
from __future__ import annotations

import argparse

from risk import cli, registry
from risk.config import Config
from risk.deployment import deploy_by_hand, run_rollback, version_table
from risk.errors import RiskError
from risk.files import single_flight

PREVIOUS = object()  # --rollback without VERSION: the one live before (not a str: argparse types those)
NO_REASON = "no reason given"  # recorded for a rollback without --reason


def version_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a version number (1, 2, ...; see --list), got {text!r}")
    return int(text)


def reason_text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a reason, got an empty one")
    return text.strip()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.parser(__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the versions (* marks the current one)")
    action.add_argument("--rollback", nargs="?", const=PREVIOUS, type=version_number, metavar="VERSION",
                        help="make VERSION current again (default: the version live before the current one that was not"
                        " rolled back from and still verifies)")
    parser.add_argument("--reason", type=reason_text, metavar="TEXT",
                        help=f"why, recorded in the ledger with who (only with --rollback; default {NO_REASON!r})")
    args = parser.parse_args(argv)
    if args.reason is not None and args.rollback is None:
        parser.error("--reason is only for --rollback (a deployment records its score and data, not a reason)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def stage(config: Config) -> object:
        if args.list:
            rows = registry.describe(config.prod_folder)
            if not args.json:
                print(version_table(rows))
            return rows
        with single_flight(config.lock_path) as mine:
            if not mine:
                raise RiskError(f"{config.lock_path}: another pipeline run holds the lock; try again when it ends")
            if args.rollback is not None:
                target = None if args.rollback is PREVIOUS else args.rollback
                return run_rollback(config, target, args.reason or NO_REASON)
            return deploy_by_hand(config)

    return cli.run(args, stage)


if __name__ == "__main__":
    raise SystemExit(main())
