"""The prepared read state costs the new rows (issue 23 items 2 and 3): an ingestion writes one segment of the
clients its rows touch, never a file of every client; segments merge like a binary counter; a killed write leaves
the last state visible and the next run recovers; a reader scans the segments a piece at a time and gives what the
whole frame gives (the ranking, ties and movers included, the departed, who is known)."""
from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_frame, write_frame
from test_ingest_observations import assert_same, rebuilt

from risk import catalog, contactlog, contract, ingestion, prepared, risklist, store
from risk.config import Config
from risk.errors import ContractError


def clients_frame(names: list[str], exited: list[int] | None = None, value: float = 1.0) -> pd.DataFrame:
    return contract.validate_frame(pd.DataFrame({
        contract.ID_COLUMN: names, **{name: value for name in contract.FEATURES},
        contract.TARGET: exited if exited is not None else [0] * len(names)}), "month")


def segment_files(config: Config) -> dict[str, int]:
    """Each segment file's name and inode."""
    return {p.name: p.stat().st_ino for p in prepared.segments_folder(config).iterdir()}


def test_an_ingestion_writes_the_clients_its_rows_touch_and_leaves_the_others_files_alone(config: Config) -> None:
    frame = synthetic_frame(3000, seed=1)
    frame[contract.ID_COLUMN] = [f"c{i}" for i in range(3000)]
    write_frame(frame, config.input_folder / "big.csv")
    ingestion.run_ingestion(config)
    before = segment_files(config)
    small = synthetic_frame(40, seed=2)
    small[contract.ID_COLUMN] = [f"c{i}" for i in range(20)] + [f"new{i}" for i in range(20)]
    write_frame(small, config.input_folder / "small.csv")
    ingestion.run_ingestion(config)
    state = prepared.as_of_committed(config)
    after = segment_files(config)
    assert {name: after[name] for name in before} == before  # the older segments: the same files, untouched
    added = [s for s in state.segments if s.name not in before]
    assert [s.count for s in added] == [40]  # 40 clients touched: 20 known, 20 new
    written = sum((prepared.segments_folder(config) / s.name).stat().st_size for s in added)
    assert written < 8 * 4096 + 40 * 64  # a page per column at most: the new rows, not the 3000+ clients
    assert prepared.path_of(config).stat().st_size < 64_000
    assert state.sizes["clients"] == len(state.clients)
    assert prepared.population(state) == len(risklist.current_clients(state.clients))
    assert_same(state, rebuilt(config))  # one segment from the whole history: the same state


def test_segments_merge_like_a_binary_counter_and_give_what_one_step_gives() -> None:
    months = [clients_frame([f"c{(7 * m + i) % 50}" for i in range(5)] + [f"m{m}"], [0] * 5 + [m % 2], float(m))
              for m in range(40)]
    state = None
    for number, frame in enumerate(months):
        state = prepared._apply(state, frame, number, {})
        assert len(state.segments) <= np.log2(state.sizes["clients"]) + 1
        counts = [s.count for s in state.segments]
        assert all(older > 2 * newer for older, newer in itertools.pairwise(counts))
    whole = prepared._apply(None, pd.concat(months, ignore_index=True), 39, {})
    pd.testing.assert_frame_equal(state.clients, whole.clients)
    assert state.sizes == whole.sizes == {"clients": 90, "current": int((whole.clients[contract.TARGET] == 0).sum())}


