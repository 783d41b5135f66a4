"""risk/drift.py: each test on cases with known answers, the verdicts, and evidence accumulating across ticks."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import has_undeferred_pending, record_file

from risk import drift, performance
from risk.ledger import Ledger

T = drift.Thresholds()
NAMES = ("a", "b")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---- performance ---------------------------------------------------------------------------------------------

def test_f1_drop_on_identical_counts_is_not_significant() -> None:
    counts = np.array([40, 10, 10, 40])
    test = drift.f1_drop_test(counts, counts, rng())
    assert test["effect"] == 0.0
    assert test["p_value"] > 0.4
    assert (test["n"], test["n_reference"]) == (100, 100)


def test_f1_drop_on_a_collapsed_model_is_significant() -> None:
    test = drift.f1_drop_test(np.array([40, 10, 10, 40]), np.array([10, 40, 40, 10]), rng())
    assert test["effect"] == pytest.approx(0.8 - 0.2)
    assert test["p_value"] == pytest.approx(1 / (drift.DRAWS + 1))


def test_f1_drop_with_one_new_row_or_none() -> None:
    one = drift.f1_drop_test(np.array([40, 10, 10, 40]), np.array([0, 0, 1, 0]), rng())
    assert one["n"] == 1
    # one missed leaver (new F1 0, drop 0.8) against pooled [40, 10, 11, 40]: a drawn row drops F1 by >= 0.8
    # only when it is an fp or an fn (new F1 0; the rest's F1 80/100 = 0.8), so p = P(fp or fn) = 21/101 (+- the
    # Monte Carlo error of 999 draws, sd 0.013): one wrong row proves nothing
    assert one["effect"] == pytest.approx(0.8)
    assert one["p_value"] == pytest.approx(21 / 101, abs=0.04)
    none = drift.f1_drop_test(np.array([40, 10, 10, 40]), np.zeros(4, dtype=int), rng())
    assert (none["p_value"], none["effect"]) == (None, None)


def test_f1_drop_test_keeps_its_error_rate_when_nothing_changed() -> None:
    generator, probabilities = rng(1), np.array([0.3, 0.1, 0.15, 0.45])
    rejections = 0
    for _ in range(300):
        reference, new = generator.multinomial(40, probabilities), generator.multinomial(25, probabilities)
        rejections += drift.f1_drop_test(reference, new, generator, draws=199)["p_value"] < 0.05
    assert rejections / 300 <= 0.07  # nominal 5%; the permutation test is exact up to its discreteness


def test_mean_increase_test_small_and_large_samples() -> None:
    same = drift.mean_increase_test("loss", np.full(30, 0.4), np.full(10, 0.4), rng())
    assert same["test"] == "permutation, one-sided"
    assert same["p_value"] == 1.0
    assert same["effect"] == pytest.approx(0.0)
    worse = drift.mean_increase_test("loss", rng(2).normal(0.5, 0.1, 300), rng(3).normal(0.7, 0.1, 40), rng())
    assert worse["p_value"] < 0.01
    assert worse["effect"] == pytest.approx(0.2, abs=0.05)
    values = rng(2).normal(0.5, 0.1, 500)
    large = drift.mean_increase_test("loss", values, rng(3).permutation(values), rng())
    assert large["test"] == "Welch t, one-sided"
    assert large["p_value"] == pytest.approx(0.5)  # the same values: t = 0
    constant = drift.mean_increase_test("loss", np.ones(200), np.ones(200), rng())
    assert constant["p_value"] == 1.0


# ---- data drift ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [20, 5000])
def test_identical_samples_do_not_drift(n: int) -> None:
    values = rng().normal(size=n)
    test = drift.feature_test("x", values, values.copy(), rng())
    assert test["statistic"] == 0.0
    assert test["p_value"] == pytest.approx(1.0)
    assert test["effect"] == 0.0
    assert test["test"] == ("KS permutation" if n < drift.PERMUTE_BELOW else "KS asymptotic")


@pytest.mark.parametrize("n", [30, 5000])
def test_shifted_samples_drift_with_a_large_effect(n: int) -> None:
    test = drift.feature_test("x", rng(1).normal(size=1000), rng(2).normal(2.0, 1.0, n), rng())
    assert test["p_value"] < 0.002
    assert test["effect"] > 0.8  # two standard deviations, in pooled-sd units


def test_a_tiny_shift_on_a_huge_sample_is_significant_but_not_flagged() -> None:
    test = drift.feature_test("x", rng(1).normal(size=200_000), rng(2).normal(0.03, 1.0, 200_000), rng())
    [adjusted] = drift._adjust([test], T, T.min_feature_effect)
    assert adjusted["p_value"] < 1e-6
    assert adjusted["effect"] < T.min_feature_effect
    assert not adjusted["flagged"]


def test_one_new_value_gets_its_exact_p_value_and_no_verdict() -> None:
    test = drift.feature_test("x", rng().normal(size=50), np.array([100.0]), rng())
    assert test["n"] == 1
    assert test["statistic"] == 1.0
    assert test["p_value"] == pytest.approx(2 / 51, abs=0.015)  # an extreme of 51 values: 2 chances in 51
    one = drift.statistical_rule(reference(), new_rows(1, 0.0), NAMES, T)
    assert one.verdict == drift.INCONCLUSIVE
    assert [t["n"] for t in one.tests] == [1, 1, 1, 1]


def test_ties_are_handled_exactly() -> None:
    reference = np.r_[np.zeros(50), np.ones(50)]
    same = drift.feature_test("x", reference, np.r_[np.zeros(10), np.ones(10)], rng())
    assert (same["statistic"], same["p_value"]) == (0.0, 1.0)
    moved = drift.feature_test("x", reference, np.r_[np.zeros(2), np.ones(38)], rng())
    assert moved["statistic"] == pytest.approx(0.5 - 0.05)  # the ECDFs differ only at 0: 0.5 vs 0.05
    assert moved["p_value"] == 1 / (drift.DRAWS + 1)


def test_constant_columns() -> None:
    same = drift.feature_test("x", np.full(40, 3.0), np.full(10, 3.0), rng())
    assert (same["statistic"], same["p_value"], same["effect"]) == (0.0, 1.0, 0.0)
    other = drift.feature_test("x", np.full(40, 3.0), np.full(10, 7.0), rng())
    assert other["statistic"] == 1.0
    assert other["p_value"] == 1 / (drift.DRAWS + 1)
    # Wasserstein distance 7 - 3 = 4; the 50 pooled values: mean (40*3 + 10*7)/50 = 3.8, variance
    # (40 * 0.8^2 + 10 * 3.2^2)/50 = (25.6 + 102.4)/50 = 2.56, sd 1.6 -> effect 4 / 1.6 = 2.5
    assert other["effect"] == pytest.approx(2.5)
    large = drift.feature_test("x", np.full(400, 3.0), np.full(400, 3.0), rng())
    assert (large["statistic"], large["p_value"], large["effect"]) == (0.0, 1.0, 0.0)


def test_nan_values_are_dropped_and_counted() -> None:
    new = np.array([1.0, np.nan, 2.0, np.nan, 3.0])
    test = drift.feature_test("x", np.arange(20.0), new, rng())
    assert (test["n"], test["dropped"]) == (3, 2)
    empty = drift.feature_test("x", np.arange(20.0), np.full(4, np.nan), rng())
    assert (empty["p_value"], empty["effect"], empty["dropped"]) == (None, None, 4)
    [adjusted] = drift._adjust([empty], T, T.min_feature_effect)
    assert adjusted["p_adjusted"] == 1.0
    assert not adjusted["flagged"]
    json.dumps(adjusted, allow_nan=False)  # JSON-ready: no NaN in a record


def test_feature_test_keeps_its_error_rate_when_nothing_changed() -> None:
    generator = rng(5)
    rejections = sum(
        drift.feature_test("x", generator.poisson(3, 60), generator.poisson(3, 20), generator, draws=199)["p_value"]
        < 0.05 for _ in range(300))
    assert rejections / 300 <= 0.07


def test_holm_known_answer() -> None:
    assert drift.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert drift.holm([0.5, None]) == pytest.approx([1.0, 1.0])
    assert drift.holm([0.001]) == [0.001]


# ---- the course's rule, the score-history rules, champion / challenger ---------------------------------------

def test_score_thresholds_known_answers() -> None:
    assert drift.score_threshold([0.5, 0.7, 0.9], "parametric") == pytest.approx(0.3)
    assert drift.score_threshold([0.5, 0.7, 0.9], "nonparametric") == pytest.approx(0.6 - 1.5 * 0.2)
    assert drift.score_threshold([0.8], "parametric") == drift.score_threshold([0.8], "nonparametric") == 0.8
    with pytest.raises(ValueError, match="no past scores"):
        drift.score_threshold([], "parametric")
    assert drift.history_rule(0.2, [0.5, 0.7, 0.9], 10, "parametric").verdict == drift.DRIFT
    assert drift.course_rule(0.5, 0.6, 10).verdict == drift.DRIFT
    assert drift.course_rule(0.6, 0.6, 10).verdict == drift.NO_DRIFT


# ---- the verdicts --------------------------------------------------------------------------------------------

def batch_of(y: np.ndarray, predicted: np.ndarray, x: np.ndarray) -> drift.Batch:
    return drift.Batch(y, predicted, np.where(predicted == 1, 0.8, 0.2), x)


def reference(n: int = 400) -> drift.Reference:
    generator = rng(7)
    y = generator.integers(0, 2, n)
    predicted = np.where(generator.random(n) < 0.85, y, 1 - y)
    return drift.Reference(performance.confusion_counts(y, predicted), performance.row_log_loss(y, np.where(
        predicted == 1, 0.8, 0.2)), generator.normal(size=(n, 2)))


def new_rows(n: int, accuracy: float, shift: float = 0.0, seed: int = 8) -> drift.Batch:
    generator = rng(seed)
    y = generator.integers(0, 2, n)
    predicted = np.where(generator.random(n) < accuracy, y, 1 - y)
    return batch_of(y, predicted, generator.normal(shift, 1.0, size=(n, 2)))


@pytest.mark.parametrize("control", drift.CONTROLS)
def test_verdicts_of_the_statistical_rule(control: str) -> None:
    calm = drift.statistical_rule(reference(), new_rows(200, 0.85), NAMES, T, control=control)
    assert calm.verdict == drift.NO_DRIFT
    broken = drift.statistical_rule(reference(), new_rows(200, 0.5), NAMES, T, control=control)
    assert broken.verdict == drift.DRIFT
    assert ("crossed" if control == "sequential" else "significant") in broken.reason
    few = drift.statistical_rule(reference(), new_rows(10, 0.0), NAMES, T, control=control)
    assert few.verdict == drift.INCONCLUSIVE
    assert "drift_min_rows 30" in few.reason
    moved = drift.statistical_rule(reference(), new_rows(200, 0.85, shift=1.0), NAMES, T, control=control)
    assert moved.verdict == drift.NO_DRIFT
    assert "shifted without a loss of performance" in moved.reason
    assert [t["flagged"] for t in moved.tests if t["kind"] == "data"] == [True, True]
    json.dumps(broken.record(), allow_nan=False)
    assert broken.line().startswith("DRIFT by statistical rule: ")


def test_a_material_but_unproven_drop_with_shifted_data_waits() -> None:
    performance = [{"effect": 0.2, "p_adjusted": 0.2}, {"effect": 0.1, "p_adjusted": 0.2}]
    data = [{"name": "a", "flagged": True}]
    verdict, reason = drift.verdict_of(performance, data, 50, T)
    assert verdict == drift.INCONCLUSIVE
    assert "a shifted" in reason
    assert drift.verdict_of(performance, [], 50, T)[0] == drift.NO_DRIFT
    small = [{"effect": 0.01, "p_adjusted": 0.001}, {"effect": 0.0, "p_adjusted": 0.5}]
    assert drift.verdict_of(small, [], 50_000, T) == (
        drift.NO_DRIFT, "performance change +0.010 is significant but below drift_min_f1_drop")


def test_the_decision_is_reproducible() -> None:
    first = drift.statistical_rule(reference(), new_rows(60, 0.7), NAMES, T)
    assert drift.statistical_rule(reference(), new_rows(60, 0.7), NAMES, T) == first


# ---- accumulation across ticks (the ledger's side) ------------------------------------------------------------

def test_deferred_files_wait_for_new_data_and_then_are_decided_together(tmp_path) -> None:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        run = ledger.runs.start("fullprocess")
        first = record_file(ledger, run, "a.csv", "sha-a", 10, 1, "ingested", rows=10)
        assert has_undeferred_pending(ledger)
        ledger.decisions.defer(run, drift.INCONCLUSIVE, "deferred", {"new_rows": 10}, [first])
        assert not has_undeferred_pending(ledger)  # the idle tick does not redo the same decision
        assert [f["name"] for f in ledger.files.records(status="ingested", pending=True)] == ["a.csv"]
        second = record_file(ledger, run, "b.csv", "sha-b", 30, 1, "ingested", rows=30)
        assert has_undeferred_pending(ledger)
        pending = ledger.files.records(status="ingested", pending=True)
        assert [f["name"] for f in pending] == ["a.csv", "b.csv"]  # the next decision sees both
        ledger.decisions.record(run, drift.DRIFT, "deployed", {"new_rows": 40}, [f["id"] for f in pending])
        assert not ledger.files.records(status="ingested", pending=True)
        assert [d["verdict"] for d in ledger.decisions.latest()] == [drift.DRIFT, drift.INCONCLUSIVE]
        assert second != first


def test_a_tiny_reference_against_a_huge_batch_decides_in_bounded_memory() -> None:
    """A 26-row model's card against 200k new rows: the permutation tests permute bounded subsamples."""
    import tracemalloc

    rng = np.random.default_rng(3)
    reference = drift.Reference(np.array([8, 3, 4, 11]), rng.exponential(0.5, 26), rng.normal(size=(26, 3)))
    n = 200_000
    y = rng.integers(0, 2, n)
    batch = drift.Batch(y, y.copy(), np.clip(rng.random(n), 0.01, 0.99), rng.normal(size=(n, 3)))
    tracemalloc.start()
    decision = drift.statistical_rule(reference, batch, ("a", "b", "c"), drift.Thresholds())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 150 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    log_loss = next(t for t in decision.tests if t["name"] == "log_loss")
    assert (log_loss["test"], log_loss["n"], log_loss["n_used"]) == ("permutation, one-sided", n, drift.REFERENCE_CAP)
    # the batch's calls are its labels: new F1 1; the card's counts [8, 3, 4, 11] give F1 2*8 / (2*8 + 3 + 4) = 16/23,
    # so F1 changes by 16/23 - 1 = -7/23 (a gain): no loss to retrain for, whatever the (random) log-losses say
    assert (decision.evidence["new_f1"], decision.evidence["expected_f1"]) == (1.0, pytest.approx(16 / 23))
    assert decision.tests[0]["effect"] == pytest.approx(-7 / 23)
    assert decision.verdict == drift.NO_DRIFT
    assert "the F1 change -0.304 is below drift_min_f1_drop" in decision.reason


