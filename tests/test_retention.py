"""The retention loop through the real ingestion, prepared state and API: the measured effect of calling
(GET /risk/effect) with hand-computed answers, expected against realized hit rates on /risk/outcomes with the
calibration alert on /metrics, and the experiment data set (GET /risk/experiment.csv).

Lists are recorded in the ledger as record_if_changed records them, with the groups the holdout draws, on the
history as it stands; each month's rows arrive through ingestion, which brings the prepared state (and its
watch of each list) up."""
from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_frame, write_frame

from app import create_app
from risk import contract, economics, ingestion, prepared, registry, risklist, training
from risk.config import Config
from risk.contacts import contact_of
from risk.ledger import Ledger

FEATURES = dict.fromkeys(contract.FEATURES, 10.0)


def month(config: Config, name: str, rows: dict[str, int]) -> None:
    """Month `name` ("m<number>") of rows ({client: exited}) through ingestion; the features change by month (a row
    repeated exactly is a duplicate, which ingestion drops)."""
    frame = pd.DataFrame({contract.ID_COLUMN: list(rows), **{f: 10 + int(name[1:]) for f in contract.FEATURES},
                          contract.TARGET: list(rows.values())})
    write_frame(frame, config.input_folder / f"{name}.csv")
    ingestion.run_ingestion(config)


def record_list(config: Config, clients: list[tuple[str, float, str | None]]) -> dict:
    """A call list ([(client, probability, group or None)]) recorded on the history as it stands."""
    entries = [{"rank": i + 1, "corporation": name, "probability": p, "reasons": [], "features": FEATURES,
                **({"group": group} if group else {})} for i, (name, p, group) in enumerate(clients)]
    with Ledger(config.ledger_path) as ledger:
        state = prepared.advance(config, prepared.committed(ledger))
        list_id = ledger.call_lists.record(None, 1, len(entries), state.observations, state.data_end_byte,
                                           entries)
        return next(r for r in ledger.call_lists.latest(10) if r["id"] == list_id)


def add_contacts(config: Config, names: list[str], when: str, result: str = "reached") -> None:
    """Contacts as POST /risk/contacts records them (the one place that knows the contacts store's write)."""
    found = [contact_of({"corporation": name, "contacted_at": when, "result": result}, datetime.now(UTC))
             for name in names]  # checked and normalised as the API does: UTC, whole seconds
    with Ledger(config.ledger_path) as ledger:
        ledger.contacts.record(found, "test")


def called_and_held_out(config: Config) -> dict:
    """100 called clients of whom 10 leave (the first 60 contacted, 3 of them leavers), 100 held out of whom 20
    leave, and one contact of a called client before the list (outside its window)."""
    called, held = [f"call{i}" for i in range(100)], [f"ctrl{i}" for i in range(100)]
    called[7] = "=HYPERLINK(1)"  # an id a spreadsheet would run
    month(config, "m0", dict.fromkeys(called + held, 0))
    recorded = record_list(config, [(name, 0.15, "call") for name in called]
                           + [(name, 0.15, "control") for name in held])
    add_contacts(config, called[:60], recorded["created_at"])
    add_contacts(config, called[60:61], "2001-01-01T00:00:00+00:00")  # before the list: not a contact of it
    add_contacts(config, called[61:62], recorded["created_at"], "not_reached")
    leavers = set(called[:3] + called[60:67] + held[:20])
    month(config, "m1", {name: int(name in leavers) for name in called + held})
    return recorded


def test_the_effect_of_calling_by_hand(deployed: Config) -> None:
    called_and_held_out(deployed)
    answer = create_app(deployed).test_client().get("/risk/effect")
    assert answer.status_code == 200
    body = answer.get_json()
    pooled = body["pooled"]
    assert (pooled["called"]["left"], pooled["called"]["clients"]) == (10, 100)
    assert (pooled["holdout"]["left"], pooled["holdout"]["clients"]) == (20, 100)
    assert (pooled["contacted"]["left"], pooled["contacted"]["clients"]) == (3, 60)
    # Newcombe by hand (tests/test_effect.py): -10 points, [-19.95, -0.01]
    itt = pooled["intention_to_treat"]
    assert itt["difference"] == pytest.approx(-10.0)
    assert (itt["low"], itt["high"]) == (pytest.approx(-19.95, abs=0.01), pytest.approx(-0.01, abs=0.01))
    assert pooled["verdict"] == "calls help"
    assert pooled["saves_per_100_calls"]["estimate"] == pytest.approx(10.0)
    assert pooled["contacted_vs_holdout"]["difference"] == pytest.approx(100 * 3 / 60 - 20)
    assert (pooled["months"], pooled["note"], pooled["controls_contacted"]) == (1, None, 0)
    assert body["judged_lists"] == body["recorded_lists"] == 1
    assert len(body["lists"]) == 1
    assert body["lists"][0]["intention_to_treat"] == itt


