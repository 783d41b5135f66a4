"""The model report's content as plain data: every section a person reads, computed from values passed in.

Pure functions (no file reads): reporting.py gathers the inputs (ledger rows, the deployed version, the test
and ingested data) and risk/report_render.py turns the content into figures, a PDF and an HTML page.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from risk import performance, summary

BOOTSTRAP_DRAWS = 1000
CONFIDENCE = 0.95
CALIBRATION_BINS = 5
MAX_FILES = 30
SECTIONS = ("Summary", "Data lineage", "Metrics with confidence intervals", "Confusion matrix", "Calibration",
            "Score and data drift over time", "Decision behind this deployment", "Data quality",
            "Timings and dependencies", "Deployment history", "Clients most at risk", "Effect of calling",
            "How many calls pay", "Expected and realized hit rates")


def _scores(y: np.ndarray, predicted: np.ndarray, proba: np.ndarray) -> dict[str, np.ndarray]:
    """F1, precision, recall (risk/performance.py's, with its convention when undefined) and ROC AUC (NaN with one
    class) of each row of 2-D arrays: one resample per row, vectorised (a thousand sklearn calls take seconds)."""
    from scipy.stats import rankdata

    counts = performance.confusion_counts(y, predicted)
    positives, negatives = y.sum(axis=1), (~y).sum(axis=1)
    ranks = rankdata(proba, axis=1)  # average ranks for ties: the Mann-Whitney form of the AUC
    u = (ranks * y).sum(axis=1) - positives * (positives + 1) / 2
    defined = (positives > 0) & (negatives > 0)
    auc = np.divide(u, positives * negatives, out=np.full(len(u), np.nan), where=defined)
    return {"f1": performance.f1_from_counts(counts), "precision": performance.precision_from_counts(counts),
            "recall": performance.recall_from_counts(counts), "auc": auc}


def metrics_with_ci(y: np.ndarray, proba: np.ndarray, threshold: float = performance.THRESHOLD,
                    draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> dict:
    """F1, precision, recall and ROC AUC with percentile bootstrap intervals (resampled rows, seed fixed)."""
    y, proba = np.asarray(y, dtype=int), np.asarray(proba, dtype=float)
    predicted = performance.flagged(proba, threshold).astype(bool)
    index = np.random.default_rng(seed).integers(0, len(y), (draws, len(y)))
    point = _scores(y[None, :] == 1, predicted[None, :], proba[None, :])
    boot = _scores(y[index] == 1, predicted[index], proba[index]) if len(y) else {}
    tail = (1 - CONFIDENCE) / 2 * 100
    out = {}
    for name in ("f1", "precision", "recall", "auc"):
        values = boot[name][~np.isnan(boot[name])] if len(y) else np.empty(0)
        low, high = np.percentile(values, [tail, 100 - tail]).tolist() if values.size else (None, None)
        value = float(point[name][0]) if len(y) and not np.isnan(point[name][0]) else None
        out[name] = {"value": value, "low": low, "high": high, "draws": int(values.size)}
    return {"n": len(y), "positives": int(y.sum()), "threshold": threshold, "confidence": CONFIDENCE, **out}


def scaled_capacity(capacity: int, rows: int, portfolio: int | None) -> int:
    """The call capacity scaled to a labelled sample smaller than the portfolio (at least 1, at most the rows):
    with 20 calls for 2,000 clients, a 50-row test file is judged on its top 1 (20 x 50 / 2,000 = 0.5)."""
    if not rows:
        return 0
    share = rows / portfolio if portfolio and rows < portfolio else 1.0
    return int(min(rows, max(1, round(capacity * share))))


def _precision_at(y: np.ndarray, proba: np.ndarray, k: int) -> np.ndarray:
    """The share of leavers among the k highest probabilities of each row of 2-D arrays."""
    top = np.argpartition(-proba, k - 1, axis=1)[:, :k]
    return np.take_along_axis(y, top, axis=1).mean(axis=1)


def at_capacity(y: np.ndarray, proba: np.ndarray, capacity: int, portfolio: int | None = None,
                draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> dict:
    """Precision in the top k (the capacity scaled to the sample) and lift over the sample's base rate, with
    percentile bootstrap intervals over resampled rows (drawn in chunks: memory stays bounded at any size)."""
    y, proba = np.asarray(y, dtype=float), np.asarray(proba, dtype=float)
    k, n = scaled_capacity(capacity, len(y), portfolio), len(y)
    if not k:
        return {"k": 0, "n": 0, "capacity": capacity, "portfolio": portfolio, "precision": None, "lift": None,
                "base_rate": None}
    base = float(y.mean())
    precision = float(_precision_at(y[None, :], proba[None, :], k)[0])
    rng, chunk, boot = np.random.default_rng(seed), max(1, 4_000_000 // n), []
    for start in range(0, draws, chunk):
        index = rng.integers(0, n, (min(chunk, draws - start), n))
        resampled = y[index]
        boot.append(np.c_[_precision_at(resampled, proba[index], k), resampled.mean(axis=1)])
    boot = np.concatenate(boot)
    lifts = np.divide(boot[:, 0], boot[:, 1], out=np.full(len(boot), np.nan), where=boot[:, 1] > 0)
    tail = (1 - CONFIDENCE) / 2 * 100

    def interval(values: np.ndarray) -> list[float] | None:
        values = values[np.isfinite(values)]
        return [round(float(v), 4) for v in np.percentile(values, [tail, 100 - tail])] if values.size else None

    return {"k": k, "n": n, "capacity": capacity, "portfolio": portfolio, "precision": round(precision, 4),
            "precision_ci95": interval(boot[:, 0]), "base_rate": round(base, 4),
            "lift": round(precision / base, 4) if base else None, "lift_ci95": interval(lifts), "draws": draws}


def calibration_scores(y: np.ndarray, proba: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """Brier score (scikit-learn's) and the expected calibration error over the reliability plot's bins: the
    rows-weighted mean gap between the predicted probability and the observed share of leavers."""
    from sklearn.metrics import brier_score_loss

    y, proba = np.asarray(y, dtype=int), np.asarray(proba, dtype=float)
    if not len(y):
        return {"brier": None, "ece": None, "bins": bins}
    gaps = [b["n"] * abs(b["observed"] - b["predicted"]) for b in calibration(y, proba, bins)]
    return {"brier": round(float(brier_score_loss(y, proba, labels=[0, 1])), 4),
            "ece": round(float(sum(gaps) / len(y)), 4), "bins": bins}


def cross_validated(card: dict) -> dict | None:
    """The card's out-of-fold figures: F1 (bootstrap se), precision, recall, log-loss; None without them."""
    expected = card.get("expected_performance")
    if not expected:
        return None
    counts = np.array([expected["confusion"][k] for k in performance.COUNTS])
    precision = float(performance.precision_from_counts(counts))
    recall = float(performance.recall_from_counts(counts))
    return {"folds": expected["cv_folds"], "n": expected["n"], "f1": expected["f1"], "f1_se": expected["f1_se"],
            "precision": precision, "recall": recall, "log_loss": expected["log_loss"],
            "log_loss_se": expected["log_loss_se"], "at_capacity": expected.get("at_capacity"),
            "calibration_scores": expected.get("calibration")}


def calibration(y: np.ndarray, proba: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Equal-width bins of predicted probability: mean predicted, observed share of leavers, rows."""
    y, proba = np.asarray(y, dtype=float), np.asarray(proba, dtype=float)
    which = np.minimum((proba * bins).astype(int), bins - 1)
    return [{"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "predicted": float(proba[which == b].mean()),
             "observed": float(y[which == b].mean()), "n": int((which == b).sum())}
            for b in range(bins) if (which == b).any()]


def lineage(files: list[dict], version_files: list[str]) -> dict:
    """Every file the ledger has seen (newest last, capped) and the totals; which ones trained this model."""
    used = set(version_files)
    rows = [{"name": f["name"], "status": f["status"], "rows": f.get("rows") or 0,
             "rejected_rows": f.get("rejected_rows") or 0, "reason": f.get("reason") or "",
             "seen_at": f["seen_at"], "in_model": f["name"] in used and f["status"] == "ingested"} for f in files]
    return {"files": rows[-MAX_FILES:], "more_files": max(0, len(rows) - MAX_FILES),
            "ingested_files": sum(r["status"] == "ingested" for r in rows),
            "rejected_files": sum(r["status"] == "rejected" for r in rows),
            "ingested_rows": sum(r["rows"] for r in rows if r["status"] == "ingested"),
            "rejected_rows": sum(r["rejected_rows"] for r in rows), "model_files": sorted(used)}


def rejection_reasons(rejected: list[dict]) -> list[dict]:
    """Rejected rows counted by reason, most frequent first. A whole file's rejection (no row number) is not a
    row: the files table gives its reason."""
    counts: dict[str, int] = {}
    for row in rejected:
        if row["row"] is not None:
            counts[row["reason"]] = counts.get(row["reason"], 0) + 1
    return [{"reason": r, "rows": n} for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def data_quality(raw: pd.DataFrame) -> list[dict]:
    """Per column of the ingested data: missing share and, for the features, range, mean and median
    (risk/summary.py, as diagnostics and the prepared state have them)."""
    return summary.quality(summary.of_frame(raw))


def drift_history(decisions: list[dict]) -> list[dict]:
    """Each decision oldest first: verdict, rows, new vs expected F1, and each feature test's effect and p."""
    out = []
    for record in sorted(decisions, key=lambda d: d["id"]):
        evidence = record["evidence"]
        features = {t["name"]: {"effect": t.get("effect"), "p_adjusted": t.get("p_adjusted"),
                                "flagged": bool(t.get("flagged"))}
                    for t in evidence.get("tests") or [] if t.get("kind") == "data"}
        out.append({"id": record["id"], "created_at": record["created_at"], "verdict": record["verdict"],
                    "action": record["action"], "new_rows": evidence.get("new_rows"),
                    "new_f1": evidence.get("new_f1"),
                    "expected_f1": evidence.get("expected_f1", evidence.get("deployed_f1")), "features": features})
    return out


def decision_record(decision: dict | None, deployment: dict | None) -> dict:
    """The decision that led to the deployment, or a sentence saying how the version came to be current."""
    if decision is not None:
        evidence = decision["evidence"]
        tests = [{"name": t["name"], "test": t["test"], "n": t["n"], "statistic": t.get("statistic"),
                  "p_adjusted": t.get("p_adjusted"), "effect": t.get("effect"), "flagged": bool(t.get("flagged"))}
                 for t in evidence.get("tests") or []]
        return {"found": True, "created_at": decision["created_at"], "verdict": decision["verdict"],
                "action": decision["action"], "method": evidence.get("method") or "-",
                "reason": evidence.get("reason") or "", "files": evidence.get("files") or [], "tests": tests,
                "challenger": (evidence.get("challenger") or {}).get("reason", "")}
    how = "no deployment of this version is recorded in the ledger"
    if deployment is not None:
        how = (f"made current by a rollback by {deployment.get('actor') or 'unknown'}: {deployment.get('reason')}"
               if deployment.get("action") == "rollback" else "deployed by hand (deployment.py), not by a decision")
    return {"found": False, "summary": how}


def timing_history(diagnostics: list[dict]) -> list[dict]:
    return [{"created_at": d["created_at"], "model_version": d["model_version"],
             "ingestion_seconds": d["ingestion_seconds"], "training_seconds": d["training_seconds"],
             "repeats": d["repeats"]} for d in diagnostics]
