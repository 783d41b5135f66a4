"""Where ingestion appends: finaldata.csv and rejects.csv, opened at the ends the ledger committed, the
de-duplication index of row hashes (rowindex/, one segment per file, merged every COMPACT_AFTER files), and the
repeats (repeats/, one part per file that had any): the accepted rows finaldata.csv leaves out as exact repeats of
earlier rows, each with its observation number, so that the read state sees every accepted row.

Read by ingestion (the Sink), the pipeline (read_ingested: the rows given files added), the prepared read state
(written_columns, repeat_columns: typed arrays, no pandas) and the readers of the whole history (read_history:
finaldata.csv validated).
"""
from __future__ import annotations

import csv
import io
import logging
import os
from collections import namedtuple
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from risk import arrownp, catalog, contract, fastread, rowindex, rowtext
from risk.config import Config
from risk.errors import ContractError, IntegrityError, MissingInputError
from risk.files import atomic_write_text, fsync_dir
from risk.ledger import Ledger

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)
DATA_HEADER = (",".join(contract.COLUMNS) + "\n").encode()
REJECTS_HEADER = b"file,row,column,value,reason\n"
OBSERVATION = "observation"  # a repeat's number in the stream of accepted rows (0 for the first row ever accepted)
REPEATS_HEADER = (",".join((OBSERVATION, *contract.COLUMNS)) + "\n").encode()
Mark = namedtuple("Mark", "data rejects repeats observations taken")  # where a file began, to undo it
COMPACT_AFTER = 16  # per-file index segments before they are merged into one
TAKEN_ROWS = 2_000_000  # accepted rows a run keeps, typed, for the read state; beyond them it reads them back
THREADED_BYTES = 1 << 22  # CSV the pipeline wrote is parsed on every core beyond this size (a month of rows)


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
        point = ledger.files.committed_point()
        self.observations = point[1] if point else 0  # accepted rows so far, duplicates included
        self.start = (data_end if data_end is not None else len(DATA_HEADER), self.observations)
        self.taken = None  # what keeps the run's accepted rows, typed, for the read state (ingestion's prepared.Taken)
        self.repeats = Repeats(config.output_folder / catalog.REPEATS, run_id, ledger)
        self.progress = None
        self.pool = ThreadPoolExecutor(fastread.AHEAD, thread_name_prefix="ingestion")
        self.ahead = fastread.Readahead(self.pool, [], names_of)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
        self.data.close()
        self.rejects.close()
        self.repeats.end_file(keep=False)
        if self.progress is not None:
            self.progress.close()

    def reject(self, file: str, rows: list[tuple]) -> None:
        """Add rejected rows to the run's open ledger transaction (they commit with the file's record) and append
        them to rejects.csv."""
        if rows:
            self.ledger.files.add_rejected_rows(self.run_id, file, rows)
            self.rejects.write(csv_lines([(file, *row) for row in rows]))

    def ends(self) -> dict:
        return {"data_end": self.data.tell(), "rejects_end": self.rejects.tell(), "observations": self.observations}

    def sync(self) -> None:
        for handle in (self.data, self.rejects):
            handle.flush()
            os.fsync(handle.fileno())
        self.repeats.sync()

    def observe(self, fresh: np.ndarray, lines: pa.Array | None, rows: tuple | None) -> None:
        """Count a batch of accepted rows as observations, keeping the repeats among them (where `fresh` is False;
        `lines` are the batch's every line) in the file's part of repeats/ with their observation numbers, and the
        batch's typed rows `rows` (ids, numbers) in `taken` while the run has taken at most TAKEN_ROWS."""
        if not fresh.all():
            where = np.flatnonzero(~fresh)
            self.repeats.write(self.observations + where, arrownp.filter(lines, ~fresh))
        self.observations += len(fresh)
        if self.taken is not None and (rows is None or self.observations - self.start[1] > TAKEN_ROWS):
            self.taken = None
        elif self.taken is not None:
            self.taken.add(*rows, ~fresh)

    def mark(self) -> Mark:
        return Mark(self.data.tell(), self.rejects.tell(), self.repeats.tell(), self.observations,
                    None if self.taken is None else len(self.taken.batches))

    def rewind(self, mark: Mark) -> None:
        """Forget what a file appended since `mark` (its rows, repeats and observations)."""
        self.data.truncate(mark.data)
        self.data.seek(mark.data)
        self.repeats.truncate(mark.repeats)
        self.observations = mark.observations
        if self.taken is not None and mark.taken is not None:
            del self.taken.batches[mark.taken:]
        else:
            self.taken = None

    def rollback(self, mark: Mark) -> None:
        """Forget a file taken half-way: its rejected rows not yet recorded, and whatever it appended."""
        self.ledger.files.discard_rejected_rows(self.run_id)
        self.rejects.truncate(mark.rejects)
        self.rejects.seek(mark.rejects)
        self.rewind(mark)


