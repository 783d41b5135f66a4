"""GET /risk: the latest clients ranked by the deployed model, reasons from its coefficients, CSV on request,
and the movers since the previous deployment."""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_frame, write_frame

import deployment as deployment_cli
from risk import catalog, contract, deployment, ingestion, openapi, pipeline, registry, scoring, training
from risk.config import Config
from risk.ledger import Ledger

FEATURES = list(contract.FEATURES)


def latest_rows(config: Config) -> pd.DataFrame:
    """Each current client's newest row in finaldata.csv (computed here without risk.risklist): a client whose
    newest row says it left (exited = 1) is gone."""
    data = pd.read_csv(config.output_folder / "finaldata.csv", dtype={"corporation": str})
    data = data[data["corporation"].notna()]
    latest = data.groupby("corporation", sort=False).tail(1)
    return latest[latest[contract.TARGET] == 0].reset_index(drop=True)


def model_of(config: Config, number: int | None = None) -> object:
    prod = config.prod_folder
    return registry.load_model(registry.verify(prod, number) if number else registry.current(prod))


def expected_risk(config: Config, number: int | None = None) -> dict[str, float]:
    latest = latest_rows(config)
    proba = model_of(config, number).predict_proba(latest[FEATURES].to_numpy(dtype="float64"))[:, 1]
    return dict(zip(latest["corporation"], proba, strict=True))


def test_risk_ranks_every_current_client_by_probability(client, deployed: Config) -> None:
    answer = client.get("/risk?top=10000")
    assert answer.status_code == 200
    body = answer.get_json()
    expected = expected_risk(deployed)
    assert body["population"] == len(expected) > 5
    assert body["model_version"] == "1"
    ranked = body["clients"]
    assert sorted(c["corporation"] for c in ranked) == sorted(expected)
    assert [c["rank"] for c in ranked] == list(range(1, len(expected) + 1))
    probabilities = [c["probability"] for c in ranked]
    assert probabilities == sorted(probabilities, reverse=True)
    for entry in ranked:
        assert entry["probability"] == pytest.approx(expected[entry["corporation"]], abs=5e-5)
    assert body["movers"] == []
    assert body["previous_version"] is None


@pytest.mark.parametrize("top", [1, 3, 5])
def test_top_n_is_the_head_of_the_ranking(client, deployed: Config, top: int) -> None:
    head = client.get(f"/risk?top={top}").get_json()["clients"]
    expected = sorted(expected_risk(deployed).values(), reverse=True)[:top]
    assert [c["probability"] for c in head] == pytest.approx(expected, abs=5e-5)
    assert len(head) == top


def test_reasons_are_the_largest_positive_pushes_against_the_versions_typical_client(client, deployed: Config) -> None:
    latest = latest_rows(deployed)
    x = latest[FEATURES].to_numpy(dtype="float64")
    card = json.loads((deployed.prod_folder / "versions" / "1" / catalog.CARD).read_text(encoding="utf-8"))
    typical = np.median(np.asarray(card["reference"]["values"]), axis=0)  # the version's own reference
    push = (x - typical) * model_of(deployed).coef_[0]
    by_client = {name: (push[i], x[i]) for i, name in enumerate(latest["corporation"])}
    ranked = client.get("/risk?top=10000").get_json()["clients"]
    seen_reasons = 0
    for entry in ranked:
        contribution, values = by_client[entry["corporation"]]
        positive = [j for j in np.argsort(-contribution) if contribution[j] > 0][:2]
        assert [r["feature"] for r in entry["reasons"]] == [FEATURES[j] for j in positive], entry
        for reason, j in zip(entry["reasons"], positive, strict=True):
            assert reason["log_odds"] == pytest.approx(contribution[j], abs=1e-4)
            assert reason["log_odds"] > 0
            assert reason["value"] == values[j]
            assert reason["odds_ratio"] == pytest.approx(np.exp(contribution[j]), rel=1e-3)
            p = entry["probability"]  # rounded to 4 places: a certain 1.0 has no log-odds to check against
            if 0 < p < 1:
                without = 1 / (1 + np.exp(-(np.log(p / (1 - p)) - contribution[j])))  # the measure made typical
                assert reason["points"] == pytest.approx(100 * (p - without), abs=0.2)
            assert reason["text"].startswith(f"{contract.LABELS[FEATURES[j]]} ")
        seen_reasons += len(entry["reasons"])
    # the 11 current course clients (tests/test_calllist.py names them): 15 reasons, 4 clients with two, 7 with one
    assert (len(ranked), seen_reasons) == (11, 15)


def test_csv_has_the_same_order_as_json(client) -> None:
    body = client.get("/risk?top=7").get_json()
    answer = client.get("/risk?top=7", headers={"Accept": "text/csv"})
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert answer.headers["X-Model-Version"] == body["model_version"]
    table = pd.read_csv(io.StringIO(answer.get_data(as_text=True)), dtype={"corporation": str},
                        keep_default_na=False)
    assert list(table.columns) == ["rank", "corporation", "probability", "reasons", "group", "action"]
    assert table["corporation"].tolist() == [c["corporation"] for c in body["clients"]]
    assert table["probability"].tolist() == [c["probability"] for c in body["clients"]]
    first = body["clients"][0]["reasons"]
    assert table["reasons"][0] == "; ".join(r["text"] for r in first)


