"""Drift decisions as pure functions on arrays: the statistical tests, the four methods, the verdict.

Methods: `raw` (the course rule), `parametric` and `nonparametric` (past scores), and `statistical` (the
default): permutation/exact tests of performance against the model card, per-feature two-sample tests with
Holm's correction and an effect size, and three verdicts. A decision is JSON-ready evidence for the ledger.
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

DRIFT = "DRIFT"
NO_DRIFT = "NO DRIFT"
INCONCLUSIVE = "INCONCLUSIVE"
DRAWS = 999  # Monte Carlo permutations: p-values resolve to 0.001, valid at any n ((b + 1) / (draws + 1))
PERMUTE_BELOW = 100  # the smaller sample below this: permutation tests; above: KS / Welch's asymptotics
REFERENCE_CAP = 400  # permutation tests use a fixed random subsample of a larger reference (level unchanged)
EPS = 1e-12

Thresholds = namedtuple("Thresholds", "alpha min_rows min_f1_drop min_feature_effect",
                        defaults=(0.05, 30, 0.05, 0.1))


@dataclass(frozen=True)
class Decision:
    verdict: str
    method: str
    evidence: dict
    reason: str = ""
    tests: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """One readable line: verdict, method, the reason and the tests' numbers."""
        facts = "; ".join(test_line(t) for t in self.tests) or ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in self.evidence.items())
        return f"{self.verdict} by {self.method} rule: {self.reason} [{facts}]"

    def record(self) -> dict:
        """The evidence stored in the ledger: inputs and numbers, the tests, the reason."""
        return {**self.evidence, "method": self.method, "reason": self.reason, "tests": self.tests}


def test_line(test: dict) -> str:
    p = test.get("p_adjusted", test.get("p_value"))
    p_text = "p n/a" if p is None else f"p_adj={p:.3g}"
    effect = test.get("effect")
    effect_text = "" if effect is None else f" effect={effect:.3g}"
    flag = " *" if test.get("flagged") else ""
    return f"{test['name']} {test['test']} n={test['n']} stat={_num(test['statistic'])} {p_text}{effect_text}{flag}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


# ---- the course's rules and the score-history variants ------------------------------------------------------

def course_rule(new_f1: float, deployed_f1: float, new_rows: int) -> Decision:
    """The course's rule: drift when the deployed model's F1 on the new data is below its deployed score."""
    verdict = DRIFT if new_f1 < deployed_f1 else NO_DRIFT
    reason = f"new F1 {new_f1:.4f} {'<' if verdict == DRIFT else '>='} deployed F1 {deployed_f1:.4f}"
    return Decision(verdict, "raw", {"new_f1": new_f1, "deployed_f1": deployed_f1, "new_rows": new_rows}, reason)


def score_threshold(past_scores: list[float], method: str) -> float:
    """`parametric`: mean - 2 sd of past scores; `nonparametric`: Q1 - 1.5 IQR. One score: the score itself."""
    scores = np.asarray(past_scores, dtype=float)
    if scores.size == 0:
        raise ValueError("no past scores to compare with")
    if method == "parametric":
        spread = float(scores.std(ddof=1)) if scores.size > 1 else 0.0
        return float(scores.mean() - 2 * spread)
    q1, q3 = np.percentile(scores, [25, 75])
    return float(q1 - 1.5 * (q3 - q1))


def history_rule(new_f1: float, past_scores: list[float], new_rows: int, method: str) -> Decision:
    """Drift when the new F1 is below the past scores' lower fence (parametric or nonparametric)."""
    threshold = score_threshold(past_scores, method)
    verdict = DRIFT if new_f1 < threshold else NO_DRIFT
    fence = "mean - 2 sd" if method == "parametric" else "Q1 - 1.5 IQR"
    reason = (f"new F1 {new_f1:.4f} {'<' if verdict == DRIFT else '>='} {fence} of {len(past_scores)} past"
              f" score(s) = {threshold:.4f}")
    evidence = {"new_f1": new_f1, "threshold": threshold, "past_scores": [float(s) for s in past_scores],
                "new_rows": new_rows}
    return Decision(verdict, method, evidence, reason)


# ---- performance: counts, F1, log-loss ----------------------------------------------------------------------

def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """[tp, fp, fn, tn] of binary labels and predictions."""
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    return np.array([np.sum(y_true & y_pred), np.sum(~y_true & y_pred), np.sum(y_true & ~y_pred),
                     np.sum(~y_true & ~y_pred)], dtype=np.int64)


