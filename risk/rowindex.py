"""The row de-duplication index: 64-bit row hashes kept as sorted runs, so new rows are checked against
all history without reading the history itself.

On disk: one sorted `<sha256>.npy` segment per ingested file plus, now and then, one merged segment; the
ledger says which are live. In memory: the segments (memory-mapped) and this run's keys as a few sorted
runs merged like a binary counter (log n runs). Hashes are simple tabulation hashing, stable across runs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from risk.files import atomic_open

SEED = np.uint64(0x9E3779B97F4A7C15)
POSITIONS = 4096  # table rows; bytes further into a string are mixed with their position instead
_table: list[np.ndarray] = []


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 that spreads every input bit over the output."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def table() -> np.ndarray:
    """T[position * 256 + byte]: fixed pseudo-random words (a pure function of the index, so stable)."""
    if not _table:
        _table.append(mix(np.arange(POSITIONS * 256, dtype=np.uint64) + SEED))
    return _table[0]


def hash_strings(values: pa.Array) -> np.ndarray:
    """One 64-bit hash per string (nulls hash as empty): XOR of T[position, byte], mixed with the length."""
    values = values.fill_null("").cast(pa.large_string())
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset:values.offset + len(values) + 1]
    start, lengths = offsets[0], np.diff(offsets)
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)[start:offsets[-1]] if offsets[-1] > start else None
    result = mix(lengths.astype(np.uint64) + SEED)
    if data is None:
        return result
    firsts = offsets[:-1] - start
    position = np.arange(len(data), dtype=np.int64) - np.repeat(firsts, lengths)
    words = table()[(position % POSITIONS) * 256 + data]
    far = position >= POSITIONS
    if far.any():
        words[far] = mix(words[far] ^ position[far].astype(np.uint64))
    filled = lengths > 0
    result[filled] ^= np.bitwise_xor.reduceat(words, firsts[filled])
    return result


def hash_rows(columns: list[np.ndarray]) -> np.ndarray:
    """Combine per-column uint64 hashes (in a fixed column order) into one hash per row."""
    result = np.zeros(len(columns[0]), dtype=np.uint64)
    for number, column in enumerate(columns):
        result = mix(result ^ column ^ np.uint64((number + 1) * int(SEED) % 2**64))
    return result


def hash_numbers(values: np.ndarray) -> np.ndarray:
    """A hash of float64 values by their bits (0.0 and -0.0 are the same number)."""
    return mix(np.ascontiguousarray(values + 0.0, dtype=np.float64).view(np.uint64))


class SortedRuns:
    """A set of uint64 keys as sorted arrays; `add` merges equal-sized runs so there are about log n."""

    def __init__(self, runs: list[np.ndarray] | None = None) -> None:
        self.fixed = list(runs or [])  # read-only segments from disk
        self.runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self.fixed) + sum(len(r) for r in self.runs)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """True where a key is in the set; `keys` sorted makes every binary search start near the last."""
        found = np.zeros(len(keys), dtype=bool)
        for run in (*self.fixed, *self.runs):
            if len(run):
                at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
                found |= run[at] == keys
        return found

    def add(self, keys: np.ndarray) -> None:
        run = np.sort(keys)
        while self.runs and len(self.runs[-1]) <= 2 * len(run):
            run = np.sort(np.concatenate([self.runs.pop(), run]))
        self.runs.append(run)

    def absorb(self, other: SortedRuns) -> None:
        for run in other.runs:
            self.add(run)

    def fresh_keys(self) -> np.ndarray:
        """The keys added in memory (not the segments read from disk), sorted."""
        if len(self.runs) == 1:
            return self.runs[0]
        return np.sort(np.concatenate(self.runs)) if self.runs else np.empty(0, dtype=np.uint64)

    def keys(self) -> np.ndarray:
        """Every key, sorted (for writing a segment)."""
        parts = [np.asarray(r) for r in (*self.fixed, *self.runs)]
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)


def save(path: Path, keys: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(keys, dtype=np.uint64), allow_pickle=False)


def load(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r", allow_pickle=False)


def fresh(keys: np.ndarray, *known: SortedRuns) -> np.ndarray:
    """True for the first occurrence of each key that none of `known` holds (one sort, sorted lookups)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    for runs in known:
        first &= ~runs.contains(ordered)
    mask = np.empty(len(keys), dtype=bool)
    mask[order] = first
    return mask