def test_too_little_data_says_so(deployed: Config) -> None:
    client = create_app(deployed).test_client()
    empty = client.get("/risk/effect").get_json()
    assert empty["judged_lists"] == 0
    assert empty["lists"] == []
    assert "no holdout client has been judged yet" in empty["pooled"]["note"]
    month(deployed, "m0", {f"c{i}": 0 for i in range(7)})
    record_list(deployed, [(f"c{i}", 0.2, "call" if i < 5 else "control") for i in range(7)])
    record_list(deployed, [(f"c{i}", 0.2, None) for i in range(3)])  # on the same history: supersedes it
    month(deployed, "m1", {f"c{i}": int(i in (0, 5)) for i in range(7)})
    body = client.get("/risk/effect").get_json()
    assert body["superseded_lists"] == 1
    assert body["judged_lists"] == 1
    pooled = body["pooled"]
    assert (pooled["called"]["clients"], pooled["holdout"]["clients"]) == (3, 0)  # the list in force: no groups
    assert "no holdout client" in pooled["note"]
    assert "verdict" not in pooled
    assert "intention_to_treat" not in pooled


def test_a_short_holdout_is_counted_not_estimated(deployed: Config) -> None:
    month(deployed, "m0", {f"c{i}": 0 for i in range(7)})
    record_list(deployed, [(f"c{i}", 0.2, "call" if i < 5 else "control") for i in range(7)])
    month(deployed, "m1", {f"c{i}": int(i in (0, 5)) for i in range(7)})
    pooled = create_app(deployed).test_client().get("/risk/effect").get_json()["pooled"]
    assert pooled["note"].startswith("too little data: 5 called and 2 holdout clients judged")
    assert (pooled["called"]["left"], pooled["holdout"]["left"]) == (1, 1)
    assert "verdict" not in pooled


def test_expected_beside_realized_on_the_same_clients(deployed: Config) -> None:
    month(deployed, "m0", {"a": 0, "b": 0, "x": 0, "y": 0, "z": 0})
    record_list(deployed, [("a", 0.5, None), ("b", 0.5, None)])
    month(deployed, "m1", {"a": 1, "b": 0, "x": 0, "y": 0, "z": 0})
    record_list(deployed, [("x", 0.9, "call"), ("y", 0.5, "control"), ("z", 0.5, "control")])
    month(deployed, "m2", {"x": 0, "y": 0, "z": 0})
    newest, first = create_app(deployed).test_client().get("/risk/outcomes").get_json()
    # two clients at p = 0.5: expected 0.5 in [0, 1] (Binomial(2, 0.5)'s 2.5% and 97.5% quantiles: 0 and 2 hits)
    assert first["expected"] == {"group": "all", "rate": 0.5, "low": 0.0, "high": 1.0, "n": 2, "confidence": 0.95}
    assert first["realized"] == {"group": "all", "followed": 2, "left": 1, "rate": 0.5}
    assert first["outside"] is False
    # with a holdout, the controls say how calibrated the list was: calls change the called clients' outcomes
    assert newest["expected"]["group"] == "control"
    assert newest["expected"]["rate"] == 0.5
    assert newest["realized"] == {"group": "control", "followed": 2, "left": 0, "rate": 0.0}
    assert newest["outside"] is False


def gauge(client, name: str) -> str:
    return re.search(rf"^{name} (\S+)$", client.get("/metrics").get_data(as_text=True), flags=re.M).group(1)


def test_three_lists_outside_their_interval_raise_the_calibration_alert(deployed: Config) -> None:
    client = create_app(deployed).test_client()
    assert gauge(client, "risk_calibration_alert") == "0.0"
    outcomes: dict[str, int] = {}
    for m in range(4):
        fresh = {f"m{m}c{i}": 0 for i in range(20)}
        month(deployed, f"m{m}", {**outcomes, **fresh})
        if m == 3:
            break
        # 20 clients at p = 0.05: 1 leaver expected, at most 3 (Poisson-binomial 97.5%); 10 leave
        record_list(deployed, [(name, 0.05, None) for name in fresh])
        outcomes = {name: int(i < 10) for i, name in enumerate(fresh)}
        if m == 2:
            assert gauge(client, "risk_calibration_alert") == "0.0"  # two judged, both outside: not yet
    lists = client.get("/risk/outcomes").get_json()
    assert [o["outside"] for o in lists] == [True, True, True]
    assert lists[0]["realized"]["rate"] == 0.5
    assert lists[0]["expected"]["high"] == pytest.approx(0.15)
    assert gauge(client, "risk_calibration_alert") == "1.0"


