"""Ingest new client CSV files from the input folder, row by checked row, appending only what is new.

Reads every *.csv in `input_folder_path` the ledger has not seen, in chunks (input files are never modified); a
file whose every row is good is read in typed pieces, a few at once (risk/fastread.py).
Appends, in the output folder: new rows to finaldata.csv, rejected rows to rejects.csv and each file's row
hashes to rowindex/, then records the file in the ledger; writes ingestedfiles.txt.
Run: python ingestion.py [--config PATH] [--json] [-v]
"""
from __future__ import annotations

import codecs
import csv
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from risk import catalog, contract, fastread, inbox, prepared, rowcheck, rowindex, rowtext, views
from risk.config import Config, require_folder
from risk.errors import BusyError, ContractError, MissingInputError
from risk.files import atomic_write_text, single_flight
from risk.ledger import Ledger, recorded
from risk.store import Sink, append_new, compact, index_folder, sync_payload

logger = logging.getLogger(__name__)
BLOCK_BYTES = 1 << 22  # one chunk: memory per file is bounded by this, not by the file's size
HEAD_BYTES = 1 << 16
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


class FileRejected(ContractError):
    """The whole file is set aside (left in place) for the reason in the message."""


# ---- file level: what a file must be before any row is read --------------------------------------------
def sniff(path: Path) -> tuple[str, list[str]]:
    """(encoding, header names) of a CSV; FileRejected says why it is not one we take."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    if not head.strip():
        raise FileRejected("empty file; expected a CSV header and rows")
    encoding = "utf-16" if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(head, final=len(head) < HEAD_BYTES)
    except UnicodeDecodeError as exc:
        raise FileRejected(f"not UTF-8 text (byte {exc.start}); save it as UTF-8 "
                           "(Latin-1 and other legacy encodings are not guessed)") from None
    if not text.strip():  # a byte-order mark and nothing else
        raise FileRejected("empty file; expected a CSV header and rows")
    if "\x00" in text:
        raise FileRejected("binary content (NUL bytes), not a CSV text file")
    names = [name.strip() for name in next(csv.reader([text.splitlines()[0]]), [])]
    return ("utf8" if encoding == "utf-8-sig" else encoding), names


def check_header(names: list[str]) -> list[str]:
    """The extra columns (to drop); FileRejected for a wrong delimiter, missing or duplicated columns."""
    needed = contract.required()
    missing = contract.missing_columns(names, needed)
    if missing and len(names) == 1:
        for delimiter, label in OTHER_DELIMITERS.items():
            if not contract.missing_columns(names[0].split(delimiter), needed):
                raise FileRejected(f"wrong delimiter: {label}-separated ({delimiter!r}); expected commas")
    if missing:
        raise FileRejected(f"missing required column(s) {missing}; expected {list(needed)}, found {names[:8]}")
    dupes = sorted(name for name, count in Counter(names).items() if count > 1)  # an empty name too
    if dupes:
        raise FileRejected(f"duplicated column(s) {dupes}")
    return [name for name in names if name not in contract.BY_NAME]


def batches(path: Path, encoding: str, names: list[str], invalid: list) -> Iterator[pa.RecordBatch]:
    """The file's rows as string batches of the contract's columns; ragged rows go to `invalid`."""
    present = [name for name in names if name in contract.BY_NAME]

    def handler(row: pa_csv.InvalidRow) -> str:
        invalid.append((row.number, row.actual_columns, row.text))
        return "skip"

    reader = pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, use_threads=False,
                                        block_size=BLOCK_BYTES, encoding=encoding),
        parse_options=pa_csv.ParseOptions(invalid_row_handler=handler, ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(include_columns=present, strings_can_be_null=False,
                                              column_types=dict.fromkeys(present, pa.string())),
    )
    yield from reader


class NotSplit(Exception):
    """A piece the ragged-row split cannot read as pyarrow would: the file is read again on the text path."""


def split_batches(path: Path, encoding: str, names: list[str], invalid: list) -> Iterator[pa.RecordBatch]:
    """`batches`, with the ragged rows found by counting commas (risk.rowcheck.split_ragged) rather than one
    Python call per row: a file of ragged rows is rejected at the speed of reading. NotSplit where a piece
    could be read otherwise (a quote, a carriage return, text that is not UTF-8)."""
    present = [name for name in names if name in contract.BY_NAME]
    options = (pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=2 * fastread.PIECE_BYTES),
               pa_csv.ParseOptions(ignore_empty_lines=False),
               pa_csv.ConvertOptions(include_columns=present, strings_can_be_null=False,
                                     column_types=dict.fromkeys(present, pa.string())))
    line = contract.HEADER_LINES + 1
    for piece in fastread.pieces(path):
        split = rowcheck.split_ragged(piece, len(names), line) if piece is not None else None
        if split is None:
            raise NotSplit(path)
        line += piece.count(b"\n")
        kept, ragged = split
        invalid.extend(ragged)
        if kept:
            try:
                yield from pa_csv.read_csv(pa.py_buffer(kept), *options).to_batches()
            except pa.ArrowInvalid:
                raise NotSplit(path) from None


# ---- one run: the appended files, the index, the ledger ------------------------------------------------
def take_rows(sink: Sink, entry: inbox.Entry, encoding: str, names: list[str]) -> dict:
    """Stream one file's rows: rejected ones recorded, new ones appended. Returns counts and the file's keys.

    A UTF-8 file whose every row is good takes the fast path; a UTF-8 file without quotes or carriage returns
    has its ragged rows split off by counting commas; any other is read as text, row by checked row."""
    taken = fast_rows(sink, entry, names) if encoding == "utf8" else None
    if taken is None and encoding == "utf8":
        mark = sink.mark()
        try:
            taken = checked_rows(sink, entry, encoding, names, split_batches)
        except NotSplit:
            sink.rollback(mark)
    return taken if taken is not None else checked_rows(sink, entry, encoding, names)


def checked_rows(sink: Sink, entry: inbox.Entry, encoding: str, names: list[str], reader=None) -> dict:
    """take_rows on text batches: each row judged by the contract, each broken value recorded with its line.
    `reader` gives the batches (`batches` when None) and puts the ragged rows, in file order, in `invalid`."""
    invalid: list = []
    state, keys = {"next": contract.HEADER_LINES + 1}, rowindex.SortedRuns()
    counts = {"rows": 0, "duplicate_rows": 0, "rejected_rows": 0}
    for batch in (reader or batches)(entry.path, encoding, names, invalid):
        lines = rowcheck.line_numbers(batch.num_rows, state, invalid)
        text, numbers, bad, blank = rowcheck.check_batch(batch)
        broken = np.logical_or.reduce(list(bad.values())) & ~blank
        done = [row for row in invalid if row[0] is None or row[0] < state["next"]]
        invalid[:] = [row for row in invalid if not (row[0] is None or row[0] < state["next"])]  # later chunks'
        found = rowcheck.rejections(text, bad, np.flatnonzero(broken), lines)
        sink.reject(entry.name, rowcheck.ragged(done, len(names)) + found)
        counts["rejected_rows"] += int(broken.sum()) + len(done)
        append_new(sink, rowtext.normalised(text, numbers, ~broken & ~blank), keys, counts)
        if sink.progress is not None:
            sink.progress.update(min(BLOCK_BYTES, entry.size))
    sink.reject(entry.name, rowcheck.ragged(invalid, len(names)))
    counts["rejected_rows"] += len(invalid)
    return {**counts, "keys": keys}


# ---- the fast path: a file whose every row is good, read in typed pieces (issue 4) ------------------------
def fast_rows(sink: Sink, entry: inbox.Entry, names: list[str]) -> dict | None:
    """take_rows for a file whose every row is good; None, with what it appended undone, for any other.

    The pieces come parsed and hashed from the sink's readahead (risk.fastread)."""
    mark, done = sink.mark(), 0
    keys, counts = rowindex.SortedRuns(), {"rows": 0, "duplicate_rows": 0, "rejected_rows": 0}
    for piece, ready in sink.ahead.pieces(entry.path, names):
        if ready is None:
            sink.ahead.abandon(entry.path)
            sink.rewind(mark)
            if sink.progress is not None:
                sink.progress.update(-done)
            return None
        append_new(sink, ready, keys, counts)
        done += len(piece)
        if sink.progress is not None:
            sink.progress.update(len(piece))
    return {**counts, "keys": keys}


