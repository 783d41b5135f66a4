"""Normalised rows: the CSV lines ingestion appends to finaldata.csv, and the row hashes that de-duplicate them.

A line is the id (trimmed, CSV-quoted only where needed) and the numbers in contract order, counts written as
they were meant (100, not 100.0). Pure functions of Arrow arrays and NumPy arrays; no file is read or written.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pyarrow as pa

from risk import arrownp, contract, rowindex

NUMBERS = (*contract.FEATURES, contract.TARGET)
QUOTED = (b",", b'"', b"\r", b"\n")  # an id holding any of these is quoted
# a batch of good rows as ingestion appends it: its CSV lines (bytes or a string array), row hashes, the hashes
# sorted (in the thread that made them: the de-duplication's sort), and the typed rows (ids trimmed, numbers)
Batch = namedtuple("Batch", "lines hashes ordered rows")


def number_text(values: np.ndarray) -> pa.Array:
    """Counts as they were meant: 100, not 100.0 (fractions keep their shortest exact form)."""
    integral = np.floor(values) == values
    if integral.all():
        return arrownp.cast(arrownp.from_numpy(values.astype(np.int64)), pa.string())
    as_int = arrownp.cast(arrownp.from_numpy(np.where(integral, values, 0).astype(np.int64)), pa.string())
    return arrownp.call("if_else", arrownp.from_numpy(integral), as_int,
                        arrownp.cast(arrownp.from_numpy(values), pa.string()))


def quoted(values: pa.Array) -> pa.Array:
    """CSV quoting for the id text, only where it needs it (none at all when no id holds a quoted byte)."""
    text = rowindex.string_buffers(values)[1].tobytes()
    if not any(byte in text for byte in QUOTED):
        return values
    needs = arrownp.call("match_substring_regex", values, options=arrownp.MatchSubstringOptions('[,"\r\n]'))
    quote = arrownp.text('"')
    doubled = arrownp.call("replace_substring", values, options=arrownp.ReplaceSubstringOptions('"', '""'))
    escaped = arrownp.call("binary_join_element_wise", quote, doubled, quote, arrownp.text(""))
    return arrownp.call("if_else", needs, escaped, values)


def row_lines(ident: pa.Array, numbers: dict) -> pa.Array:
    """The CSV line of each row (with its newline): the id, quoted where needed, then the numbers."""
    cells = [quoted(ident), *(number_text(numbers[name]) for name in NUMBERS)]
    line = arrownp.call("binary_join_element_wise", *cells, arrownp.text(","))
    return arrownp.call("binary_join_element_wise", line, arrownp.text("\n"), arrownp.text(""))


def row_hashes(ident: pa.Array, numbers: dict) -> np.ndarray:
    """The 64-bit hash of each row: of its id and its numbers, in contract order."""
    hashes = [rowindex.hash_strings(ident), *(rowindex.hash_numbers(numbers[name]) for name in NUMBERS)]
    return rowindex.hash_rows(hashes)


def batch(lines: bytes | pa.Array, ident: pa.Array, numbers: dict) -> Batch:
    hashes = row_hashes(ident, numbers)
    return Batch(lines, hashes, np.sort(hashes), (ident, numbers))


def normalised(text: dict, numbers: dict, keep: np.ndarray) -> Batch:
    """The Batch of the kept rows of a checked chunk (`text` holds the id trimmed)."""
    ident = arrownp.filter(text[contract.ID_COLUMN], keep) if contract.ID_COLUMN in text else \
        arrownp.blanks(int(keep.sum()))
    kept = {name: numbers[name][keep] for name in NUMBERS}
    return batch(row_lines(ident, kept), ident, kept)


def split_lines(text: bytes) -> pa.Array:
    """Newline-ended lines (the last one too) as a string array over `text`, without copying it."""
    ends = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == ord("\n")) + 1
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    return pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(text))


def text_bytes(lines: pa.Array) -> memoryview:
    """The concatenated bytes of a string array, without copying it."""
    lines = arrownp.cast(lines, pa.large_string())
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
    if not len(lines) or offsets[-1] == offsets[0]:
        return memoryview(b"")
    return memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]]
