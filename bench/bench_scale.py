"""A real portfolio at real size (issues 13, 23): 1M clients x 50 monthly snapshots (50M rows) beside the same
workload at 1/10 and 1/100 of the clients, timed in the same run; exits 1 when a target is missed.

Each size is a throwaway project: monthly CSVs written with NumPy and pyarrow, the first 49 months taken in by the
real `fullprocess.py` (ingestion, first model, deployment, diagnostics, report), then timed: the API on gunicorn
(gunicorn.conf.py, 2 workers, RISK_BIND on a free loopback port) with the workers' peak RSS; `training.py` (with
its peak RSS) against a process reading the same columns with pyarrow and fitting one plain LogisticRegression;
`diagnostics.py` and `reporting.py`; the tick adding the 50th month (the largest portfolio's, 1M rows) to each
size; at the largest size, `ingestion.py` adding 50k rows of its clients against adding them to an empty project,
and the idle tick against `python -c pass`. Then `ingestion.py` on 1M rows in 20 files against a process reading
them with pyarrow, and the tick deciding on 300k new rows after the course's 26-row model. Every script runs as a
whole process in cron's bare environment. Prints a progress line per stage on stderr.
Run: make bench-scale, or .venv/bin/python bench/bench_scale.py [--clients N] [--months M] [--runs R] [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from common import (
    BIN,
    CRON_ENV,
    FOLDERS,
    REPO,
    contract,
    free_port,
    make_project,
    median,
    one_record,
    timed_request,
    wait_for,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "scale.json"
CLIENTS, MONTHS, FIRST_FILE_ROWS, SMALL_TICK_ROWS = 1_000_000, 50, 300_000, 50_000
ONE_RUN_ROWS = 10_000_000  # beyond this history a script takes minutes: timed once (the noise is small beside it)
INGEST_ROWS, INGEST_FILES, INGEST_RUNS, IDLE_RUNS = 1_000_000, 20, 11, 15  # ingestion: medians of 5 moved 0.4x
TICK_RUNS = 5  # ticks and +50k ingestions from a saved state: single ticks at 49M rows ran 5.7-9.3 s
EXIT_RATE = 0.02  # a month's share of clients who leave (and are replaced by new ones)
READS = ("/risk?top=20", "/", "/summarystats", "/risk/outcomes")  # <= 2x at 1/100, <= 10x /health
EVERY_ROUTE = ("/health", *READS, "/diagnostics", "/scoring", "/ready", "/metrics", "/openapi.json",
               "/decisions", "/decisions/latest", "/reports/latest.pdf", "/reports/latest.html", "/risk?top=500")
# the baseline of training.py: the columns it fits on read by pyarrow into NumPy, then one plain fit
BASELINE_FIT = ("import sys; import numpy as np; import pyarrow.csv as c; from sklearn.linear_model import "
                "LogisticRegression; from risk import contract; names = [*contract.FEATURES, contract.TARGET]; "
                "table = c.read_csv(sys.argv[1], convert_options=c.ConvertOptions(include_columns=names)); "
                "x = np.column_stack([table.column(n).to_numpy() for n in contract.FEATURES]).astype(float); "
                "LogisticRegression().fit(x, table.column(contract.TARGET).to_numpy())")
PYARROW_READ = "import sys; import pyarrow.csv as c; [c.read_csv(p) for p in sys.argv[1:]]"
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f} s] {message}", file=sys.stderr, flush=True)


# ---- the data: monthly snapshots of a portfolio, each row drawn alike (no drift between months) ---------------
def snapshot(rng: np.random.Generator, ids: np.ndarray, employees: np.ndarray) -> pa.Table:
    """One month of `ids`: activity drawn afresh, employees the client's own, `exited` from the activity alone
    (so who stays is not selected by a trait: every month's rows come from one distribution)."""
    n = len(ids)
    lastmonth = rng.poisson(rng.gamma(2.0, 60.0, n))
    lastyear = rng.poisson(12 * rng.gamma(2.0, 60.0, n) * 0.5 + 6 * lastmonth)
    logit = -2.5 - 0.012 * (lastmonth - 120) - 0.0008 * (lastyear - 1400) + 0.0004 * (employees - 500)
    exited = (rng.random(n) < np.clip(1 / (1 + np.exp(-logit)), 0, 1) * EXIT_RATE / 0.1).astype(np.int64)
    values = dict(zip(contract.FEATURES, (lastmonth, lastyear, employees), strict=False))
    columns = {contract.ID_COLUMN: pa.array(np.char.add("c", ids.astype(str)))}
    for name in contract.FEATURES:
        columns[name] = pa.array(values.get(name, employees).astype(np.int64))
    columns[contract.TARGET] = pa.array(exited)
    return pa.table(columns)


def write_csv(table: pa.Table, path: Path) -> None:
    """The table as a plain CSV: pyarrow quotes the header's names even with quoting_style "none"."""
    with pa.OSFile(str(path), "wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False, quoting_style="none"))


def write_history(folder: Path, clients: int, months: int, seed: int) -> int:
    """`months` files of `clients` rows: a client who leaves (exited = 1) is in no later month; a new client takes
    the place. Returns the rows written."""
    rng = np.random.default_rng(seed)
    ids, employees, next_id, rows = np.arange(clients), rng.integers(1, 1000, clients), clients, 0
    for month in range(months):
        table = snapshot(rng, ids, employees)
        write_csv(table, folder / f"month_{month + 1:03d}.csv")
        rows += table.num_rows
        stay = table.column(contract.TARGET).to_numpy() == 0
        fresh = int((~stay).sum())
        ids = np.concatenate([ids[stay], np.arange(next_id, next_id + fresh)])
        employees = np.concatenate([employees[stay], rng.integers(1, 1000, fresh)])
        next_id += fresh
    return rows


def one_file(path: Path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    write_csv(snapshot(rng, np.arange(rows), rng.integers(1, 1000, rows)), path)


# ---- a project of one size ------------------------------------------------------------------------------
def empty_project(root: Path) -> Path:
    """A project with no data yet; its config path."""
    for folder in FOLDERS.values():
        (root / folder).mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "testdata" / "testdata.csv", root / "testdata" / "testdata.csv")
    config = root / "config.json"
    config.write_text(json.dumps({**FOLDERS, "api_url": "http://127.0.0.1:9"}), encoding="utf-8")
    return config


def make_scaled(root: Path, clients: int, months: int) -> tuple[Path, dict]:
    """A project whose source folder holds the history, taken in by one `fullprocess.py` run; (config, figures)."""
    config = empty_project(root)
    start = time.perf_counter()
    rows = write_history(root / "sourcedata", clients, months, seed=clients)
    written = time.perf_counter() - start
    progress(f"{rows:,} rows: {months} monthly files written in {written:.1f} s")
    first = script("fullprocess.py", config)
    progress(f"{rows:,} rows: first fullprocess.py run {first:.1f} s")
    return config, {"rows": rows, "clients": clients, "write_csv_s": written, "first_fullprocess_s": first}


def child(command: list[str], cwd: Path | str = "/") -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB: wait4's ru_maxrss of that child) of one process in cron's bare environment;
    it must exit 0. The peak counts this process's own memory at the fork (about 100 MiB), not its later growth.
    Dirty pages are written out first (os.sync): a process that fsyncs does not pay for the files the bench has just
    copied (ext4 commits them with its journal)."""
    os.sync()
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, cwd=cwd, env=CRON_ENV, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(f"{command[1:3]} exited {os.waitstatus_to_exitcode(status)}: "
                               f"{errors.read()[-2000:].decode(errors='replace')}")
    return elapsed, usage.ru_maxrss / 1024


def script(name: str, config: Path) -> float:
    """Wall seconds of `python <name> --config <config>` run as cron would; it must exit 0."""
    return child([sys.executable, str(REPO / name), "--config", str(config)])[0]


def stages(config: Path, rows: int, runs: int) -> dict:
    """training.py (and its peak RSS), the read + fit baseline, diagnostics.py and reporting.py, interleaved, `runs`
    times each (once beyond ONE_RUN_ROWS)."""
    data = config.parent / FOLDERS["output_folder_path"] / "finaldata.csv"
    times: dict[str, list[float]] = {"baseline_fit_s": [], "training_py_s": [], "training_py_rss_mib": [],
                                     "diagnostics_py_s": [], "reporting_py_s": []}
    runs = 1 if rows > ONE_RUN_ROWS else runs
    for run in range(runs):
        times["baseline_fit_s"].append(child([sys.executable, "-c", BASELINE_FIT, str(data)], REPO)[0])
        seconds, peak = child([sys.executable, str(REPO / "training.py"), "--config", str(config)])
        times["training_py_s"].append(seconds)
        times["training_py_rss_mib"].append(peak)
        for name in ("diagnostics", "reporting"):
            times[f"{name}_py_s"].append(script(f"{name}.py", config))
        done = ", ".join(f"{key} {values[-1]:.2f}" for key, values in times.items())
        progress(f"{rows:,} rows: stage run {run + 1}/{runs}: {done}")
    return {key: median(values) for key, values in times.items()}


# ---- the API --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def served(config: Path):
    """gunicorn from gunicorn.conf.py (2 workers) on a free loopback port; yields (port, master pid)."""
    port = free_port()
    env = {**os.environ, "RISK_BIND": f"127.0.0.1:{port}", "RISK_CONFIG": str(config)}
    server = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--log-level", "warning"],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        yield port, server.pid
    finally:
        server.terminate()
        server.wait(timeout=60)


def children(pid: int | str) -> list[str]:
    """The child processes of `pid`, whichever of its threads started them."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += (task / "children").read_text().split()
    return found


def workers_of(master: int) -> list[str]:
    return children(master)


def settle(master: int, seconds: float = 60.0) -> None:
    """Wait until no worker has a child: a worker's first GET /diagnostics looks the pinned packages up with
    `pip index versions` in the background (once a day per worker), and those processes would share the CPU
    with the timed requests."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(children(pid) for pid in workers_of(master)):
        time.sleep(0.2)


def workers_peak_mib(master: int) -> float:
    """The largest VmHWM among the master's children (the workers)."""
    peaks = []
    for pid in workers_of(master):
        status = Path(f"/proc/{pid}/status").read_text()
        peaks.append(int(status.split("VmHWM:")[1].split()[0]) / 1024)
    return max(peaks)


def api(config: Path, rows: int, rounds: int) -> dict:
    """p50 of each read route and /health, interleaved; then every route, and the workers' peak RSS."""
    latencies: dict[str, list[float]] = {path: [] for path in ("/health", *READS, "/diagnostics")}
    with served(config) as (port, master):
        for _ in range(4):  # warm-up: each worker loads its model and prepared state
            for path in latencies:
                timed_request(port, "GET", path)
        settle(master)
        for _ in range(rounds):
            for path in latencies:
                latencies[path].append(timed_request(port, "GET", path)[0])
        for _ in range(2):  # both workers, every route
            for path in EVERY_ROUTE:
                timed_request(port, "GET", path)
            timed_request(port, "POST", "/prediction", one_record(50, 900, 12), {"Content-Type": "application/json"})
        peak = workers_peak_mib(master)
    figures = {f"p50_ms {path}": 1000 * median(values) for path, values in latencies.items()}
    progress(f"{rows:,} rows: API p50 " + ", ".join(f"{k[7:]} {v:.2f} ms" for k, v in figures.items())
             + f"; worker peak RSS {peak:.0f} MiB")
    return {**figures, "worker_peak_rss_mib": peak}


# ---- ticks ------------------------------------------------------------------------------------------------
def ticks(config: Path, rows: int, runs: int, tick_file: Path) -> dict:
    """A tick adding `tick_file` (the largest portfolio's 50th month, no drift), `runs` times, each from the same
    saved state."""
    root, saved = config.parent, config.parent.parent / f"saved-{rows}"
    state = [name for key, name in FOLDERS.items() if key != "input_folder_path"]
    for name in state:
        shutil.copytree(root / name, saved / name, symlinks=True)
    times, actions = [], []
    for _ in range(runs):
        shutil.copy(tick_file, root / "sourcedata" / tick_file.name)
        times.append(script("fullprocess.py", config))
        actions.append(last_action(config))
        (root / "sourcedata" / tick_file.name).unlink()
        for name in state:
            shutil.rmtree(root / name)
            shutil.copytree(saved / name, root / name, symlinks=True)
    shutil.rmtree(saved)
    progress(f"{rows:,} rows: tick +{tick_file.name}: " + ", ".join(f"{t:.2f} s" for t in times)
             + f" ({actions[-1]})")
    return {"tick_s": median(times), "tick_action": actions[-1]}


def last_action(config: Path) -> str:
    """The action the last fullprocess run recorded in the ledger."""
    from risk.ledger import LedgerReader

    with LedgerReader(config.parent / FOLDERS["output_folder_path"] / "ledger.sqlite") as ledger:
        run = ledger.runs.latest("fullprocess")
    return str(json.loads(run["detail"]).get("action"))


def first_file_tick(scratch: Path) -> dict:
    """Peak RSS and exit of the tick deciding on FIRST_FILE_ROWS new rows after the course's 26-row model."""
    root = scratch / "course"
    root.mkdir()
    config = make_project(root)
    one_file(root / "sourcedata" / "first_big_file.csv", FIRST_FILE_ROWS, seed=3)
    peak, start = 0, time.perf_counter()
    child = subprocess.Popen([sys.executable, str(REPO / "fullprocess.py"), "--config", str(config)], cwd="/",
                             env=CRON_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = Path(f"/proc/{child.pid}/status")
    while child.poll() is None:
        with contextlib.suppress(OSError, IndexError, ValueError):
            peak = max(peak, int(status.read_text().split("VmHWM:")[1].split()[0]))
        time.sleep(0.005)
    figures = {"first_file_tick_s": time.perf_counter() - start, "first_file_tick_exit": child.returncode,
               "first_file_tick_rss_mib": peak / 1024, "first_file_tick_action": last_action(config)}
    progress(f"tick on {FIRST_FILE_ROWS:,} rows after the 26-row model: {figures}")
    return figures


# ---- the client base (issue 23): what a tick costs whatever the clients, and a worker's memory -------------------
def prepared_files(config: Path) -> dict[str, int]:
    """The prepared read state's files (the manifest and the segments) and their sizes."""
    output = config.parent / FOLDERS["output_folder_path"]
    found = {p.name: p.stat().st_size for p in (output / "prepared").glob("*")}
    manifest = output / "prepared.npz"
    return {**found, manifest.name: manifest.stat().st_size} if manifest.exists() else found


def ingest_ticks(configs: dict[str, Path], tick_file: Path, runs: int) -> dict[str, dict]:
    """`ingestion.py` taking `tick_file` into each project (label -> config), the projects interleaved, `runs` times
    each from the same saved state: per label (median seconds, bytes of the prepared state it wrote: files new or
    changed), each run whole, as cron runs it."""
    saved = {}
    for label, config in configs.items():
        output = config.parent / FOLDERS["output_folder_path"]
        saved[label] = (output, config.parent.parent / f"saved-{output.name}")
        shutil.copytree(*saved[label])
    times: dict[str, list[float]] = {label: [] for label in configs}
    written: dict[str, list[int]] = {label: [] for label in configs}
    for _ in range(runs):
        for label, config in configs.items():
            before = set(prepared_files(config))  # a segment is never rewritten: a new one has a new name
            shutil.copy(tick_file, config.parent / "sourcedata" / tick_file.name)
            times[label].append(script("ingestion.py", config))
            after = prepared_files(config)
            written[label].append(sum(size for name, size in after.items()
                                      if name not in before or name == "prepared.npz"))
            (config.parent / "sourcedata" / tick_file.name).unlink()
            output, copy = saved[label]
            shutil.rmtree(output)
            shutil.copytree(copy, output)
    for label, (_, copy) in saved.items():
        shutil.rmtree(copy)
        progress(f"{label}, +{tick_file.name}: ingestion.py " + ", ".join(f"{t:.2f} s" for t in times[label])
                 + f"; prepared state written {median(written[label]) / 2**20:.2f} MiB")
    return {label: {"s": median(times[label]), "prepared_mib": median(written[label]) / 2**20} for label in configs}


def idle_ticks(config: Path, runs: int) -> dict:
    """The idle tick (nothing new, a model deployed) against `python -c pass`, interleaved, `runs` times each."""
    tick = [sys.executable, str(REPO / "fullprocess.py"), "--config", str(config)]
    child(tick)  # warm-up: the bytecode cache, as the first cron tick writes it
    pairs = [(child([sys.executable, "-c", "pass"])[0], child(tick)[0]) for _ in range(runs)]
    figures = {"python_start_s": median([b for b, _ in pairs]), "idle_tick_s": median([t for _, t in pairs])}
    progress(f"idle tick {figures['idle_tick_s'] * 1000:.1f} ms against python -c pass "
             f"{figures['python_start_s'] * 1000:.1f} ms")
    return figures


def ingestion_processes(scratch: Path, runs: int) -> dict:
    """`ingestion.py` taking INGEST_ROWS rows in INGEST_FILES files into an empty project against a process reading
    the same files with pyarrow.csv.read_csv, interleaved, `runs` times each."""
    from bench_ingest import write_rows

    source = scratch / "many"
    for number in range(INGEST_FILES):
        write_rows(source / f"f{number:02d}.csv", INGEST_ROWS // INGEST_FILES, seed=number)
    paths = [str(p) for p in sorted(source.glob("*.csv"))]
    base, ours = [], []
    for run in range(runs):
        base.append(child([sys.executable, "-c", PYARROW_READ, *paths])[0])
        config = empty_project(scratch / f"ingest{run}" / "project")
        (config.parent / "sourcedata").rmdir()
        shutil.copytree(source, config.parent / "sourcedata")
        ours.append(script("ingestion.py", config))
        shutil.rmtree(config.parent.parent)
    shutil.rmtree(source)
    figures = {"pyarrow_read_s": median(base), "ingestion_py_s": median(ours)}
    progress(f"{INGEST_ROWS:,} rows in {INGEST_FILES} files: ingestion.py {figures['ingestion_py_s']:.2f} s, "
             f"pyarrow {figures['pyarrow_read_s']:.2f} s")
    return figures


# ---- one size, all sizes, the targets --------------------------------------------------------------------
def measure_size(scratch: Path, clients: int, months: int, runs: int, tick_file: Path, small_file: Path | None,
                 ) -> dict:
    """One size: `months` months taken in, its API, its scripts and its tick; with `small_file`, the 50k-row
    ingestion onto it and the idle tick too."""
    config, figures = make_scaled(scratch / f"c{clients}" / "project", clients, months)
    figures.update(api(config, figures["rows"], rounds=15 if runs > 1 else 5))
    figures.update(stages(config, figures["rows"], runs))
    tick_runs = TICK_RUNS if runs > 1 else runs
    figures.update(ticks(config, figures["rows"], tick_runs, tick_file))
    if small_file is not None:  # the same rows into an empty project, interleaved with these
        empty = empty_project(scratch / "empty" / "project")
        onto = f"{clients:,} clients"
        tick = ingest_ticks({onto: config, "an empty project": empty}, small_file, tick_runs)
        figures["ingest_small_s"], figures["ingest_small_prepared_mib"] = tick[onto]["s"], tick[onto]["prepared_mib"]
        figures["ingest_small_onto_empty_s"] = tick["an empty project"]["s"]
        shutil.rmtree(empty.parent.parent)
        figures.update(idle_ticks(config, IDLE_RUNS if runs > 1 else 5))
    shutil.rmtree(config.parent.parent)
    return figures


def targets(sizes: list[dict], others: dict) -> list[tuple[str, float, float, bool]]:
    """(what, measured ratio or value, limit, held) for each acceptance target."""
    small, middle, large = sizes
    at = f"{large['clients']:,} clients, {large['rows']:,} rows"
    found = []
    for path in READS:
        key = f"p50_ms {path}"
        found.append((f"GET {path} p50 at {large['clients']:,} clients / at {small['clients']:,}",
                      large[key] / small[key], 2.0))
        found.append((f"GET {path} p50 / GET /health, {at}", large[key] / large["p50_ms /health"], 10.0))
    found += [
        (f"GET /diagnostics p50, {at} (s)", large["p50_ms /diagnostics"] / 1000, 1.0),
        (f"gunicorn worker peak RSS after every route (2 workers), {at} (MiB)", large["worker_peak_rss_mib"], 300.0),
        (f"tick + one month ({large['tick_rows']:,} rows) onto {large['rows']:,} rows / onto {middle['rows']:,}",
         large["tick_s"] / middle["tick_s"], 2.0),
        (f"ingestion.py +{SMALL_TICK_ROWS:,} rows onto {large['clients']:,} clients / onto an empty project",
         large["ingest_small_s"] / large["ingest_small_onto_empty_s"], 1.5),
        (f"ingestion.py on {INGEST_ROWS:,} rows in {INGEST_FILES} files / a pyarrow read of them (processes)",
         others["ingestion_py_s"] / others["pyarrow_read_s"], 3.0),
        (f"training.py / (pyarrow read + LogisticRegression().fit), {at}",
         large["training_py_s"] / large["baseline_fit_s"], 2.0),
        (f"training.py peak RSS, {at} (GiB)", large["training_py_rss_mib"] / 1024, 6.0),
        (f"idle tick / python -c pass, {at}", large["idle_tick_s"] / large["python_start_s"], 5.0),
        (f"diagnostics.py / training.py, {at}", large["diagnostics_py_s"] / large["training_py_s"], 1.0),
        (f"reporting.py / training.py, {at}", large["reporting_py_s"] / large["training_py_s"], 1.0),
        (f"tick on {FIRST_FILE_ROWS:,} rows after a 26-row model, peak RSS (MiB)",
         others["first_file_tick_rss_mib"], 2048.0),
        (f"tick on {FIRST_FILE_ROWS:,} rows after a 26-row model, exit code", others["first_file_tick_exit"], 0.0),
    ]
    return [(what, value, limit, value <= limit) for what, value, limit in found]


def show(sizes: list[dict], others: dict, found: list[tuple]) -> None:
    keys = [k for k in sizes[-1] if isinstance(sizes[-1][k], (int, float))]
    print(f"{'':>40}" + "".join(f"{s['rows']:>14,}" for s in sizes))
    for key in keys:
        print(f"{key:>40}" + "".join(f"{s[key]:>14.3f}" if isinstance(s.get(key), float) else
                                     f"{s.get(key, ''):>14}" for s in sizes))
    print(f"{'tick_action':>40}  " + " | ".join(s["tick_action"] for s in sizes))
    for key, value in others.items():
        print(f"{key:>40}{value:>14.3f}" if isinstance(value, float) else f"{key:>40}{value!s:>14}")
    print()
    for what, value, limit, held in found:
        print(f"{'PASS' if held else 'FAIL'}  {what}: {value:.3f} (target <= {limit:g})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=CLIENTS, help=f"clients at the largest size ({CLIENTS:,})")
    parser.add_argument("--months", type=int, default=MONTHS, help=f"monthly snapshots, the last one the tick "
                        f"({MONTHS})")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each script (3; once beyond "
                        f"{ONE_RUN_ROWS:,} rows); with more than one, each tick runs {TICK_RUNS} times")
    parser.add_argument("--quick", action="store_true", help="1/10 of the clients over 6 months, 1 run")
    args = parser.parse_args(argv)
    clients, months, runs = (args.clients // 10, 6, 1) if args.quick else (args.clients, args.months, args.runs)
    sizes, others = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        root = Path(scratch)
        tick_file, small_file = root / "month_last.csv", root / "fifty_thousand.csv"
        one_file(tick_file, clients, seed=2)  # ids c0..: a month of the largest portfolio's clients
        one_file(small_file, SMALL_TICK_ROWS, seed=5)
        for n in (clients // 100, clients // 10, clients):
            sizes.append({**measure_size(root, n, months - 1, runs, tick_file, small_file if n == clients else None),
                          "tick_rows": clients})
        others.update(ingestion_processes(root, INGEST_RUNS if runs > 1 else 2))
        others.update(first_file_tick(root))
    found = targets(sizes, others)
    show(sizes, others, found)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"sizes": sizes, "others": others, "targets": found}, indent=2) + "\n",
                       encoding="utf-8")
    return 0 if all(held for *_, held in found) else 1


if __name__ == "__main__":
    sys.exit(main())
