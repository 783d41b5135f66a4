"""Ingestion's fast path (issue 4): a file whose every row is good, read in typed pieces, a few at once.

A piece is all good (its lines and row hashes are the text path's) or None, and the caller reads the whole file
again as text. Pieces are parsed and hashed in threads, ahead of the one being appended, across the run's
files. Reads the input files; writes nothing.
"""
from __future__ import annotations

import codecs
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from risk import arrownp, contract, inbox, rowindex, rowtext

PIECE_BYTES = 1 << 22  # at most ingestion's BLOCK_BYTES: no longer line may reach the text reader's block limit
AHEAD = 2  # pieces parsed and hashed at once (one thread each), ahead of the one being appended
TYPED = {c.name: pa.string() if c.role == "id" else pa.float64() for c in contract.SCHEMA}


def pieces(path: Path) -> Iterator[bytes | None]:
    """The rows after the header line, in pieces of at most about PIECE_BYTES that each end with a newline.

    Yields None where a piece could part from the text reader's rows, and stops: at a quote (a newline may be
    quoted), a carriage return in the header line, or a line longer than PIECE_BYTES."""
    with open(path, "rb") as handle:
        header = handle.readline(PIECE_BYTES)
        if not header.endswith(b"\n") or b'"' in header or b"\r" in header[:-2]:
            yield None
            return
        tail = b""
        for block in iter(lambda: handle.read(PIECE_BYTES), b""):
            first = block.find(b"\n") + 1  # the end of the line begun in `tail`, or 0: it goes on
            if len(tail) + (first or len(block) + 1) > PIECE_BYTES:
                yield None
                return
            cut = block.rfind(b"\n") + 1
            if not cut:
                tail += block
                continue
            piece = block if not tail and cut == len(block) else tail + block[:cut]
            tail = block[cut:]
            yield None if b'"' in piece else piece
        if tail:
            yield None if b'"' in tail else tail + b"\n"


def readable_pieces(path: Path) -> Iterator[bytes | None]:
    """`pieces`, ending with None if the file cannot be read (the text path then says why)."""
    try:
        yield from pieces(path)
    except OSError:
        yield None


def typed(piece: bytes, names: list[str]) -> pa.Table | None:
    """The piece's rows with the numbers as float64 (Arrow's parse, as the text path's first cast); None if a
    row is ragged, a value is not a number Arrow reads without trimming more than spaces and tabs, or the piece
    opens with a byte-order mark."""
    if piece.startswith(codecs.BOM_UTF8):  # Arrow skips a BOM opening its buffer; in a row it is text
        return None
    options = pa_csv.ConvertOptions(include_columns=[name for name in names if name in TYPED], column_types=TYPED,
                                    strings_can_be_null=False)
    try:
        return pa_csv.read_csv(pa.py_buffer(piece), convert_options=options,
                               read_options=pa_csv.ReadOptions(column_names=names, use_threads=False,
                                                               block_size=2 * PIECE_BYTES),
                               parse_options=pa_csv.ParseOptions(ignore_empty_lines=False))
    except pa.ArrowInvalid:
        return None


def good_rows(table: pa.Table) -> tuple[pa.Array, dict] | None:
    """(the ids, trimmed; the numbers) of rows that all keep the contract, or None if any value breaks it."""
    numbers = {}
    for column in contract.SCHEMA:
        if column.role != "id":
            numbers[column.name] = arrownp.to_numpy(table.column(column.name))  # NaN where missing
            if not contract.all_good(column, numbers[column.name]):
                return None
    ident = table.column(contract.ID_COLUMN).combine_chunks() if contract.ID_COLUMN in table.column_names else \
        arrownp.blanks(table.num_rows)
    return arrownp.call("utf8_trim_whitespace", ident), numbers


