"""The read state the pipeline prepares for the API: each client's latest row and the history's summary
statistics, kept up to date as data is ingested, so that a request costs the size of its answer and an ingestion
the size of its new rows.

Format 5. `ingesteddata/prepared.npz` is the state's small manifest, only ever replaced whole (atomically): the
format, `data_end_byte` (the byte length of `finaldata.csv` it covers), `observations` (the accepted rows it
covers; with the end byte, the ledger's committed point when it is current), the summary statistics, the watches,
the client counts and the names of its segments. The clients are in `ingesteddata/prepared/`, in segments: each a
NumPy file of fixed-width records (id, features, target, position, first position), sorted by id, written once
and never changed. An ingestion that adds n observations writes one segment of the clients they touch (at most n
records) and a new manifest, and reads only those clients' records from the older segments; a client's record in
a newer segment shadows its older ones. Segments are merged like a binary counter (the newest two whenever the
older is at most twice the newer), so there are O(log clients) of them and each record is rewritten O(log
clients) times over its life: a tick costs its new rows, amortised, whatever the client base (docs/design.md).
Workers map the segments read-only (shared pages of the page cache, not copies), scan them a bounded piece at a
time and drop the pages they scanned from their own memory, so a worker's memory does not grow with the clients.

The contract:

- Read side, `as_of_committed(config)`: the state covering exactly the ledger's committed data, or
  `StaleReadState` (missing, behind, another format: a 503 naming the command that rebuilds it) or
  `MissingInputError` (nothing ingested). Never ahead of the ledger (a run being appended or a torn tail is
  invisible), never writes, never reads the history; a process reads the manifest once per version of it (its
  inode, size and mtime) and keeps it. The API, the dashboard and the lists' outcomes use it.
- `as_of_file(config)`: the same state, only when `finaldata.csv` on disk is exactly that long (no torn tail,
  no hand edit); None otherwise, and the caller reads the file. Diagnostics, the report and the drift
  decision's portfolio size use it.
- Write side, `advance(config, committed(ledger))`: the pipeline's one way to bring it up to what the ledger
  has committed, after the commit: reads only the rows appended since its `data_end_byte`, or rebuilds from
  the whole history when there is no usable state (a killed run, another format, a list not yet watched). The
  new segment is written before the manifest naming it, and segments no manifest names (merged away, or a killed
  run's) are removed after it: a killed run leaves the last manifest and its segments whole.
- The tag: `prepared.tag` repeats the format and `data_end_byte` as text (`risk.views.prepared_tag`, the one
  place it is written or read) for the idle tick, which imports no NumPy.

"End" is a byte offset of `finaldata.csv` (`*_byte`); the history's length where call lists are watched from is
a count of observations (`*_rows`): every accepted row, the duplicates finaldata.csv leaves out included (they are
kept in repeats/, risk/store.py), so a client whose month repeats an earlier row is still seen that month.

Each recorded call list is watched from the history length it saw (its boundary, in rows): when a client who
was current then (its row at the boundary says it stayed) shows its next row, the row says whether it left. A
watch keeps the counts over all such clients, the next row of each listed client, and the first clients seen
to have left (enough to name the missed ones): bounded by the lists' capacity, whatever the portfolio's size.

Summary statistics are exact (risk/summary.py): count, mean and the sum of squared deviations merge by Chan's
formula, and the median comes from each feature's distinct values with their counts (a count column has few).
"""
from __future__ import annotations

import functools
import io
import itertools
import json
import logging
import mmap
import os
import threading
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from risk import arrownp, catalog, clientkeys, contract, risklist, views
from risk import summary as summaries
from risk.clientkeys import keys_of, names_of
from risk.config import Config
from risk.errors import IntegrityError, MissingInputError
from risk.files import atomic_open, atomic_write_bytes, atomic_write_text, fsync_dir
from risk.ledger import Ledger, LedgerReader, read_once

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)
FORMAT = catalog.PREPARED_FORMAT
NUMBERS = (*contract.FEATURES, contract.TARGET)
KEY = "key"  # a record's client: risk.clientkeys.keys_of (the id's UTF-8 bytes and END, NUL-padded)
RECORD = (KEY, *contract.FEATURES, contract.TARGET, "position", "first_position")  # a segment's columns, in order
PAGE = 4096  # each column of a segment file starts on a page: scanned pages are dropped column by column
CHUNK = 1 << 16  # records a reader scans at a time


class StaleReadState(MissingInputError):
    """The prepared read state is missing or behind the ledger: a 503 until the pipeline brings it up."""


# records sorted by KEY (columns: RECORD -> array, mapped from the file or in memory); name None until written
Segment = namedtuple("Segment", "name count columns mapping")


