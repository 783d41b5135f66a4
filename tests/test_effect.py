"""The effect of calling: Newcombe's interval, the detectable effect and the months still needed, by hand."""
from __future__ import annotations

import pytest

from risk import effect


def test_the_difference_and_its_newcombe_interval_by_hand():
    # Called: 10 of 100 left; holdout: 20 of 100. Wilson 95% intervals: 10/100 -> [0.0552, 0.1744],
    # 20/100 -> [0.1334, 0.2888]. Newcombe: low = -0.10 - sqrt((0.10 - 0.0552)^2 + (0.2888 - 0.20)^2) = -0.1995,
    # high = -0.10 + sqrt((0.1744 - 0.10)^2 + (0.20 - 0.1334)^2) = -0.0001.
    found = effect.rate_difference(10, 100, 20, 100)
    assert found["difference"] == pytest.approx(-10.0)
    assert found["low"] == pytest.approx(-19.95, abs=0.01)
    assert found["high"] == pytest.approx(-0.01, abs=0.01)
    assert effect.verdict(found) == "calls help"


def test_the_smallest_detectable_fall_by_hand():
    # h = (z_0.975 + z_0.8) * sqrt(1/100 + 1/100) = 2.8016 * 0.14142 = 0.3962; from a 20% base rate:
    # 2 asin(sqrt 0.2) = 0.9273, less h = 0.5311 -> sin(0.2655)^2 = 0.0689: a fall of 13.1 points.
    assert effect.detectable_points(100, 100, 0.20) == pytest.approx(13.11, abs=0.01)
    assert effect.detectable_points(10, 10, 0.05) is None  # no fall of 5% is that large


def test_months_for_a_ten_point_fall_by_hand():
    # h = 2 asin(sqrt 0.2) - 2 asin(sqrt 0.1) = 0.9273 - 0.6435 = 0.2838; n per group = 2.8016^2 * 2 / h^2
    # = 194.9; at 100 / 3 clients a month per group: 5.85 -> 6 months.
    assert effect.months_for(10.0, 0.20, 100 / 3, 100 / 3) == 6
    assert effect.months_for(10.0, 0.05, 100 / 3, 100 / 3) is None


def test_the_summary_of_enough_data_has_every_figure_and_its_counts():
    found = effect.summary(called=(10, 100), holdout=(20, 100), contacted=(5, 60), months=3)
    assert (found["called"]["leave_rate"], found["holdout"]["leave_rate"]) == (10.0, 20.0)
    assert found["verdict"] == "calls help"
    assert found["saves_per_100_calls"]["estimate"] == pytest.approx(10.0)
    assert found["saves_per_100_calls"]["low"] == pytest.approx(0.01, abs=0.01)
    assert found["months_for_10_points"] == 3  # 6 in all, 3 done
    assert found["contacted_vs_holdout"]["difference"] == pytest.approx(5 / 60 * 100 - 20)


def test_a_harmful_campaign_is_called_harmful():
    # 30 of 100 called left against 10 of 100 held out: the whole interval lies above 0.
    assert effect.summary((30, 100), (10, 100), (30, 100), 2)["verdict"] == "calls harm"


@pytest.mark.parametrize(("called", "holdout", "words"), [((3, 40), (0, 0), "no holdout"),
                                                          ((3, 40), (1, 6), "too little data: 40 called and 6")])
def test_too_little_data_says_so_and_shows_no_effect(called, holdout, words):
    found = effect.summary(called, holdout, (0, 0), 1)
    assert words in found["note"]
    assert "verdict" not in found
    assert "intention_to_treat" not in found
    assert found["called"]["clients"] == 40
