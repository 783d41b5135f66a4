"""risk/rowindex.py: row hashes are stable across versions (they are kept on disk), lookups find what was added."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from risk import rowindex

# Hashes written by the first version of the index (issue 4): a change here would let old rows in again.
PINNED_STRINGS = {"": 0xE220A8397B1DCDAF, "acme": 0xF1EF0FFC4DA6DD9A, "Acme, Inc.": 0x7A00D69D983EFFAF,
                  "café": 0x8168B86EA46DFEEA, "x" * 5000: 0x725076152E14E96F}
PINNED_ROWS = [("acme", 10.0, 100.0, 5.0, 1.0, 0xFE5C8077D620DE33), ("b", 1.0, 2.0, 3.0, 0.0, 0xB237B3866C0D0D61)]


def reference_hash(text: str) -> int:
    """hash_strings of one string, byte by byte, as documented."""
    mask = 2**64 - 1
    data = text.encode()
    result = int(rowindex.mix(np.array([len(data)], dtype=np.uint64) + rowindex.SEED)[0])
    table = rowindex.table()
    for position, byte in enumerate(data):
        word = int(table[(position % rowindex.POSITIONS) * 256 + byte])
        if position >= rowindex.POSITIONS:
            word = int(rowindex.mix(np.array([word ^ position], dtype=np.uint64))[0])
        result ^= word
    return result & mask


def test_string_hashes_are_the_ones_kept_on_disk():
    values = pa.array([*PINNED_STRINGS, None])
    assert rowindex.hash_strings(values).tolist() == [*PINNED_STRINGS.values(), PINNED_STRINGS[""]]


def test_row_hashes_are_the_ones_kept_on_disk():
    columns = list(zip(*PINNED_ROWS, strict=True))
    hashes = [rowindex.hash_strings(pa.array(columns[0]))]
    hashes += [rowindex.hash_numbers(np.array(column)) for column in columns[1:5]]
    assert rowindex.hash_rows(hashes).tolist() == list(columns[5])


@pytest.mark.slow
@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_string_hashes_match_the_byte_by_byte_definition(kind):
    rng = np.random.default_rng(1)
    alphabet = ["a", "é", "€", "𝄞", " ", ",", "0", "\n"]
    texts = ["".join(rng.choice(alphabet, size=int(size))) for size in rng.choice([0, 1, 7, 4096, 4097, 9000], 60)]
    values = pa.array(texts, kind)
    assert rowindex.hash_strings(values).tolist() == [reference_hash(text) for text in texts]
    assert rowindex.hash_strings(values.slice(5, 20)).tolist() == [reference_hash(text) for text in texts[5:25]]


def test_fresh_keeps_the_first_of_each_new_key_in_file_order():
    known = rowindex.SortedRuns()
    known.add(np.array([7, 9], dtype=np.uint64))
    keys = np.array([5, 7, 3, 5, 9, 1, 3], dtype=np.uint64)
    mask, new = rowindex.fresh(keys, known)
    assert mask.tolist() == [True, False, True, False, False, True, False]
    assert new.tolist() == [1, 3, 5]


def test_contains_finds_every_added_key_and_no_other():
    rng = np.random.default_rng(2)
    runs = rowindex.SortedRuns([np.sort(rng.integers(0, 2**64, 300, dtype=np.uint64))])
    added = [runs.fixed[0]]
    for step in range(12):
        keys = rng.integers(0, 2**64, int(rng.integers(1, 400)), dtype=np.uint64) >> np.uint64(step * 5)
        if step == 4:
            runs.contains(np.sort(keys))  # the prefix filter is made here, then kept up to date
        other = rowindex.SortedRuns()
        other.add(keys)
        runs.absorb(other)
        added.append(keys)
        every = np.unique(np.concatenate(added))
        probe = np.sort(np.concatenate([rng.choice(every, 200), rng.integers(0, 2**64, 200, dtype=np.uint64)]))
        assert runs.contains(probe).tolist() == np.isin(probe, every).tolist()
        assert runs.keys().tolist() == np.sort(np.concatenate(added)).tolist()