def fast_names(entry: inbox.Entry) -> list[str] | None:
    """The header names of an entry the fast path may take (UTF-8, a header we take); None for any other."""
    if entry.problem:
        return None
    try:
        encoding, names = sniff(entry.path)
        check_header(names)
    except (FileRejected, OSError):
        return None
    return names if encoding == "utf8" else None


def read_file(sink: Sink, entry: inbox.Entry) -> dict:
    """Check the file, then its rows; a file-level failure half-way undoes what the file appended."""
    mark = sink.mark()
    try:
        encoding, names = sniff(entry.path)
        extras = check_header(names)
        taken = take_rows(sink, entry, encoding, names)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        sink.rollback(mark)
        detail = str(exc).strip().splitlines()[0]
        raise FileRejected(f"not a readable UTF-8 CSV ({detail})") from None
    except OSError as exc:
        sink.rollback(mark)
        raise FileRejected(f"unreadable ({exc.strerror})") from None
    if not taken["rows"] + taken["duplicate_rows"] + taken["rejected_rows"]:
        raise FileRejected("header only, no data rows")
    return {**taken, "extra_columns": extras, "data_start": mark.data}


def judge(sink: Sink, entry: inbox.Entry) -> tuple[dict, rowindex.SortedRuns | None]:
    """(outcome, the file's new keys) for one new entry: rejected, duplicate, or taken."""
    outcome = {"name": entry.name, "status": "ingested", "reason": None, "rows": 0, "duplicate_rows": 0,
               "rejected_rows": 0, "extra_columns": []}
    earlier = sink.ledger.files.ingested_name(entry.sha256)
    if entry.problem or earlier:
        status = "rejected" if entry.problem else "duplicate"
        reason = entry.problem or f"same bytes as {earlier}, already ingested"
        return {**outcome, "status": status, "reason": reason, "rows": None if entry.problem else 0}, None
    try:
        taken = read_file(sink, entry)
    except FileRejected as exc:
        return {**outcome, "status": "rejected", "reason": f"{entry.name}: {exc}", "rows": None}, None
    keys = taken.pop("keys")
    outcome.update(taken)
    if not taken["rows"] + taken["duplicate_rows"]:
        outcome.update(status="rejected", rows=None,
                       reason=f"{entry.name}: no valid row; {taken['rejected_rows']} row(s) broke the contract")
    return outcome, keys


