"""A 100k-row CSV POST /prediction on gunicorn (2 workers) vs the deployed model called directly, same run.

Runs alternate the request and the direct calls so that machine noise falls on both. Target (issue 7): median
request time <= 5x "calling the model directly on the same DataFrame": `model.predict_proba(frame[FEATURES])`
on the pandas DataFrame of the CSV. Also shown: the model on a ready float64 array (no DataFrame at all), and
pandas reading the CSV bytes then the model (what a caller without the API would do).
Run: .venv/bin/python bench/bench_batch.py [--quick]
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import warnings

import numpy as np
import pandas as pd
from common import REPO, gunicorn, median, project, timed, timed_request

sys.path.insert(0, str(REPO))
from risk import contract, registry
from risk.config import load_config

ROWS = 100_000
RUNS = 11
WARM_UP = 8
MAX_RATIO = 5.0
FEATURES = list(contract.FEATURES)


def batch_csv(rows: int = ROWS, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"corporation": [f"client{i}" for i in range(rows)],
                          **dict(zip(FEATURES, (rng.integers(0, 300, rows), rng.integers(0, 3000, rows),
                                                rng.integers(1, 1000, rows)), strict=True))})
    return frame.to_csv(index=False).encode()


def post_csv(port: int, body: bytes) -> tuple[float, dict]:
    """Seconds for one POST /prediction of a CSV body (send, score, receive), and the parsed answer."""
    elapsed, data = timed_request(port, "POST", "/prediction", body, {"Content-Type": "text/csv"})
    return elapsed, json.loads(data)


def measure(runs: int = RUNS) -> dict:
    body = batch_csv()
    request, on_frame, model_only, read_and_model = [], [], [], []
    with project() as config_path, gunicorn(config_path) as port:
        model = registry.load_model(registry.current(load_config(config_path).prod_folder))
        frame = pd.read_csv(io.BytesIO(body))
        x = frame[FEATURES].to_numpy(dtype="float64")
        for _ in range(WARM_UP):  # each worker loads the model, and its memory pools grow to a request's size
            post_csv(port, body)
        for _ in range(runs):
            seconds, answer = post_csv(port, body)
            request.append(seconds)
            with warnings.catch_warnings():  # the model was fitted on arrays; it names no features to compare
                warnings.simplefilter("ignore", UserWarning)
                on_frame.append(timed(lambda: model.predict_proba(frame[FEATURES])))
            model_only.append(timed(model.predict_proba, x))
            read_and_model.append(timed(lambda: model.predict_proba(
                pd.read_csv(io.BytesIO(body))[FEATURES].to_numpy(dtype="float64"))))
        expected = model.predict_proba(x)[:, 1]
    served = np.asarray(answer["probabilities"])
    same = len(served) == ROWS and bool(np.allclose(served, expected, atol=1e-6))
    ratio = median(request) / median(on_frame)
    return {
        "name": f"POST /prediction, {ROWS // 1000}k-row CSV ({len(body) / 1e6:.1f} MB), gunicorn 2 workers",
        "request_ms": 1000 * median(request),
        "model_on_dataframe_ms": 1000 * median(on_frame),
        "ratio": ratio,
        "model_on_array_ms": 1000 * median(model_only),
        "ratio_to_model_on_array": median(request) / median(model_only),
        "read_csv_and_model_ms": 1000 * median(read_and_model),
        "ratio_to_read_csv_and_model": median(request) / median(read_and_model),
        "runs": runs,
        "same_probabilities": same,
        "pass": same and ratio <= MAX_RATIO,
        "target": f"<= {MAX_RATIO}x model.predict_proba on the same DataFrame, same run",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 11")
    print(measure(runs=3 if parser.parse_args().quick else RUNS))
