"""The read state the pipeline prepares for the API: each client's latest row and the history's summary
statistics, kept up to date as data is ingested, so that a request costs the size of its answer.

One file, `ingesteddata/prepared.npz`, only ever replaced whole (atomically) and tagged with `data_end_byte`: the
byte length of `finaldata.csv` it covers, and `observations`, the accepted rows it covers (the ledger's committed
point when it is current). The contract:

- Read side, `as_of_committed(config)`: the state covering exactly the ledger's committed data, or
  `StaleReadState` (missing, behind, another format: a 503 naming the command that rebuilds it) or
  `MissingInputError` (nothing ingested). Never ahead of the ledger (a run being appended or a torn tail is
  invisible), never writes, never reads the history; a process reads the file once per version of it (its
  inode, size and mtime) and keeps it. The API, the dashboard and the lists' outcomes use it.
- `as_of_file(config)`: the same state, only when `finaldata.csv` on disk is exactly that long (no torn tail,
  no hand edit); None otherwise, and the caller reads the file. Diagnostics, the report and the drift
  decision's portfolio size use it.
- Write side, `advance(config, committed(ledger))`: the pipeline's one way to bring it up to what the ledger
  has committed, after the commit: reads only the rows appended since its `data_end_byte`, or rebuilds from
  the whole history when there is no usable state (a killed run, another format, a list not yet watched).
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

import io
import itertools
import json
import logging
import os
import threading
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from risk import catalog, contract, risklist, views
from risk import summary as summaries
from risk.config import Config
from risk.errors import IntegrityError, MissingInputError
from risk.files import atomic_write_bytes, atomic_write_text
from risk.ledger import Ledger, LedgerReader, read_once

logger = logging.getLogger(__name__)
FORMAT = catalog.PREPARED_FORMAT
NUMBERS = (*contract.FEATURES, contract.TARGET)

class StaleReadState(MissingInputError):
    """The prepared read state is missing or behind the ledger: a 503 until the pipeline brings it up."""


# clients: risklist.latest_clients (id, features, target, position, first_position); watches by boundary rows
# observations: the accepted rows it covers, duplicates included (a list's boundary and a row's position count them)
State = namedtuple("State", "data_end_byte clients stats watches observations")
# what `advance` brings the state up to; repeats: (part of repeats/, observations after its file), oldest first
Committed = namedtuple("Committed", "data_end_byte lists_by_rows observations repeats")
REPEAT = "repeat"  # in the observations `_apply` takes: True for a row finaldata.csv left out as a duplicate
SHOWN_LEFT = 20  # clients seen to have left, kept per watch beyond its listed ones (missed clients named)
_loaded: dict[Path, tuple[tuple, State | None]] = {}  # path -> (its file's identity, the state read from it)
_loaded_lock = threading.Lock()


def path_of(config: Config) -> Path:
    return config.output_folder / catalog.PREPARED


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


def _watch(watches: dict[int, dict], old: pd.DataFrame, rows: pd.DataFrame) -> None:
    """Each watched boundary learns the next row of the clients current then and not seen since."""
    named = rows[rows[contract.ID_COLUMN].notna()].drop_duplicates(contract.ID_COLUMN, keep="first")
    index = pd.Index(old[contract.ID_COLUMN]).get_indexer(named[contract.ID_COLUMN])
    known = index >= 0
    ids = named[contract.ID_COLUMN].to_numpy(dtype=object)[known]
    next_left = named[contract.TARGET].to_numpy()[known] == 1
    last_position = old["position"].to_numpy()[index[known]]
    was_current = old[contract.TARGET].to_numpy()[index[known]] != 1
    for boundary, watch in watches.items():
        news = was_current & (last_position < boundary)
        watch["followed"] += int(news.sum())
        watch["left"] += int((news & next_left).sum())
        for name, left in zip(ids[news], next_left[news], strict=True):
            if name in watch["listed"]:
                watch["listed"][name] = int(left)
        room = SHOWN_LEFT + len(watch["listed"]) - len(watch["left_ids"])
        watch["left_ids"] += ids[news & next_left][:max(room, 0)].tolist()


def _apply(state: State | None, rows: pd.DataFrame, data_end_byte: int,
           lists_by_rows: dict[int, set[str]]) -> State:
    """`state` (None: an empty history) with the observations `rows` (in arrival order) appended, the history then
    ending at `data_end_byte`. The clients and the watches see every row; the summary statistics, those of
    finaldata.csv, only the rows it holds (where the `REPEAT` column, when there is one, is False)."""
    distinct = rows[~rows[REPEAT].to_numpy(bool)] if REPEAT in rows.columns else rows
    rows = rows.drop(columns=[REPEAT], errors="ignore")
    start_rows = 0 if state is None else state.observations
    named = int(distinct[contract.ID_COLUMN].notna().sum()) + (0 if state is None else state.stats["named"])
    fresh = {name: summaries.column_stats(distinct[name].to_numpy(dtype=float)) for name in NUMBERS}
    if state is None:
        clients, stats, watches = risklist.latest_clients(rows, start_rows), fresh, {}
    else:
        watches = {**state.watches}
        if start_rows in lists_by_rows and start_rows not in watches:  # a list recorded on the history as it stood
            watches[start_rows] = _new_watch(lists_by_rows[start_rows])
        _watch(watches, state.clients, rows)
        both = pd.concat([state.clients, risklist.latest_clients(rows, start_rows)], ignore_index=True)
        clients = risklist.latest_clients(both)
        stats = {name: summaries.merged(state.stats[name], fresh[name]) for name in NUMBERS}
    clients = clients.sort_values("position", kind="stable").reset_index(drop=True)
    kept = len(distinct) + (0 if state is None else int(state.stats["rows"]))
    return State(data_end_byte, clients, {**stats, "rows": kept, "named": named}, watches, start_rows + len(rows))


def _encode(state: State) -> bytes:
    arrays = {"format": np.array(FORMAT), "tag": np.array(state.data_end_byte), "rows": np.array(state.stats["rows"]),
              "observations": np.array(state.observations),
              "named": np.array(state.stats["named"]),
              "columns": np.array(contract.COLUMNS), "position": state.clients["position"].to_numpy(np.int64),
              "first": state.clients["first_position"].to_numpy(np.int64),
              "ids": state.clients[contract.ID_COLUMN].to_numpy(dtype=str),
              "watches": np.array(json.dumps({str(b): w for b, w in state.watches.items()}))}
    for name in NUMBERS:
        arrays[f"x:{name}"] = state.clients[name].to_numpy(dtype=float)
        stat = state.stats[name]
        arrays[f"s:{name}"] = np.array([stat["n"], stat["mean"], stat["m2"]])
        arrays[f"v:{name}"], arrays[f"c:{name}"] = stat["values"], stat["counts"]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _read(config: Config) -> State | None:
    """The prepared state as written (whatever data it covers), or None when there is none or it is of another
    layout. The file's "tag" holds its data_end_byte."""
    try:
        with np.load(path_of(config), allow_pickle=False) as data:
            if int(data["format"]) != FORMAT or tuple(data["columns"].tolist()) != contract.COLUMNS:
                return None
            clients = pd.DataFrame({contract.ID_COLUMN: pd.array(pa.array(data["ids"]), dtype="string"),
                                    **{name: data[f"x:{name}"] for name in NUMBERS}, "position": data["position"],
                                    "first_position": data["first"]})
            clients[contract.TARGET] = clients[contract.TARGET].astype("int64")
            stats = {name: {"n": int(data[f"s:{name}"][0]), "mean": float(data[f"s:{name}"][1]),
                            "m2": float(data[f"s:{name}"][2]), "values": data[f"v:{name}"],
                            "counts": data[f"c:{name}"]} for name in NUMBERS}
            watches = {int(b): w for b, w in json.loads(str(data["watches"])).items()}
            totals = {"rows": int(data["rows"]), "named": int(data["named"])}
            return State(int(data["tag"]), clients, {**stats, **totals}, watches, int(data["observations"]))
    except (FileNotFoundError, KeyError, ValueError, OSError):
        return None