def test_a_write_killed_before_its_manifest_leaves_the_last_state_and_the_next_run_recovers(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    ingestion.run_ingestion(config)
    before = prepared.as_of_committed(config)
    real = prepared.atomic_write_bytes

    def killed(path, data):  # the segment lands, the process dies before the manifest
        if path == prepared.path_of(config):
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(prepared, "atomic_write_bytes", killed)
    write_frame(synthetic_frame(30, seed=5), config.input_folder / "late.csv")
    with pytest.raises(KeyboardInterrupt):
        ingestion.run_ingestion(config)
    monkeypatch.undo()
    assert len(segment_files(config)) == len(before.segments) + 1  # a segment no manifest names
    assert prepared._read(config).observations == before.observations  # the last manifest, whole
    with pytest.raises(prepared.StaleReadState):
        prepared.as_of_committed(config)
    ingestion.run_ingestion(config)  # the next run: the state catches up, the stray is removed
    after = prepared.as_of_committed(config)
    assert set(segment_files(config)) == {s.name for s in after.segments}
    assert after.stats["rows"] == before.stats["rows"] + 30
    assert_same(after, rebuilt(config))


def test_a_reader_whose_segments_were_merged_away_reads_the_new_manifest(config: Config) -> None:
    ingestion.run_ingestion(config)
    state = prepared.as_of_committed(config)
    calls = []
    real = prepared._read_once

    def raced(cfg):
        calls.append(1)
        if len(calls) == 1:
            raise prepared._Gone(state.segments[0].name)
        return real(cfg)

    prepared._read_once, saved = raced, real
    try:
        assert prepared._read(config).observations == state.observations
    finally:
        prepared._read_once = saved
    assert len(calls) == 2


class Linear:
    """A model whose probability is a feature's share of 10 (ties wherever the feature ties)."""

    coef_ = np.array([[1.0, 0.0, 0.0]])

    def __init__(self, scale: float = 10.0) -> None:
        self.scale = scale

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = np.clip(x[:, 0] / self.scale, 0, 1)
        return np.column_stack([1 - p, p])


def a_state(monkeypatch: pytest.MonkeyPatch) -> prepared.State:
    """Clients over several segments and small scan pieces, with ties in the feature the model reads."""
    monkeypatch.setattr(prepared, "CHUNK", 7)
    rng = np.random.default_rng(3)
    state = None
    for number in range(12):
        names = [f"c{i}" for i in rng.choice(60, 15, replace=False)]
        frame = clients_frame(names, list(rng.integers(0, 2, 15) * (rng.random(15) < 0.3)))
        frame[contract.FEATURES[0]] = rng.integers(0, 5, 15).astype(float)  # many ties
        state = prepared._apply(state, frame, number, {})
    assert len(state.segments) > 1
    return state


def test_the_scanned_ranking_is_the_frames_ties_and_movers_included(monkeypatch: pytest.MonkeyPatch) -> None:
    state = a_state(monkeypatch)
    for limit in (1, 5, 100):
        scanned = prepared.ranked(state, None, Linear(), limit, Linear(20.0))
        whole = risklist.ranked(None, Linear(), state.clients, limit, Linear(20.0))
        assert (scanned["ids"], scanned["population"]) == (whole["ids"], whole["population"])
        for key in ("risk", "push", "values", "typical_values"):
            np.testing.assert_array_equal(scanned[key], whole[key])
        assert scanned["movers"][0] == whole["movers"][0]
        assert risklist.call_list(scanned, limit) == risklist.call_list(whole, limit)


def test_departed_and_known_clients_are_read_from_the_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    state = a_state(monkeypatch)
    frame = state.clients
    gone = frame[(frame[contract.TARGET] == 1) & (frame["position"] >= 40)]
    names, more = prepared.left_since(state, 40, 3)
    assert (names, more) == (gone[contract.ID_COLUMN].head(3).tolist(), max(len(gone) - 3, 0))
    assert len(gone) > 3
    asked = ["c1", "c59", "nobody", "", "c1\x00"]
    assert prepared.knows(state, asked).tolist() == [name in set(frame[contract.ID_COLUMN]) for name in asked]
    known = contactlog.known_clients({4: {"listed-only"}}, state)
    assert ["listed-only" in known, frame[contract.ID_COLUMN].iloc[0] in known, "nobody" in known] == [True, True,
                                                                                                       False]


def test_ids_keep_their_exact_text_through_a_segment(tmp_path) -> None:
    names = ["a", "a\x00", "Zoë", "00007", "NA", "日本"]
    state = prepared._apply(None, clients_frame(names), 1, {})
    assert state.clients[contract.ID_COLUMN].tolist() == names
    assert prepared.knows(state, [*names, "a\x00\x00"]).tolist() == [True] * len(names) + [False]


def test_the_manifest_names_the_format(config: Config) -> None:
    ingestion.run_ingestion(config)
    tag = (config.output_folder / catalog.PREPARED_TAG).read_text(encoding="utf-8")
    assert tag.split(":")[0] == str(prepared.FORMAT) == "5"


def mapped_rss_kib(folder) -> int:
    """This process's resident KiB of the files mapped from `folder` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's first line: its path, if any, is the last field
            inside = len(fields) >= 6 and fields[-1].startswith(str(folder))
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def test_a_scan_leaves_the_segments_pages_out_of_the_workers_memory(tmp_path) -> None:
    class Project:  # what prepared reads of a config
        output_folder = tmp_path

    names = [f"client-{i:07d}" for i in range(200_000)]
    frame = clients_frame(names, [int(i % 7 == 0) for i in range(200_000)])
    frame[contract.FEATURES[0]] = np.arange(200_000) % 97
    prepared._write(Project, prepared._apply(None, frame, 1, {}))
    state = prepared._read(Project)
    size = sum(p.stat().st_size for p in prepared.segments_folder(Project).iterdir()) // 1024
    assert size > 8_000  # 200k records: about 10 MiB of segment
    full = prepared.ranked(state, None, Linear(100.0), 10)
    assert full["population"] == prepared.population(state) == 200_000 - len(range(0, 200_000, 7))
    assert mapped_rss_kib(prepared.segments_folder(Project)) < size / 10  # dropped as scanned, not kept
    names_left, more = prepared.left_since(state, 0, 5)
    assert (len(names_left), more) == (5, len(range(0, 200_000, 7)) - 5)
    assert mapped_rss_kib(prepared.segments_folder(Project)) < size / 10


def written(*rows: tuple[str, str, str]) -> bytes:
    """finaldata.csv text of rows (id cell, every feature's cell, exited cell), the header first."""
    features = len(contract.FEATURES)
    return store.DATA_HEADER + b"".join(f"{name},{','.join([value] * features)},{left}\n".encode()
                                        for name, value, left in rows)


def test_rows_the_pipeline_wrote_read_by_pyarrow_as_the_text_reader_reads_them() -> None:
    text = written(('"a,b"', "1", "0"), ("NA", "4", "1"), ("00007", "7.5", "0"), ("", "1", "0"), ('" sp "', "0", "1"),
                   ('""', "1", "0"), ('"q""uote"', "1e3", "0"))
    fast = contract.validate_frame(store.read_written(text, "finaldata"), "finaldata", history=True)
    plain = pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False, na_values=[""])
    pd.testing.assert_frame_equal(fast, contract.validate_frame(plain, "finaldata", history=True))
    assert fast[contract.ID_COLUMN].tolist()[:3] == ["a,b", "NA", "00007"]
    assert fast[contract.ID_COLUMN].isna().tolist() == [False, False, False, True, False, True, False]
    bad = written(("x", "1", "0"), ("y", "abc", "0"))  # not the pipeline's numbers: read as text, checked
    with pytest.raises(ContractError, match=f"row 3, column '{contract.FEATURES[0]}'"):
        contract.validate_frame(store.read_written(bad, "finaldata"), "finaldata", history=True)