def test_json_is_preferred_unless_csv_is_asked_for(client) -> None:
    assert client.get("/risk", headers={"Accept": "*/*"}).mimetype == "application/json"
    assert client.get("/risk", headers={"Accept": "text/csv;q=0.5, application/json"}).mimetype == "application/json"
    assert client.get("/risk", headers={"Accept": "text/csv, application/json;q=0.1"}).mimetype == "text/csv"


def test_top_defaults_to_20(client, deployed: Config) -> None:
    body = client.get("/risk").get_json()
    assert len(body["clients"]) == min(20, len(expected_risk(deployed)))


@pytest.mark.parametrize("top", ["0", "-1", "abc", "1.5", "", "10001", "1e3", " 5", "٣", "99999999999999999999"])
def test_a_bad_top_is_400_json(client, top: str) -> None:
    answer = client.get("/risk", query_string={"top": top})
    assert answer.status_code == 400
    assert answer.is_json
    assert answer.get_json()["error"] == "bad_query"
    assert "top" in answer.get_json()["detail"]


def redeploy_on_flipped_data(config: Config) -> None:
    """New source data whose labels run the other way, ingested, trained on, scored and deployed as version 2."""
    write_frame(synthetic_frame(300, seed=4, flip=True), config.input_folder / "flipped.csv")
    ingestion.run_ingestion(config)
    training.run_training(config)
    scoring.run_scoring(config)
    deployment.run_deployment(config)


def test_movers_after_a_second_deployment_are_sorted_by_rise(client, deployed: Config) -> None:
    assert client.get("/risk").get_json()["movers"] == []
    redeploy_on_flipped_data(deployed)
    body = client.get("/risk?top=10000").get_json()
    assert body["model_version"] == "2"
    assert body["previous_version"] == 1
    old, new = expected_risk(deployed, 1), expected_risk(deployed, 2)
    rises = {name: new[name] - old[name] for name in new}
    assert not np.allclose(list(old.values()), list(new.values()), atol=1e-3)  # the models do differ
    movers = body["movers"]
    assert [m["corporation"] for m in movers] == sorted((n for n, r in rises.items() if r > 0),
                                                        key=lambda n: -rises[n])[:len(movers)]
    assert len(movers) == sum(r > 0 for r in rises.values()) == 7  # of the 197 current clients, 7 rose
    for mover in movers:
        name = mover["corporation"]
        assert mover["rise"] == pytest.approx(rises[name], abs=1e-4)
        assert mover["probability"] == pytest.approx(new[name], abs=5e-5)
        assert mover["previous_probability"] == pytest.approx(old[name], abs=5e-5)
    assert [m["rise"] for m in movers] == sorted((m["rise"] for m in movers), reverse=True)
    assert len(client.get("/risk?top=3").get_json()["movers"]) == min(3, len(movers))


def test_risk_without_a_model_is_503(config: Config) -> None:
    from app import create_app

    answer = create_app(config).test_client().get("/risk")
    assert answer.status_code == 503
    assert answer.get_json()["error"] == "no_model"


ODD_IDS = ["NA", "null", "None", "nan", "00007", "007.0"]


def ingest_clients(config: Config, ids: list[str], name: str) -> None:
    """New source rows named `ids`, ingested."""
    frame = synthetic_frame(len(ids), seed=5)
    frame["corporation"] = ids
    frame[contract.TARGET] = 0  # current clients: on the list
    write_frame(frame, config.input_folder / name)
    ingestion.run_ingestion(config)


def test_ids_are_the_text_ingestion_kept(client, deployed: Config) -> None:
    ingest_clients(deployed, ODD_IDS, "odd-ids.csv")
    kept = pd.read_csv(deployed.output_folder / "finaldata.csv", dtype=str, keep_default_na=False, na_values=[""])
    assert set(ODD_IDS) <= set(kept["corporation"])  # ingestion keeps them as names
    body = client.get("/risk?top=10000").get_json()
    names = [c["corporation"] for c in body["clients"]]
    assert set(ODD_IDS) <= set(names)
    latest = kept.dropna(subset=["corporation"]).groupby("corporation", sort=False).tail(1)
    assert body["population"] == int((latest[contract.TARGET] == "0").sum())  # the current clients
    answer = client.get("/risk?top=10000", headers={"Accept": "text/csv"})
    table = pd.read_csv(io.StringIO(answer.get_data(as_text=True)), dtype=str, keep_default_na=False)
    assert table["corporation"].tolist() == names


def rolled_back_to_2(config: Config) -> None:
    """Versions 1 to 3 deployed, then a rollback: 2 is current, and 3 was live before it (the movers' baseline)."""
    redeploy_on_flipped_data(config)
    training.run_training(config)
    scoring.run_scoring(config)
    deployment.run_deployment(config)
    assert deployment_cli.main(["--config", str(config.config_path), "--rollback"]) == 0
    assert registry.current_number(config.prod_folder) == 2


