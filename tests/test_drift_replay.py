"""The replay benchmark in short form: the generator's scenarios do what they claim; the default method's
false retrains stay rare and concept drift is found, where the course's rule retrains on noise."""
from __future__ import annotations

import numpy as np
import pytest

from bench import bench_drift
from risk import drift

REPLAYS = 20
SIZES = (20, 100, 1000)


@pytest.fixture(scope="module")
def result() -> dict:
    generator = bench_drift.fit_generator(bench_drift.course_frame())
    return bench_drift.replay(generator, SIZES, REPLAYS, seed=1)


def rate(result: dict, method: str, scenario: str, n: int) -> float:
    return result["retrains"][(method, scenario, n)] / result["replays"]


def test_the_generator_is_fitted_to_the_course_data() -> None:
    frame = bench_drift.course_frame()
    generator = bench_drift.fit_generator(frame)
    x, y = bench_drift.sample(generator, 20_000, np.random.default_rng(0))
    assert y.mean() == pytest.approx(frame["exited"].mean(), abs=0.06)
    logged = np.log1p(frame[list(bench_drift.contract.FEATURES)].to_numpy(float))
    assert np.log1p(x).mean(axis=0) == pytest.approx(logged.mean(axis=0), abs=0.15)


@pytest.mark.slow
def test_the_scenarios_cost_what_they_claim(result: dict) -> None:
    f1 = {s: result["mean_f1"][(s, 1000)] for s in bench_drift.SCENARIOS}
    assert f1["covariate shift"] >= f1["no drift"] - 0.01  # harmless to the deployed model
    assert f1["concept drift"] <= f1["no drift"] - 0.1  # costs at least 0.1 F1 in expectation


@pytest.mark.slow  # a second or more
def test_the_default_method_rarely_retrains_on_noise_and_finds_concept_drift(result: dict) -> None:
    for n in SIZES:
        assert rate(result, "statistical", "no drift", n) <= 0.1
        assert rate(result, "statistical", "covariate shift", n) <= 0.1
    assert rate(result, "statistical", "concept drift", 20) == 0.0  # below drift_min_rows: it waits
    assert rate(result, "statistical", "concept drift", 100) >= 0.8
    assert rate(result, "statistical", "concept drift", 1000) >= 0.9


def test_the_course_rule_retrains_on_noise(result: dict) -> None:
    assert min(rate(result, "raw", "no drift", n) for n in SIZES) >= 0.25


def test_the_table_shows_every_method_with_intervals(result: dict) -> None:
    table = bench_drift.table(result, SIZES)
    lines = table.splitlines()
    assert len(lines) == 2 + len(bench_drift.METHODS) * len(SIZES)
    assert lines[2].startswith("| statistical | 20 | ")
    assert bench_drift.wilson(0, 200) == (0.0, pytest.approx(0.0188, abs=1e-3))
    assert bench_drift.wilson(10, 200) == (pytest.approx(0.0274, abs=1e-3), pytest.approx(0.0899, abs=1e-3))


def test_the_monitoring_tools_ks_rule_counts_features() -> None:
    """bench_drift.ks_majority_rule (only the bench uses it): drift when half of the features drift at KS p < 0.05."""
    generator, names = np.random.default_rng(13), ("a", "b", "c", "d")
    reference_x = generator.normal(size=(500, 4))
    moved = reference_x[:200] + np.array([3.0, 3.0, 0.0, 0.0])
    assert bench_drift.ks_majority_rule(reference_x, moved, names).verdict == drift.DRIFT  # 2 of 4
    one = reference_x[:200] + np.array([3.0, 0.0, 0.0, 0.0])
    assert bench_drift.ks_majority_rule(reference_x, one, names).verdict == drift.NO_DRIFT  # 1 of 4
