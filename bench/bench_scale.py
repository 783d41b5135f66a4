"""A real portfolio at real size (issue 13): 100k clients x 50 monthly snapshots (5M rows) against the same
workload at 1/10 and 1/100 of the clients, timed in the same run; exits 1 when a target is missed.

Each size is a throwaway project: monthly CSVs written with NumPy and pyarrow, taken in by the real
`fullprocess.py` (ingestion, first model, deployment, diagnostics, report), then timed: `training.py` against
reading the data plus one plain LogisticRegression().fit, `diagnostics.py`, `reporting.py`, the API on gunicorn
(gunicorn.conf.py, RISK_BIND on a free loopback port), a tick adding one month of 100k rows, and the tick that
decides on 300k new rows after the course's 26-row model. Prints a progress line per stage on stderr.

Then the client base (issue 23 items 2, 3): a portfolio of --big-clients (1M) clients x --big-months (5) months taken
in by `fullprocess.py`, its API's worker peak RSS (2 workers), and `ingestion.py` (whole processes, each run from
the same saved state) adding 50k rows to it against adding them to an empty project, and adding its next month
(--big-clients rows) to it against adding the same month to the portfolio of a tenth of the clients; with the
bytes each run wrote to the prepared read state.
Run: make bench-scale, or .venv/bin/python bench/bench_scale.py [--clients N] [--months M] [--quick]
     [--part sizes|clients] [--big-clients N] [--big-months M]
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
CLIENTS, MONTHS, TICK_ROWS, FIRST_FILE_ROWS = 100_000, 50, 100_000, 300_000
# issue 23: the client base. 5 months, not the 50: the first fullprocess run on 50M rows waits for training
# and the read state's rebuild to read the history in bounded memory (issue 23 item 4); --big-months 50 tries it.
BIG_CLIENTS, BIG_MONTHS, SMALL_TICK_ROWS = 1_000_000, 5, 50_000
EXIT_RATE = 0.02  # a month's share of clients who leave (and are replaced by new ones)
READS = ("/risk?top=20", "/", "/summarystats", "/risk/outcomes")  # <= 2x at 1/100, <= 10x /health
EVERY_ROUTE = ("/health", *READS, "/diagnostics", "/scoring", "/ready", "/metrics", "/openapi.json",
               "/decisions", "/decisions/latest", "/reports/latest.pdf", "/reports/latest.html", "/risk?top=500")
BASELINE_FIT = ("import sys; from pathlib import Path; from sklearn.linear_model import LogisticRegression; "
                "from risk import contract; frame = contract.read_csv(Path(sys.argv[1]), history=True); "
                "x, y = contract.split_xy(frame); LogisticRegression().fit(x, y)")
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


def write_history(folder: Path, clients: int, months: int, seed: int, last: Path | None = None) -> int:
    """`months` files of `clients` rows: a client who leaves (exited = 1) is in no later month; a new client takes
    the place. Returns the rows written. With `last`, the next month is written there too (not counted)."""
    rng = np.random.default_rng(seed)
    ids, employees, next_id, rows = np.arange(clients), rng.integers(1, 1000, clients), clients, 0
    for month in range(months + (last is not None)):
        table = snapshot(rng, ids, employees)
        if month == months:
            write_csv(table, last)
            break
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


def make_scaled(root: Path, clients: int, months: int, stage: str = "fullprocess.py",
                last: Path | None = None) -> tuple[Path, dict]:
    """A project whose source folder holds the history, taken in by one run of `stage`; (config, figures)."""
    config = empty_project(root)
    start = time.perf_counter()
    rows = write_history(root / "sourcedata", clients, months, seed=clients, last=last)
    written = time.perf_counter() - start
    progress(f"{rows:,} rows: {months} monthly files written in {written:.1f} s")
    first = script(stage, config)
    progress(f"{rows:,} rows: first {stage} run {first:.1f} s")
    return config, {"rows": rows, "clients": clients, "write_csv_s": written, "first_fullprocess_s": first}


def script(name: str, config: Path) -> float:
    """Wall seconds of `python <name> --config <config>` run as cron would; it must exit 0."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / name), "--config", str(config)], cwd="/", env=CRON_ENV,
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{name} exited {done.returncode}: {done.stderr[-2000:]}")
    return time.perf_counter() - start


def baseline_fit(config: Path) -> float:
    """Wall seconds of a process reading finaldata.csv as training does and fitting one plain LogisticRegression."""
    data = config.parent / FOLDERS["output_folder_path"] / "finaldata.csv"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", BASELINE_FIT, str(data)], cwd=REPO, check=True, capture_output=True,
                   timeout=3600)
    return time.perf_counter() - start


