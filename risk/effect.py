"""Did calling help: the leave rate of listed clients assigned to be called against the random holdout (intention
to treat), Newcombe's interval for the difference, saves per 100 calls, and the power of the data so far.

Pure functions on counts (statsmodels' two-proportion interval and power); the counts come from the judged lists.
"""
from __future__ import annotations

import math

CONFIDENCE = 0.95
POWER = 0.8
MIN_GROUP = 10  # fewer judged clients than this in a group: the effect is not estimated, only counted
TARGET_POINTS = 10.0  # the effect "how many more months" is sized for: 10 points of leave rate


def rate_difference(left_a: int, n_a: int, left_b: int, n_b: int, confidence: float = CONFIDENCE) -> dict:
    """Leave rate of group a minus group b, in points, with Newcombe's hybrid score interval (two Wilson
    intervals combined; good coverage at small counts and near 0 or 1)."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(left_a, n_a, left_b, n_b, method="newcomb", compare="diff",
                                           alpha=1 - confidence)
    return {"difference": 100 * (left_a / n_a - left_b / n_b), "low": 100 * float(low), "high": 100 * float(high),
            "confidence": confidence}


def _arcsine(rate: float) -> float:
    return 2 * math.asin(math.sqrt(min(max(rate, 0.0), 1.0)))


def detectable_points(n_a: int, n_b: int, base_rate: float, confidence: float = CONFIDENCE,
                      power: float = POWER) -> float | None:
    """The smallest fall of the leave rate below `base_rate` (in points) that groups of n_a and n_b detect with
    `power` at the two-sided level 1 - confidence (Cohen's h, normal approximation); None when no fall of the
    base rate is that large."""
    from statsmodels.stats.power import NormalIndPower

    h = NormalIndPower().solve_power(nobs1=n_a, ratio=n_b / n_a, alpha=1 - confidence, power=power)
    target = _arcsine(base_rate) - float(h)
    if target < 0:
        return None
    return 100 * (base_rate - math.sin(target / 2) ** 2)


def months_for(points: float, base_rate: float, per_month_a: float, per_month_b: float,
               confidence: float = CONFIDENCE, power: float = POWER) -> int | None:
    """Months of lists at today's monthly group sizes needed to detect a fall of `points` below `base_rate`;
    None when the base rate is below `points` (no such fall) or a group gets no clients."""
    from statsmodels.stats.power import NormalIndPower

    if base_rate * 100 < points or per_month_a <= 0 or per_month_b <= 0:
        return None
    h = _arcsine(base_rate) - _arcsine(base_rate - points / 100)
    n_a = NormalIndPower().solve_power(effect_size=h, ratio=per_month_b / per_month_a, alpha=1 - confidence,
                                       power=power)
    return math.ceil(float(n_a) / per_month_a)


def verdict(difference: dict) -> str:
    """What the interval shows about calling: it lowers leaving, raises it, or neither is shown."""
    if difference["high"] < 0:
        return "calls help"
    if difference["low"] > 0:
        return "calls harm"
    return "not shown either way"


def _group(counts: tuple[int, int]) -> dict:
    left, n = counts
    return {"left": left, "clients": n, "leave_rate": None if n == 0 else 100 * left / n}


def _note(called: int, holdout: int) -> str | None:
    if holdout == 0:
        return ("no holdout client has been judged yet (holdout_share is 0, or no list has its next month yet):"
                " the effect of calling cannot be measured")
    if min(called, holdout) < MIN_GROUP:
        return (f"too little data: {called} called and {holdout} holdout clients judged; at least {MIN_GROUP} in"
                " each group before the effect is estimated")
    return None


def summary(called: tuple[int, int], holdout: tuple[int, int], contacted: tuple[int, int], months: int) -> dict:
    """The effect of calling from judged counts, each (left, clients): assigned to be called, holdout, and actually
    contacted. Honest when there is too little: the counts and a note, never a bare number."""
    out = {"called": _group(called), "holdout": _group(holdout), "contacted": _group(contacted), "months": months,
           "note": _note(called[1], holdout[1])}
    if out["note"] is not None:
        return out
    itt = rate_difference(*called, *holdout)
    base = holdout[0] / holdout[1]
    out.update({"intention_to_treat": itt, "verdict": verdict(itt),
                "saves_per_100_calls": {"estimate": -itt["difference"], "low": -itt["high"], "high": -itt["low"]},
                "detectable_points": detectable_points(called[1], holdout[1], base),
                "months_for_10_points": _months_more(called[1], holdout[1], base, months)})
    if contacted[1] >= MIN_GROUP:
        out["contacted_vs_holdout"] = rate_difference(*contacted, *holdout)
    return out


def _months_more(n_called: int, n_holdout: int, base: float, months: int) -> int | None:
    """More months at today's monthly sizes until a 10-point fall is detectable (0: already)."""
    total = months_for(TARGET_POINTS, base, n_called / max(months, 1), n_holdout / max(months, 1))
    return None if total is None else max(0, total - months)
