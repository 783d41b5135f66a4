"""Diagnostics of the deployed model and the ingested data, stored in the ledger so that trends exist.

Reads the deployed model (verified), testdata.csv, finaldata.csv and requirements.txt; times ingestion and
training (medians of several runs) in scratch copies (pipeline outputs are never touched). Writes
diagnostics.json to the model folder and one row to the ledger's `diagnostics` table; the index's latest
versions are cached in the ledger (`package_versions`) and looked up at most daily.
Run: python diagnostics.py [--config PATH] [--json]
"""
from __future__ import annotations

from risk import cli
from risk.diagnostics import run_diagnostics


def main(argv: list[str] | None = None) -> int:
    return cli.run(cli.parser(__doc__).parse_args(argv), run_diagnostics)


if __name__ == "__main__":
    raise SystemExit(main())
