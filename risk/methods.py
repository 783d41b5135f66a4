"""The drift methods, by name: the one registry the config check, the pipeline and the drift bench share.

Each method takes the decision's inputs (`drift.Inputs`: the new rows as the deployed model sees them, the
card's reference, the deployed score, the past scores, the thresholds) and returns a `drift.Decision`.
Stdlib only at import (the idle tick checks the config): each method imports the statistics when it runs.
To add one, write its function here, register it in METHODS and document it in docs/drift.md.
"""
from __future__ import annotations


def statistical(inputs):  # -> drift.Decision
    """The default: tests of performance against the card and of each feature, three verdicts."""
    from risk import drift

    n = len(inputs.batch.y)
    if inputs.reference is None:
        reason = "the deployed model's training data cannot be cross-validated (a class has < 2 rows)"
        return drift.Decision(drift.INCONCLUSIVE, "statistical", {"new_rows": n}, reason)
    return drift.statistical_rule(inputs.reference, inputs.batch, inputs.names, inputs.thresholds, inputs.seed)


def raw(inputs):  # -> drift.Decision
    """The course's rule: drift when the F1 on the new rows is below the deployed score."""
    from risk import drift

    if not len(inputs.batch.y):
        return drift.Decision(drift.NO_DRIFT, "raw", {"new_rows": 0}, "no new rows")
    return drift.course_rule(drift.f1(inputs.batch.y, inputs.batch.predicted), inputs.deployed_f1,
                             len(inputs.batch.y))


def _score_history(method: str):  # -> a method
    def decide(inputs):  # -> drift.Decision
        from risk import drift

        if not len(inputs.batch.y):
            return drift.Decision(drift.NO_DRIFT, method, {"new_rows": 0}, "no new rows")
        new_f1 = drift.f1(inputs.batch.y, inputs.batch.predicted)
        return drift.history_rule(new_f1, inputs.past_scores, len(inputs.batch.y), method)

    decide.__doc__ = f"`{method}`: drift when the new F1 is below the past scores' lower fence."
    return decide


METHODS = {
    "statistical": statistical,
    "raw": raw,
    "parametric": _score_history("parametric"),
    "nonparametric": _score_history("nonparametric"),
}
