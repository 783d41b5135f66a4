"""The cron job: ingest new data, decide on drift, and only then retrain, rescore and redeploy.

Reads the input folder, the ledger and the production folder; calls the stages as functions. The idle tick
(nothing new, a model deployed) imports only the standard library and exits 0 at once.
Run: python fullprocess.py [--config PATH] [--json] [-v]; cron runs it every ten minutes (cronjob.txt).
"""
from __future__ import annotations

from risk import cli
from risk.pipeline import run_fullprocess


def main(argv: list[str] | None = None) -> int:
    return cli.run(cli.parser(__doc__).parse_args(argv), run_fullprocess)


if __name__ == "__main__":
    raise SystemExit(main())
