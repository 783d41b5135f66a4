"""make bench-retention in short: its scoring of the targets by hand, and one short seed through the pipeline."""
from __future__ import annotations

import pytest

from bench import bench_retention


def run(scenario: str, truth: float, low: float, high: float, verdict: str, detectable: float = 5.0) -> dict:
    return {"scenario": scenario, "truth": truth, "effect": {"intention_to_treat": {"low": low, "high": high},
                                                            "verdict": verdict, "detectable_points": detectable}}


def test_the_targets_are_scored_by_hand():
    runs = [run("helps", -10, -14, -5, "calls help"), run("helps", -10, -9, -1, "calls help"),  # 1 of 2 covers
            run("none", 0, -3, 4, "not shown either way"), run("none", 0, -6, -1, "calls help"),  # 1 of 2 claims
            run("harms", 8, 2, 12, "calls harm"), run("harms", 8, -1, 9, "not shown either way", 12.0)]
    found = {name: (value, n, met) for name, value, n, _, met in bench_retention.targets(runs)}
    assert found["interval covers the true effect"] == (4 / 6, 6, False)  # the 2nd and 4th miss their truth
    assert found["no effect, 'calls help' claimed"] == (0.5, 2, False)
    assert found["harm reported once detectable"] == (1.0, 1, True)  # the last cannot detect 8 points (12)


@pytest.mark.slow
def test_one_short_seed_goes_through_the_pipeline_and_the_api():
    # 300 clients, 60 to call and 60 controls a month for 3 months: every list judged, reach 0.8
    found = bench_retention.one_seed("helps", 0, months=3, clients=300)
    effect = found["effect"]
    assert (effect["months"], effect["called"]["clients"], effect["holdout"]["clients"]) == (3, 180, 180)
    assert 0.6 < effect["contacted"]["clients"] / 180 < 1.0  # reached with chance 0.8
    assert found["truth"] < 0