def test_the_method_registry_names_the_four_methods() -> None:
    from risk import methods

    assert set(methods.METHODS) == {"statistical", "raw", "parametric", "nonparametric"}


def test_the_config_check_reads_the_method_registry(tmp_path) -> None:
    from risk import config as config_module
    from risk import methods

    assert config_module.DRIFT_METHODS is methods.METHODS


# ---- the stream: the e-detector and its state ----------------------------------------------------------------

def calibrated(generator: np.random.Generator, n: int, shift: float = 0.0) -> drift.Batch:
    """Rows of a calibrated model (P(leave) ~ Beta(2, 3)), their labels drawn `shift` above its probabilities."""
    p = generator.beta(2, 3, n)
    y = (generator.random(n) < np.clip(p + shift, 0, 1)).astype(int)
    return drift.Batch(y, performance.flagged(p), p, np.zeros((n, 0)))


def flipped(batch: drift.Batch, share: float, generator: np.random.Generator) -> drift.Batch:
    """The same rows with `share` of their labels flipped: the model is wrong more often."""
    flip = generator.random(len(batch.y)) < share
    return batch._replace(y=np.where(flip, 1 - batch.y, batch.y))


def card_of(batch: drift.Batch) -> drift.Reference:
    return drift.Reference(performance.confusion_counts(batch.y, batch.predicted),
                           performance.row_log_loss(batch.y, batch.p_positive), batch.x)