class Repeats:
    """This run's parts of repeats/: one CSV per file that repeats earlier rows, each line a repeated row with its
    observation number in front. A part is written as its file is read, fsynced before the run commits, and named
    in the file's ledger record; a part no record names (a killed run's) is removed by the next run."""

    def __init__(self, folder: Path, run_id: int, ledger: Ledger) -> None:
        self.folder, self.run_id, self.files = folder, run_id, 0
        self.path: Path | None = None
        self.handle = None
        self.synced: list[Path] = []
        if folder.is_dir():
            named = {name for name, _ in ledger.files.repeat_parts()}
            for stray in folder.iterdir():
                if stray.name not in named:
                    stray.unlink()

    def start_file(self) -> None:
        self.files += 1
        self.path = self.folder / f"{self.run_id}-{self.files}.csv"

    def write(self, observations: np.ndarray, lines: pa.Array) -> None:
        if self.handle is None:
            self.folder.mkdir(exist_ok=True)
            self.handle = open(self.path, "wb")  # closed by end_file
            self.handle.write(REPEATS_HEADER)
        numbers = arrownp.cast(arrownp.from_numpy(observations.astype(np.int64)), lines.type)
        comma = arrownp.cast(arrownp.text(","), lines.type)
        self.handle.write(rowtext.text_bytes(arrownp.call("binary_join_element_wise", numbers, lines, comma)))

    def tell(self) -> int:
        return self.handle.tell() if self.handle is not None else 0

    def truncate(self, at: int) -> None:
        if self.handle is not None:
            self.handle.truncate(max(at, len(REPEATS_HEADER)))
            self.handle.seek(max(at, len(REPEATS_HEADER)))

    def end_file(self, keep: bool) -> str | None:
        """The file's part, made durable, when it is kept and holds a repeat; otherwise removed. Its name or None."""
        handle, self.handle = self.handle, None
        if handle is None:
            return None
        kept = keep and handle.tell() > len(REPEATS_HEADER)
        if kept:
            handle.flush()
            os.fsync(handle.fileno())
            self.synced.append(self.path)
        handle.close()
        if not kept:
            self.path.unlink()
        return self.path.name if kept else None

    def sync(self) -> None:
        """The folder, so that the parts' names are durable before the records naming them."""
        if self.synced:
            fsync_dir(self.folder)
            self.synced = []


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


def append_new(sink: Sink, batch: rowtext.Batch, keys: rowindex.SortedRuns, counts: dict) -> None:
    """Append the lines whose rows are new (not in the history, nor earlier in this file) and count them; every
    line is an observation, and the others are kept as repeats (Sink.observe, which keeps the typed rows too)."""
    lines, rows = batch.lines, batch.rows
    fresh, new = rowindex.fresh(batch.hashes, sink.index, keys, ordered=batch.ordered)
    if not fresh.all():
        every = rowtext.split_lines(lines) if isinstance(lines, bytes) else lines
        sink.observe(fresh, every, rows)
        lines = arrownp.filter(every, fresh)
    else:
        sink.observe(fresh, None, rows)
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
    return contract.validate_frame(read_written(b"".join(chunks), catalog.FINALDATA), catalog.FINALDATA, history=True)


def _typed_table(data: bytes) -> pa.Table | None:
    """CSV the pipeline wrote, header first, read by pyarrow with the contract's types (ids as text, an empty cell
    null); None when its header is not the contract's columns or a value is not of its column's type."""
    header = data[:data.find(b"\n")].decode("utf-8", "replace").split(",")
    types = {contract.ID_COLUMN: pa.string(), OBSERVATION: pa.int64(),
             **{name: pa.float64() for name in contract.COLUMNS if name != contract.ID_COLUMN}}
    if not all(name in types for name in header) or len(set(header)) != len(header):
        return None
    options = pa_csv.ConvertOptions(column_types={name: types[name] for name in header}, null_values=[""],
                                    strings_can_be_null=True, quoted_strings_can_be_null=True)
    try:
        return pa_csv.read_csv(pa.py_buffer(data), convert_options=options,
                               read_options=pa_csv.ReadOptions(use_threads=len(data) > THREADED_BYTES))
    except pa.ArrowInvalid:
        return None


