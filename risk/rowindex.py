"""The row de-duplication index: 64-bit row hashes kept as sorted runs, so new rows are checked against
all history without reading the history itself.

On disk: one sorted `<sha256>.npy` segment per ingested file plus, now and then, one merged segment; the
ledger says which are live. In memory: the segments (memory-mapped) and this run's keys as a few sorted
runs merged like a binary counter (log n runs), with a filter of their prefixes that spares most lookups.
Hashes are simple tabulation hashing, stable across runs (tests/test_rowindex.py pins some).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from risk import arrownp
from risk.files import atomic_open

SEED = np.uint64(0x9E3779B97F4A7C15)
POSITIONS = 4096  # table rows; bytes further into a string are mixed with their position instead
PREFIX_BITS = 22  # the in-memory runs' filter: one flag per key prefix, 4 MiB
_table: list[np.ndarray] = []


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 that spreads every input bit over the output."""
    x = x ^ (x >> np.uint64(30))  # a new array; the rest works in place
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def table() -> np.ndarray:
    """T[position * 256 + byte]: fixed pseudo-random words (a pure function of the index, so stable)."""
    if not _table:
        _table.append(mix(np.arange(POSITIONS * 256, dtype=np.uint64) + SEED))
    return _table[0]


def hash_strings(values: pa.Array) -> np.ndarray:
    """One 64-bit hash per string (nulls hash as empty): XOR of T[position, byte], mixed with the length."""
    offsets, data = string_buffers(values)
    lengths = np.diff(offsets)
    result = mix(lengths.astype(np.uint64) + SEED)
    if not len(data):
        return result
    firsts = offsets[:-1]
    if lengths.max() > POSITIONS:
        words = long_words(data, firsts, lengths)
    else:  # index = position * 256 + byte, built in place
        width = np.int32 if len(data) < 1 << 23 else np.int64
        index = np.arange(0, len(data) << 8, 256, dtype=width)
        index -= np.repeat(firsts.astype(width) << 8, lengths)
        index += data
        words = np.take(table(), index)
    filled = lengths > 0
    result[filled] ^= np.bitwise_xor.reduceat(words, firsts[filled])
    return result


def long_words(data: np.ndarray, firsts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """T[position, byte] of every byte, for strings longer than POSITIONS: bytes further in use the row of their
    position modulo POSITIONS, mixed with the position."""
    position = np.arange(len(data), dtype=np.int64) - np.repeat(firsts.astype(np.int64), lengths)
    words = table()[(position % POSITIONS) * 256 + data]
    far = position >= POSITIONS
    words[far] = mix(words[far] ^ position[far].astype(np.uint64))
    return words


def string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets counted from 0, the bytes) of a string array, nulls as empty, without copying a plain one."""
    if values.null_count or not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = arrownp.call("coalesce", arrownp.cast(values, pa.large_string()), arrownp.text(""))
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], dtype=width)[values.offset:values.offset + len(values) + 1]
    data = values.buffers()[2]
    data = np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]] if data is not None else np.empty(0, np.uint8)
    return offsets - offsets[0], data


def hash_rows(columns: list[np.ndarray]) -> np.ndarray:
    """Combine per-column uint64 hashes (in a fixed column order) into one hash per row."""
    result = np.zeros(len(columns[0]), dtype=np.uint64)
    for number, column in enumerate(columns):
        result = mix(result ^ column ^ np.uint64((number + 1) * int(SEED) % 2**64))
    return result


def hash_numbers(values: np.ndarray) -> np.ndarray:
    """A hash of float64 values by their bits (0.0 and -0.0 are the same number)."""
    return mix(np.ascontiguousarray(values + 0.0, dtype=np.float64).view(np.uint64))


class Prefixes:
    """Which PREFIX_BITS-bit prefixes a set of keys has: a key whose prefix is unmarked is not in the set, so most
    absent keys need no binary search (about 1 in 5 is a false "maybe" at a million keys)."""

    def __init__(self) -> None:
        self.marked = np.zeros(1 << PREFIX_BITS, dtype=bool)

    def mark(self, keys: np.ndarray) -> None:
        self.marked[keys >> np.uint64(64 - PREFIX_BITS)] = True

    def maybe(self, keys: np.ndarray) -> np.ndarray:
        return self.marked[keys >> np.uint64(64 - PREFIX_BITS)]


class SortedRuns:
    """A set of uint64 keys as sorted arrays; `add` merges equal-sized runs so there are about log n."""

    def __init__(self, runs: list[np.ndarray] | None = None) -> None:
        self.fixed = list(runs or [])  # read-only segments from disk
        self.runs: list[np.ndarray] = []
        self.prefixes: Prefixes | None = None  # of the runs, made at the first lookup in them

    def __len__(self) -> int:
        return sum(len(r) for r in self.fixed) + sum(len(r) for r in self.runs)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """True where a key is in the set; `keys` sorted makes every binary search start near the last."""
        found = np.zeros(len(keys), dtype=bool)
        for run in self.fixed:
            found |= member(run, keys)
        if self.runs:
            maybe = np.flatnonzero(self.filter().maybe(keys))
            for run in self.runs:
                found[maybe] |= member(run, keys[maybe])
        return found

    def filter(self) -> Prefixes:
        if self.prefixes is None:
            self.prefixes = Prefixes()
            for run in self.runs:
                self.prefixes.mark(run)
        return self.prefixes

    def add(self, keys: np.ndarray) -> None:
        self.add_run(np.sort(keys))

    def add_run(self, run: np.ndarray) -> None:
        """Add sorted keys, merging the last runs while the last is no more than twice the size of the new."""
        if self.prefixes is not None:
            self.prefixes.mark(run)
        while self.runs and len(self.runs[-1]) <= 2 * len(run):
            run = merged([self.runs.pop(), run])
        self.runs.append(run)

    def absorb(self, other: SortedRuns) -> None:
        for run in other.runs:
            self.add_run(run)

    def fresh_keys(self) -> np.ndarray:
        """The keys added in memory (not the segments read from disk), sorted."""
        if len(self.runs) == 1:
            return self.runs[0]
        return merged(self.runs)

    def keys(self) -> np.ndarray:
        """Every key, sorted (for writing a segment)."""
        return merged([np.asarray(r) for r in (*self.fixed, *self.runs)])


def member(run: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """True where a key is in the sorted `run`."""
    if not len(run):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
    return run[at] == keys


def merged(runs: list[np.ndarray]) -> np.ndarray:
    """The sorted runs as one (a stable sort merges runs it finds already sorted)."""
    if not runs:
        return np.empty(0, dtype=np.uint64)
    keys = np.concatenate(runs)
    keys.sort(kind="stable")
    return keys


def save(path: Path, keys: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(keys, dtype=np.uint64), allow_pickle=False)


def load(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r", allow_pickle=False)


def fresh(keys: np.ndarray, *known: SortedRuns, ordered: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(True for the first occurrence of each key that none of `known` holds, those keys sorted).

    One sort (`ordered`: done already) and sorted lookups; where the first occurrences are is sought (a stable
    argsort) only when a key repeats or is known."""
    ordered = np.sort(keys) if ordered is None else ordered
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    for runs in known:
        first &= ~runs.contains(ordered)
    if first.all():
        return first, ordered
    mask = np.empty(len(keys), dtype=bool)
    mask[np.argsort(keys, kind="stable")] = first
    return mask, ordered[first]
