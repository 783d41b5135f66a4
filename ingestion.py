"""Ingest new client CSV files from the input folder, row by checked row, appending only what is new.

Reads every *.csv in `input_folder_path` the ledger has not seen, in chunks (input files are never modified); a
file whose every row is good is read in typed pieces, a few at once (risk/fastread.py).
Appends, in the output folder: new rows to finaldata.csv, rejected rows to rejects.csv and each file's row
hashes to rowindex/, then records the file in the ledger; writes ingestedfiles.txt.
Run: python ingestion.py [--config PATH] [--json] [-v]
"""
from __future__ import annotations

from risk import cli
from risk.config import Config
from risk.errors import ContractError
from risk.ingestion import run_ingestion


def main(argv: list[str] | None = None) -> int:
    args = cli.parser(__doc__).parse_args(argv)

    def stage(config: Config) -> dict:
        summary = run_ingestion(config)
        if summary["rejected_files"] and not summary["ingested_files"]:
            raise ContractError(f"no file ingested: {summary['rejected_files']} file(s) rejected")
        return summary

    return cli.run(args, stage)


if __name__ == "__main__":
    raise SystemExit(main())
