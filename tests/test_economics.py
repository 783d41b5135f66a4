"""How many calls pay: EMP against the published example, the expected profit curve by hand, the recommendation."""
from __future__ import annotations

import numpy as np
import pytest

from risk import economics

# The example of R's EMP package and of empulse's documentation (Verbraken et al. 2013's defaults).
LABELS = [0, 1, 0, 1, 0, 1, 0, 1]
SCORES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.8, 0.9]


def test_emp_and_mp_match_the_published_example():
    found = economics.maximum_profit(np.array(LABELS), np.array(SCORES), economics.Economics())
    assert found["emp"] == pytest.approx(23.8756, abs=5e-5)
    assert found["share"] == pytest.approx(0.8744, abs=5e-5)
    assert found["mp"] == pytest.approx(23.875, abs=1e-9)
    assert found["share"] != found["mp_share"]
    assert found["mp_share"] == pytest.approx(0.875, abs=1e-9)


def test_the_profit_curve_is_each_calls_expected_profit_added_up():
    # Beta(6, 14): a leaver accepts with mean 0.3, kept value 0.3 * (200 - 10) = 57 less the call (1): 56;
    # a client who stays takes the offer: -(10 + 1) = -11. p = 0.9: 0.9 * 56 - 0.1 * 11 = 49.3;
    # p = 0.5: 28 - 5.5 = 22.5; p = 0.1: 5.6 - 9.9 = -4.3. Sorted descending whatever the input order.
    curve = economics.profit_curve(np.array([0.1, 0.9, 0.5]), economics.Economics())
    assert curve == pytest.approx([0.0, 49.3, 71.8, 67.5])


def test_the_break_even_probability_is_eleven_sixty_sevenths():
    # 56 p = 11 (1 - p)  ->  p = 11 / 67: a call at that probability earns nothing.
    assert economics.call_values(np.array([11 / 67]), economics.Economics())[0] == pytest.approx(0.0, abs=1e-12)


def test_emp_and_mp_match_empulse_on_tied_scores():
    # empulse 0.13.1's empc_score, optimal_rate and mpc_score on these 500 rows (numpy's default_rng(0)):
    # 10.784129694968126 at 0.8379931546442936, MP 10.648 at 0.908 (scores rounded to 2 places: many ties)
    rng = np.random.default_rng(0)
    rng.random(50), rng.random(50), rng.normal(0, 0.3, 50)  # the draws of the 50-row case before it
    p = rng.random(500)
    y = (rng.random(500) < p * 0.6).astype(int)
    scores = np.round(p + rng.normal(0, 0.3, 500), 2)
    found = economics.maximum_profit(y, scores, economics.Economics())
    assert (found["emp"], found["share"]) == (pytest.approx(10.784129694968126), pytest.approx(0.8379931546442936))
    assert (found["mp"], found["mp_share"]) == (pytest.approx(10.648), pytest.approx(0.908))


@pytest.mark.parametrize(("share", "portfolio", "capacity", "calls"),
                         [(0.0874, 1000, 20, 20), (0.0874, 100, 20, 9), (None, 100, 20, 20), (0.0, 500, 20, 0)])
def test_the_recommended_calls_are_the_paying_share_capped_by_capacity(share, portfolio, capacity, calls):
    assert economics.recommended_calls(share, portfolio, capacity) == calls