def test_the_cusum_in_closed_form_is_lindleys_recursion_and_resumes_from_its_state() -> None:
    losses = np.array([0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 2.0])
    paths = drift.e_detector_paths(losses, 0.5, None, cap=2.0, bets=(0.5,))
    expected, s = [], 0.0
    for loss in losses:  # S_t = max(0, S_(t-1) + log(1 + 0.5 / 0.5 * (loss - 0.5)))
        s = max(0.0, s + np.log1p(loss - 0.5))
        expected.append(s)
    assert paths[:, 0] == pytest.approx(expected)
    resumed = drift.e_detector_paths(losses[3:], 0.5, paths[2].tolist(), cap=2.0, bets=(0.5,))
    assert resumed[:, 0] == pytest.approx(expected[3:])


def test_the_sequential_rules_false_alarms_on_calm_streams_stay_within_its_bound() -> None:
    """Stated bound: while the new rows' mean losses stay at the card's, alarms come at least alarm_rows rows
    apart on average, i.e. at most one per alarm_rows rows. 50 calm streams of 20 ticks of 100 rows, each with
    its own card, at alarm_rows 300 so that the bound is tight enough to be tested; the same detector finds a
    miscalibrated stream within a few ticks."""
    thresholds, generator = drift.Thresholds(alarm_rows=300), rng(11)
    alarms = rows = 0
    for _ in range(50):
        card, state = card_of(calibrated(generator, 1000)), None
        for _ in range(20):
            result = drift.stream_test(card, calibrated(generator, 100), state, thresholds)
            alarms, rows, state = alarms + result["alarm"], rows + result["n"], result["state"]
    assert rows == 100_000
    assert alarms / rows <= 1 / thresholds.alarm_rows
    card, state, ticks = card_of(calibrated(generator, 1000)), None, 0
    while not (result := drift.stream_test(card, calibrated(generator, 100, 0.3), state, drift.Thresholds()))["alarm"]:
        state, ticks = result["state"], ticks + 1
    assert ticks <= 5
    assert result["state"]["log_e"] == [0.0] * 2 * len(drift.BETS)  # it restarts after an alarm


