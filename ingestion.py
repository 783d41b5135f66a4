"""Ingest new client CSV files from the input folder, row by checked row, appending only what is new.

Reads every *.csv in `input_folder_path` the ledger has not seen, in chunks (input files are never modified); a
file whose every row is good is read in typed pieces, a few at once (risk/fastread.py).
Appends, in the output folder: new rows to finaldata.csv, rejected rows to rejects.csv and each file's row
hashes to rowindex/, then records the file in the ledger; writes ingestedfiles.txt.
With --contacts, reads instead the contacts folder's new CSVs into the ledger (risk/contactlog.py; the cron tick
does it too), setting bad lines aside in contacts_rejects.csv.
Run: python ingestion.py [--config PATH] [--contacts] [--json] [-v]
"""
from __future__ import annotations

import os

if __name__ == "__main__":  # before NumPy loads. Ingestion does no linear algebra, and OpenBLAS's threads spin for a
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # while after it starts, on the core the CSV parser needs

from risk import cli
from risk.config import Config
from risk.errors import ContractError
from risk.ingestion import run_ingestion


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(__doc__)
    parser.add_argument("--contacts", action="store_true",
                        help="read the contacts folder's new CSVs (contacts_folder_path) instead of client data")
    args = parser.parse_args(argv)
    if args.contacts:
        from risk.contactlog import run_contacts  # here: a client-data run does not load it

        return cli.run(args, run_contacts)

    def stage(config: Config) -> dict:
        summary = run_ingestion(config)
        if summary["rejected_files"] and not summary["ingested_files"]:
            raise ContractError(f"no file ingested: {summary['rejected_files']} file(s) rejected")
        return summary

    return cli.run(args, stage)


if __name__ == "__main__":
    raise SystemExit(main())
