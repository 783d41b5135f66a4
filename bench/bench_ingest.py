"""Ingestion benchmarks (issue 4), each against a baseline timed in the same run; data generated in a temp dir.

Targets: 1M rows in 20 files <= 3x pyarrow.csv reading the same files; +50k rows onto a 5M-row history
<= 1.5x the same 50k into an empty history; peak RSS ingesting 5M rows <= 2x that for 500k rows; a file of 1M
ragged rows (one field too many) rejected row by row <= 5x the same rows clean (issue 13).
Run: .venv/bin/python bench/bench_ingest.py [--quick] [--ragged]
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv
from common import FOLDERS, REPO, contract, median, timed

sys.path.insert(0, str(REPO))

RUNS = 5


def write_rows(path: Path, n: int, seed: int, extra: bool = False) -> None:
    """`n` client rows shaped like the course data, written fast (no pandas); `extra`: each row carries one
    field more than the header names (a ragged row)."""
    rng = np.random.default_rng(seed)
    cols = [rng.integers(0, 300, n), rng.integers(0, 3000, n), rng.integers(1, 1000, n), rng.integers(0, 2, n)]
    cols += [rng.integers(0, 10, n)] if extra else []
    body = np.char.add(np.char.add(f"s{seed}c", np.arange(n).astype(str)), ",")
    for index, col in enumerate(cols):
        body = np.char.add(body, col.astype(str))
        if index < len(cols) - 1:
            body = np.char.add(body, ",")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(",".join(contract.COLUMNS) + "\n")
        handle.write("\n".join(body.tolist()) + "\n")


def project(root: Path):  # -> Config
    from risk.config import load_config

    for folder in FOLDERS.values():
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(FOLDERS), encoding="utf-8")
    return load_config(root / "config.json")


def throughput(scratch: Path, rows: int, files: int, runs: int) -> dict:
    """Ingest `rows` in `files` into an empty history vs pyarrow.csv.read_csv of the same files."""
    from risk import ingestion

    source = scratch / "many"
    for number in range(files):
        write_rows(source / f"f{number:02d}.csv", rows // files, seed=number)
    paths = sorted(source.glob("*.csv"))
    ours, base = [], []
    for run in range(runs):
        base.append(timed(lambda: [pa_csv.read_csv(p) for p in paths]))
        config = project(scratch / f"t{run}")
        config.input_folder.rmdir()
        shutil.copytree(source, config.input_folder)
        ours.append(timed(ingestion.run_ingestion, config))
        shutil.rmtree(scratch / f"t{run}")
    ratio = median(ours) / median(base)
    return {"name": f"ingest {rows:,} rows in {files} files", "target": "<= 3x pyarrow.csv.read_csv",
            "pass": ratio <= 3.0, "pyarrow_s": median(base), "ingestion_s": median(ours), "ratio": ratio}


def incremental(scratch: Path, history: int, new: int, runs: int) -> dict:
    """+`new` rows onto a `history`-row history vs the same rows into an empty history."""
    from risk import ingestion

    big = project(scratch / "big")
    for number in range(20):
        write_rows(big.input_folder / f"h{number:02d}.csv", history // 20, seed=100 + number)
    ingestion.run_ingestion(big)
    onto, empty = [], []
    for run in range(runs):
        fresh = scratch / f"new{run}.csv"
        write_rows(fresh, new, seed=1000 + run)
        small = project(scratch / f"small{run}")
        shutil.copy(fresh, small.input_folder / "new.csv")
        empty.append(timed(ingestion.run_ingestion, small))
        shutil.copy(fresh, big.input_folder / f"new{run}.csv")
        onto.append(timed(ingestion.run_ingestion, big))
    ratio = median(onto) / median(empty)
    return {"name": f"+{new:,} rows onto a {history:,}-row history", "target": "<= 1.5x into an empty history",
            "pass": ratio <= 1.5, "empty_s": median(empty), "onto_history_s": median(onto), "ratio": ratio}


def ragged(scratch: Path, rows: int, runs: int) -> dict:
    """A file of `rows` rows that all carry one field too many, rejected row by row with reasons, vs the same rows
    without the extra field, each into an empty history, alternating."""
    from risk import ingestion

    clean_file, ragged_file = scratch / "clean.csv", scratch / "ragged.csv"
    write_rows(clean_file, rows, seed=11)
    write_rows(ragged_file, rows, seed=11, extra=True)
    clean, bad = [], []
    for run in range(runs):
        for source, times in ((clean_file, clean), (ragged_file, bad)):
            config = project(scratch / f"r{run}{source.stem}")
            shutil.copy(source, config.input_folder / "one.csv")
            times.append(timed(ingestion.run_ingestion, config))
            rejected = sum(1 for _ in open(config.output_folder / "rejects.csv", "rb")) - 1
            shutil.rmtree(scratch / f"r{run}{source.stem}")
            if source is ragged_file and rejected != rows + 1:  # each row, and the file as a whole
                raise RuntimeError(f"{rejected} rejection lines for {rows} ragged rows")
    ratio = median(bad) / median(clean)
    return {"name": f"reject {rows:,} ragged rows (one field too many)", "target": "<= 5x the same rows clean",
            "pass": ratio <= 5.0, "clean_s": median(clean), "ragged_s": median(bad), "ratio": ratio}


# The child reports its own high-water mark: ru_maxrss from wait4 would include this (large) parent's pages,
# which the forked child holds until it execs.
HWM = ("import sys, ingestion as ingestion_cli; code = ingestion_cli.main(sys.argv[1:]); "
       "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]); raise SystemExit(code)")


def peak_rss(scratch: Path, rows: int) -> float:
    """Peak RSS (MiB) of one ingestion process taking one file of `rows` rows into an empty history."""
    config = project(scratch / f"rss{rows}")
    write_rows(config.input_folder / "one.csv", rows, seed=7)
    done = subprocess.run([sys.executable, "-c", HWM, "--config", str(config.config_path)], cwd=REPO,
                          capture_output=True, text=True, check=True, timeout=600)
    shutil.rmtree(scratch / f"rss{rows}")
    return int(done.stdout.split()[-1]) / 1024


def memory(scratch: Path, small: int, large: int) -> dict:
    low, high = peak_rss(scratch, small), peak_rss(scratch, large)
    return {"name": f"peak RSS, one file of {large:,} vs {small:,} rows", "target": "<= 2x",
            "pass": high <= 2 * low, "rss_small_mib": low, "rss_large_mib": high, "ratio": high / low}


def measure(quick: bool = False) -> list[dict]:
    scale = 10 if quick else 1
    runs = 3 if quick else RUNS
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as scratch:
        root = Path(scratch)
        return [throughput(root, 1_000_000 // scale, 20, runs),
                incremental(root, 5_000_000 // scale, 50_000 // scale, runs),
                memory(root, 500_000 // scale, 5_000_000 // scale),
                ragged(root, 1_000_000 // scale, runs)]


if __name__ == "__main__":
    if "--ragged" in sys.argv:  # that benchmark alone
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as scratch:
            print(ragged(Path(scratch), 100_000 if "--quick" in sys.argv else 1_000_000, 3 if "--quick" in sys.argv
                         else RUNS))
    else:
        for result in measure(quick="--quick" in sys.argv):
            print(result)
