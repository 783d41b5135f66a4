"""Shared helpers for the benchmarks: a deployed throwaway project, a gunicorn server and a loopback load.

Every load targets 127.0.0.1 only, is bounded in time, and stops by itself.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))
from risk import contract  # noqa: E402  (the repo's package, once on the path)
from risk.config import COURSE_FOLDERS as FOLDERS  # noqa: E402


def one_record(*values: float) -> bytes:
    """A /prediction JSON body of one record: `values` for the contract's first features, 1 for any further."""
    record = {name: values[i] if i < len(values) else 1 for i, name in enumerate(contract.FEATURES)}
    return json.dumps({"records": [record]}).encode()


def make_project(root: Path) -> Path:
    """A project with the course's practice data, deployed once by fullprocess; returns its config path."""
    for folder in FOLDERS.values():
        (root / folder).mkdir(parents=True, exist_ok=True)
    for source in (REPO / "practicedata").glob("*.csv"):
        shutil.copy(source, root / "sourcedata" / source.name)
    shutil.copy(REPO / "testdata" / "testdata.csv", root / "testdata" / "testdata.csv")
    config = root / "config.json"
    config.write_text(json.dumps({**FOLDERS, "api_url": "http://127.0.0.1:9"}), encoding="utf-8")
    subprocess.run([sys.executable, str(REPO / "fullprocess.py"), "--config", str(config)], check=True,
                   capture_output=True, timeout=300)
    return config


@contextmanager
def project():
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        yield make_project(Path(scratch))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, path: str = "/health", seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            status, _ = request(port, "GET", path)
            if status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not answer {path} within {seconds} s")


@contextmanager
def gunicorn(config: Path, workers: int = 2):
    """A real gunicorn serving the app on a free loopback port; yields the port."""
    port = free_port()
    command = [str(BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
               "--log-level", "warning", f"app:create_app({str(config)!r})"]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(port)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def timed_request(port: int, method: str, path: str, body: bytes | None = None,
                  headers: dict | None = None) -> tuple[float, bytes]:
    """(seconds to send, answer and read, the answer's body) of one request that must answer 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        start = time.perf_counter()
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        data = answer.read()
        elapsed = time.perf_counter() - start
    finally:
        connection.close()
    if answer.status != 200:
        raise RuntimeError(f"{method} {path} answered {answer.status}: {data[:200]!r}")
    return elapsed, data


def timed(function: object, *args: object) -> float:
    """Seconds of one call."""
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def _client(args: tuple) -> tuple[int, int, list[float]]:
    port, method, path, body, seconds = args
    ok = failed = 0
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.perf_counter()
        try:
            status, _ = request(port, method, path, body)
        except OSError:
            status = 0
        latencies.append(time.perf_counter() - start)
        ok, failed = (ok + 1, failed) if status == 200 else (ok, failed + 1)
    return ok, failed, latencies


def load(port: int, method: str, path: str, body: bytes | None, seconds: float, clients: int) -> dict:
    """`clients` processes send requests back to back for `seconds`; returns req/s and latency percentiles."""
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        results = pool.map(_client, [(port, method, path, body, seconds)] * clients)
    latencies = sorted(x for _, _, lat in results for x in lat)
    ok = sum(r[0] for r in results)
    return {
        "rps": ok / seconds,
        "failed": sum(r[1] for r in results),
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


# What cron gives a job: no PYTHONDONTWRITEBYTECODE or the like from the calling shell.
CRON_ENV = {"PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "HOME": "/root", "LOGNAME": "root"}


def run_child(command: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """Wall seconds and ru_maxrss (MiB) of one child, in cron's bare environment, by wait4 on that child alone.

    ru_maxrss includes the forking process's memory: use peak_rss for the child's own."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd or "/", env=CRON_ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{command} exited {child.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def peak_rss(command: list[str], cwd: Path | None = None) -> float:
    """Peak RSS (MiB) of one child: its own VmHWM, read from /proc every half millisecond until it exits.

    wait4's ru_maxrss would also count the memory of the process it was forked from; VmHWM belongs to the
    program after exec alone. Popen returns only once exec has happened."""
    child = subprocess.Popen(command, cwd=cwd or "/", env=CRON_ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    peak = 0
    status = Path(f"/proc/{child.pid}/status")
    while child.poll() is None:
        with contextlib.suppress(OSError, ValueError, StopIteration):
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
            peak = max(peak, int(line.split()[1]))
        time.sleep(0.0005)
    if child.returncode != 0:
        raise RuntimeError(f"{command} exited {child.returncode}")
    return peak / 1024


def median(values: list[float]) -> float:
    return statistics.median(values)
