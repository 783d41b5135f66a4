"""Where ingestion appends: finaldata.csv and rejects.csv, opened at the ends the ledger committed, and the
de-duplication index of row hashes (rowindex/, one segment per file, merged every COMPACT_AFTER files).

Read by ingestion (the Sink), the pipeline (read_ingested: the rows given files added) and the readers of the
whole history (read_history: finaldata.csv validated).
"""
from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from risk import catalog, contract, fastread, rowindex, rowtext
from risk.config import Config
from risk.errors import ContractError, IntegrityError, MissingInputError
from risk.files import atomic_write_text
from risk.ledger import Ledger

logger = logging.getLogger(__name__)
DATA_HEADER = (",".join(contract.COLUMNS) + "\n").encode()
REJECTS_HEADER = b"file,row,column,value,reason\n"
COMPACT_AFTER = 16  # per-file index segments before they are merged into one


def csv_lines(rows: list[tuple]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


class Sink:
    """What a run appends to: finaldata.csv and rejects.csv (opened at their committed ends) and the index."""

    def __init__(self, config: Config, ledger: Ledger, run_id: int, names_of: Callable) -> None:
        self.config, self.ledger, self.run_id = config, ledger, run_id
        data_end, rejects_end = ledger.files.committed_ends()
        if data_end is None and not ledger.runs.ingested_before(run_id):
            refuse_unknown_history(config, ledger)
        require_contract_header(config.output_folder / catalog.FINALDATA)
        self.data = open_at(config.output_folder / catalog.FINALDATA, DATA_HEADER, data_end)
        self.rejects = open_at(config.output_folder / catalog.REJECTS, REJECTS_HEADER, rejects_end)
        self.index = load_index(config, ledger)
        self.progress = None
        self.pool = ThreadPoolExecutor(fastread.AHEAD, thread_name_prefix="ingestion")
        self.ahead = fastread.Readahead(self.pool, [], names_of)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
        self.data.close()
        self.rejects.close()
        if self.progress is not None:
            self.progress.close()

    def reject(self, file: str, rows: list[tuple]) -> None:
        """Add rejected rows to the run's open ledger transaction (they commit with the file's record) and append
        them to rejects.csv."""
        if rows:
            self.ledger.files.add_rejected_rows(self.run_id, file, rows)
            self.rejects.write(csv_lines([(file, *row) for row in rows]))

    def ends(self) -> dict:
        return {"data_end": self.data.tell(), "rejects_end": self.rejects.tell()}

    def sync(self) -> None:
        for handle in (self.data, self.rejects):
            handle.flush()
            os.fsync(handle.fileno())

    def rollback(self, data_start: int, rejects_start: int) -> None:
        """Forget a file taken half-way: its rejected rows not yet recorded, and whatever it appended."""
        self.ledger.files.discard_rejected_rows(self.run_id)
        for handle, start in ((self.data, data_start), (self.rejects, rejects_start)):
            handle.truncate(start)
            handle.seek(start)


def refuse_unknown_history(config: Config, ledger: Ledger) -> None:
    """A new ledger beside a finaldata.csv with rows: the ledger was lost, and cutting the file back to what
    this ledger knows (nothing) would delete the history."""
    path = config.output_folder / catalog.FINALDATA
    if path.exists() and path.stat().st_size > len(DATA_HEADER):
        raise IntegrityError(f"{path} holds {path.stat().st_size} bytes of rows, but the ledger {ledger.path} has "
                             "no record of any ingestion: restore the ledger from a backup, or move finaldata.csv, "
                             f"{catalog.REJECTS} and {catalog.ROWINDEX}/ aside to start a new history")


def require_contract_header(path: Path) -> None:
    """A history whose header is not the contract's columns (a column was added to SCHEMA since it was written)
    is neither appended to nor read until `python -m risk.migrate` has given it the new columns."""
    try:
        with open(path, "rb") as handle:
            header = handle.readline()
    except FileNotFoundError:
        return
    if header and header != DATA_HEADER:
        written = header.decode("utf-8", "replace").strip().split(",")
        raise MissingInputError(f"{path}: its columns {written} are not the data contract's {list(contract.COLUMNS)}:"
                                " run `python -m risk.migrate` once to migrate the history")


def open_at(path: Path, header: bytes, committed: int | None):  # -> BinaryIO at the committed end
    """Open an appended file, cutting whatever a killed run wrote after the ledger's record of it."""
    committed = committed or len(header)
    size = path.stat().st_size if path.exists() else 0
    if size < committed and committed > len(header):
        raise IntegrityError(f"{path}: {size} bytes but the ledger records {committed}; restore it from a backup")
    if size < len(header):
        atomic_write_text(path, header.decode())
    handle = open(path, "r+b")  # closed by Sink.close
    if size > committed:
        logger.info("recovered: cut %d uncommitted byte(s) from %s", size - committed, path.name)
        handle.truncate(committed)
        os.fsync(handle.fileno())
    handle.seek(committed)
    return handle


def index_folder(config: Config) -> Path:
    return config.output_folder / catalog.ROWINDEX


def load_index(config: Config, ledger: Ledger) -> rowindex.SortedRuns:
    """The live segments: the latest merged one, and those written since (named in the files' `part`)."""
    merged = ledger.files.index_segment()
    names = [merged["path"]] if merged else []
    since = merged["max_file_id"] if merged else 0
    names += [f["part"] for f in ledger.files.records(status="ingested")
              if f["id"] > since and f["part"] and f["part"].endswith(".npy")]
    return rowindex.SortedRuns([rowindex.load(index_folder(config) / name) for name in names])


def compact(config: Config, ledger: Ledger, index: rowindex.SortedRuns) -> None:
    """Merge the segments into one when there are many (an O(history) step, once per COMPACT_AFTER files)."""
    if len(index.fixed) + bool(index.runs) < COMPACT_AFTER:
        return
    last = ledger.files.records(status="ingested")[-1]["id"]
    name = f"merged-{last}.npy"
    keys = index.keys()
    rowindex.save(index_folder(config) / name, keys)  # the segment, before the record of it
    ledger.files.record_index_segment(name, last, len(keys))
    for old in index_folder(config).glob("*.npy"):
        if old.name != name:
            old.unlink()
    logger.info("ingestion: merged the de-duplication index into %s (%d rows)", name, len(keys))


def append_new(sink: Sink, lines: pa.Array | bytes, hashes: np.ndarray, keys: rowindex.SortedRuns,
               counts: dict) -> None:
    """Append the lines whose rows are new (not in the history, nor earlier in this file) and count them."""
    fresh, new = rowindex.fresh(hashes, sink.index, keys)
    if not fresh.all():
        lines = pc.filter(rowtext.split_lines(lines) if isinstance(lines, bytes) else lines, pa.array(fresh))
    sink.data.write(lines if isinstance(lines, bytes) else rowtext.text_bytes(lines))
    keys.add_run(new)
    counts["rows"] += int(fresh.sum())
    counts["duplicate_rows"] += int((~fresh).sum())


def sync_payload(sink: Sink, last_ingested: tuple[int, str] | None) -> None:
    """The run's data and its index segment made durable (the data synced in a thread meanwhile), the segment
    named in the run's ledger transaction: the last step inside it, so the records commit after their payload."""
    syncing = sink.pool.submit(sink.sync)
    fresh = sink.index.fresh_keys()
    if last_ingested and len(fresh):
        name = f"{last_ingested[1]}.npy"
        rowindex.save(index_folder(sink.config) / name, fresh)
        sink.ledger.files.set_part(last_ingested[0], name)
    syncing.result()


def read_ingested(config: Config, records: list[dict]) -> pd.DataFrame:
    """The rows that `records` (ledger file rows) added to finaldata.csv, validated, in ingestion order."""
    chunks = [DATA_HEADER]
    with open(config.output_folder / catalog.FINALDATA, "rb") as handle:
        for record in records:
            handle.seek(record["data_start"])
            chunks.append(handle.read(record["data_end"] - record["data_start"]))
    raw = pd.read_csv(io.BytesIO(b"".join(chunks)), dtype=str, keep_default_na=False, na_values=[""])
    return contract.validate_frame(raw, catalog.FINALDATA, history=True)


REPAIR = " (the next ingestion.py run cuts a row that a killed run left after its last commit)"


class UnusableIngestedData(MissingInputError):
    """finaldata.csv is there but breaks the contract (a torn or bad row): usable data is missing.

    A MissingInputError, so that the API answers 503 (the server's own data is at fault, not the request)."""


def read_history(config: Config) -> pd.DataFrame:
    """finaldata.csv validated by the contract: ids as ingestion kept them (text; `NA` and `00007` are
    names, only an empty cell is missing), features as numbers."""
    path = config.output_folder / catalog.FINALDATA
    if not path.is_file():
        raise MissingInputError(f"{path}: no ingested data (run ingestion.py first)")
    require_contract_header(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        return contract.validate_frame(raw, str(path), history=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UnusableIngestedData(f"{path}: not a well-formed CSV ({str(exc).strip()}){REPAIR}") from None
    except ContractError as exc:
        raise UnusableIngestedData(f"{exc}{REPAIR}") from None