def test_a_corrupt_previous_version_drops_the_movers_not_the_answer(client, deployed: Config) -> None:
    rolled_back_to_2(deployed)
    score = registry.versions_folder(deployed.prod_folder) / "3" / catalog.SCORE
    score.write_bytes(score.read_bytes() + b"x")
    assert client.get("/ready").get_json()["model_version"] == "2"
    answer = client.get("/risk?top=10000")
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["model_version"], body["previous_version"], body["movers"]) == ("2", 3, [])
    assert "version 3 failed verification" in body["movers_note"]
    assert [c["probability"] for c in body["clients"]] == \
        pytest.approx(sorted(expected_risk(deployed, 2).values(), reverse=True), abs=5e-5)


def test_the_previous_model_is_verified_once_per_version(app, deployed: Config,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    redeploy_on_flipped_data(deployed)
    checked = []
    verify = registry.verify
    monkeypatch.setattr(registry, "verify", lambda prod, number: checked.append(number) or verify(prod, number))
    client = app.test_client()
    for _ in range(3):
        body = client.get("/risk").get_json()
        assert body["movers"]
        assert body["movers_note"] is None
    assert checked.count(1) == 1


HOSTILE_IDS = ['=HYPERLINK("http://evil.example/","click")', "+1+2", "-3+4", "@SUM(A1:A2)", "plain"]


def test_csv_cells_that_a_spreadsheet_would_run_start_with_a_quote(client, deployed: Config) -> None:
    ingest_clients(deployed, HOSTILE_IDS, "hostile-ids.csv")
    body = client.get("/risk?top=10000").get_json()
    answer = client.get("/risk?top=10000", headers={"Accept": "text/csv"})
    table = pd.read_csv(io.StringIO(answer.get_data(as_text=True)), dtype=str, keep_default_na=False)
    cells = dict(zip([c["corporation"] for c in body["clients"]], table["corporation"], strict=True))
    assert [cells[name] for name in HOSTILE_IDS] == [f"'{name}" for name in HOSTILE_IDS[:-1]] + ["plain"]
    assert set(HOSTILE_IDS) <= set(cells)  # JSON is data, not a spreadsheet: unchanged
    assert [float(p) for p in table["probability"]] == [c["probability"] for c in body["clients"]]
    assert not any(cell[:1] in "=+-@'" for cell in table["reasons"] if cell)


def test_spreadsheet_safe_follows_the_owasp_rule() -> None:
    from risk.risklist import spreadsheet_safe

    for text in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert spreadsheet_safe(text) == "'" + text
    for text in ("abcd", "1-2", "", " =x", "'=x"):
        assert spreadsheet_safe(text) == text


@pytest.mark.parametrize("route", ["/risk", "/summarystats"])
@pytest.mark.parametrize("tail", [b"torn,12", b"a,1,2,3,4,5,6,7\n"])
def test_rows_past_the_ledgers_committed_end_are_never_served(client, deployed: Config, route: str,
                                                              tail: bytes) -> None:
    """A torn tail a killed run left, or a run's rows not yet committed, are invisible to the API."""
    before = client.get(route).get_json()
    with open(deployed.output_folder / "finaldata.csv", "ab") as handle:
        handle.write(tail)
    answer = client.get(route)
    assert answer.status_code == 200
    assert answer.get_json() == before


@pytest.mark.parametrize("route", ["/risk", "/summarystats"])
def test_a_read_state_behind_the_ledger_is_503_naming_what_rebuilds_it(client, deployed: Config,
                                                                        route: str) -> None:
    (deployed.output_folder / "prepared.npz").unlink()
    answer = client.get(route)
    assert answer.status_code == 503, answer.get_json()
    assert answer.get_json()["error"] == "not_ready"
    assert "prepared read state" in answer.get_json()["detail"]
    assert "ingestion.py or fullprocess.py" in answer.get_json()["detail"]
    assert str(deployed.root) not in answer.get_json()["detail"]
    assert "503" in openapi.spec()["paths"][route]["get"]["responses"]  # declared in /openapi.json
    with Ledger(deployed.ledger_path) as ledger:
        pipeline.refresh_prepared(deployed, ledger)  # what the next tick does
    assert client.get(route).status_code == 200


@pytest.mark.parametrize("tail", [b"torn,12", b"a,1,2,3,4,5,6,7\n"])
def test_a_bad_row_in_finaldata_before_any_diagnostics_run_is_the_servers_fault_503(client, deployed: Config,
                                                                                     tail: bytes) -> None:
    with open(deployed.output_folder / "finaldata.csv", "ab") as handle:
        handle.write(tail)
    answer = client.get("/diagnostics")
    assert answer.status_code == 503, answer.get_json()
    assert answer.get_json()["error"] == "not_ready"
    assert "finaldata.csv" in answer.get_json()["detail"]
    assert str(deployed.root) not in answer.get_json()["detail"]