def stages(config: Path, rows: int, runs: int) -> dict:
    """training.py, the read + fit baseline, diagnostics.py and reporting.py, interleaved, `runs` times each."""
    times: dict[str, list[float]] = {"baseline_fit_s": [], "training_py_s": [], "diagnostics_py_s": [],
                                     "reporting_py_s": []}
    for run in range(runs):
        times["baseline_fit_s"].append(baseline_fit(config))
        for name in ("training", "diagnostics", "reporting"):
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
    """A tick adding one month of TICK_ROWS rows (no drift), `runs` times, each from the same saved state."""
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
    progress(f"{rows:,} rows: tick +{TICK_ROWS:,} rows: " + ", ".join(f"{t:.2f} s" for t in times)
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


def ingest_ticks(config: Path, tick_file: Path, runs: int, label: str) -> dict:
    """`ingestion.py` taking `tick_file`, `runs` times from the same saved state: (median seconds, bytes of the
    prepared state it wrote: files new or changed), each run whole, as cron runs it."""
    root = config.parent
    output = root / FOLDERS["output_folder_path"]
    saved = root.parent / f"saved-{output.name}"
    shutil.copytree(output, saved)
    times, written = [], []
    for _ in range(runs):
        before = set(prepared_files(config))  # a segment is never rewritten: a new one has a new name
        shutil.copy(tick_file, root / "sourcedata" / tick_file.name)
        times.append(script("ingestion.py", config))
        after = prepared_files(config)
        written.append(sum(size for name, size in after.items() if name not in before or name == "prepared.npz"))
        (root / "sourcedata" / tick_file.name).unlink()
        shutil.rmtree(output)
        shutil.copytree(saved, output)
    shutil.rmtree(saved)
    progress(f"{label}: ingestion.py " + ", ".join(f"{t:.2f} s" for t in times)
             + f"; prepared state written {median(written) / 2**20:.2f} MiB")
    return {"s": median(times), "prepared_mib": median(written) / 2**20}


def client_base(scratch: Path, clients: int, months: int, runs: int) -> dict:
    """The big portfolio (fullprocess, so a model serves), its API, and the ingestion ticks against their
    references: 50k rows onto it and onto an empty project, its next month onto it and onto a tenth of it."""
    month = scratch / "next_month.csv"
    small_file = scratch / "fifty_thousand.csv"
    one_file(small_file, SMALL_TICK_ROWS, seed=5)  # ids c0.. : clients of the big portfolio
    config, figures = make_scaled(scratch / "big" / "project", clients, months, last=month)
    figures.update(api(config, figures["rows"], rounds=15 if runs > 1 else 5))
    big_small = ingest_ticks(config, small_file, runs, f"{clients:,} clients, +{SMALL_TICK_ROWS:,} rows")
    big_month = ingest_ticks(config, month, runs, f"{clients:,} clients, +1 month ({clients:,} rows)")
    shutil.rmtree(config.parent.parent)
    empty = empty_project(scratch / "empty" / "project")
    empty_small = ingest_ticks(empty, small_file, runs, f"empty project, +{SMALL_TICK_ROWS:,} rows")
    shutil.rmtree(empty.parent.parent)
    tenth, _ = make_scaled(scratch / "tenth" / "project", clients // 10, months, stage="ingestion.py")
    tenth_month = ingest_ticks(tenth, month, runs, f"{clients // 10:,} clients, +1 month ({clients:,} rows)")
    shutil.rmtree(tenth.parent.parent)
    for name, tick in (("small_onto_big", big_small), ("small_onto_empty", empty_small),
                       ("month_onto_big", big_month), ("month_onto_tenth", tenth_month)):
        figures[f"ingest_{name}_s"], figures[f"ingest_{name}_prepared_mib"] = tick["s"], tick["prepared_mib"]
    return figures


def client_targets(big: dict) -> list[tuple[str, float, float, bool]]:
    clients = big["clients"]
    found = [
        (f"ingestion.py +{SMALL_TICK_ROWS:,} rows onto {clients:,} clients / onto an empty project",
         big["ingest_small_onto_big_s"] / big["ingest_small_onto_empty_s"], 1.5),
        (f"ingestion.py +1 month ({clients:,} rows) onto {big['rows']:,} rows / onto a tenth of the clients",
         big["ingest_month_onto_big_s"] / big["ingest_month_onto_tenth_s"], 2.0),
        (f"gunicorn worker peak RSS (2 workers) after every route, {clients:,} clients (MiB)",
         big["worker_peak_rss_mib"], 300.0),
    ]
    return [(what, value, limit, value <= limit) for what, value, limit in found]


# ---- one size, all sizes, the targets --------------------------------------------------------------------
def measure_size(scratch: Path, clients: int, months: int, runs: int, tick_file: Path) -> dict:
    config, figures = make_scaled(scratch / f"c{clients}" / "project", clients, months)
    figures.update(api(config, figures["rows"], rounds=15 if runs > 1 else 5))
    figures.update(stages(config, figures["rows"], runs))
    figures.update(ticks(config, figures["rows"], runs, tick_file))
    shutil.rmtree(config.parent.parent)
    return figures


def targets(sizes: list[dict], first: dict) -> list[tuple[str, float, float, bool]]:
    """(what, measured ratio or value, limit, held) for each acceptance target."""
    small, middle, large = sizes
    found = []
    for path in READS:
        key = f"p50_ms {path}"
        found.append((f"GET {path} p50 at {large['rows']:,} / at {small['rows']:,}", large[key] / small[key], 2.0))
        found.append((f"GET {path} p50 / GET /health, {large['rows']:,} rows", large[key] / large["p50_ms /health"],
                      10.0))
    found += [
        (f"GET /diagnostics p50 at {large['rows']:,} rows (s)", large["p50_ms /diagnostics"] / 1000, 1.0),
        (f"tick +{TICK_ROWS:,} rows onto {large['rows']:,} / onto {middle['rows']:,}",
         large["tick_s"] / middle["tick_s"], 2.0),
        (f"training.py / (read + LogisticRegression().fit), {large['rows']:,} rows",
         large["training_py_s"] / large["baseline_fit_s"], 2.0),
        (f"diagnostics.py / training.py, {large['rows']:,} rows", large["diagnostics_py_s"] / large["training_py_s"],
         1.0),
        (f"reporting.py / training.py, {large['rows']:,} rows", large["reporting_py_s"] / large["training_py_s"], 1.0),
        (f"gunicorn worker peak RSS after every route, {large['rows']:,} rows (MiB)", large["worker_peak_rss_mib"],
         300.0),
        (f"tick on {FIRST_FILE_ROWS:,} rows after a 26-row model, peak RSS (MiB)", first["first_file_tick_rss_mib"],
         2048.0),
        (f"tick on {FIRST_FILE_ROWS:,} rows after a 26-row model, exit code", first["first_file_tick_exit"], 0.0),
    ]
    return [(what, value, limit, value <= limit) for what, value, limit in found]


def show(sizes: list[dict], found: list[tuple]) -> None:
    keys = [k for k in sizes[0] if isinstance(sizes[0][k], (int, float))] if sizes else []
    if sizes:
        print(f"{'':>40}" + "".join(f"{s['rows']:>14,}" for s in sizes))
    for key in keys:
        print(f"{key:>40}" + "".join(f"{s[key]:>14.3f}" if isinstance(s[key], float) else f"{s[key]:>14}"
                                     for s in sizes))
    if sizes and "tick_action" in sizes[0]:
        print(f"{'tick_action':>40}  " + " | ".join(s["tick_action"] for s in sizes))
    print()
    for what, value, limit, held in found:
        print(f"{'PASS' if held else 'FAIL'}  {what}: {value:.3f} (target <= {limit:g})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=CLIENTS, help=f"clients at the largest size ({CLIENTS:,})")
    parser.add_argument("--months", type=int, default=MONTHS, help=f"monthly snapshots ({MONTHS})")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each script and tick (3)")
    parser.add_argument("--quick", action="store_true", help="1/10 of the clients, 1 run; a tenth of the big "
                        "portfolio over 2 months")
    parser.add_argument("--part", choices=("all", "sizes", "clients"), default="all",
                        help="the three sizes (issue 13), the client base (issue 23), or both (all)")
    parser.add_argument("--big-clients", type=int, default=BIG_CLIENTS,
                        help=f"clients of the client-base portfolio ({BIG_CLIENTS:,})")
    parser.add_argument("--big-months", type=int, default=BIG_MONTHS, help=f"its monthly snapshots ({BIG_MONTHS})")
    args = parser.parse_args(argv)
    clients, runs = (args.clients // 10, 1) if args.quick else (args.clients, args.runs)
    big_clients, big_months = (args.big_clients // 10, 2) if args.quick else (args.big_clients, args.big_months)
    sizes, first, big, found = [], {}, {}, []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        root = Path(scratch)
        if args.part in ("all", "sizes"):
            tick_file = root / "month_next.csv"
            one_file(tick_file, TICK_ROWS, seed=2)
            sizes = [measure_size(root, n, args.months, runs, tick_file)
                     for n in (clients // 100, clients // 10, clients)]
            first = first_file_tick(root)
            found += targets(sizes, first)
        if args.part in ("all", "clients"):
            big = client_base(root, big_clients, big_months, runs)
            found += client_targets(big)
    for key, value in big.items():
        print(f"client base: {key:>40} {value:>14.3f}" if isinstance(value, float) else
              f"client base: {key:>40} {value:>14}")
    show(sizes, found)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"sizes": sizes, "first_file": first, "client_base": big, "targets": found},
                                  indent=2) + "\n", encoding="utf-8")
    return 0 if all(held for *_, held in found) else 1


if __name__ == "__main__":
    sys.exit(main())
