"""risk/challenger.py: the gate between a retrained model and the deployed one, on cases with known answers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from risk import challenger


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
    """Balanced rows: per block of 100, 50 leavers; the champion flags 30 of them and 20 stayers (tp 30, fp 20,
    fn 20: F1 = 60 / (60 + 20 + 20) = 0.6, 40 wrong), the better model 45 and 5 (F1 = 90 / (90 + 5 + 5) = 0.9,
    10 wrong)."""
    block = 3
    y = np.tile(np.r_[np.ones(50), np.zeros(50)], block).astype(int)
    champion = np.tile(np.r_[np.ones(30), np.zeros(20), np.ones(20), np.zeros(30)], block).astype(int)
    better = np.tile(np.r_[np.ones(45), np.zeros(5), np.ones(5), np.zeros(45)], block).astype(int)
    proba = lambda predicted: np.where(predicted == 1, 0.8, 0.2)  # noqa: E731
    same = challenger.gate(y, (champion, proba(champion)), (champion, proba(champion)), 0.05, 0.05)
    assert (same["f1_champion"], same["f1_challenger"], same["f1_difference"]) == pytest.approx((0.6, 0.6, 0.0))
    assert same["f1_interval"] == [0.0, 0.0]
    assert same["log_loss_interval"] == [0.0, 0.0]
    assert challenger.verdict(same)[0] is True
    gain = challenger.gate(y, (champion, proba(champion)), (better, proba(better)), 0.05, 0.05)
    assert (gain["f1_champion"], gain["f1_challenger"]) == (pytest.approx(0.6), pytest.approx(0.9))
    assert gain["f1_difference"] == pytest.approx(0.3)
    low, high = gain["f1_interval"]
    assert 0 < low < 0.3 < high  # shown better, so shown non-inferior
    assert gain["non_inferiority_shown"]
    assert not gain["inferior"]
    assert challenger.verdict(gain)[0] is True
    # a right row costs -ln 0.8, a wrong one -ln 0.2; 30 fewer wrong rows per 100: -0.3 (ln 5 - ln 1.25) = -0.3 ln 4
    assert gain["log_loss_difference"] == pytest.approx(-0.3 * np.log(4))
    assert gain["log_loss_interval"][1] < 0
