"""Deploys and a rollback under load: POST /prediction on gunicorn (2 workers) for 30 s while the pipeline
deploys 3 new versions and rolls back once.

Targets (issue 5): 0 failed requests; every answer's model version was current at some instant of its request;
every request that starts more than 1 s after a switch gets the new version (all workers switched).
"""
from __future__ import annotations

import http.client
import itertools
import multiprocessing
import sys
import threading
import time

from common import REPO, gunicorn, median, project

sys.path.insert(0, str(REPO))
from risk.config import load_config  # the repo's package, once its folder is on the path

SECONDS = 30.0
CLIENTS = 2
SWITCH_SECONDS = 1.0
BODY = b'{"records": [{"lastmonth_activity": 50, "lastyear_activity": 900, "number_of_employees": 12}]}'


def client(args: tuple) -> list[tuple[float, float, int, str]]:
    """(start, end, status, version) of each request, back to back until the deadline (wall clock)."""
    port, deadline = args
    answers = []
    while time.time() < deadline:
        start = time.time()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("POST", "/prediction", body=BODY, headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            status, version = answer.status, answer.getheader("X-Model-Version") or ""
        except OSError:
            status, version = 0, ""
        finally:
            connection.close()
        answers.append((start, time.time(), status, version))
    return answers


def watch_pointer(prod, timeline: list, stop: threading.Event) -> None:
    """Record (time, version) whenever the `current` pointer changes, polling every millisecond."""
    from risk import registry

    last = None
    while not stop.is_set():
        number = registry.current_number(prod)
        if number != last:
            timeline.append((time.time(), str(number)))
            last = number
        time.sleep(0.001)


def pipeline(config, seconds: float) -> None:
    """Three deployments and one rollback, spread over the load."""
    import deployment
    import scoring
    import training

    for step in range(4):
        time.sleep(seconds / 5)
        if step < 3:
            training.run_training(config)
            scoring.run_scoring(config)
            deployment.run_deployment(config)
        else:
            deployment.run_rollback(config, None, "bench: rollback under load")


def current_at(timeline: list, start: float, end: float) -> set[str]:
    """Versions current at some instant of [start, end]."""
    versions = {v for t, v in timeline if start <= t <= end}
    before = [v for t, v in timeline if t < start]
    return versions | ({before[-1]} if before else set())


def switch_lag(answers: list, timeline: list) -> float:
    """The longest time after a switch that a request still started and got the version before it."""
    lags = [0.0]
    for (_, old), (switched, _) in itertools.pairwise(timeline):
        lags += [a[0] - switched for a in answers if a[0] > switched and a[3] == old]
    return max(lags)


def check(answers: list, timeline: list) -> dict:
    failed = [a for a in answers if a[2] != 200]
    wrong = [a for a in answers if a[2] == 200 and a[3] not in current_at(timeline, a[0], a[1])]
    late = []
    for (switched, version), following in zip(timeline, [*timeline[1:], (float("inf"), None)], strict=True):
        late += [a for a in answers if switched + SWITCH_SECONDS < a[0] and a[1] < following[0] and a[3] != version]
    return {"failed": len(failed), "wrong_version": len(wrong), "late_switch": len(late)}


def measure(seconds: float = SECONDS) -> dict:
    with project() as config_path, gunicorn(config_path) as port:
        config = load_config(config_path)
        timeline: list = []
        stop = threading.Event()
        watcher = threading.Thread(target=watch_pointer, args=(config.prod_folder, timeline, stop))
        watcher.start()
        deadline = time.time() + seconds
        with multiprocessing.get_context("fork").Pool(CLIENTS) as pool:
            pending = pool.map_async(client, [(port, deadline)] * CLIENTS)
            pipeline(config, seconds)
            answers = [a for batch in pending.get(timeout=seconds + 60) for a in batch]
        stop.set()
        watcher.join()
    outcome = check(answers, timeline)
    latencies = sorted(a[1] - a[0] for a in answers)
    return {
        "name": f"POST /prediction for {seconds:.0f} s during 3 deploys and 1 rollback, gunicorn 2 workers",
        "requests": len(answers),
        "switches": [v for _, v in timeline],
        **outcome,
        "max_switch_lag_ms": 1000 * switch_lag(answers, timeline),
        "p50_ms": 1000 * median(latencies),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "pass": outcome == {"failed": 0, "wrong_version": 0, "late_switch": 0} and len(timeline) == 5,
        "target": "0 failed, every version current during its request, all workers switch within 1 s",
    }


if __name__ == "__main__":
    print(measure(float(sys.argv[1]) if len(sys.argv) > 1 else SECONDS))