def ingest_entry(sink: Sink, entry: inbox.Entry) -> tuple[dict, int]:
    """Judge one entry and add its record (rows, rejected rows, the part holding its repeated rows) to the run's
    transaction, which commits the group after `sync_payload` made it durable."""
    sink.repeats.start_file()
    outcome, keys = judge(sink, entry)
    repeats = sink.repeats.end_file(keep=outcome["status"] == "ingested")
    if outcome["status"] == "rejected":
        sink.reject(entry.name, [(None, None, None, outcome["reason"])])
    record = {"name": entry.name, "sha256": entry.sha256, "size": entry.size, "mtime_ns": entry.mtime_ns,
              "status": outcome["status"], "reason": outcome["reason"], "rows": outcome["rows"],
              "rejected_rows": outcome["rejected_rows"], "data_start": outcome.pop("data_start", None),
              "repeats": repeats, **sink.ends()}
    file_id = sink.ledger.files.add(sink.run_id, record)
    if keys is not None and outcome["status"] == "ingested":
        sink.index.absorb(keys)
    return outcome, file_id


def _log_outcome(outcome: dict, changed: bool) -> None:
    if changed:
        logger.info("%s changed since it was last seen: taken as a new file", outcome["name"])
    if outcome["status"] == "rejected":
        logger.warning("rejected %s: %s", outcome["name"], outcome["reason"])
    elif outcome["status"] == "duplicate":
        logger.info("skipped %s: %s", outcome["name"], outcome["reason"])
    else:
        extra = f"; extra column(s) {outcome['extra_columns']} dropped" if outcome["extra_columns"] else ""
        logger.info("ingested %s: %d new row(s), %d duplicate row(s), %d row(s) rejected%s", outcome["name"],
                    outcome["rows"], outcome["duplicate_rows"], outcome["rejected_rows"], extra)


