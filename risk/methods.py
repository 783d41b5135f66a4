"""The drift methods, by name: the one registry the config check, the pipeline and the drift bench share.

Each method takes the decision's inputs (`drift.Inputs`: the new rows as the deployed model sees them, the
card's reference, the deployed score, the past scores, the thresholds) and returns a `drift.Decision`.
Stdlib only at import (the idle tick checks the config): each method imports the statistics when it runs.
To add one, write its function here, register it in METHODS and document it in docs/drift.md.
`decide` is the whole decision a tick makes, challenger included: the pipeline and `make bench-drift` call it.
"""
from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable

# The deployed model as the decision sees it: the estimator, its card's drift.Reference (None without one), its
# score on the test data, its past scores, and an identity (its file's sha256) that the stream's state is tied to.
Deployed = namedtuple("Deployed", "model reference score past_scores identity")
# What the decision did: the method's drift.Decision, whether to deploy the retrained model, the challenger's
# test (None when there was no DRIFT or RETRAIN) and the state the next decision on this model starts from.
Outcome = namedtuple("Outcome", "decision deploy challenger state")
CHALLENGER_FOLDS = 5


def statistical(inputs):  # -> drift.Decision
    """The default: tests of performance against the card and of each feature, three verdicts."""
    from risk import drift

    if inputs.reference is None:
        return without_reference(inputs)
    return drift.statistical_rule(inputs.reference, inputs.batch, inputs.names, inputs.thresholds, inputs.seed,
                                  state=inputs.state, control=inputs.control)


NO_REFERENCE = ("the deployed model has no cross-validated reference (its training data held fewer than 2 rows of"
                " a class)")


def without_reference(inputs):  # -> drift.Decision
    """`statistical` when the card has no reference: there is nothing to test performance against, so the model is
    retrained (RETRAIN, not DRIFT: nothing was tested; the challenger still gates it) as soon as the undecided rows
    reach drift_min_rows and hold both classes, which gives the new model's training data at least 2 of each and
    its card a reference. Until then the rows wait (INCONCLUSIVE). Either way the evidence carries a warning."""
    from risk import drift, performance

    y, n = inputs.batch.y, len(inputs.batch.y)
    classes = sorted(set(y.tolist()))
    if n < inputs.thresholds.min_rows:
        verdict, why = drift.INCONCLUSIVE, f"{n} new row(s) < drift_min_rows {inputs.thresholds.min_rows}: waiting"
    elif len(classes) < 2:
        verdict, why = drift.INCONCLUSIVE, f"the {n} new rows hold only class {classes}: waiting for both classes"
    else:
        verdict, why = drift.RETRAIN, f"retraining on the {n} new rows, which hold both classes, to get one"
    evidence = {"new_rows": n, "new_f1": performance.f1(y, inputs.batch.predicted) if n else None, "expected_f1": None,
                "warning": f"{NO_REFERENCE}: {why}"}
    return drift.Decision(verdict, "statistical", evidence, f"{NO_REFERENCE}: {why}")


def raw(inputs):  # -> drift.Decision
    """The course's rule: drift when the F1 on the new rows is below the deployed score."""
    from risk import drift, performance

    if not len(inputs.batch.y):
        return drift.Decision(drift.NO_DRIFT, "raw", {"new_rows": 0}, "no new rows")
    return drift.course_rule(performance.f1(inputs.batch.y, inputs.batch.predicted), inputs.deployed_f1,
                             len(inputs.batch.y))


def _score_history(method: str):  # -> a method
    def decide(inputs):  # -> drift.Decision
        from risk import drift, performance

        if not len(inputs.batch.y):
            return drift.Decision(drift.NO_DRIFT, method, {"new_rows": 0}, "no new rows")
        new_f1 = performance.f1(inputs.batch.y, inputs.batch.predicted)
        return drift.history_rule(new_f1, inputs.past_scores, len(inputs.batch.y), method)

    decide.__doc__ = f"`{method}`: drift when the new F1 is below the past scores' lower fence."
    return decide


METHODS = {
    "statistical": statistical,
    "raw": raw,
    "parametric": _score_history("parametric"),
    "nonparametric": _score_history("nonparametric"),
}


def batch_of(model: object, frame) -> object:  # frame: pd.DataFrame -> drift.Batch
    """The new rows as the deployed model sees them: labels, predictions (performance.flagged), P(positive),
    features."""
    import numpy as np

    from risk import contract, drift, performance

    x, y = contract.split_xy(frame)
    if not len(y):
        return drift.Batch(y, np.empty(0, dtype=int), np.empty(0), x)
    proba = performance.probabilities(model, x)
    return drift.Batch(y, performance.flagged(proba), proba, x)


def state_for(deployed: Deployed, state: dict | None) -> dict | None:
    """The stream's state when the last decision was made on this very model; None (a fresh start) otherwise."""
    return state if state and state.get("model") == deployed.identity else None


def decide(method: str, deployed: Deployed, new, history: Callable[[], object], state: dict | None,
           thresholds, train: Callable[[object], object], seed: int = 0, control: str = "sequential") -> Outcome:
    """The drift decision of one tick on the undecided rows `new` (this tick's and the deferred ones, a validated
    frame): apply `method` from the stream state the last decision left (`state`, ignored when it was left for
    another model); on DRIFT or RETRAIN, challengers trained on `history()` (every decided row) and all but one
    fold of the new rows are gated against the champion on that fold; `train` fits a model on a frame
    (training.train_model, passed in: this module stays below the training code). Pure apart from the training:
    no file is read."""
    from risk import drift

    batch = batch_of(deployed.model, new)
    inputs = drift.Inputs(batch, deployed.reference, deployed.score, deployed.past_scores, _features(),
                          thresholds, seed, state_for(deployed, state), control)
    decision = METHODS[method](inputs)
    stream = decision.evidence.get("stream")
    after = None
    if stream is not None and stream.get("state") is not None:  # the record names the model its state is for
        after = stream["state"] = {**stream["state"], "model": deployed.identity}
    if decision.verdict not in drift.RETRAINS:
        return Outcome(decision, False, None, after)
    deploy, challenger = challenge(deployed.model, history(), new, thresholds, train, seed)
    return Outcome(decision, deploy, challenger, after)


def _features() -> tuple[str, ...]:
    from risk import contract

    return contract.FEATURES


def challenge(champion: object, old, new, thresholds, train: Callable[[object], object],
              seed: int = 0) -> tuple[bool, dict]:
    """Challengers trained on `old` and all but one fold of `new`, against the champion on that fold
    (challenger.gate). Returns (deploy, the test and its reason)."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import KFold

    from risk import challenger, contract, performance
    from risk.errors import ContractError

    if len(new) < 2:
        return True, {"reason": f"{len(new)} new row(s): nothing to hold out; the challenger is deployed"}
    x, y = contract.split_xy(new)
    proba = np.empty(len(y))
    try:
        for fit, held in KFold(min(CHALLENGER_FOLDS, len(y)), shuffle=True, random_state=seed).split(x):
            model = train(pd.concat([old, new.iloc[fit]], ignore_index=True))
            proba[held] = performance.probabilities(model, x[held])
    except ContractError as exc:
        return False, {"reason": f"no challenger could be trained: {exc}"}
    ours = performance.probabilities(champion, x)
    test = challenger.gate(y, (performance.flagged(ours), ours), (performance.flagged(proba), proba),
                           thresholds.min_f1_drop, thresholds.alpha, seed)
    deploy, reason = challenger.verdict(test)
    return deploy, {"reason": reason, "test": test}
