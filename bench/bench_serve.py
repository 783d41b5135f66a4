"""POST /prediction of one record vs GET /health on the same gunicorn server (2 workers), same run.

Rounds alternate health and prediction so that machine noise falls on both. Target (issue 3): median
prediction req/s >= 0.5x median health req/s. Prints p50/p99 latencies.
"""
from __future__ import annotations

from common import gunicorn, load, median, one_record, project

ROUNDS = 3
SECONDS = 4.0
CLIENTS = 2
MIN_RATIO = 0.5
RECORD = one_record(50, 900, 12)


def measure(rounds: int = ROUNDS, seconds: float = SECONDS) -> dict:
    health, predict = [], []
    with project() as config, gunicorn(config) as port:
        load(port, "POST", "/prediction", RECORD, 1.0, CLIENTS)  # warm-up: each worker loads the model
        for _ in range(rounds):
            health.append(load(port, "GET", "/health", None, seconds, CLIENTS))
            predict.append(load(port, "POST", "/prediction", RECORD, seconds, CLIENTS))
    h_rps = median([r["rps"] for r in health])
    p_rps = median([r["rps"] for r in predict])
    return {
        "name": "POST /prediction (1 record) vs GET /health, gunicorn 2 workers",
        "health_rps": h_rps,
        "prediction_rps": p_rps,
        "ratio": p_rps / h_rps,
        "health_p50_ms": median([r["p50_ms"] for r in health]),
        "health_p99_ms": median([r["p99_ms"] for r in health]),
        "prediction_p50_ms": median([r["p50_ms"] for r in predict]),
        "prediction_p99_ms": median([r["p99_ms"] for r in predict]),
        "failed": sum(r["failed"] for r in health + predict),
        "pass": p_rps / h_rps >= MIN_RATIO and not any(r["failed"] for r in health + predict),
        "target": f">= {MIN_RATIO}x GET /health req/s, 0 failed",
    }


if __name__ == "__main__":
    print(measure())