def read_written(data: bytes, source: str) -> pd.DataFrame:
    """CSV the pipeline wrote (finaldata.csv's rows, a part of repeats/), header first, as `pd.read_csv(dtype=str,
    keep_default_na=False, na_values=[""])` reads it for the contract's checks, but with the numbers parsed by
    pyarrow (4x faster on a month of rows): ids as text, an empty cell missing. Text pyarrow does not take as the
    contract's numbers, or another column, is read as text, so the checks name the row as before."""
    import pandas as pd

    table = _typed_table(data)
    if table is not None:
        return table.to_pandas()
    try:
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise ContractError(f"{source}: no header") from None


def written_columns(data: bytes, source: str, *, complete: bool = False) -> dict:
    """CSV the pipeline wrote, validated as the history (contract.validate_frame(history=True)), as arrays: the ids
    as Arrow text (null where empty) and every number column of the contract as float64 (and OBSERVATION, int64,
    when the header has it). `complete`: a contract column the header lacks (a part written before the column was
    added) is read as empty, so that it takes its `fill`. pyarrow and NumPy only; a value that breaks the contract
    is read again through read_written and validate_frame, whose ContractError names its row."""
    table = _typed_table(data)
    if table is not None and (complete or all(name in table.column_names for name in contract.COLUMNS)):
        rows = table.num_rows
        columns = {name: arrownp.to_numpy(table.column(name)).astype(np.float64)
                   if name in table.column_names else np.full(rows, np.nan) for name in _NUMBERS}
        if contract.kept(columns, history=True):
            ids = table.column(contract.ID_COLUMN).combine_chunks() if contract.ID_COLUMN in table.column_names \
                else pa.nulls(rows, pa.string())
            extra = {OBSERVATION: arrownp.to_numpy(table.column(OBSERVATION)).astype(np.int64)} \
                if OBSERVATION in table.column_names else {}
            return {contract.ID_COLUMN: arrownp.cast(ids, pa.string()), **columns, **extra}
    import pandas as pd

    raw = read_written(data, source)
    observed = raw.pop(OBSERVATION) if OBSERVATION in raw.columns else None
    if complete:
        raw = raw.reindex(columns=list(contract.COLUMNS), fill_value=pd.NA)  # added since: empty cells
    rows = contract.validate_frame(raw, source, history=True)
    extra = {OBSERVATION: pd.to_numeric(observed).to_numpy(np.int64)} if observed is not None else {}
    ids = pa.array(rows[contract.ID_COLUMN], type=pa.string(), from_pandas=True)
    return {contract.ID_COLUMN: ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids,
            **{name: rows[name].to_numpy(dtype=np.float64) for name in _NUMBERS}, **extra}


_NUMBERS = tuple(name for name in contract.COLUMNS if name != contract.ID_COLUMN)


def repeat_columns(config: Config, parts: list[tuple[str, int]], start: int, end: int) -> dict:
    """The repeats with observation numbers in [start, end), in order, as `written_columns` gives them: `parts` are
    (name, the observations counted after its file) as the ledger lists them (`files.repeat_parts`). A part written
    before a column was added to the contract lacks it, and its rows take the column's `fill`."""
    pieces = []
    for name, after in parts:
        if after <= start:
            continue
        path = config.output_folder / catalog.REPEATS / name
        columns = written_columns(path.read_bytes(), str(path), complete=True)
        numbers = columns[OBSERVATION]
        inside = np.flatnonzero((numbers >= start) & (numbers < end))
        pieces.append({key: arrownp.take(value, inside) if isinstance(value, pa.Array) else value[inside]
                       for key, value in columns.items()})
        if after >= end:
            break
    if not pieces:
        return {contract.ID_COLUMN: pa.nulls(0, pa.string()), **{name: np.empty(0) for name in _NUMBERS},
                OBSERVATION: np.empty(0, np.int64)}
    return {key: pa.concat_arrays([piece[key] for piece in pieces]) if key == contract.ID_COLUMN
            else np.concatenate([piece[key] for piece in pieces]) for key in pieces[0]}


REPAIR = " (the next ingestion.py run cuts a row that a killed run left after its last commit)"


class UnusableIngestedData(MissingInputError):
    """finaldata.csv is there but breaks the contract (a torn or bad row): usable data is missing.

    A MissingInputError, so that the API answers 503 (the server's own data is at fault, not the request)."""


def read_history(config: Config) -> pd.DataFrame:
    """finaldata.csv validated by the contract: ids as ingestion kept them (text; `NA` and `00007` are
    names, only an empty cell is missing), features as numbers."""
    import pandas as pd

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