class State(namedtuple("State", "data_end_byte segments stats watches observations sizes")):
    """The read state. segments: oldest first, a client's newest record wins; watches by boundary rows; observations:
    the accepted rows it covers, duplicates included (a list's boundary and a row's position count them); sizes:
    {"clients": named clients ever seen, "current": those whose latest row says they stayed}."""

    @functools.cached_property
    def shadowed(self) -> tuple[np.ndarray, ...]:
        """Per segment, the sorted indices of its records that a newer segment replaces."""
        return tuple(_shadowed(segment, self.segments[i + 1:]) for i, segment in enumerate(self.segments))

    @functools.cached_property
    def clients(self) -> pd.DataFrame:
        """risklist.latest_clients of every observation: one row per named client (id, features, target, position,
        first_position), in position order. O(clients): the pipeline's readers of every client (the report) use it;
        a worker scans (`current_chunks`, `left_since`) or looks up (`knows`) instead."""
        return _frame(_scanned(self, RECORD))


REPEAT = "repeat"  # in a frame `rows_of` takes: True for a row finaldata.csv left out as a duplicate
# what `advance` brings the state up to; repeats: (part of repeats/, observations after its file), oldest first
# points: (byte length, observations) after each file, oldest first, where a rebuild may cut the history (() for none)
Committed = namedtuple("Committed", "data_end_byte lists_by_rows observations repeats points", defaults=((),))
REBUILD_ROWS = 2_000_000  # observations a rebuild reads at once, at most (beyond a single file's): bounded memory
SHOWN_LEFT = 20  # clients seen to have left, kept per watch beyond its listed ones (missed clients named)
_loaded: dict[Path, tuple[tuple, State | None]] = {}  # path -> (its file's identity, the state read from it)
_loaded_lock = threading.Lock()


def path_of(config: Config) -> Path:
    return config.output_folder / catalog.PREPARED


def segments_folder(config: Config) -> Path:
    return config.output_folder / catalog.PREPARED_SEGMENTS


# ---- segments ---------------------------------------------------------------------------------------
def _dtypes(width: int) -> dict[str, np.dtype]:
    return {KEY: np.dtype(f"S{width}"), **{name: np.dtype("<f8") for name in contract.FEATURES},
            contract.TARGET: np.dtype("i1"), "position": np.dtype("<i8"), "first_position": np.dtype("<i8")}


