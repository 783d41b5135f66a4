"""Expected hit rate with its Poisson-binomial interval, and the calibration alert, against known answers."""
from __future__ import annotations

import numpy as np
import pytest

from risk import expected


def test_the_expected_rate_is_the_mean_probability_with_the_exact_interval():
    # Two clients at p = 0.5: hits ~ Binomial(2, 0.5), P(0) = P(2) = 0.25, P(1) = 0.5: the 2.5% and 97.5%
    # quantiles are 0 and 2 hits -> rates 0 and 1. Mean 0.5.
    found = expected.expected_hit_rate(np.array([0.5, 0.5]))
    assert (found["rate"], found["low"], found["high"], found["n"]) == (0.5, 0.0, 1.0, 2)


def test_a_long_list_has_a_narrow_interval_around_its_mean():
    # 100 clients at p = 0.2: Binomial(100, 0.2), 2.5% quantile 12, 97.5% quantile 28 (scipy.stats.binom.ppf).
    found = expected.expected_hit_rate(np.full(100, 0.2))
    assert found["rate"] == pytest.approx(0.2)
    assert (found["low"], found["high"]) == (0.12, 0.28)
    assert expected.outside(found, 11, 100) is True
    assert expected.outside(found, 12, 100) is False
    assert expected.expected_hit_rate(np.array([])) is None


@pytest.mark.parametrize(("flags", "fires"), [([True, True, True], True), ([True, None, True, True], True),
                                              ([True, True, False], False), ([True, True], False),
                                              ([False, True, True, True], True), ([None, None, None], False)])
def test_the_alert_fires_on_three_judged_lists_running(flags, fires):
    assert expected.alert(flags) is fires
