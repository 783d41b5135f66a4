"""The project's performance measures, defined once: the decision threshold rule (a row is a leaver when its
P(leaves) >= the threshold), the confusion counts, F1 (with precision and recall) and the per-row log-loss.
Pure functions on arrays (NumPy only); scoring, the API, the card, the drift decision, the challenger, the report
and diagnostics all call these. The conventions are in docs/data-contract.md ("Predictions and F1").
"""
from __future__ import annotations

import numpy as np

THRESHOLD = 0.5  # a version's manifest may carry its own `threshold`; none does yet
COUNTS = ("tp", "fp", "fn", "tn")  # the order of confusion_counts' last axis


def threshold_of(manifest: dict) -> float:
    """The threshold a deployed version decides at: its manifest's, else THRESHOLD."""
    return float(manifest.get("threshold", THRESHOLD))


def flagged(proba: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """THE decision rule: 1 (leaves) where P(leaves) >= threshold, else 0 (int64, the shape of `proba`)."""
    return (np.asarray(proba, dtype=float) >= threshold).astype(np.int64)


def probabilities(model: object, x: np.ndarray) -> np.ndarray:
    """P(leaves) of each row of `x` (rows x the model's features): the model's second column."""
    return np.asarray(model.predict_proba(x))[:, 1]


def predictions(model: object, x: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """The model's 0/1 calls: its probabilities through `flagged` (never the estimator's own `predict`)."""
    return flagged(probabilities(model, x), threshold)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """[tp, fp, fn, tn] of binary labels and predictions along the last axis (one set per row of 2-D arrays)."""
    y, p = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    counts = [(y & p).sum(-1), (~y & p).sum(-1), (y & ~p).sum(-1), (~y & ~p).sum(-1)]
    return np.stack(counts, axis=-1).astype(np.int64)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> list[list[int]]:
    """[[tn, fp], [fn, tp]]: rows actual 0/1, columns predicted 0/1 (scikit-learn's layout)."""
    tp, fp, fn, tn = confusion_counts(y_true, y_pred).tolist()
    return [[tn, fp], [fn, tp]]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 1.0 where the denominator is 0 (scikit-learn's zero_division=1.0)."""
    numerator, denominator = np.broadcast_arrays(np.asarray(numerator, float), np.asarray(denominator, float))
    return np.divide(numerator, denominator, out=np.ones(numerator.shape), where=denominator > 0)


def f1_from_counts(counts: np.ndarray) -> np.ndarray:
    """THE F1 of [tp, fp, fn, tn] (vectorised on the last axis): 2 tp / (2 tp + fp + fn). With no positive at
    all, true or predicted, there is nothing to find and nothing wrongly flagged: 1.0."""
    counts = np.asarray(counts, dtype=float)
    return _ratio(2 * counts[..., 0], 2 * counts[..., 0] + counts[..., 1] + counts[..., 2])


def precision_from_counts(counts: np.ndarray) -> np.ndarray:
    """tp / (tp + fp); 1.0 when nothing is flagged (nothing wrongly flagged)."""
    counts = np.asarray(counts, dtype=float)
    return _ratio(counts[..., 0], counts[..., 0] + counts[..., 1])


def recall_from_counts(counts: np.ndarray) -> np.ndarray:
    """tp / (tp + fn); 1.0 when there is no leaver (nothing to find)."""
    counts = np.asarray(counts, dtype=float)
    return _ratio(counts[..., 0], counts[..., 0] + counts[..., 2])


def f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 of binary labels and predictions (see f1_from_counts)."""
    return float(f1_from_counts(confusion_counts(y_true, y_pred)))


def row_log_loss(y_true: np.ndarray, p_positive: np.ndarray) -> np.ndarray:
    """Each row's log-loss (natural log), probabilities clipped to [1e-15, 1 - 1e-15]."""
    p = np.clip(np.asarray(p_positive, dtype=float), 1e-15, 1 - 1e-15)
    return np.where(np.asarray(y_true).astype(bool), -np.log(p), -np.log1p(-p))