def test_the_sequential_rule_keeps_its_state_while_rows_wait_and_retrains_on_a_material_alarm() -> None:
    generator = rng(12)
    card = card_of(calibrated(generator, 1000))
    few = drift.statistical_rule(card, calibrated(generator, 10, 0.4), (), T, state={"log_e": [1.0] * 10})
    assert few.verdict == drift.INCONCLUSIVE
    assert few.evidence["stream"]["state"] == {"log_e": [1.0] * 10}  # not decided: the rows join the next one
    calm = drift.statistical_rule(card, calibrated(generator, 100), (), T)
    assert calm.verdict == drift.NO_DRIFT
    assert calm.evidence["stream"]["state"]["rows"] == 100
    worse = drift.statistical_rule(card, flipped(calibrated(generator, 200), 0.5, generator), (), T,
                                   state=calm.evidence["stream"]["state"])
    assert worse.verdict == drift.DRIFT
    stream = worse.evidence["stream"]
    assert stream["log_e_before"] == calm.evidence["stream"]["state"]["log_e"]
    assert stream["control"] == "sequential"
    assert stream["threshold"] == pytest.approx(np.log(T.alarm_rows))
    json.dumps(worse.record(), allow_nan=False)
    assert worse.line().startswith("DRIFT by statistical rule: ")
    assert "performance_stream CUSUM e-detector" in worse.line()


def test_alpha_spending_halves_alpha_at_each_deferred_look() -> None:
    assert [drift.spent_alpha(0.05, k) for k in (1, 2, 3)] == [0.025, 0.0125, 0.00625]
    assert sum(drift.spent_alpha(0.05, k) for k in range(1, 60)) <= 0.05
