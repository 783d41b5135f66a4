"""Ingestion's text path, row by row: the contract on one chunk of text, and the rejections it finds.

A chunk is a batch of the file's rows as text; each broken value is named with its line in the file, its column
and why. Pure functions of Arrow batches and NumPy arrays; no file is read or written.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from risk import arrownp, contract

SHOWN_VALUE = 200  # characters of a rejected value kept in rejects.csv and the ledger


def line_numbers(count: int, state: dict, invalid: list) -> np.ndarray:
    """File line numbers of the next `count` good-shaped rows: the lines after the last, minus ragged ones."""
    skipped = np.array([number for number, _, _ in invalid if number is not None], dtype=np.int64)
    candidates = np.arange(state["next"], state["next"] + count + len(skipped), dtype=np.int64)
    numbers = candidates[~np.isin(candidates, skipped)][:count]
    state["next"] = int(numbers[-1]) + 1 if count else state["next"]
    return numbers


def to_numbers(values: pa.Array) -> np.ndarray:
    """float64, NaN where missing or not a number (Arrow's cast when it can, pandas' when a value is bad)."""
    for attempt in (values, None):
        try:
            trimmed = attempt if attempt is not None else arrownp.call("utf8_trim_whitespace", values)
            return arrownp.to_numpy(arrownp.cast(trimmed, pa.float64()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    import pandas as pd  # only for a chunk with a bad value: ingestion.py runs without it otherwise

    return contract.parse_numbers(pd.Series(values.to_numpy(zero_copy_only=False), dtype="string"))


def check_batch(batch: pa.RecordBatch) -> tuple[dict, dict, dict, np.ndarray]:
    """(text, numbers, bad mask per column, blank rows) of one chunk, judged by the contract.

    Only the id is trimmed up front; numbers are trimmed only when a plain cast fails (the common case pays
    nothing), and blank lines are looked for only among the rows found bad."""
    text = {name: batch.column(name) for name in batch.schema.names}
    if contract.ID_COLUMN in text:
        text[contract.ID_COLUMN] = arrownp.call("utf8_trim_whitespace", text[contract.ID_COLUMN])
    numbers, bad = {}, {}
    for column in contract.SCHEMA:
        if column.role != "id":
            numbers[column.name] = to_numbers(text[column.name])
            bad[column.name] = contract.bad_numbers(column, numbers[column.name])
    blank = np.zeros(batch.num_rows, dtype=bool)
    suspects = np.flatnonzero(np.logical_or.reduce(list(bad.values())))
    if len(suspects):
        empty = np.ones(len(suspects), dtype=bool)
        for values in text.values():
            trimmed = arrownp.call("utf8_trim_whitespace", arrownp.take(values, suspects))
            empty &= arrownp.to_numpy(arrownp.call("equal", trimmed, arrownp.text("")))
        blank[suspects] = empty
    return text, numbers, bad, blank


def rejections(text: dict, bad: dict, rows: np.ndarray, lines: np.ndarray) -> list[tuple]:
    """(line, column, value, reason) for each broken value of the rejected `rows` (positions in the chunk)."""
    found = []
    for pos, line in zip(rows.tolist(), lines[rows].tolist(), strict=True):
        values = {name: text[name][pos].as_py() for name in bad}
        if all(values[name].strip() == name for name in contract.required()):
            found.append((line, None, None, "the header repeated mid-file"))
            continue
        for name, mask in bad.items():
            if mask[pos]:
                found.append((line, name, values[name][:SHOWN_VALUE], contract.reason(contract.BY_NAME[name],
                                                                                     values[name])))
    return found


def ragged(invalid: list, expected: int) -> list[tuple]:
    reasons: dict[int, str] = {}  # one string per field count: a file of a million ragged rows has a few counts
    for _, actual, _ in invalid:
        if actual not in reasons:
            reasons[actual] = f"ragged row: {actual} field(s), expected {expected} as in the header"
    return [(number, None, text[:SHOWN_VALUE], reasons[actual]) for number, actual, text in invalid]


def split_ragged(piece: bytes, expected: int, first_line: int) -> tuple[bytes, list] | None:
    """(the piece without its ragged lines, [(line, fields, text)] of those lines) for a piece of whole lines
    whose first is line `first_line` of the file; what pyarrow's invalid-row handler would see, found with NumPy.

    A line's fields are its commas plus one; an empty line is a row of empty fields, as pyarrow reads it. None
    where counting commas could part from pyarrow's reading: a quote, a carriage return, a byte-order mark at
    the start, or a ragged line that is not UTF-8."""
    if b'"' in piece or b"\r" in piece or piece.startswith(b"\xef\xbb\xbf"):
        return None
    codes = np.frombuffer(piece, dtype=np.uint8)
    ends = np.flatnonzero(codes == ord("\n"))
    starts = np.concatenate([[0], ends[:-1] + 1])
    commas = np.concatenate([[0], np.cumsum(codes == ord(","))])
    fields = commas[ends] - commas[starts] + 1
    bad = (fields != expected) & (ends > starts)
    if not bad.any():
        return piece, []
    lengths = ends - starts  # without the newline
    text = codes[np.repeat(bad, lengths + 1) & (codes != ord("\n"))]
    offsets = np.concatenate([[0], np.cumsum(lengths[bad])]).astype(np.int64)
    spans = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))
    try:
        spans.validate(full=True)
    except pa.ArrowInvalid:
        return None
    keep = np.repeat(~bad, lengths + 1)
    numbers = (np.flatnonzero(bad) + first_line).tolist()
    return codes[keep].tobytes(), list(zip(numbers, fields[bad].tolist(), spans.to_pylist(), strict=True))
