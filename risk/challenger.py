"""The challenger gate: is a retrained model (the challenger) worse than the deployed one (the champion) on the
same held-out rows? A paired bootstrap of the F1 and log-loss differences, non-inferiority on F1 with a margin,
and the verdict with its one-line reason. Pure functions on arrays; risk/methods.py trains and calls them.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from risk import performance

GATE_DRAWS = 1999  # paired bootstrap resamples of the held-out rows
GATE_ROWS = 10_000  # at most this many held-out rows (a fixed random subsample beyond, independent of values)


def _paired_f1_difference(y: np.ndarray, champion: np.ndarray, challenger: np.ndarray, axis: int = -1) -> np.ndarray:
    y, champion, challenger = (np.moveaxis(a, axis, -1) for a in (y, champion, challenger))
    return (performance.f1_from_counts(performance.confusion_counts(y, challenger))
            - performance.f1_from_counts(performance.confusion_counts(y, champion)))


def gate(y: np.ndarray, champion: tuple[np.ndarray, np.ndarray], challenger: tuple[np.ndarray, np.ndarray],
         margin: float, alpha: float, seed: int = 0) -> dict:
    """Paired bootstrap over the held-out rows (scipy.stats.bootstrap, percentile) of F1 and of the mean log-loss,
    challenger minus champion; `champion` and `challenger` are (predicted, P(positive)) on the same rows.

    Non-inferiority on F1 with the margin: the challenger is refused when the upper end of the one-sided (1 - alpha)
    interval is below -margin (shown worse by more than the margin). `non_inferiority_shown` says whether the lower
    end is above -margin. The log-loss difference and its interval are recorded beside it."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y).astype(bool)
    keep = np.sort(rng.choice(y.size, GATE_ROWS, replace=False)) if y.size > GATE_ROWS else np.arange(y.size)
    ours, theirs = np.asarray(champion[0]).astype(bool)[keep], np.asarray(challenger[0]).astype(bool)[keep]
    y = y[keep]
    losses = (performance.row_log_loss(y, np.asarray(challenger[1])[keep])
              - performance.row_log_loss(y, np.asarray(champion[1])[keep]))
    options = {"n_resamples": GATE_DRAWS, "confidence_level": 1 - 2 * alpha, "method": "percentile",
               "vectorized": True, "batch": 200}
    f1_ci = stats.bootstrap((y, ours, theirs), _paired_f1_difference, paired=True, rng=np.random.default_rng(seed),
                            **options).confidence_interval
    loss_ci = stats.bootstrap((losses,), np.mean, rng=np.random.default_rng(seed), **options).confidence_interval
    f1_difference = float(_paired_f1_difference(y, ours, theirs))
    return {"name": "challenger_vs_champion", "kind": "paired",
            "test": "paired bootstrap (percentile), non-inferiority on F1", "n": int(keep.size),
            "n_held_out": int(np.asarray(champion[0]).size), "draws": GATE_DRAWS, "alpha": alpha, "margin": margin,
            "f1_champion": performance.f1(y, ours), "f1_challenger": performance.f1(y, theirs),
            "f1_difference": f1_difference, "f1_interval": [float(f1_ci.low), float(f1_ci.high)],
            "log_loss_difference": float(losses.mean()), "log_loss_interval": [float(loss_ci.low), float(loss_ci.high)],
            "accuracy_champion": float(np.mean(ours == y)), "accuracy_challenger": float(np.mean(theirs == y)),
            "inferior": bool(f1_ci.high < -margin), "non_inferiority_shown": bool(f1_ci.low > -margin)}


def verdict(test: dict) -> tuple[bool, str]:
    """Deploy the challenger unless it is shown worse than the champion by more than the margin in F1."""
    low, high = test["f1_interval"]
    words = f"worse by more than the margin {test['margin']}" if test["inferior"] else "not shown worse"
    reason = (f"challenger {words} on {test['n']} held-out rows: F1 {test['f1_challenger']:.3f} vs champion"
              f" {test['f1_champion']:.3f}, difference {test['f1_difference']:+.3f}"
              f" [{low:+.3f}, {high:+.3f}] at {1 - 2 * test['alpha']:.0%}; log-loss difference"
              f" {test['log_loss_difference']:+.3f} [{test['log_loss_interval'][0]:+.3f},"
              f" {test['log_loss_interval'][1]:+.3f}]")
    return not test["inferior"], reason
