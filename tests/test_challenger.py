"""risk/challenger.py: the gate between a retrained model and the deployed one, on cases with known answers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from risk import challenger


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_the_challenger_gate_refuses_a_challenger_that_keeps_accuracy_but_loses_f1() -> None:
    """Imbalanced rows (1 leaver in 5): the challenger predicts fewer leavers; it is right as often as the champion
    (accuracy 0.84 both) but its F1 falls from 0.60 to 0.33, far more than the margin."""
    block = 4  # per block of 100 rows: 20 leavers; the champion finds 12 (8 false alarms), the retrained one 4 (0)
    y = np.tile(np.r_[np.ones(20), np.zeros(80)], block).astype(int)
    champion = np.tile(np.r_[np.ones(12), np.zeros(8), np.ones(8), np.zeros(72)], block).astype(int)
    retrained = np.tile(np.r_[np.ones(4), np.zeros(16), np.zeros(80)], block).astype(int)
    proba = lambda predicted: np.where(predicted == 1, 0.7, 0.3)  # noqa: E731
    test = challenger.gate(y, (champion, proba(champion)), (retrained, proba(retrained)), 0.05, 0.05)
    assert test["accuracy_champion"] == test["accuracy_challenger"] == pytest.approx(0.84)
    assert (test["f1_champion"], test["f1_challenger"]) == (pytest.approx(0.6), pytest.approx(1 / 3))
    assert test["f1_difference"] == pytest.approx(1 / 3 - 0.6)
    low, high = test["f1_interval"]
    assert low < test["f1_difference"] < high < -0.05
    assert test["inferior"]
    assert not test["non_inferiority_shown"]
    deploy, reason = challenger.verdict(test)
    assert deploy is False
    assert "worse by more than the margin 0.05" in reason
    json.dumps(test, allow_nan=False)


def test_the_challenger_gate_deploys_an_equal_or_better_challenger() -> None:
    generator = rng(4)
    y = generator.integers(0, 2, 300)
    champion = np.where(generator.random(300) < 0.7, y, 1 - y)
    better = np.where(generator.random(300) < 0.9, y, 1 - y)
    proba = lambda predicted: np.where(predicted == 1, 0.8, 0.2)  # noqa: E731
    same = challenger.gate(y, (champion, proba(champion)), (champion, proba(champion)), 0.05, 0.05)
    assert same["f1_interval"] == [0.0, 0.0]
    assert same["log_loss_interval"] == [0.0, 0.0]
    assert challenger.verdict(same)[0] is True
    gain = challenger.gate(y, (champion, proba(champion)), (better, proba(better)), 0.05, 0.05)
    assert gain["f1_interval"][0] > 0  # shown better, so shown non-inferior
    assert gain["non_inferiority_shown"]
    assert challenger.verdict(gain)[0] is True
    assert gain["log_loss_interval"][1] < 0