def progress_bar(entries: list[inbox.Entry]):  # -> tqdm | None
    """A tqdm bar over the bytes to read, only when a person watches stderr; cron gets log lines."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=sum(e.size for e in entries), unit="B", unit_scale=True, desc="ingestion", leave=False)


def ingest_new(config: Config, ledger: Ledger, run_id: int) -> tuple[list[dict], prepared.Taken | None]:
    """Ingest every new entry of the input folder, then refresh ingestedfiles.txt if it is behind. Returns the
    outcomes and the typed rows the run accepted (prepared.Taken, None when it did not keep them all), which the
    read state takes rather than read them back."""
    entries = inbox.new_entries(config.input_folder, ledger)
    sink = Sink(config, ledger, run_id, fast_names)
    sink.taken = prepared.Taken(sink.start)
    try:
        adopt_parts(sink)
        sink.ahead = fastread.Readahead(sink.pool, entries, fast_names)
        sink.progress = progress_bar(entries)
        outcomes, last = [], None
        with ledger.transaction():  # commits after sync_payload; a failure commits nothing of the run's files
            for entry in entries:
                changed = ledger.files.last_sha(entry.name) not in (None, entry.sha256)
                outcome, file_id = ingest_entry(sink, entry)
                last = (file_id, entry.sha256) if outcome["status"] == "ingested" else last
                outcomes.append(outcome)
                _log_outcome(outcome, changed)
            sync_payload(sink, last)
        compact(config, ledger, sink.index)
        taken = sink.taken
    finally:
        sink.close()
    if not views.views_current(config.output_folder, ledger):
        write_views(config, ledger)
    return outcomes, taken


def adopt_parts(sink: Sink) -> None:
    """Once, after the upgrade from per-file parts: append the parts, in ledger order, to finaldata.csv."""
    legacy = [f for f in sink.ledger.files.records(status="ingested") if f["data_end"] is None and f["part"]]
    if legacy:
        sink.taken = None  # the read state reads the adopted rows back
    for record in legacy:
        path = sink.config.output_folder / catalog.PARTS / record["part"]
        part = inbox.Entry(record["name"], path, path.stat().st_size, 0, record["sha256"])
        start = sink.data.tell()
        sink.repeats.start_file()
        with sink.ledger.transaction():  # the part's segment and its range commit together, after the sync
            taken = take_rows(sink, part, "utf8", list(contract.COLUMNS))
            repeats = sink.repeats.end_file(keep=True)
            keys = taken["keys"].keys()
            if len(keys):
                rowindex.save(index_folder(sink.config) / f"{record['sha256']}.npy", keys)
                sink.ledger.files.set_part(record["id"], f"{record['sha256']}.npy")
            sink.sync()
            sink.ledger.files.set_data_range(record["id"], taken["rows"], data_start=start, repeats=repeats,
                                             **sink.ends())
        sink.index.fixed.append(keys)
    if legacy:
        logger.info("ingestion: adopted %d file(s) from %s/ into finaldata.csv", len(legacy), catalog.PARTS)


def write_views(config: Config, ledger: Ledger) -> None:
    """ingestedfiles.txt from the ledger (finaldata.csv is appended as files are taken)."""
    names = views.ingested_names(ledger)
    atomic_write_text(config.output_folder / catalog.INGESTEDFILES, "".join(f"{n}\n" for n in names))


def summarise(outcomes: list[dict]) -> dict:
    by_status = {s: [o for o in outcomes if o["status"] == s] for s in ("ingested", "rejected", "duplicate")}
    return {
        "files": outcomes,
        "ingested_files": len(by_status["ingested"]),
        "ingested_rows": sum(o["rows"] for o in by_status["ingested"]),
        "duplicate_rows": sum(o["duplicate_rows"] for o in outcomes),
        "rejected_files": len(by_status["rejected"]),
        "rejected_rows": sum(o["rejected_rows"] for o in outcomes),
        "duplicate_files": len(by_status["duplicate"]),
    }


def run_ingestion(config: Config, parent_run: int | None = None) -> dict:
    """Ingest what is new; raise when the input folder is empty or another ingestion is running."""
    require_folder(config.input_folder, "input_folder_path")
    if not inbox.csv_paths(config.input_folder):
        raise MissingInputError(f"{config.input_folder}: no .csv files in the input folder")
    with single_flight(config.output_folder / catalog.INGESTION_LOCK) as mine:
        if not mine:
            raise BusyError(f"{config.output_folder / catalog.INGESTION_LOCK}: another ingestion is running")
        with recorded(config.ledger_path, "ingestion", parent_run) as (ledger, run_id, detail):
            outcomes, taken = ingest_new(config, ledger, run_id)
            summary = summarise(outcomes)
            detail.update(summary)
            committed = prepared.committed(ledger)
        prepared.advance(config, committed, taken)  # after the commit: the API's read state follows the ledger
    logger.info("ingestion: %d file(s), %d new row(s), %d duplicate row(s); rejected %d file(s) and %d row(s) "
                "(see %s); %d duplicate file(s)", summary["ingested_files"], summary["ingested_rows"],
                summary["duplicate_rows"], summary["rejected_files"], summary["rejected_rows"], catalog.REJECTS,
                summary["duplicate_files"])
    return summary
