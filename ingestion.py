"""Ingest new client CSV files from the input folder into the ingested history.

Reads every *.csv in `input_folder_path` that the ledger has not seen (input files are never modified).
Writes, in the output folder: parts/<sha256>.csv (each file's new rows), finaldata.csv, ingestedfiles.txt
and the ledger. Run: python ingestion.py [--config PATH] [--json]
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from risk import cli, contract, inbox, views
from risk.config import Config, require_folder
from risk.errors import ContractError, MissingInputError
from risk.files import atomic_open, atomic_write_text
from risk.ledger import Ledger, recorded

logger = logging.getLogger(__name__)
FINALDATA = views.FINALDATA
INGESTEDFILES = views.INGESTEDFILES
PARTS = "parts"


def row_keys(frame: pd.DataFrame) -> pd.Series:
    """One 64-bit hash per row over the contract columns: the de-duplication key."""
    return pd.util.hash_pandas_object(frame.loc[:, list(contract.COLUMNS)], index=False)


def new_rows(frame: pd.DataFrame, seen: set[int]) -> pd.DataFrame:
    """Rows of `frame` that are neither repeated within it nor in `seen`; adds their keys to `seen`."""
    keys = row_keys(frame)
    keep = ~keys.duplicated() & ~keys.isin(seen)
    seen.update(keys[keep].tolist())
    return frame.loc[keep.to_numpy()].reset_index(drop=True)


def parts_folder(config: Config) -> Path:
    return config.output_folder / PARTS


def part_path(config: Config, record: dict) -> Path:
    return parts_folder(config) / record["part"]


def load_history(config: Config, ledger: Ledger) -> pd.DataFrame:
    """Every ingested row, in ingestion order, read from the parts the ledger names."""
    frames = [read_part(part_path(config, f)) for f in ledger.files(status="ingested")]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in contract.COLUMNS})
    return pd.concat(frames, ignore_index=True)


def read_part(path: Path) -> pd.DataFrame:
    return contract.validate_frame(pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]), path.name)


def write_csv(frame: pd.DataFrame, target: Path) -> None:
    with atomic_open(target, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False, float_format="%.15g")  # counts read back as written: 100, not 100.0


def write_views(config: Config, ledger: Ledger) -> pd.DataFrame:
    """finaldata.csv then ingestedfiles.txt, from the ledger (the second is the record of the first)."""
    history = load_history(config, ledger)
    write_csv(history, config.output_folder / FINALDATA)
    names = views.ingested_names(ledger)
    atomic_write_text(config.output_folder / INGESTEDFILES, "".join(f"{n}\n" for n in names))
    return history


def ingest_entry(config: Config, ledger: Ledger, run_id: int, entry: inbox.Entry, seen: set[int]) -> dict:
    """Take one new input file: reject it with a reason, note a duplicate, or write its new rows."""
    record = {"name": entry.name, "sha256": entry.sha256, "size": entry.size, "mtime_ns": entry.mtime_ns}
    earlier = ledger.ingested_sha(entry.sha256)
    if entry.problem:
        status, reason, rows, part = "rejected", entry.problem, None, None
    elif earlier:
        status, reason, rows, part = "duplicate", f"same bytes as {earlier}, already ingested", 0, None
    else:
        try:
            fresh = new_rows(contract.read_csv(entry.path), seen)
        except ContractError as exc:
            status, reason, rows, part = "rejected", str(exc), None, None
        else:
            part = f"{entry.sha256}.csv"
            write_csv(fresh, parts_folder(config) / part)  # the data, before the record of it
            status, reason, rows = "ingested", None, len(fresh)
    ledger.record_file(run_id, **record, status=status, reason=reason, rows=rows, part=part)
    return {"name": entry.name, "status": status, "reason": reason, "rows": rows}


def _log_outcome(outcome: dict) -> None:
    if outcome["status"] == "rejected":
        logger.warning("rejected %s: %s", outcome["name"], outcome["reason"])
    elif outcome["status"] == "duplicate":
        logger.info("skipped %s: %s", outcome["name"], outcome["reason"])
    else:
        logger.info("ingested %s: %d new row(s)", outcome["name"], outcome["rows"])


def ingest_new(config: Config, ledger: Ledger, run_id: int) -> list[dict]:
    """Ingest every new entry of the input folder, then refresh the views if anything changed."""
    entries = inbox.new_entries(config.input_folder, ledger)
    if entries and any(e.problem is None for e in entries):
        seen = set(row_keys(load_history(config, ledger)).tolist())
    else:
        seen = set()
    outcomes = [ingest_entry(config, ledger, run_id, entry, seen) for entry in entries]
    for outcome in outcomes:
        _log_outcome(outcome)
    if not views.views_current(config.output_folder, ledger):
        write_views(config, ledger)
    return outcomes


def summarise(outcomes: list[dict]) -> dict:
    by_status = {s: [o for o in outcomes if o["status"] == s] for s in ("ingested", "rejected", "duplicate")}
    return {
        "files": outcomes,
        "ingested_files": len(by_status["ingested"]),
        "ingested_rows": sum(o["rows"] for o in by_status["ingested"]),
        "rejected_files": len(by_status["rejected"]),
        "duplicate_files": len(by_status["duplicate"]),
    }


def run_ingestion(config: Config, parent_run: int | None = None) -> dict:
    """Ingest what is new; raise when the input folder is empty or every new file was rejected."""
    require_folder(config.input_folder, "input_folder_path")
    if not inbox.csv_paths(config.input_folder):
        raise MissingInputError(f"{config.input_folder}: no .csv files in the input folder")
    with recorded(config.ledger_path, "ingestion", parent_run) as (ledger, run_id, detail):
        summary = summarise(ingest_new(config, ledger, run_id))
        detail.update(summary)
    logger.info("ingestion: %d file(s), %d new row(s); %d rejected, %d duplicate(s)", summary["ingested_files"],
                summary["ingested_rows"], summary["rejected_files"], summary["duplicate_files"])
    return summary


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
