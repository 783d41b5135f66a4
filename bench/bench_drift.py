"""Replay benchmark of the drift decision: how often each method retrains with no drift, and detects drift.

Reads the course CSVs (practicedata/, sourcedata/) to fit a generator; writes nothing unless --json PATH.
Each replay trains a deployed model (and its card) on generated rows, then draws new batches of n rows:
no drift, a covariate shift that does not hurt the model, and a concept drift that costs it F1.
Run: python bench/bench_drift.py [--replays 200] [--sizes 5 20 100 1000 10000] [--seed 0] [--jobs 2]
[--json PATH]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from risk import (  # noqa: E402
    contract,
    drift,
    methods,
    training,
)

# scenario: (shift of the log1p(feature) means in standard deviations, factor on the label rule's
# first feature's coefficient, change of its intercept); each one's cost in F1 is measured and printed
SCENARIO_SPECS = {
    "no drift": ((0.0, 0.0, 0.0), 1.0, 0.0),
    "covariate shift": ((0.0, -1.5, 1.5), 1.0, 0.0),  # fewer yearly activities, more employees: harmless
    "concept drift": ((0.0, 0.0, 0.0), -1.0, -0.5),  # activity no longer protects, fewer clients leave
    "mild concept drift": ((0.0, 0.0, 0.0), -1.0, -0.2),  # about half the cost: reported, no target
}
SCENARIOS = tuple(SCENARIO_SPECS)
SIZES = (5, 20, 100, 1000, 10000)
METHODS = tuple(methods.METHODS)  # the registry the pipeline and the config check read
TRAIN_ROWS = 1000  # rows the deployed model is trained (and cross-validated) on
TEST_ROWS = 100  # rows of the test set that gives the raw rule its deployed score (the course ships 5)
PAST_TICKS = 10  # earlier calm batches whose F1s the parametric / nonparametric rules compare with
DEFAULTS = drift.Thresholds()
TARGETS = {"false_retrain": 0.05, "detection": 0.80, "detect_from": 100}

Generator = namedtuple("Generator", "mean cov center scale coef intercept")


def course_frame(repo: Path = REPO) -> pd.DataFrame:
    """Every labelled row of the course's practice and source CSVs."""
    paths = sorted((repo / "practicedata").glob("*.csv")) + sorted((repo / "sourcedata").glob("*.csv"))
    return pd.concat([contract.read_csv(p, source=str(p)) for p in paths], ignore_index=True)


def fit_generator(frame: pd.DataFrame) -> Generator:
    """A Gaussian on log1p(features) and a logistic label rule on its standardised values, fitted to `frame`."""
    x, y = contract.split_xy(frame)
    z = np.log1p(np.asarray(x, dtype=float))
    center, scale = z.mean(axis=0), z.std(axis=0)
    rule = LogisticRegression(max_iter=1000).fit((z - center) / scale, np.asarray(y))
    return Generator(center, np.cov(z.T), center, scale, rule.coef_[0], float(rule.intercept_[0]))


def sample(gen: Generator, n: int, rng: np.random.Generator, scenario: str = "no drift") -> tuple:
    """n rows (features as counts, labels) under `scenario`."""
    shift, factor, base = SCENARIO_SPECS[scenario]
    z = rng.multivariate_normal(gen.mean + np.asarray(shift) * np.sqrt(np.diag(gen.cov)), gen.cov, size=n)
    coef = gen.coef * np.r_[factor, 1.0, 1.0]
    logit = ((z - gen.center) / gen.scale) @ coef + gen.intercept + base
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return np.maximum(np.rint(np.expm1(z)), 0), y