def test_the_experiment_data_set_has_a_row_per_listed_client(deployed: Config,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    called_and_held_out(deployed)
    month(deployed, "m2", {"late": 0})
    # recorded a month later (the ledger's clock: contacts count from their list's second to the next list's)
    monkeypatch.setattr("risk.ledger.calllists.now", lambda: "2099-01-01T00:00:00.000+00:00")
    record_list(deployed, [("late", 0.4, "call")])  # not judged yet: its outcome is empty
    answer = create_app(deployed).test_client().get("/risk/experiment.csv")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert list(rows[0]) == ["list_id", "list_date", "model_version", "superseded", "rank", "corporation",
                             *contract.FEATURES, "probability", "group", "contacted", "result", "left"]
    assert len(rows) == 201
    first = [row for row in rows if row["list_id"] == rows[0]["list_id"]]
    assert sum(row["group"] == "control" for row in first) == 100
    assert sum(row["contacted"] == "1" for row in first) == 60
    assert sum(row["left"] == "1" for row in first) == 30
    assert {row["result"] for row in first} == {"reached", "not_reached", ""}
    assert {row[contract.FEATURES[0]] for row in first} == {"10.0"}
    assert "'=HYPERLINK(1)" in {row["corporation"] for row in first}  # spreadsheet-safe, as /risk.csv
    assert rows[-1]["corporation"] == "late"
    assert {row["superseded"] for row in rows} == {"0"}
    assert rows[-1]["left"] == ""


# ---- how many calls pay -------------------------------------------------------------------------------------
def test_the_card_economics_from_the_published_example() -> None:
    # Verbraken et al. 2013 / empulse: labels [0,1,0,1,0,1,0,1], scores [.1,.2,.3,.4,.5,.7,.8,.9]
    figures, why = economics.card_figures(np.array([0, 1] * 4), np.array([.1, .2, .3, .4, .5, .7, .8, .9]),
                                          economics.Economics())
    assert why is None
    assert (figures["emp"], figures["share"]) == (pytest.approx(23.8756, abs=1e-4), pytest.approx(0.8744, abs=1e-4))
    assert (figures["mp"], figures["mp_share"]) == (pytest.approx(23.875), pytest.approx(0.875))
    assert figures["settings"] == {"client_value": 200.0, "offer_cost": 10.0, "contact_cost": 1.0,
                                   "accept_alpha": 6.0, "accept_beta": 14.0}
    assert economics.card_figures(np.zeros(8), np.linspace(0, 1, 8), economics.Economics()) == (
        None, "the out-of-fold predictions hold one class only: no expected maximum profit")


def test_the_card_records_the_emp_of_its_out_of_fold_predictions(tmp_path) -> None:
    frame = synthetic_frame(400, seed=3)
    path = write_frame(frame, tmp_path / "data.csv")
    settings = economics.Economics(client_value=300.0)
    card = training.model_card(frame, path, 20, settings)
    y, _, proba, _ = training.out_of_fold(*contract.split_xy(frame))
    expected = economics.maximum_profit(y, proba, settings)
    assert card["economics"]["emp"] == pytest.approx(expected["emp"], abs=1e-6)
    assert card["economics"]["share"] == pytest.approx(expected["share"], abs=1e-6)
    assert card["economics"]["settings"]["client_value"] == 300.0
    assert "economics" not in card["expected_performance"]
    one_class = frame.assign(**{contract.TARGET: 0})
    card = training.model_card(one_class, path, 20, settings)
    assert card["economics"] is None
    assert "fewer than 2 rows" in card["economics_note"]


def test_the_call_list_says_how_many_calls_pay(deployed: Config) -> None:
    body = create_app(deployed).test_client().get("/risk?top=3").get_json()
    money = body["economics"]
    version = registry.verify(deployed.prod_folder, registry.current_number(deployed.prod_folder))
    share = risklist.card_of(version)["economics"]["share"]
    assert money["share"] == share
    assert money["recommended_calls"] == min(deployed.call_capacity, round(share * body["population"]))
    assert money["capacity"] == deployed.call_capacity
    curve = money["curve"]
    assert len(curve) == min(body["population"], max(2 * deployed.call_capacity, 50)) + 1
    assert curve[0] == {"calls": 0, "profit": 0.0}
    assert money["at_capacity"] == curve[min(deployed.call_capacity, len(curve) - 1)]["profit"]
    assert curve[money["best_calls"]]["profit"] == max(point["profit"] for point in curve)
    # each call's expected profit from its probability (risk/economics.call_values), by hand for the first
    p = body["clients"][0]["probability"]
    first = p * (0.3 * (200 - 10) - 1) - (1 - p) * (10 + 1)
    assert curve[1]["profit"] == pytest.approx(first, abs=0.01)


def test_a_recorded_list_keeps_each_clients_features_as_it_saw_them(deployed: Config) -> None:
    from risk import calllists

    with Ledger(deployed.ledger_path) as ledger:
        assert calllists.record_if_changed(deployed, ledger, None) is not None
        recorded = ledger.call_lists.latest(1)[0]
    state = prepared.as_of_committed(deployed)
    rows = state.clients.set_index(contract.ID_COLUMN)
    for client in recorded["clients"]:
        assert client["features"] == {name: float(rows.loc[client["corporation"], name]) for name in contract.FEATURES}
