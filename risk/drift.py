"""Drift decisions as pure functions on arrays: the statistical tests, the four methods, the verdict.

Methods: `raw` (the course rule), `parametric` and `nonparametric` (past scores), and `statistical` (the
default): permutation/exact tests of performance against the model card, per-feature two-sample tests with
Holm's correction and an effect size, a CUSUM e-detector carried across decisions, and three verdicts. The
measures themselves (F1, confusion counts, log-loss) are risk/performance.py's; the challenger gate is
risk/challenger.py. A decision is JSON-ready evidence for the ledger.
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import special, stats

from risk.performance import confusion_counts, f1_from_counts, row_log_loss

DRIFT = "DRIFT"
NO_DRIFT = "NO DRIFT"
INCONCLUSIVE = "INCONCLUSIVE"
# A model whose card keeps no reference (a first model trained on one leaver) retrained once rows of both classes
# arrive: not drift (nothing was tested), so neither the drift metric nor the drift alert counts it.
RETRAIN = "RETRAIN"
RETRAINS = (DRIFT, RETRAIN)  # the verdicts that train challengers and deploy one unless it is worse
DRAWS = 999  # Monte Carlo permutations: p-values resolve to 0.001, valid at any n ((b + 1) / (draws + 1))
PERMUTE_BELOW = 100  # the smaller sample below this: permutation tests; above: KS / Welch's asymptotics
REFERENCE_CAP = 400  # permutation tests use a fixed random subsample of a larger reference (level unchanged)
EPS = 1e-12

Thresholds = namedtuple("Thresholds", "alpha min_rows min_f1_drop min_feature_effect alarm_rows",
                        defaults=(0.05, 30, 0.05, 0.1, 20_000))
# The stream's error control: `sequential` (the default: a CUSUM e-detector on per-row log-loss against the card,
# its average run length between false alarms at least `alarm_rows` rows), `spending` (the per-batch tests, each
# deferred look of the same rows at half the alpha of the one before) or `per-batch` (the tests at alpha, every
# look: the rule before the stream was considered).
CONTROLS = ("sequential", "spending", "per-batch")
LOSS_CAP = float(-np.log(0.1))  # per-row log-loss clipped here (a confident mistake counts as one at 90%)
BETS = (0.1, 0.25, 0.5, 0.75, 0.95)  # the e-detector's bets, as fractions of the largest safe bet 1 / null mean
ONE_SHOT = 0.3  # `sequential` also retrains on one decision's tests alone at this share of drift_alpha


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
        stream = self.evidence.get("stream") or {}
        tests = ([stream] if "threshold" in stream else []) + list(self.tests)
        facts = "; ".join(test_line(t) for t in tests) or ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in self.evidence.items())
        return f"{self.verdict} by {self.method} rule: {self.reason} [{facts}]"

    def record(self) -> dict:
        """The evidence stored in the ledger: inputs and numbers, the tests, the reason."""
        return {**self.evidence, "method": self.method, "reason": self.reason, "tests": self.tests}


def test_line(test: dict) -> str:
    if "threshold" in test:  # the stream's e-detector: its peak level (log e) against the threshold
        return (f"{test['name']} {test['test']} n={test['n']} peak log_e={_num(test['statistic'])} of"
                f" {test['threshold']:.3g}{' *' if test.get('flagged') else ''}")
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


# ---- performance against the card: F1 and log-loss ------------------------------------------------------------

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


# ---- the stream: a CUSUM e-detector on per-row log-loss ------------------------------------------------------

def loss_null(reference_losses: np.ndarray, alpha: float, cap: float = LOSS_CAP) -> dict:
    """The e-detector's null: the mean clipped per-row log-loss the deployed model may have without drift, the
    upper end of a one-sided (1 - alpha) t-interval of the card's out-of-fold losses (the card is a sample too)."""
    clipped = np.minimum(_finite(reference_losses), cap)
    n = int(clipped.size)
    mean = float(clipped.mean()) if n else None
    se = float(clipped.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    bound = None if mean is None else mean + float(stats.t.ppf(1 - alpha, max(n - 1, 1))) * se
    return {"reference_mean": mean, "reference_se": se, "reference_n": n, "cap": cap,
            "null_mean": None if bound is None else float(min(max(bound, EPS), cap))}


def e_detector_paths(losses: np.ndarray, null_mean: float, start: list[float] | None,
                     cap: float = LOSS_CAP, bets: tuple[float, ...] = BETS) -> np.ndarray:
    """Each bet's CUSUM of log e-values after every row (rows x bets), from `start` (zeros when None).

    Row t's e-value for bet b is 1 + b / null_mean * (min(loss_t, cap) - null_mean): non-negative for every loss
    in [0, cap], of mean at most 1 while the mean loss stays at or under null_mean. The CUSUM of their logs,
    S_t = max(0, S_(t-1) + log e_t), is Lindley's recursion, solved here in closed form with cumulative sums."""
    x = np.minimum(_finite(losses), cap)
    lam = np.asarray(bets, dtype=float) / null_mean
    steps = np.log1p(lam[None, :] * (x[:, None] - null_mean))
    walk = np.cumsum(steps, axis=0)
    begin = np.zeros(len(bets)) if start is None else np.asarray(start, dtype=float)
    return walk - np.minimum(np.minimum.accumulate(walk, axis=0), -begin[None, :])


def error_null(counts: np.ndarray, alpha: float) -> dict:
    """The e-detector's null for the per-row error (a wrong prediction): the upper end of the one-sided (1 - alpha)
    Clopper-Pearson interval of the card's cross-validated error rate."""
    counts = np.asarray(counts, dtype=np.int64)
    n, wrong = int(counts.sum()), int(counts[1] + counts[2])
    bound = float(stats.beta.ppf(1 - alpha, wrong + 1, n - wrong)) if 0 < n and wrong < n else 1.0
    return {"reference_rate": wrong / n if n else None, "reference_n": n, "cap": 1.0,
            "null_mean": float(min(max(bound, EPS), 1.0)) if n else None}


def stream_test(reference: Reference, batch: Batch, state: dict | None, thresholds: Thresholds) -> dict:
    """The e-detector over the decided rows, in order, from the state the last decision left: one CUSUM per bet
    on each row's clipped log-loss and on each row's error, against the card (`loss_null`, `error_null`).

    Its level is the log of the mean of exp(S) over the 2 x len(BETS) CUSUMs: an average of CUSUM e-detectors,
    whose first crossing of A = alarm_rows comes after A rows on average at least while neither mean exceeds its
    null (Lorden's bound through the Shiryaev-Roberts statistic, which it never exceeds). After a crossing it
    restarts from zero."""
    state = state or {}
    nulls = {"log_loss": loss_null(reference.log_loss, thresholds.alpha),
             "error": error_null(reference.counts, thresholds.alpha)}
    values = {"log_loss": row_log_loss(batch.y, batch.p_positive),
              "error": (np.asarray(batch.y).astype(bool) != np.asarray(batch.predicted).astype(bool)).astype(float)}
    start, threshold, n = state.get("log_e"), float(np.log(thresholds.alarm_rows)), int(np.asarray(batch.y).size)
    record = {"name": "performance_stream", "kind": "stream",
              "test": "CUSUM e-detector on per-row log-loss (clipped) and error", "n": n, "threshold": threshold,
              "alarm_rows": thresholds.alarm_rows, "bets": list(BETS), "nulls": nulls, "log_e_before": start}
    level, width = np.empty(0), len(BETS)
    if n and all(v["null_mean"] is not None for v in nulls.values()):
        paths = np.hstack([e_detector_paths(values[k], nulls[k]["null_mean"],
                                            None if start is None else start[j * width:(j + 1) * width],
                                            nulls[k]["cap"]) for j, k in enumerate(nulls)])
        level = special.logsumexp(paths, axis=1) - np.log(paths.shape[1])
    crossed = np.flatnonzero(level >= threshold)
    alarm = bool(crossed.size)
    after = [0.0] * (2 * width) if alarm else (paths[-1].tolist() if level.size else start)
    return {**record, "statistic": float(level.max()) if level.size else None,
            "level_end": float(level[-1]) if level.size else None, "alarm": alarm,
            "alarm_row": int(crossed[0]) + 1 if alarm else None, "flagged": alarm,
            "state": {"log_e": after, "rows": int(state.get("rows", 0)) + n,
                      "alarms": int(state.get("alarms", 0)) + alarm}}


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
# `state` is what the last decision on the same deployed model left for the stream's control (None: a fresh start),
# `control` the error control over the stream (CONTROLS; the bench compares them, the pipeline uses the default).
Inputs = namedtuple("Inputs", "batch reference deployed_f1 past_scores names thresholds seed state control",
                    defaults=(0, None, "sequential"))


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


def sequential_verdict(stream: dict, performance: list[dict], data: list[dict], n_new: int,
                       thresholds: Thresholds) -> tuple[str, str]:
    """DRIFT when F1 on the decided rows dropped by drift_min_f1_drop and either the e-detector crossed its
    threshold or this decision's performance tests alone are significant (after Holm, at their `alpha`)."""
    drop = performance[0]["effect"]
    material = drop is not None and drop >= thresholds.min_f1_drop
    significant = [t["name"] for t in performance if t["p_adjusted"] < t["alpha"]]
    drop_text = "n/a" if drop is None else f"{drop:+.3f}"
    if n_new < thresholds.min_rows:
        return INCONCLUSIVE, f"{n_new} new row(s) < drift_min_rows {thresholds.min_rows}: waiting for more data"
    crossed = (f"the performance e-detector crossed log {stream['threshold']:.2f} (alarm_rows {thresholds.alarm_rows})"
               f" at row {stream['alarm_row']}")
    if stream["alarm"] and material:
        return DRIFT, f"{crossed} and F1 dropped by {drop_text} (>= {thresholds.min_f1_drop})"
    if significant and material:
        return DRIFT, (f"F1 dropped by {drop_text} (>= {thresholds.min_f1_drop}), {' and '.join(significant)}"
                       f" significant in this decision alone at alpha {performance[0]['alpha']:.3g} after Holm")
    if stream["alarm"]:
        return NO_DRIFT, f"{crossed} but the F1 change {drop_text} is below drift_min_f1_drop: the detector restarts"
    moved = [t["name"] for t in data if t["flagged"]]
    shifted = f"; {', '.join(moved)} shifted without a loss of performance" if moved else ""
    level = "n/a" if stream["level_end"] is None else f"{stream['level_end']:.2f}"
    return NO_DRIFT, (f"no sustained loss of performance (e-detector at log {level} of {stream['threshold']:.2f},"
                      f" F1 change {drop_text}){shifted}")


def spent_alpha(alpha: float, look: int) -> float:
    """The alpha-spending plan of the deferred looks at the same rows: look k tests at alpha / 2^k (sum <= alpha)."""
    return alpha / 2 ** look


def statistical_rule(reference: Reference, batch: Batch, names: tuple[str, ...], thresholds: Thresholds,
                     seed: int = 0, draws: int = DRAWS, state: dict | None = None,
                     control: str = "sequential") -> Decision:
    """The default method: tests of performance against the card and of each feature, the stream's error control
    (`control`, one of CONTROLS, from the `state` the last decision left), then the verdict. The evidence's
    `stream` holds the control's numbers and the state for the next decision."""
    n_new = int(np.asarray(batch.y).size)
    look = int((state or {}).get("look", 1))
    alpha = {"spending": spent_alpha(thresholds.alpha, look), "sequential": thresholds.alpha * ONE_SHOT}
    used = thresholds._replace(alpha=alpha.get(control, thresholds.alpha))
    performance, data = run_tests(reference, batch, names, used, seed, draws)
    if control == "sequential":
        stream = stream_test(reference, batch, state, thresholds)
        verdict, reason = sequential_verdict(stream, performance, data, n_new, thresholds)
        if n_new < thresholds.min_rows:  # not decided: these rows join the next decision, the state waits
            stream = {**stream, "alarm": False, "flagged": False, "state": state}
    else:
        verdict, reason = verdict_of(performance, data, n_new, used)
        tested_and_waiting = verdict == INCONCLUSIVE and n_new >= thresholds.min_rows
        after = {"look": look + 1} if tested_and_waiting else (state if verdict == INCONCLUSIVE else None)
        stream = {"control": control, "look": look, "alpha_spent": used.alpha,
                  "state": after if control == "spending" else None}
    f1 = performance[0]
    evidence = {"new_rows": n_new, "reference_rows": f1["n_reference"], "new_f1": f1.get("new_f1"),
                "expected_f1": f1.get("reference_f1"), "thresholds": dict(thresholds._asdict()),
                "stream": {"control": control, **stream}}
    return Decision(verdict, "statistical", evidence, reason, performance + data)