def f1_from_counts(counts: np.ndarray) -> np.ndarray:
    """The project's one F1, of [tp, fp, fn, tn] (vectorised on the last axis). With no positive at all,
    true or predicted, there is nothing to find and nothing wrongly flagged: 1.0 (scikit-learn's
    zero_division=1.0). Scoring, the card, the decision and the benches all use it."""
    counts = np.asarray(counts, dtype=float)
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 1.0)


def f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 of binary labels and predictions (see f1_from_counts)."""
    return float(f1_from_counts(confusion_counts(y_true, y_pred)))


def row_log_loss(y_true: np.ndarray, p_positive: np.ndarray) -> np.ndarray:
    """Each row's log-loss (natural log), probabilities clipped to [1e-15, 1 - 1e-15]."""
    p = np.clip(np.asarray(p_positive, dtype=float), 1e-15, 1 - 1e-15)
    return np.where(np.asarray(y_true).astype(bool), -np.log(p), -np.log1p(-p))


def f1_drop_test(reference: np.ndarray, new: np.ndarray, rng: np.random.Generator, draws: int = DRAWS) -> dict:
    """One-sided permutation test that F1 on `new` is below F1 on `reference` (both [tp, fp, fn, tn]).

    Under no drift the rows are exchangeable, so the new group's counts are a multivariate hypergeometric draw
    from the pooled counts: an exact permutation distribution, sampled `draws` times, at any n.
    """
    reference, new = np.asarray(reference, dtype=np.int64), np.asarray(new, dtype=np.int64)
    n_new, n_ref = int(new.sum()), int(reference.sum())
    observed = float(f1_from_counts(reference) - f1_from_counts(new))
    result = _test("f1", "performance", "permutation (hypergeometric), one-sided", observed, None, n_new, n_ref)
    if n_new == 0 or n_ref == 0:
        return {**result, "statistic": None, "effect": None}
    pooled = reference + new
    drawn = rng.multivariate_hypergeometric(pooled, n_new, size=draws)
    null = f1_from_counts(pooled - drawn) - f1_from_counts(drawn)
    p = (1 + np.count_nonzero(null >= observed - EPS)) / (draws + 1)
    return {**result, "p_value": float(p), "effect": observed,
            "reference_f1": float(f1_from_counts(reference)), "new_f1": float(f1_from_counts(new))}


def mean_increase_test(name: str, reference: np.ndarray, new: np.ndarray, rng: np.random.Generator,
                       draws: int = DRAWS) -> dict:
    """One-sided test that the mean of `new` exceeds the mean of `reference` (e.g. per-row log-loss).

    Permutation test when the smaller sample is under PERMUTE_BELOW rows, Welch's t-test above. The effect is
    the difference of the means.
    """
    reference, new = _finite(reference), _finite(new)
    if new.size == 0 or reference.size == 0:
        return _test(name, "performance", "none (no rows)", None, None, new.size, reference.size)
    effect = float(new.mean() - reference.mean())
    if min(new.size, reference.size) >= PERMUTE_BELOW:
        constant = np.ptp(np.r_[reference, new]) == 0
        p = 1.0 if constant else float(stats.ttest_ind(new, reference, equal_var=False, alternative="greater").pvalue)
        return {**_test(name, "performance", "Welch t, one-sided", effect, p, new.size, reference.size),
                "effect": effect}
    reference, used = _capped(reference, rng), _capped(new, rng)
    statistic, p = _permuted_mean_difference(reference, used, rng, draws)
    return {**_test(name, "performance", "permutation, one-sided", statistic, p, new.size, reference.size),
            "effect": effect, "n_used": int(used.size)}


def _permuted_mean_difference(reference: np.ndarray, new: np.ndarray, rng: np.random.Generator,
                              draws: int) -> tuple[float, float]:
    """mean(new) - mean(reference) and its one-sided permutation p-value (new groups drawn at random)."""
    pooled = np.r_[new, reference]
    total, observed = pooled.sum(), float(new.mean() - reference.mean())
    picked = np.argpartition(rng.random((draws, pooled.size)), new.size - 1, axis=1)[:, :new.size]
    sums = pooled[picked].sum(axis=1)
    null = sums / new.size - (total - sums) / reference.size
    return observed, float((1 + np.count_nonzero(null >= observed - EPS)) / (draws + 1))


# ---- data drift: per-feature two-sample tests ---------------------------------------------------------------

def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