def as_written(piece: bytes, names: list[str], rows: tuple[pa.Array, dict]) -> bool:
    """True when the piece's bytes are already its normalised lines.

    Needs the contract's columns in its order, no quote (checked by `pieces`) nor carriage return, and one line
    per row. Then each byte count below is at least its normalised one, equal only for the same text: the non-digits
    of the piece (ids, commas, newlines) say that the numbers are plain digits; the lengths, that no id was trimmed
    and no number has a leading zero. Numbers below 2**53 read exactly, so their digits are the ones written."""
    ident, numbers = rows
    codes = np.frombuffer(piece, dtype=np.uint8)
    if names != list(contract.COLUMNS) or b"\r" in piece or np.count_nonzero(codes == ord("\n")) != len(ident):
        return False
    digits, separators = 0, len(names) * len(ident)  # the commas and the newline of each line
    for values in numbers.values():
        top = values.max(initial=0)
        if top >= contract.MAX_COUNT:
            return False
        digits += len(values) + sum(int(np.count_nonzero(values >= 10.0**k)) for k in range(1, len(f"{top:.0f}")))
    text = rowindex.string_buffers(ident)[1]
    return len(piece) == len(text) + digits + separators and non_digits(codes) == non_digits(text) + separators


def non_digits(codes: np.ndarray) -> int:
    """How many of the bytes `codes` (uint8) are not ASCII digits."""
    return len(codes) - int(np.count_nonzero(codes >= ord("0"))) + int(np.count_nonzero(codes > ord("9")))


def prepared(piece: bytes | None, names: list[str]) -> rowtext.Batch | None:
    """The rowtext.Batch of a piece whose every row is good (its lines the piece itself when they are already
    normalised); None for any other piece."""
    table = typed(piece, names) if piece is not None else None
    rows = good_rows(table) if table is not None else None
    if rows is None:
        return None
    return rowtext.batch(piece if as_written(piece, names, rows) else rowtext.row_lines(*rows), *rows)


def ahead(pool: ThreadPoolExecutor, function: Callable, items: Iterator) -> Iterator[tuple]:
    """(item, function(item)) for each of `items` in order, with up to AHEAD of them being computed in `pool`."""
    pending: deque = deque()
    for item in items:
        pending.append((item, pool.submit(function, item)))
        if len(pending) > AHEAD:
            item, future = pending.popleft()
            yield item, future.result()
    while pending:
        item, future = pending.popleft()
        yield item, future.result()


class Readahead:
    """The prepared pieces of a run's entries, in order, computed in `pool` a few pieces ahead of the reader.

    `names_of(entry)` gives the header names of an entry the fast path may take, or None. A file the reader gives
    up on (`abandon`) is read no further; the pieces of files it skips are dropped."""

    def __init__(self, pool: ThreadPoolExecutor, entries: list[inbox.Entry],
                 names_of: Callable[[inbox.Entry], list[str] | None]) -> None:
        self.order = {entry.path: number for number, entry in enumerate(entries)}
        self.names_of, self.abandoned = names_of, set()
        self.queue = ahead(pool, lambda item: prepared(item[2], item[1]), self.planned(entries))
        self.next: tuple | None = None

    def planned(self, entries: list[inbox.Entry]) -> Iterator[tuple[Path, list[str] | None, bytes | None]]:
        """(path, names, piece) of each piece of each entry; a piece None for an entry not taken or unreadable."""
        for entry in entries:
            names = self.names_of(entry)
            for piece in readable_pieces(entry.path) if names else [None]:
                if entry.path in self.abandoned:
                    break
                yield entry.path, names, piece

    def pieces(self, path: Path, names: list[str]) -> Iterator[tuple[bytes | None, rowtext.Batch | None]]:
        """(piece, prepared) for each piece of the file at `path`; read here and now for a file not planned."""
        if path not in self.order:
            yield from ((piece, prepared(piece, names)) for piece in readable_pieces(path))
            return
        while True:
            self.next = self.next or next(self.queue, None)
            if self.next is None or self.order[self.next[0][0]] > self.order[path]:
                return
            (planned_path, planned_names, piece), ready = self.next
            self.next = None
            if planned_path == path:
                yield piece, ready if planned_names == names else prepared(piece, names)

    def abandon(self, path: Path) -> None:
        self.abandoned.add(path)