def _rows_between(config: Config, start_byte: int, end_byte: int) -> pd.DataFrame:
    from risk import store

    with open(config.finaldata_path, "rb") as handle:
        handle.seek(start_byte)
        text = handle.read(end_byte - start_byte)
    raw = pd.read_csv(io.BytesIO(store.DATA_HEADER + text), dtype=str, keep_default_na=False, na_values=[""])
    return contract.validate_frame(raw, catalog.FINALDATA, history=True)


def _observed(config: Config, since: tuple[int, int], to: Committed) -> pd.DataFrame:
    """The observations from `since` (finaldata.csv's byte length, observations) to `to`, in arrival order: the
    rows finaldata.csv gained and the repeats (store.read_repeats) in their places, marked in the `REPEAT` column."""
    from risk import store

    rows = _rows_between(config, since[0], to.data_end_byte)
    repeats = store.read_repeats(config, to.repeats, since[1], to.observations)
    places = repeats.pop(store.OBSERVATION).to_numpy() - since[1]
    count = to.observations - since[1]
    if len(rows) + len(repeats) != count:
        raise IntegrityError(f"{config.finaldata_path} and {catalog.REPEATS}/ hold {len(rows)} + {len(repeats)} rows"
                             f" where the ledger counts {count} observations; restore them from a backup")
    repeat = np.zeros(count, dtype=bool)
    repeat[places] = True
    order = np.argsort(np.r_[np.flatnonzero(~repeat), places], kind="stable")
    both = pd.concat([rows.assign(**{REPEAT: False}), repeats.assign(**{REPEAT: True})], ignore_index=True)
    return both.take(order).reset_index(drop=True)


