"""The holdout draw: its size, its strata, its seed."""
from __future__ import annotations

import numpy as np
import pytest

from risk import holdout


@pytest.mark.parametrize(("capacity", "share", "size"), [(20, 0.2, 25), (20, 0.0, 20), (10, 0.5, 20), (1, 0.9, 10),
                                                         (3, 0.3, 4)])
def test_callers_keep_their_capacity(capacity, share, size):
    assert holdout.list_size(capacity, share) == size
    groups = holdout.assign(size, capacity, seed=7)
    assert (groups == holdout.CALL).sum() == capacity


def test_one_control_in_each_stratum_of_ranks_and_the_seed_repeats_the_draw():
    groups = holdout.assign(25, 20, seed=3)
    controls = np.flatnonzero(groups == holdout.CONTROL)
    assert [c // 5 for c in controls] == [0, 1, 2, 3, 4]  # strata of 5 ranks: 0-4, 5-9, ...
    assert (holdout.assign(25, 20, seed=3) == groups).all()
    draws = {tuple(np.flatnonzero(holdout.assign(25, 20, seed=s) == holdout.CONTROL)) for s in range(20)}
    assert len(draws) > 10  # the seed matters


def test_every_rank_is_as_likely_to_be_held_out():
    # 20 of 25 called: each rank is a control with probability 1/5; over 2000 seeded draws each rank's share
    # lies within 0.2 +- 0.035 (4.4 standard errors of sqrt(0.2 * 0.8 / 2000) = 0.0089).
    shares = np.mean([holdout.assign(25, 20, seed=s) == holdout.CONTROL for s in range(2000)], axis=0)
    assert np.abs(shares - 0.2).max() < 0.035
