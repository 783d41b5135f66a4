"""How many calls pay: the Expected Maximum Profit for churn (Verbraken, Verbeke and Baesens 2013) from labels and
scores (its closed form, checked against empulse), and the expected profit of calling a list's first k
clients from their probabilities.

Pure functions on arrays; the settings come from config.json's economics keys (risk/config.py).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

# A kept client's value, the retention offer's cost, one contact's cost, and the Beta(alpha, beta) chance that a
# client who would leave accepts the offer. Defaults: Verbraken et al. 2013 (200, 10, 1, Beta(6, 14)).
Economics = namedtuple("Economics", "client_value offer_cost contact_cost accept_alpha accept_beta",
                       defaults=(200.0, 10.0, 1.0, 6.0, 14.0))


def accept_mean(economics: Economics) -> float:
    """The mean chance that a leaver accepts the offer: alpha / (alpha + beta) (0.3 for Beta(6, 14))."""
    return economics.accept_alpha / (economics.accept_alpha + economics.accept_beta)


def roc_hull(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The ROC convex hull as (share of stayers targeted, share of leavers targeted) points from (0, 0) to (1, 1):
    the operating points a threshold on `scores` can reach, ties included (monotone chain, upper side)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, scores, drop_intermediate=False)
    hull: list[tuple[float, float]] = []
    for point in sorted(zip(fpr, tpr, strict=True)):
        while len(hull) >= 2 and ((hull[-1][0] - hull[-2][0]) * (point[1] - hull[-2][1])
                                  - (hull[-1][1] - hull[-2][1]) * (point[0] - hull[-2][0])) >= 0:
            hull.pop()
        hull.append(point)
    return np.array(hull)


def maximum_profit(y: np.ndarray, scores: np.ndarray, economics: Economics) -> dict:
    """EMP (acceptance ~ Beta) and MP (acceptance fixed at its mean), each per client of the scored base, with the
    share of clients to contact at which each is reached; Verbraken et al. 2013's closed form on the ROC convex
    hull: hull point i is the best for acceptances between the ties of its two edges, so EMP integrates each
    point's (linear) profit over its stretch of the Beta density with the regularised incomplete beta. Equal to
    empulse 0.13's empc_score and mpc_score (its import costs 2.5 s of sympy per training run). Needs both
    classes in `y`."""
    from scipy import special

    y = np.asarray(y, dtype=int)
    leavers, stayers = y.mean(), 1 - y.mean()
    hull = roc_hull(y, np.asarray(scores, dtype=float))
    f_stay, f_leave = hull[:, 0], hull[:, 1]
    offer, call = economics.offer_cost / economics.client_value, economics.contact_cost / economics.client_value
    with np.errstate(divide="ignore", invalid="ignore"):  # a vertical edge: taken at any acceptance
        ties = ((offer + call) * stayers * np.diff(f_stay) / (leavers * np.diff(f_leave)) + call) / (1 - offer)
    ties = np.clip(np.nan_to_num(ties, nan=np.inf), 0, 1)
    low, high = np.concatenate([[0.0], ties]), np.concatenate([ties, [1.0]])
    a, b = economics.accept_alpha, economics.accept_beta
    mass = special.betainc(a, b, high) - special.betainc(a, b, low)
    first_moment = a / (a + b) * (special.betainc(a + 1, b, high) - special.betainc(a + 1, b, low))
    targeted = leavers * f_leave + stayers * f_stay
    emp = economics.client_value * np.sum((1 - offer) * leavers * f_leave * first_moment
                                          - (call * leavers * f_leave + (offer + call) * stayers * f_stay) * mass)
    fixed = economics.client_value * ((accept_mean(economics) * (1 - offer) - call) * leavers * f_leave
                                      - (offer + call) * stayers * f_stay)
    best = int(np.argmax(fixed))
    return {"emp": float(emp), "share": float(np.sum(targeted * mass)), "mp": float(fixed[best]),
            "mp_share": float(targeted[best])}


def call_values(probabilities: np.ndarray, economics: Economics) -> np.ndarray:
    """The expected profit of calling each client: a leaver (probability p) is kept with the mean acceptance and
    then costs the offer, and every call costs the contact; a client who would stay takes the offer anyway."""
    p = np.asarray(probabilities, dtype=float)
    kept = accept_mean(economics) * (economics.client_value - economics.offer_cost)
    return p * (kept - economics.contact_cost) - (1 - p) * (economics.offer_cost + economics.contact_cost)


def profit_curve(probabilities: np.ndarray, economics: Economics) -> np.ndarray:
    """Expected profit of calling the first k clients, k = 0..n, the clients in descending probability."""
    ordered = np.sort(np.asarray(probabilities, dtype=float))[::-1]
    return np.concatenate([[0.0], np.cumsum(call_values(ordered, economics))])


def recommended_calls(share: float | None, portfolio: int, capacity: int) -> int:
    """The calls that pay, capped by capacity: the card's profit-optimal share of the current clients, rounded,
    at most `capacity`; without a share (no card figure) capacity alone."""
    if share is None:
        return capacity
    return int(min(capacity, round(share * portfolio)))


CURVE_MIN = 50  # the profit curve on /risk runs to max(2 x capacity, CURVE_MIN) calls (fewer clients: all)


def from_config(config: object) -> Economics:
    """The economics of a call from the Config's keys of the same names."""
    return Economics(*(float(getattr(config, name)) for name in Economics._fields))


def card_figures(y: np.ndarray, proba: np.ndarray, economics: Economics) -> tuple[dict | None, str | None]:
    """The model card's economics from out-of-fold predictions: EMP, MP and their shares with the settings used,
    and None; or None and why (one class only: no profit curve can be drawn)."""
    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2:
        return None, "the out-of-fold predictions hold one class only: no expected maximum profit"
    figures = {k: round(v, 6) for k, v in maximum_profit(y, proba, economics).items()}
    return {**figures, "settings": economics._asdict()}, None


def for_list(card_economics: dict | None, ranked: np.ndarray, population: int, capacity: int,
             economics: Economics) -> dict:
    """/risk's economics: the recommended calls (the card's profit-optimal share of the current clients, at most
    `capacity`) and the expected profit of calling the first k of `ranked` (probabilities, highest first), k = 0
    up to max(2 x capacity, CURVE_MIN), with capacity and the best k marked."""
    share = card_economics["share"] if card_economics else None
    length = min(len(ranked), max(2 * capacity, CURVE_MIN))
    curve = profit_curve(np.asarray(ranked[:length], dtype=float), economics)
    return {"recommended_calls": recommended_calls(share, population, capacity), "capacity": capacity,
            "profit_optimal_calls": None if share is None else round(share * population), "share": share,
            "emp": card_economics["emp"] if card_economics else None,
            "note": None if share is not None else "the version's card has no profit-optimal share: capacity only",
            "settings": economics._asdict(),
            "curve": [{"calls": k, "profit": round(float(v), 2)} for k, v in enumerate(curve)],
            "at_capacity": round(float(curve[min(capacity, length)]), 2), "best_calls": int(np.argmax(curve))}