def _capped(reference: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """At most REFERENCE_CAP values of one side of a permutation test, drawn independently of the values: the
    test stays exact (it is exact for the subsample) and its memory is bounded whatever either side's size:
    a 26-row reference against 300k new rows permutes 26 + 400 values, not 300 026 per draw."""
    return reference if reference.size <= REFERENCE_CAP else rng.choice(reference, REFERENCE_CAP, replace=False)


def _test(name: str, kind: str, test: str, statistic: float | None, p: float | None, n: int, n_ref: int) -> dict:
    return {"name": name, "kind": kind, "test": test, "statistic": statistic, "p_value": p, "n": int(n),
            "n_reference": int(n_ref), "effect": None}


def normalised_wasserstein(reference: np.ndarray, new: np.ndarray) -> float:
    """Wasserstein-1 distance in units of the pooled standard deviation (0 when both are one constant)."""
    spread = float(np.r_[reference, new].std())
    if spread == 0:
        return 0.0
    return float(stats.wasserstein_distance(reference, new) / spread)


def ks_permutation(reference: np.ndarray, new: np.ndarray, rng: np.random.Generator,
                   draws: int = DRAWS) -> tuple[float, float]:
    """Two-sample KS statistic and its permutation p-value; exact under ties (steps only between values)."""
    pooled = np.r_[new, reference]
    order = np.argsort(pooled, kind="stable")
    values = pooled[order]
    ends = np.flatnonzero(np.r_[values[1:] != values[:-1], True])
    labels = (order < new.size).astype(np.int32)

    def statistic(lbl: np.ndarray) -> np.ndarray:
        in_new = np.cumsum(lbl, axis=-1)[..., ends]
        return np.abs(in_new / new.size - (ends + 1 - in_new) / reference.size).max(axis=-1)

    observed = float(statistic(labels))
    null = statistic(rng.permuted(np.tile(labels, (draws, 1)), axis=1))
    return observed, float((1 + np.count_nonzero(null >= observed - EPS)) / (draws + 1))


def feature_test(name: str, reference: np.ndarray, new: np.ndarray, rng: np.random.Generator,
                 draws: int = DRAWS) -> dict:
    """KS two-sample test of one feature (permutation at small n, asymptotic at large n), NaNs dropped."""
    raw_n = np.asarray(new).size
    reference, new = _finite(reference), _finite(new)
    if new.size == 0 or reference.size == 0:
        return {**_test(name, "data", "none (no values)", None, None, new.size, reference.size),
                "dropped": int(raw_n - new.size)}
    if min(new.size, reference.size) < PERMUTE_BELOW:
        used, used_new = _capped(reference, rng), _capped(new, rng)
        statistic, p = ks_permutation(used, used_new, rng, draws)
        kind, n_ref = "KS permutation", used.size
    else:
        result = stats.ks_2samp(new, reference, method="asymp")
        statistic, p, kind, n_ref = float(result.statistic), float(result.pvalue), "KS asymptotic", reference.size
    return {**_test(name, "data", kind, statistic, p, new.size, n_ref),
            "effect": normalised_wasserstein(reference, new), "dropped": int(raw_n - new.size)}


def holm(p_values: list[float | None]) -> list[float]:
    """Holm's step-down adjusted p-values (a missing p-value counts as 1)."""
    p = np.array([1.0 if v is None else v for v in p_values], dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = np.maximum.accumulate(p[order] * (p.size - np.arange(p.size)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted.tolist()


def _adjust(tests: list[dict], thresholds: Thresholds, min_effect: float) -> list[dict]:
    adjusted = holm([t["p_value"] for t in tests])
    out = []
    for test, p in zip(tests, adjusted, strict=True):
        effect = test["effect"]
        flagged = p < thresholds.alpha and effect is not None and effect >= min_effect
        out.append({**test, "p_adjusted": p, "alpha": thresholds.alpha, "min_effect": min_effect,
                    "flagged": bool(flagged)})
    return out


# ---- the default method: three verdicts from the tests ------------------------------------------------------

Reference = namedtuple("Reference", "counts log_loss x")  # the model card's CV [tp, fp, fn, tn], per-row log-loss
Batch = namedtuple("Batch", "y predicted p_positive x")  # new labelled rows as the deployed model sees them
# What a method (risk/methods.py) decides from: the batch, the card's Reference (None when it has none), the
# deployed score, the deployed model's past scores, the feature names, the thresholds and the seed.
Inputs = namedtuple("Inputs", "batch reference deployed_f1 past_scores names thresholds seed", defaults=(0,))


def run_tests(reference: Reference, batch: Batch, names: tuple[str, ...], thresholds: Thresholds,
              seed: int = 0, draws: int = DRAWS) -> tuple[list[dict], list[dict]]:
    """The performance tests (F1, log-loss; Holm across the two) and the per-feature tests (Holm across them)."""
    rng = np.random.default_rng(seed)
    performance = [
        f1_drop_test(reference.counts, confusion_counts(batch.y, batch.predicted), rng, draws),
        mean_increase_test("log_loss", reference.log_loss, row_log_loss(batch.y, batch.p_positive), rng, draws),
    ]
    ref_x, new_x = np.asarray(reference.x, dtype=float), np.asarray(batch.x, dtype=float)
    data = [feature_test(name, ref_x[:, j], new_x[:, j], rng, draws) for j, name in enumerate(names)]
    return (_adjust(performance, thresholds, 0.0) if performance else [],
            _adjust(data, thresholds, thresholds.min_feature_effect) if data else [])


def verdict_of(performance: list[dict], data: list[dict], n_new: int, thresholds: Thresholds) -> tuple[str, str]:
    """DRIFT only on a significant and material loss of performance; INCONCLUSIVE while evidence is short."""
    f1 = performance[0]
    drop = f1["effect"]
    material = drop is not None and drop >= thresholds.min_f1_drop
    significant = any(t["p_adjusted"] < thresholds.alpha for t in performance)
    moved = [t["name"] for t in data if t["flagged"]]
    drop_text = "n/a" if drop is None else f"{drop:+.3f}"
    if n_new < thresholds.min_rows:
        return INCONCLUSIVE, f"{n_new} new row(s) < drift_min_rows {thresholds.min_rows}: waiting for more data"
    if significant and material:
        return DRIFT, (f"F1 dropped by {drop_text} (>= {thresholds.min_f1_drop}), significant at alpha"
                       f" {thresholds.alpha} after Holm")
    if material and moved:
        return INCONCLUSIVE, (f"F1 dropped by {drop_text}, not significant yet, and {', '.join(moved)} shifted:"
                              " waiting for more data")
    if significant:
        return NO_DRIFT, f"performance change {drop_text} is significant but below drift_min_f1_drop"
    shifted = f"; {', '.join(moved)} shifted without a loss of performance" if moved else ""
    return NO_DRIFT, f"no significant loss of performance (F1 change {drop_text}){shifted}"


def statistical_rule(reference: Reference, batch: Batch, names: tuple[str, ...], thresholds: Thresholds,
                     seed: int = 0, draws: int = DRAWS) -> Decision:
    """The default method: tests of performance against the card and of each feature, then the verdict."""
    performance, data = run_tests(reference, batch, names, thresholds, seed, draws)
    n_new = int(np.asarray(batch.y).size)
    verdict, reason = verdict_of(performance, data, n_new, thresholds)
    f1 = performance[0]
    evidence = {"new_rows": n_new, "reference_rows": f1["n_reference"], "new_f1": f1.get("new_f1"),
                "expected_f1": f1.get("reference_f1"), "thresholds": dict(thresholds._asdict())}
    return Decision(verdict, "statistical", evidence, reason, performance + data)


# ---- champion / challenger -----------------------------------------------------------------------------------

def mcnemar_worse(champion_correct: np.ndarray, challenger_correct: np.ndarray) -> dict:
    """Exact McNemar test, one-sided: is the challenger wrong more often than the champion on the same rows?

    b = rows only the champion gets right, c = rows only the challenger gets right; under equal error rates
    b ~ Binomial(b + c, 1/2). The effect is the challenger's loss of accuracy, (b - c) / n.
    """
    champion, challenger = np.asarray(champion_correct, bool), np.asarray(challenger_correct, bool)
    b, c = int(np.sum(champion & ~challenger)), int(np.sum(~champion & challenger))
    p = float(stats.binom.sf(b - 1, b + c, 0.5)) if b + c else 1.0
    effect = (b - c) / champion.size if champion.size else 0.0
    return {**_test("challenger_vs_champion", "paired", "exact McNemar, one-sided", float(b - c), p,
                    champion.size, champion.size), "effect": effect, "champion_only": b, "challenger_only": c}


def challenger_verdict(test: dict, alpha: float) -> tuple[bool, str]:
    """Deploy the challenger unless it is significantly worse than the champion on the held-out rows."""
    worse = test["p_value"] < alpha
    words = "worse" if worse else "not worse"
    reason = (f"challenger {words} than the champion on {test['n']} held-out rows (champion alone right on"
              f" {test['champion_only']}, challenger alone on {test['challenger_only']},"
              f" McNemar p={test['p_value']:.3g})")
    return not worse, reason
