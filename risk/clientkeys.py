"""A client's key, and each client's first and latest row: defined once.

A key is a client id's UTF-8 bytes and END, NUL-padded to the widest (NumPy fixed-width bytes): the form the
prepared read state sorts and looks clients up by (risk/prepared.py). `latest_rows` groups rows by key, the one
grouping behind each client's latest row wherever it is taken (the read state, the list's and the training card's
`risklist.latest_clients`). NumPy and pyarrow only: ingestion.py builds the read state without pandas.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from risk import arrownp

END = b"\xff"  # a byte UTF-8 never holds: "a" + END sorts after "ab" + END, and no id is a prefix of another key


def _text(names: object) -> pa.Array:
    """Client ids (text, none missing) as one Arrow large_string array: from Arrow, a list, NumPy or pandas. A list
    (a call list's clients) is put into Arrow's buffers here: pa.array would import pandas (risk/arrownp.py)."""
    if isinstance(names, (list, tuple, np.ndarray)):
        encoded = [str(name).encode() for name in names]
        offsets = np.cumsum([0, *map(len, encoded)], dtype=np.int64)
        return pa.LargeStringArray.from_buffers(len(encoded), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded)))
    if not isinstance(names, (pa.Array, pa.ChunkedArray)):
        names = pa.array(names.astype("string"), type=pa.large_string())  # a pandas Series: pandas is loaded
    if isinstance(names, pa.ChunkedArray):
        names = names.combine_chunks()
    return arrownp.cast(names, pa.large_string())


def keys_of(names: object) -> np.ndarray:
    """The keys of client ids (text, none missing), from Arrow's buffers without a Python loop: ids padded by
    Arrow to one width when their characters are single bytes (one copy), placed byte by byte otherwise."""
    text = _text(names)
    lengths = arrownp.to_numpy(arrownp.call("binary_length", text)).astype(np.int64)
    width = int(lengths.max(initial=0)) + 1
    rows = np.arange(len(text))
    padded = arrownp.cast(arrownp.call("utf8_rpad", text, options=arrownp.PadOptions(width, "\x00")), pa.large_binary())
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int64)[padded.offset:padded.offset + len(padded) + 1]
    if len(text) and offsets[-1] - offsets[0] == width * len(text):  # every id one byte per character
        data = np.frombuffer(padded.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
        table = data.reshape(len(text), width).copy()
    else:
        offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset:text.offset + len(text) + 1]
        data = np.frombuffer(text.buffers()[2], dtype=np.uint8) if text.buffers()[2] else np.empty(0, np.uint8)
        table = np.zeros((len(text), width), dtype=np.uint8)
        for column in range(width - 1):  # one pass per byte of the longest id
            has = np.flatnonzero(lengths > column)
            table[has, column] = data[offsets[has] + column]
    table[rows, lengths] = END[0]
    return table.view(f"S{width}").ravel()


def names_of(keys: np.ndarray) -> list[str]:
    """The client ids of keys."""
    return [key[:-1].decode() for key in keys.tolist()]


def _words(keys: np.ndarray) -> np.ndarray:
    """The keys as rows of big-endian 64-bit words (NumPy compares and sorts those faster than fixed-width bytes,
    in the same order, byte by byte)."""
    width = keys.dtype.itemsize
    table = np.zeros((len(keys), -(-width // 8) * 8), dtype=np.uint8)
    table[:, :width] = keys.view(np.uint8).reshape(len(keys), width)
    return table.view(">u8").astype(np.uint64)


def key_order(keys: np.ndarray, words: np.ndarray | None = None) -> np.ndarray:
    """np.argsort(keys, kind="stable"), sorted as `_words` (about twice as fast)."""
    words = _words(keys) if words is None else words
    return np.argsort(words[:, 0], kind="stable") if words.shape[1] == 1 else np.lexsort(words.T[::-1])


def latest_rows(keys: np.ndarray, firsts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct client of `keys` (one per row, in arrival order), in key order: (the index of its latest row,
    the least of `firsts` over its rows, or its first row's index when `firsts` is None)."""
    if not len(keys):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    words = _words(keys)
    order = key_order(keys, words)
    ordered = words[order]
    cut = np.flatnonzero((ordered[1:] != ordered[:-1]).any(axis=1))
    starts, ends = np.r_[0, cut + 1], np.r_[cut, len(keys) - 1]
    first = order[starts] if firsts is None else np.minimum.reduceat(np.asarray(firsts)[order], starts)
    return order[ends], first