def _layout(count: int, width: int) -> tuple[dict[str, int], int]:
    """Each column's offset in a segment file, and the file's size: the columns one after another, page-aligned."""
    offsets, offset = {}, 0
    for name, dtype in _dtypes(width).items():
        offsets[name] = offset
        offset += -(-count * dtype.itemsize // PAGE) * PAGE
    return offsets, offset


def _write_segment(path: Path, segment: Segment) -> None:
    """The segment's file, written atomically a column at a time (each padded to its page): no copy of it whole."""
    width = segment.columns[KEY].dtype.itemsize
    offsets, size = _layout(segment.count, width)
    with atomic_open(path, "wb") as handle:
        for name, dtype in _dtypes(width).items():
            handle.seek(offsets[name])
            handle.write(np.ascontiguousarray(segment.columns[name], dtype=dtype).view(np.uint8))
        handle.truncate(size)


class _Gone(Exception):
    """A segment the manifest names is not there: a writer replaced the manifest and removed it meanwhile."""


def _mapped(folder: Path, name: str, count: int, width: int) -> Segment:
    """The segment file mapped read-only (its pages are the page cache's, shared by every process mapping it)."""
    offsets, size = _layout(count, width)
    try:
        with open(folder / name, "rb") as handle:
            if os.fstat(handle.fileno()).st_size != size:
                raise ValueError(f"{folder / name}: {os.fstat(handle.fileno()).st_size} bytes, not {size}")
            mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise _Gone(name) from None
    columns = {column: np.frombuffer(mapping, dtype, count, offsets[column])
               for column, dtype in _dtypes(width).items()}
    return Segment(name, count, columns, mapping)


def _release(segment: Segment, start: int, end: int, names: tuple[str, ...] | None = None) -> None:
    """Drop the pages of records [start, end) (of the columns `names`, all by default) from this process's memory
    (a mapped segment; they stay cached)."""
    if segment.mapping is None or end <= start:
        return
    offsets, _ = _layout(segment.count, segment.columns[KEY].dtype.itemsize)
    for name, array in segment.columns.items():
        if names is not None and name not in names:
            continue
        first = (offsets[name] + start * array.itemsize) // PAGE * PAGE
        last = min(-(-(offsets[name] + end * array.itemsize) // PAGE) * PAGE, len(segment.mapping))
        if last > first:
            segment.mapping.madvise(mmap.MADV_DONTNEED, first, last - first)


def _find(keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(where each query would sit in the sorted `keys`, whether it is there). The queries are cut to the keys'
    width (one longer than that is not there): NumPy would otherwise copy every key to the queries' width."""
    fits = None
    if queries.dtype.itemsize > keys.dtype.itemsize:
        fits = np.strings.str_len(queries) <= keys.dtype.itemsize
    queries = queries.astype(keys.dtype)
    where = np.searchsorted(keys, queries)
    inside = where < len(keys) if fits is None else (where < len(keys)) & fits
    hit = np.zeros(len(queries), dtype=bool)
    hit[inside] = keys[where[inside]] == queries[inside]
    return where, hit


def _lookup(segments: tuple[Segment, ...], keys: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, dict]:
    """(which keys a segment holds, their newest records' `names` columns): reads only those records."""
    found = np.zeros(len(keys), dtype=bool)
    out = {name: np.zeros(len(keys), dtype=_dtypes(1)[name]) for name in names}
    for segment in reversed(segments):
        todo = np.flatnonzero(~found)
        if not len(todo):
            break
        where, hit = _find(segment.columns[KEY], keys[todo])
        for name in names:
            out[name][todo[hit]] = segment.columns[name][where[hit]]
        found[todo[hit]] = True
    return found, out


def _shadowed(segment: Segment, newer: tuple[Segment, ...]) -> np.ndarray:
    """The sorted indices of `segment`'s records that a record of a `newer` segment replaces: the newer keys looked
    up CHUNK at a time and the key pages read then dropped, so it costs a chunk and the answer, not the segments (a
    worker's peak at 2.2M records in two segments: 205 MiB with the keys looked up at once, 135 MiB so)."""
    keys, replaced = segment.columns[KEY], [np.empty(0, np.int64)]
    for later in newer:
        for start in range(0, later.count, CHUNK):
            end = min(start + CHUNK, later.count)
            where, hit = _find(keys, later.columns[KEY][start:end])
            replaced.append(where[hit])
            _release(later, start, end, (KEY,))
    _release(segment, 0, segment.count, (KEY,))
    found = np.concatenate(replaced)  # sorted, each newer segment's part being in key order, when there is one
    return found if len(newer) <= 1 else np.unique(found)


def _merge(older: Segment, newer: Segment) -> Segment:
    """One segment of both: `newer`'s records, and `older`'s of the clients `newer` does not hold."""
    _, replaced = _find(newer.columns[KEY], older.columns[KEY])
    kept = {name: np.concatenate([older.columns[name][~replaced], newer.columns[name]]) for name in RECORD}
    order = clientkeys.key_order(kept[KEY])
    return Segment(None, len(order), {name: column[order] for name, column in kept.items()}, None)


def _merged(segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """Merged like a binary counter: the newest two while the older is at most twice the newer, so that there are
    O(log clients) segments and each record is rewritten O(log clients) times."""
    segments = list(segments)
    while len(segments) >= 2 and segments[-2].count <= 2 * segments[-1].count:
        newer = segments.pop()
        segments.append(_merge(segments.pop(), newer))
    return tuple(segments)


def _scanned(state: State, names: tuple[str, ...]) -> Iterator[dict[str, np.ndarray]]:
    """The live records' `names` columns (each client's newest), CHUNK records at a time, copied; the pages read
    are dropped from this process's memory as it goes, so a scan costs CHUNK records of memory, not the clients."""
    for segment, shadowed in zip(state.segments, state.shadowed, strict=True):
        for start in range(0, segment.count, CHUNK):
            end = min(start + CHUNK, segment.count)
            alive = np.ones(end - start, dtype=bool)
            alive[shadowed[np.searchsorted(shadowed, start):np.searchsorted(shadowed, end)] - start] = False
            piece = {name: segment.columns[name][start:end][alive] for name in names}
            _release(segment, start, end)
            yield piece


def _frame(pieces: Iterator[dict[str, np.ndarray]]) -> pd.DataFrame:
    import pandas as pd  # the pipeline's readers of every client; the write side runs without pandas

    pieces = list(pieces)
    columns = {name: np.concatenate([np.empty(0, dtype) if name != KEY else np.empty(0, "S1"),
                                     *(piece[name] for piece in pieces)]) for name, dtype in _dtypes(1).items()}
    order = np.argsort(columns["position"], kind="stable")
    frame = pd.DataFrame({contract.ID_COLUMN: pd.array(names_of(columns[KEY][order]), dtype="string"),
                          **{name: columns[name][order] for name in contract.FEATURES},
                          contract.TARGET: columns[contract.TARGET][order].astype(np.int64),
                          "position": columns["position"][order], "first_position": columns["first_position"][order]})
    return frame.loc[:, [*contract.COLUMNS, "position", "first_position"]]


# ---- what a reader asks of the clients -------------------------------------------------------------------------
def population(state: State) -> int:
    """The current clients: named, and their latest row says they stayed."""
    return state.sizes["current"]


def current_chunks(state: State) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The current clients a bounded piece at a time, as risklist.ranked_from takes them: (keys, features matrix in
    the contract's order, positions); `names_of` turns keys into ids."""
    for piece in _scanned(state, RECORD):
        stayed = piece[contract.TARGET] != 1
        yield (piece[KEY][stayed], np.column_stack([piece[name][stayed] for name in contract.FEATURES]),
               piece["position"][stayed])


def left_since(state: State, rows: int, shown: int) -> tuple[list[str], int]:
    """The clients whose latest row, at or after observation `rows`, says they left: the first `shown` of them in
    arrival order, and how many more there are."""
    held, total = (np.empty(0, np.int64), np.empty(0, "S1")), 0
    for piece in _scanned(state, (KEY, contract.TARGET, "position")):
        gone = (piece[contract.TARGET] == 1) & (piece["position"] >= rows)
        total += int(gone.sum())
        positions = np.concatenate([held[0], piece["position"][gone]])
        keys = np.concatenate([held[1], piece[KEY][gone]])
        first = np.argsort(positions, kind="stable")[:shown]
        held = (positions[first], keys[first])
    return names_of(held[1]), total - len(held[1])


def knows(state: State, names: list[str]) -> np.ndarray:
    """Whether each client id is in the ingested data (current or gone)."""
    if not names:
        return np.zeros(0, dtype=bool)
    return _lookup(state.segments, keys_of(names), ())[0]


# ---- statistics and watches ------------------------------------------------------------------------------------
def _summaries(state: State) -> dict[str, dict]:
    """Each column's summary over the whole history (risk/summary.py), in the contract's column order."""
    stats = {contract.ID_COLUMN: {"n": state.stats["named"]}, **{name: state.stats[name] for name in NUMBERS}}
    return summaries.table({name: stats[name] for name in contract.COLUMNS}, state.stats["rows"])


def summary(state: State) -> dict:
    """Mean, median and standard deviation (n - 1) of each feature over the whole history."""
    return summaries.statistics(_summaries(state))


def missing_share(state: State) -> dict:
    """Share of empty cells per column of the history, as diagnostics' `missing_share` of finaldata.csv."""
    return summaries.missing(_summaries(state))


def quality(state: State) -> list[dict]:
    """The report's data quality (risk.report.data_quality) from the prepared statistics: per column the missing
    share and, for the features, range, mean and median."""
    return summaries.quality(_summaries(state))


def _new_watch(listed: set[str]) -> dict:
    return {"followed": 0, "left": 0, "listed": {name: None for name in sorted(listed)}, "left_ids": []}


def unwatched() -> dict:
    """The watch of a list no data has followed yet."""
    return _new_watch(set())


def _watch(watches: dict[int, dict], keys: np.ndarray, first_new: np.ndarray, next_left: np.ndarray,
           found: np.ndarray, old: dict) -> None:
    """Each watched boundary learns the next row of the clients current then and not seen since: the new rows'
    clients have `keys`, their first new row at `first_new` (an observation number) saying whether they left
    (`next_left`); `found` says which were known before and `old` their records then. Costs the new rows and the
    lists' clients."""
    order = np.argsort(first_new, kind="stable")
    order = order[found[order]]  # the known clients, in the order of their first new row
    keys, next_left = keys[order], next_left[order]
    last_position, was_current = old["position"][order], old[contract.TARGET][order] != 1
    by_key = np.argsort(keys, kind="stable")
    for boundary, watch in watches.items():
        news = was_current & (last_position < boundary)
        watch["followed"] += int(news.sum())
        watch["left"] += int((news & next_left).sum())
        listed = watch["listed"]
        if listed:
            names = np.array(list(listed), dtype=object)
            where, hit = _find(keys[by_key], keys_of(names.tolist()))
            for name, at in zip(names[hit], by_key[where[hit]], strict=True):
                if news[at]:
                    listed[name] = int(next_left[at])
        room = SHOWN_LEFT + len(listed) - len(watch["left_ids"])
        watch["left_ids"] += names_of(keys[np.flatnonzero(news & next_left)[:max(room, 0)]])


# ---- the update: the new rows' clients only --------------------------------------------------------------------
class Rows(namedtuple("Rows", "ids numbers repeat")):
    """Observations in arrival order, as `_apply` takes them: `ids` Arrow text (null: a row without a name),
    `numbers` each of NUMBERS as float64, `repeat` True for a row finaldata.csv left out as a duplicate (kept in
    repeats/). NumPy and Arrow, no pandas: ingestion.py builds the state without importing it."""

    def __len__(self) -> int:
        return len(self.repeat)

    def cut(self, begin: int, end: int) -> Rows:
        if (begin, end) == (0, len(self)):
            return self
        return Rows(self.ids.slice(begin, end - begin), {k: v[begin:end] for k, v in self.numbers.items()},
                    self.repeat[begin:end])


class Taken:
    """The typed rows an ingestion run accepts, batch by batch from `since` (finaldata.csv's byte length and the
    observations when it began), for `advance` to take rather than read them back. A batch is only kept here: making
    each batch's keys and statistics as it arrives cost more than making them once over all the rows (ingestion.py on
    1M rows in 20 files: 0.89 s against 0.73 s; in the readahead threads, 1.05 s against 0.77 s)."""

    def __init__(self, since: tuple[int, int]) -> None:
        self.since, self.batches = since, []

    def add(self, ids: pa.Array, numbers: dict, repeat: np.ndarray) -> None:
        self.batches.append(Rows(arrownp.cast(ids, pa.string()), {name: numbers[name] for name in NUMBERS}, repeat))

    def __len__(self) -> int:
        return sum(len(batch) for batch in self.batches)

    def rows(self) -> Rows:
        """The batches as one Rows, taken out of this Taken (each column's batches let go once it is joined: the
        update that follows reuses their memory); an empty id is no name, as finaldata.csv reads back."""
        batches, self.batches = self.batches, []
        if not batches:
            return Rows(pa.nulls(0, pa.string()), {name: np.empty(0) for name in NUMBERS}, np.zeros(0, bool))
        numbers = {}
        for name in NUMBERS:
            numbers[name] = np.concatenate([batch.numbers.pop(name) for batch in batches], dtype=np.float64)
        repeat = np.concatenate([batch.repeat for batch in batches])
        ids = pa.concat_arrays([batch.ids for batch in batches])
        del batches
        offsets = np.frombuffer(ids.buffers()[1], np.int32)[ids.offset:ids.offset + len(ids) + 1]
        named = np.diff(offsets) > 0  # a null's length is 0 too
        if not named.all():
            ids = arrownp.call("if_else", arrownp.from_numpy(named), ids, pa.nulls(len(ids), pa.string()))
        return Rows(ids, numbers, repeat)


def rows_of(frame: pd.DataFrame) -> Rows:
    """The Rows of a validated frame (contract.validate_frame), its `REPEAT` column, when there is one, marking the
    repeats."""
    repeat = frame[REPEAT].to_numpy(bool) if REPEAT in frame.columns else np.zeros(len(frame), dtype=bool)
    ids = pa.array(frame[contract.ID_COLUMN], type=pa.string(), from_pandas=True)
    return Rows(ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids,
                {name: frame[name].to_numpy(dtype=np.float64) for name in NUMBERS}, repeat)


def _touched(state: State | None, rows: Rows, start_rows: int) -> tuple[Segment, np.ndarray, np.ndarray, dict]:
    """The segment of the clients `rows` (observations from `start_rows`) touch, each with its latest row
    (risk.clientkeys.latest_rows, sorted by key as a segment is) and its first position the earliest known; with
    each client's first new observation, which of them were known and their records before."""
    if rows.ids.null_count:  # the rows with a name, and their keys
        valid = arrownp.call("is_valid", rows.ids)
        named = np.flatnonzero(arrownp.to_numpy(valid))
        every = keys_of(arrownp.call("filter", rows.ids, valid))
    else:  # every row: no index of them (at 1M rows, each array of the update is 8 MB of fresh memory)
        named, every = None, keys_of(rows.ids)
    latest, first_new = clientkeys.latest_rows(every)  # among the named rows; among all rows below
    keys = every[latest]
    del every
    if named is not None:
        latest, first_new = named[latest], named[first_new]
    first_new += start_rows
    found, old = _lookup(state.segments if state else (), keys, (contract.TARGET, "position", "first_position"))
    first_position = first_new
    if found.any():
        first_position = first_new.copy()
        first_position[found] = np.minimum(first_position[found], old["first_position"][found])
    columns = {KEY: keys, **{name: rows.numbers[name][latest] for name in contract.FEATURES},
               contract.TARGET: rows.numbers[contract.TARGET].astype(np.int8)[latest]}
    latest += start_rows
    columns.update(position=latest, first_position=first_position)
    return Segment(None, len(keys), columns, None), first_new, found, old


def _apply(state: State | None, rows: Rows | pd.DataFrame, data_end_byte: int,
           lists_by_rows: dict[int, set[str]]) -> State:
    """`state` (None: an empty history) with the observations `rows` (in arrival order; a validated frame is taken
    too) appended, the history then ending at `data_end_byte`. The clients and the watches see every row; the
    summary statistics, those of finaldata.csv, only the rows it holds (not the repeats). Costs the rows: one new
    segment of the clients they touch (then merged, `_merged`), their old records looked up."""
    rows = rows if isinstance(rows, Rows) else rows_of(rows)
    start_rows = 0 if state is None else state.observations
    kept = ~rows.repeat
    every = bool(kept.all())
    ids = rows.ids if every else arrownp.filter(rows.ids, kept)
    named = len(ids) - ids.null_count + (0 if state is None else state.stats["named"])
    fresh = {name: summaries.column_stats(values if every else values[kept]) for name, values in rows.numbers.items()}
    touched, first_new, found, old = _touched(state, rows, start_rows)
    target = touched.columns[contract.TARGET]
    sizes = state.sizes if state else {"clients": 0, "current": 0}
    sizes = {"clients": sizes["clients"] + int((~found).sum()),
             "current": sizes["current"] + int((target != 1).sum()) - int((found & (old[contract.TARGET] != 1)).sum())}
    if state is None:
        segments, stats, watches = (), fresh, {}
    else:
        watches = {**state.watches}
        if start_rows in lists_by_rows and start_rows not in watches:  # a list recorded on the history as it stood
            watches[start_rows] = _new_watch(lists_by_rows[start_rows])
        if watches:
            next_left = rows.numbers[contract.TARGET][first_new - start_rows] == 1
            _watch(watches, touched.columns[KEY], first_new, next_left, found, old)
        segments, stats = state.segments, {name: summaries.merged(state.stats[name], fresh[name]) for name in NUMBERS}
    segments = _merged((*segments, touched)) if touched.count else segments
    total = int(kept.sum()) + (0 if state is None else int(state.stats["rows"]))
    return State(data_end_byte, segments, {**stats, "rows": total, "named": named}, watches, start_rows + len(rows),
                 sizes)


# ---- the manifest ------------------------------------------------------------------------------------------------
def _encode(state: State) -> bytes:
    arrays = {"format": np.array(FORMAT), "tag": np.array(state.data_end_byte), "rows": np.array(state.stats["rows"]),
              "observations": np.array(state.observations), "named": np.array(state.stats["named"]),
              "columns": np.array(contract.COLUMNS),
              "sizes": np.array([state.sizes["clients"], state.sizes["current"]], dtype=np.int64),
              "segments": np.array([segment.name for segment in state.segments], dtype=str),
              "counts": np.array([segment.count for segment in state.segments], dtype=np.int64),
              "widths": np.array([segment.columns[KEY].dtype.itemsize for segment in state.segments], dtype=np.int64),
              "watches": np.array(json.dumps({str(b): w for b, w in state.watches.items()}))}
    for name in NUMBERS:
        stat = state.stats[name]
        arrays[f"s:{name}"] = np.array([stat["n"], stat["mean"], stat["m2"]])
        arrays[f"v:{name}"], arrays[f"c:{name}"] = stat["values"], stat["counts"]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _read_once(config: Config) -> State | None:
    with np.load(path_of(config), allow_pickle=False) as data:
        if int(data["format"]) != FORMAT or tuple(data["columns"].tolist()) != contract.COLUMNS:
            return None
        stats = {name: {"n": int(data[f"s:{name}"][0]), "mean": float(data[f"s:{name}"][1]),
                        "m2": float(data[f"s:{name}"][2]), "values": data[f"v:{name}"],
                        "counts": data[f"c:{name}"]} for name in NUMBERS}
        watches = {int(b): w for b, w in json.loads(str(data["watches"])).items()}
        totals = {"rows": int(data["rows"]), "named": int(data["named"])}
        sizes = dict(zip(("clients", "current"), data["sizes"].tolist(), strict=True))
        listed = zip(data["segments"].tolist(), data["counts"].tolist(), data["widths"].tolist(), strict=True)
        segments = tuple(_mapped(segments_folder(config), *entry) for entry in listed)
        return State(int(data["tag"]), segments, {**stats, **totals}, watches, int(data["observations"]), sizes)


def _read(config: Config) -> State | None:
    """The prepared state as written (whatever data it covers), its segments mapped, or None when there is none or
    it is of another layout. A segment removed meanwhile (a writer replaced the manifest) means: read it again."""
    for _ in range(5):
        try:
            return _read_once(config)
        except _Gone:
            continue
        except (FileNotFoundError, KeyError, ValueError, OSError):
            return None
    return None


def _write(config: Config, state: State) -> State:
    """The state's new segments, each written once (atomically), then the manifest naming them; then the segments
    no manifest names (merged away, or a killed run's) are removed. The state as written."""
    folder = segments_folder(config)
    if not folder.is_dir():
        folder.mkdir()
        fsync_dir(folder.parent)
    segments = []
    for segment in state.segments:
        if segment.name is None:
            segment = segment._replace(name=f"{state.observations}-{os.urandom(4).hex()}.seg")
            _write_segment(folder / segment.name, segment)
        segments.append(segment)
    state = state._replace(segments=tuple(segments))
    atomic_write_bytes(path_of(config), _encode(state))
    named = {segment.name for segment in segments}
    for entry in folder.iterdir():
        if entry.name not in named:
            entry.unlink()
    return state


# ---- reading the history -----------------------------------------------------------------------------------------
def _rows_between(config: Config, start_byte: int, end_byte: int) -> dict:
    from risk import store

    with open(config.finaldata_path, "rb") as handle:
        handle.seek(start_byte)
        text = handle.read(end_byte - start_byte)
    return store.written_columns(store.DATA_HEADER + text, catalog.FINALDATA)


def _observed(config: Config, since: tuple[int, int], to: Committed) -> Rows:
    """The observations from `since` (finaldata.csv's byte length, observations) to `to`, in arrival order: the
    rows finaldata.csv gained and the repeats (store.repeat_columns) in their places."""
    from risk import store

    rows = _rows_between(config, since[0], to.data_end_byte)
    repeats = store.repeat_columns(config, to.repeats, since[1], to.observations)
    places = repeats[store.OBSERVATION] - since[1]
    count, held = to.observations - since[1], (len(rows[contract.ID_COLUMN]), len(places))
    if sum(held) != count:
        raise IntegrityError(f"{config.finaldata_path} and {catalog.REPEATS}/ hold {held[0]} + {held[1]} rows where "
                             f"the ledger counts {count} observations; restore them from a backup")
    repeat = np.zeros(count, dtype=bool)
    repeat[places] = True
    if not len(places):
        return Rows(rows[contract.ID_COLUMN], {name: rows[name] for name in NUMBERS}, repeat)
    order = np.argsort(np.r_[np.flatnonzero(~repeat), places], kind="stable")
    ids = arrownp.take(pa.concat_arrays([rows[contract.ID_COLUMN], repeats[contract.ID_COLUMN]]), order)
    return Rows(ids, {name: np.r_[rows[name], repeats[name]][order] for name in NUMBERS}, repeat)


def _rebuilt(config: Config, to: Committed) -> State:
    """The state from the whole history, read a stretch of files at a time (REBUILD_ROWS observations, or one file
    when it has more: memory bounded by that, not by the history) and applied in steps cut at the lists' boundaries
    (in observations), so that each list is watched from where it was recorded as an incremental update would
    have."""
    from risk import store

    state, since = None, (len(store.DATA_HEADER), 0)
    for point in _stretches(to, since):
        rows = _observed(config, since, to._replace(data_end_byte=point[0], observations=point[1]))
        state = _steps(state, rows, since[1], point[0], to.lists_by_rows)
        since = point
    return state


def _steps(state: State | None, rows: Rows, since_rows: int, data_end_byte: int,
           lists_by_rows: dict[int, set[str]]) -> State | None:
    """`_apply` of `rows` (observations from `since_rows`) in steps cut at the lists' boundaries among them."""
    cuts = [0, *sorted(b - since_rows for b in lists_by_rows if since_rows < b < since_rows + len(rows)), len(rows)]
    for begin, end in itertools.pairwise(cuts):
        state = _apply(state, rows.cut(begin, end), data_end_byte, lists_by_rows)
    return state


def _taken(taken: Taken | None, state: State | None, to: Committed) -> Rows | None:
    """The Rows of what an ingestion run accepted (Taken) when they are exactly the observations from `state`
    (None: from an empty history) to `to`; None otherwise."""
    from risk import store

    if taken is None or taken.since != ((state.data_end_byte, state.observations) if state else
                                        (len(store.DATA_HEADER), 0)) \
            or taken.since[1] + len(taken) != to.observations:
        return None
    return taken.rows()


def _stretches(to: Committed, start: tuple[int, int]) -> list[tuple[int, int]]:
    """The points (byte length, observations) a rebuild reads the history up to, one stretch after another: the
    files' own points (`to.points`) about REBUILD_ROWS observations apart, then `to`'s. A point that does not lie
    strictly between the one before and `to` in both counts (a file record the ledger holds from another layout) is
    passed over."""
    end, chosen, last = (to.data_end_byte, to.observations), [], start
    for point in to.points:
        if not (last[0] < point[0] < end[0] and last[1] < point[1] < end[1]):
            continue
        last = point
        if point[1] - (chosen[-1] if chosen else start)[1] >= REBUILD_ROWS:
            chosen.append(point)
    return [*chosen, end]


# ---- the contract ------------------------------------------------------------------------------------------------
def committed(ledger: Ledger) -> Committed:
    """What the ledger has committed: the end byte of finaldata.csv (None before any data), the observations, the
    parts of repeats/ and, for each history length in observations at which call lists were recorded, the clients
    they listed."""
    point = ledger.files.committed_point() or (None, 0)
    return Committed(point[0], ledger.call_lists.listed_by_row_count(), point[1], ledger.files.repeat_parts(),
                     tuple(ledger.files.points()))


def advance(config: Config, to: Committed, taken: Taken | None = None) -> State | None:
    """The pipeline's one way to bring the prepared state up to what the ledger has committed (`committed(ledger)`,
    read after the commit): reads only the observations since the state's (the rows appended to finaldata.csv
    and the repeats) and the records of the clients they touch, or the whole history when there is no usable
    state or a list is not watched yet; then writes the new segment, the manifest and its tag. None before any
    data. `taken`: the typed rows the ingestion run that just committed accepted (Taken), taken instead of reading
    them back when they are exactly the new observations."""
    from risk import store

    if to.data_end_byte is None:
        return None
    state = _read(config)
    unwatched = state is not None and any(b < state.observations and b not in state.watches for b in to.lists_by_rows)
    tag = views.prepared_tag(to.data_end_byte, to.observations)
    if state is not None and (state.data_end_byte, state.observations) == (to.data_end_byte, to.observations) \
            and not unwatched:
        atomic_write_text(config.output_folder / catalog.PREPARED_TAG, tag)
        return state
    if state is not None and not unwatched and len(store.DATA_HEADER) <= state.data_end_byte <= to.data_end_byte \
            and state.observations <= to.observations:
        rows = _taken(taken, state, to)
        rows = rows if rows is not None else _observed(config, (state.data_end_byte, state.observations), to)
        new = _apply(state, rows, to.data_end_byte, to.lists_by_rows)
        how = f"{new.observations - state.observations} new observation(s)"
    elif state is None and (rows := _taken(taken, None, to)) is not None:  # the history began with this run
        new, how = _steps(None, rows, 0, to.data_end_byte, to.lists_by_rows), "built from the run's rows"
    else:
        new, how = _rebuilt(config, to), "rebuilt"
    new = _write(config, new)
    atomic_write_text(config.output_folder / catalog.PREPARED_TAG, tag)
    logger.info("prepared read state: %s, %d observation(s) (%d row(s) in %s), %d client(s) in %d segment(s)", how,
                new.observations, new.stats["rows"], catalog.FINALDATA, new.sizes["clients"], len(new.segments))
    return new


def _cached(config: Config) -> State | None:
    """`_read`, once per version of the manifest in this process: it is only ever replaced whole (a new inode), so
    its identity says whether the state held is still the one on disk. A request costs its answer."""
    path = path_of(config)
    try:
        info = os.stat(path)
    except OSError:
        return None
    identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    with _loaded_lock:
        held = _loaded.get(path)
        if held is None or held[0] != identity:
            _loaded.clear()  # one state per process: the newest
            held = _loaded[path] = (identity, _read(config))
    return held[1]


def as_of_committed(config: Config) -> State:
    """The prepared state covering exactly the data the ledger has committed (read-only; once per version of the
    manifest per process). StaleReadState when it is missing or behind; MissingInputError before any data."""
    point = read_once(config.ledger_path, LedgerReader.committed_point, None)  # GET: no ledger made
    if point is None and read_once(config.ledger_path, LedgerReader.committed_end, None) is None:
        raise MissingInputError(f"{config.finaldata_path}: no ingested data (run ingestion.py first)")
    state = _cached(config)
    if state is None or (state.data_end_byte, state.observations) != point:
        raise StaleReadState(f"{path_of(config)}: the prepared read state is missing or behind the ledger (a killed"
                             " run or an upgrade): the next ingestion.py or fullprocess.py run rebuilds it")
    return state


def as_of_file(config: Config) -> State | None:
    """`as_of_committed` when finaldata.csv on disk is exactly the committed data (no torn tail, no hand edit);
    None otherwise (or before any data, or when the state is behind): the caller reads the history itself."""
    try:
        state = as_of_committed(config)
        size = config.finaldata_path.stat().st_size
    except (MissingInputError, OSError):  # StaleReadState is a MissingInputError
        return None
    return state if size == state.data_end_byte else None


def ranked(state: State, card: dict | None, model: object, limit: int, previous: object | None = None) -> dict:
    """risklist.ranked of the state's clients, scanned a piece at a time (risklist.ranked_from): what the API
    caches per version and data, and what the recorded lists take."""
    return risklist.ranked_from(card, model, lambda: current_chunks(state), limit, previous, names_of)