def frame_of(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({**dict(zip(contract.FEATURES, x.T, strict=True)), contract.TARGET: y})


Deployed = namedtuple("Deployed", "model reference test_f1")


def deploy(gen: Generator, rng: np.random.Generator) -> Deployed:
    """Train a model like training.py does, with its card's expected performance, and a course-style score."""
    x, y = sample(gen, TRAIN_ROWS, rng)
    frame = frame_of(x, y)
    model = training.train_model(frame)
    card = training.expected_performance(frame)
    counts = np.array([card["confusion"][k] for k in ("tp", "fp", "fn", "tn")])
    reference = drift.Reference(counts, np.asarray(card["row_log_loss"]), x)
    tx, ty = sample(gen, TEST_ROWS, rng)
    return Deployed(model, reference, drift.f1(ty, model.predict(tx)))


def decisions(deployed: Deployed, x: np.ndarray, y: np.ndarray, past: list[float],
              thresholds: drift.Thresholds, seed: int) -> tuple[dict, float]:
    """Whether each method retrains on this batch (the registry's functions, as the pipeline calls them), and
    the deployed model's F1 on it."""
    batch = drift.Batch(y, deployed.model.predict(x), deployed.model.predict_proba(x)[:, 1], x)
    inputs = drift.Inputs(batch, deployed.reference, deployed.test_f1, past, contract.FEATURES, thresholds, seed)
    retrains = {m: decide(inputs).verdict == drift.DRIFT for m, decide in methods.METHODS.items()}
    return retrains, drift.f1(y, batch.predicted)


def replay_one(gen: Generator, sizes: tuple[int, ...], seed: int, r: int, thresholds: drift.Thresholds) -> dict:
    """One replay: a deployed model, then for each n its past calm scores and one batch per scenario."""
    rng = np.random.default_rng([seed, r])
    deployed = deploy(gen, rng)
    out = {}
    for n in sizes:
        past = [drift.f1(y, deployed.model.predict(x)) for x, y in (sample(gen, n, rng) for _ in range(PAST_TICKS))]
        for s in SCENARIOS:
            x, y = sample(gen, n, rng, s)
            out[(s, n)] = decisions(deployed, x, y, past, thresholds, seed=r)
    return out


def _chunk(args: tuple) -> list[dict]:
    gen, sizes, seed, replays, thresholds = args
    return [replay_one(gen, sizes, seed, r, thresholds) for r in replays]


def replay(gen: Generator, sizes: tuple[int, ...], replays: int, seed: int,
           thresholds: drift.Thresholds = DEFAULTS, jobs: int = 1) -> dict:
    """Retrain counts per (method, scenario, n) and the mean F1 of the deployed model per (scenario, n)."""
    chunks = [(gen, sizes, seed, range(j, replays, jobs), thresholds) for j in range(jobs)]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as pool:
            runs = [run for chunk in pool.map(_chunk, chunks) for run in chunk]
    else:
        runs = _chunk(chunks[0])
    retrains = {(m, s, n): sum(run[(s, n)][0][m] for run in runs) for m in METHODS for s in SCENARIOS for n in sizes}
    mean_f1 = {(s, n): float(np.mean([run[(s, n)][1] for run in runs])) for s in SCENARIOS for n in sizes}
    return {"replays": replays, "retrains": retrains, "mean_f1": mean_f1}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate k/n."""
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half / (1 + z * z / n)), min(1.0, centre + half / (1 + z * z / n))


def cell(k: int, n: int) -> str:
    low, high = wilson(k, n)
    return f"{k / n:5.1%} [{low:.0%}, {high:.0%}]"


def table(result: dict, sizes: tuple[int, ...]) -> str:
    """Markdown: per method and n, false-retrain rates (no drift, harmless shift) and the detection rate."""
    reps = result["replays"]
    lines = ["| method | n | false retrain: no drift | false retrain: covariate shift | detection: concept drift"
             " | detection: mild concept drift |", "| --- | ---: | --- | --- | --- | --- |"]
    for m in METHODS:
        for n in sizes:
            rates = [cell(result["retrains"][(m, s, n)], reps) for s in SCENARIOS]
            lines.append(f"| {m} | {n} | " + " | ".join(rates) + " |")
    return "\n".join(lines)


def effects(result: dict, sizes: tuple[int, ...]) -> str:
    """The deployed models' mean F1 per scenario at the largest n: what each scenario does to them."""
    n = max(sizes)
    f1 = {s: result["mean_f1"][(s, n)] for s in SCENARIOS}
    changes = ", ".join(f"{s} {f1[s]:.3f} ({f1[s] - f1['no drift']:+.3f})" for s in SCENARIOS[1:])
    return f"mean F1 of the deployed models on n={n} batches: no drift {f1['no drift']:.3f}, {changes}"


def misses(result: dict, sizes: tuple[int, ...]) -> list[str]:
    """Acceptance of the default method: false retrains <= 5% everywhere, detection >= 80% from n=100."""
    reps, out = result["replays"], []
    for n in sizes:
        for s in SCENARIOS[:2]:
            rate = result["retrains"][("statistical", s, n)] / reps
            if rate > TARGETS["false_retrain"]:
                out.append(f"false retrains {rate:.1%} > 5% ({s}, n={n})")
        rate = result["retrains"][("statistical", "concept drift", n)] / reps
        if n >= TARGETS["detect_from"] and rate < TARGETS["detection"]:
            out.append(f"detection {rate:.1%} < 80% (n={n})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replays", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (replays are split between them)")
    parser.add_argument("--json", type=Path, help="also write the counts to this file")
    args = parser.parse_args(argv)
    sizes, started = tuple(args.sizes), time.perf_counter()
    result = replay(fit_generator(course_frame()), sizes, args.replays, args.seed, jobs=args.jobs)
    print(f"{args.replays} replays per cell, seed {args.seed}, deployed models trained on {TRAIN_ROWS} rows;"
          f" default thresholds {dict(drift.Thresholds()._asdict())}")
    print(effects(result, sizes))
    print(table(result, sizes))
    missed = misses(result, sizes)
    print(f"default method: {'; '.join(missed) if missed else 'meets the targets'}"
          f" ({time.perf_counter() - started:.0f} s)")
    if args.json:
        counts = {" / ".join(map(str, k)): v for k, v in result["retrains"].items()}
        args.json.write_text(json.dumps({"replays": args.replays, "retrains": counts}, indent=1) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
