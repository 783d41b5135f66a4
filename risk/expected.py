"""Expected against realized: a list's expected hit rate is the mean probability of its clients (for a calibrated
model; NannyML's confidence-based estimation), with the Poisson-binomial interval of its hit count; three lists
running whose realized rate falls outside the interval raise the calibration alert.
"""
from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95
RUN = 3  # lists in a row outside their interval before the calibration alert fires


def expected_hit_rate(probabilities: np.ndarray, confidence: float = CONFIDENCE) -> dict | None:
    """Mean probability and the central `confidence` interval of hits / n under independent Bernoulli(p_i)
    outcomes (scipy's Poisson-binomial); None for an empty list."""
    from scipy import stats

    p = np.asarray(probabilities, dtype=float)
    if p.size == 0:
        return None
    hits = stats.poisson_binom(p)
    low, high = (_quantile(hits.cdf, p.size, q) for q in ((1 - confidence) / 2, (1 + confidence) / 2))
    return {"rate": float(p.mean()), "low": float(low) / p.size, "high": float(high) / p.size, "n": int(p.size),
            "confidence": confidence}


def _quantile(cdf, n: int, q: float) -> int:
    """The smallest k in 0..n with cdf(k) >= q, by bisection (scipy's own ppf for this distribution cannot take
    more than 62 probabilities; each cdf costs O(n), so this costs O(n log n))."""
    low, high = 0, n
    while low < high:
        middle = (low + high) // 2
        if cdf(middle) >= q:
            high = middle
        else:
            low = middle + 1
    return low


def outside(expected: dict | None, hits: int, n: int) -> bool | None:
    """Whether the realized hit rate falls outside the expected interval (None when either is unknown)."""
    if expected is None or n == 0:
        return None
    return not expected["low"] <= hits / n <= expected["high"]


def alert(flags: list[bool | None], run: int = RUN) -> bool:
    """True when the newest `run` judged lists (oldest first in `flags`; None: not judged) all fell outside."""
    judged = [flag for flag in flags if flag is not None]
    return len(judged) >= run and all(judged[-run:])