def _rebuilt(config: Config, to: Committed) -> State:
    """The state from the whole history, applied in steps cut at the lists' boundaries (in observations), so that
    each list is watched from where it was recorded as an incremental update would have."""
    from risk import store

    rows = _observed(config, (len(store.DATA_HEADER), 0), to)
    cuts = [0, *sorted(b for b in to.lists_by_rows if 0 < b < len(rows)), len(rows)]
    state = None
    for begin, end in itertools.pairwise(cuts):
        state = _apply(state, rows.iloc[begin:end], to.data_end_byte, to.lists_by_rows)
    return state


def committed(ledger: Ledger) -> Committed:
    """What the ledger has committed: the end byte of finaldata.csv (None before any data), the observations, the
    parts of repeats/ and, for each history length in observations at which call lists were recorded, the clients
    they listed."""
    point = ledger.files.committed_point() or (None, 0)
    return Committed(point[0], ledger.call_lists.listed_by_row_count(), point[1], ledger.files.repeat_parts())


def advance(config: Config, to: Committed) -> State | None:
    """The pipeline's one way to bring the prepared state up to what the ledger has committed (`committed(ledger)`,
    read after the commit): reads only the observations since the state's (the rows appended to finaldata.csv
    and the repeats), or the whole history when there is no usable state or a list is not watched yet; then
    writes the file and its tag. None before any data."""
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
        new = _apply(state, _observed(config, (state.data_end_byte, state.observations), to), to.data_end_byte,
                     to.lists_by_rows)
        how = f"{new.observations - state.observations} new observation(s)"
    else:
        new, how = _rebuilt(config, to), "rebuilt"
    atomic_write_bytes(path_of(config), _encode(new))
    atomic_write_text(config.output_folder / catalog.PREPARED_TAG, tag)
    logger.info("prepared read state: %s, %d observation(s) (%d row(s) in %s), %d client(s)", how,
                new.observations, new.stats["rows"], catalog.FINALDATA, len(new.clients))
    return new


def _cached(config: Config) -> State | None:
    """`_read`, once per version of the file in this process: the file is only ever replaced whole (a new inode),
    so its identity says whether the state held is still the one on disk. A request costs its answer."""
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
    file per process). StaleReadState when it is missing or behind; MissingInputError before any data."""
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
