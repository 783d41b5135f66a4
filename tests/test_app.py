"""The scoring API through Flask's test client: every route, every error status, hot reload, read-only GETs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import COURSE_F1, COURSE_PREDICTIONS, FIRST, SECOND, THIRD, paths, record, snapshot

from app import create_app
from risk import auth, catalog, contract, deployment, diagnostics, registry
from risk.config import Config, load_config

RECORD = record(10, 100, 5)


def assert_error(answer, status: int, kind: str | None = None) -> dict:
    """The answer is a JSON error with exactly the keys error and detail."""
    assert answer.status_code == status, answer.data
    assert answer.is_json
    body = answer.get_json()
    assert set(body) == {"error", "detail"}
    assert body["detail"]
    if kind is not None:
        assert body["error"] == kind
    return body


def deployed_model(config: Config) -> object:
    return registry.load_model(registry.current(config.prod_folder))


@pytest.fixture
def fake_latest(monkeypatch: pytest.MonkeyPatch) -> str:
    """Diagnostics ask for the newest release of each pin without calling pip."""
    monkeypatch.setattr(diagnostics, "_latest_cached", lambda name, bucket: "99.0")
    return "99.0"


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# --- the routes ---------------------------------------------------------------------------------------------


def test_prediction_from_records(client, deployed: Config) -> None:
    records = [RECORD, record(250.5, 0, 1)]
    answer = client.post("/prediction", json={"records": records})
    assert answer.status_code == 200
    x = np.array([[r[c] for c in contract.FEATURES] for r in records])
    probabilities = deployed_model(deployed).predict_proba(x)[:, 1]
    assert answer.json["predictions"] == [int(p >= 0.5) for p in probabilities]  # docs/data-contract.md's rule
    assert answer.json["model_version"] == "1"


def test_prediction_from_dataset_path(client, deployed: Config) -> None:
    answer = client.post("/prediction", json={"dataset_path": "testdata/testdata.csv"})
    assert answer.status_code == 200
    # the course model on testdata.csv: P(leaves) 0.19, 0.96, 1.00, 0.65, 0.80 -> flagged at >= 0.5
    assert answer.json["predictions"] == COURSE_PREDICTIONS


def test_scoring_is_the_course_known_f1_of_the_deployed_model(client, deployed: Config) -> None:
    answer = client.get("/scoring")
    assert answer.status_code == 200
    assert answer.json == {"f1": pytest.approx(COURSE_F1, abs=1e-12), "rows": 5, "model_version": "1"}


def test_summarystats_are_the_ingested_datas(client, deployed: Config) -> None:
    answer = client.get("/summarystats")
    assert answer.status_code == 200
    raw = pd.read_csv(deployed.output_folder / "finaldata.csv")
    assert list(answer.json) == list(contract.FEATURES)
    for column in contract.FEATURES:
        assert answer.json[column]["mean"] == pytest.approx(raw[column].mean())
        assert answer.json[column]["median"] == pytest.approx(raw[column].median())
        assert answer.json[column]["std"] == pytest.approx(raw[column].std())


def test_diagnostics_pass_through(client, deployed: Config, fake_latest: str) -> None:
    answer = client.get("/diagnostics")
    assert answer.status_code == 200
    body = answer.json
    assert body["model_version"] == "1"
    assert len(body["predictions"]) == len(pd.read_csv(deployed.test_data / "testdata.csv"))
    assert set(body["summary_statistics"]) == set(contract.FEATURES)
    assert body["execution_time"] is None  # no diagnostics run recorded yet: no timings, none run in a request
    assert body["recorded_at"] is None
    assert body["dependencies"]
    assert {d["latest"] for d in body["dependencies"]} == {fake_latest}


def test_health_and_ready(client) -> None:
    assert client.get("/health").json == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json == {"status": "ready", "model_version": "1"}


# --- request errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"{not json", "bad_json"),
        (b'{"records": [1, 2,', "bad_json"),
        (b"\xff\xfe", "bad_json"),
        (b"[1, 2]", "bad_body"),
        (b'"records"', "bad_body"),
        (b"", "bad_body"),
        (b"{}", "bad_body"),
        (b'{"record": []}', "bad_body"),
    ],
)
def test_bad_bodies_are_400(client, body: bytes, kind: str) -> None:
    assert_error(client.post("/prediction", data=body, content_type="application/json"), 400, kind)


def test_unknown_route_is_404(client) -> None:
    body = assert_error(client.get("/no/such/route"), 404, "not_found")
    assert "no/such" not in body["error"]


@pytest.mark.parametrize(("method", "route"), [("GET", "/prediction"), ("POST", "/scoring"), ("DELETE", "/health")])
def test_wrong_method_is_405(client, method: str, route: str) -> None:
    assert_error(client.open(route, method=method), 405, "method_not_allowed")


def test_body_over_the_limit_is_413(deployed: Config) -> None:
    settings = json.loads(deployed.config_path.read_text(encoding="utf-8"))
    deployed.config_path.write_text(json.dumps({**settings, "max_request_bytes": 200}), encoding="utf-8")
    client = create_app(load_config(deployed.config_path)).test_client()
    small = client.post("/prediction", json={"records": [RECORD]})
    assert small.status_code == 200
    big = client.post("/prediction", json={"records": [RECORD] * 10})
    assert_error(big, 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_content_type_is_415(client, content_type: str) -> None:
    answer = client.post("/prediction", data=json.dumps({"records": [RECORD]}), content_type=content_type)
    assert_error(answer, 415, "unsupported_media_type")


def test_json_with_charset_is_accepted(client) -> None:
    answer = client.post("/prediction", data=json.dumps({"records": [RECORD]}),
                         content_type="application/json; charset=utf-8")
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("-1", "-1"),
        ('"12"', "got '12'"),
        ("NaN", "nan"),
        ("Infinity", "inf"),
        ("true", "True"),
        ("null", "None"),
        ("[1]", "got [1]"),
        (str(10**400), "got 1000000000000000000000000000000000000..."),
    ],
)
def test_invalid_record_value_is_422_naming_row_and_field(client, value: str, shown: str) -> None:
    second = json.dumps(record(1, 0, 3)).replace(f'"{SECOND}": 0', f'"{SECOND}": {value}')
    body = f'{{"records": [{json.dumps(record(1, 2, 3))}, {second}]}}'
    answer = client.post("/prediction", data=body, content_type="application/json")
    detail = assert_error(answer, 422, "invalid_values")["detail"]
    assert f"records[1].{SECOND}" in detail
    assert shown in detail


def test_missing_field_is_422_naming_row_and_field(client) -> None:
    records = [RECORD, RECORD, {FIRST: 1, SECOND: 2}]
    detail = assert_error(client.post("/prediction", json={"records": records}), 422, "invalid_values")["detail"]
    assert "records[2]" in detail
    assert THIRD in detail


@pytest.mark.parametrize("records", [[], {}, "rows", 7, None, [RECORD, 3]])
def test_records_of_the_wrong_shape_are_422(client, records: object) -> None:
    assert_error(client.post("/prediction", json={"records": records}), 422, "invalid_values")


def test_dataset_outside_the_data_folders_is_404(client) -> None:
    assert_error(client.post("/prediction", json={"dataset_path": "config.json"}), 404, "dataset_not_found")


# --- model states -------------------------------------------------------------------------------------------


def test_no_model_deployed_is_503(config: Config) -> None:
    client = create_app(config).test_client()
    for answer in (client.post("/prediction", json={"records": [RECORD]}), client.get("/scoring"),
                   client.get("/ready"), client.get("/diagnostics")):
        assert_error(answer, 503, "no_model")
    assert client.get("/health").status_code == 200


def test_summarystats_without_ingested_data_is_503_without_the_project_path(config: Config) -> None:
    body = assert_error(create_app(config).test_client().get("/summarystats"), 503, "not_ready")
    assert str(config.root) not in body["detail"]


def test_tampered_model_is_refused_before_first_load(deployed: Config) -> None:
    flip_byte(registry.versions_folder(deployed.prod_folder) / "1" / catalog.MODEL)
    client = create_app(deployed).test_client()
    assert_error(client.post("/prediction", json={"records": [RECORD]}), 503, "model_unverified")
    assert_error(client.get("/ready"), 503, "model_unverified")


def test_a_corrupt_current_pointer_is_503_not_500(deployed: Config) -> None:
    (deployed.prod_folder / catalog.CURRENT).write_text("garbage\n", encoding="utf-8")
    client = create_app(deployed).test_client()
    for answer in (client.post("/prediction", json={"records": [RECORD]}), client.get("/ready")):
        body = assert_error(answer, 503, "model_unverified")
        assert str(deployed.root) not in body["detail"]


def test_diagnostics_of_a_model_tampered_after_loading_is_503(client, deployed: Config, fake_latest: str) -> None:
    assert client.get("/ready").status_code == 200
    flip_byte(registry.versions_folder(deployed.prod_folder) / "1" / catalog.MODEL)
    assert_error(client.get("/diagnostics"), 503, "model_unverified")


def served_by(client) -> str:
    return client.post("/prediction", json={"records": [RECORD]}).headers["X-Model-Version"]


def refused_gauge(client) -> dict[str, str]:
    """The risk_model_refused samples of /metrics: {version label: value}."""
    text = client.get("/metrics").get_data(as_text=True)
    return dict(re.findall(r'^risk_model_refused\{version="([^"]*)"\} (\S+)$', text, flags=re.M))


def test_a_refused_current_version_is_503_on_ready_and_served_once_its_files_are_repaired(client,
                                                                                         deployed: Config) -> None:
    assert served_by(client) == "1"
    deployment.run_deployment(deployed)  # version 2 becomes current
    model = registry.versions_folder(deployed.prod_folder) / "2" / catalog.SAFE_MODEL
    good = model.read_bytes()
    flip_byte(model)
    body = assert_error(client.get("/ready"), 503, "model_refused")
    assert body["detail"] == (f"version 2 refused: versions/2/{catalog.SAFE_MODEL}: sha256 does not match the"
                              " manifest (tampered or truncated); still serving version 1")
    assert served_by(client) == "1"  # the worker keeps serving the version before
    assert refused_gauge(client) == {"2": "1.0"}
    repaired = model.with_name("repaired.tmp")  # the operator restores the file (a new inode, as cp + mv gives)
    repaired.write_bytes(good)
    repaired.replace(model)
    assert client.get("/ready").get_json() == {"status": "ready", "model_version": "2"}
    assert served_by(client) == "2"
    assert refused_gauge(client) == {"": "0.0"}


def test_a_new_deployment_is_served_on_the_next_request(client, deployed: Config) -> None:
    assert client.post("/prediction", json={"records": [RECORD]}).json["model_version"] == "1"
    deployment.run_deployment(deployed)
    answer = client.post("/prediction", json={"records": [RECORD]})
    assert answer.json["model_version"] == "2" == answer.headers["X-Model-Version"]
    assert client.get("/ready").json["model_version"] == "2"


def test_a_tampered_new_deployment_keeps_the_verified_one_serving(client, deployed: Config) -> None:
    assert client.get("/ready").json["model_version"] == "1"
    deployment.run_deployment(deployed)
    flip_byte(registry.versions_folder(deployed.prod_folder) / "2" / catalog.MODEL)
    answer = client.post("/prediction", json={"records": [RECORD]})
    assert answer.status_code == 200
    assert answer.json["model_version"] == "1"


# --- GET is read-only ---------------------------------------------------------------------------------------


def test_get_routes_write_no_pipeline_files(client, deployed: Config, fake_latest: str) -> None:
    root = deployed.root
    before, paths_before = snapshot(root), paths(root)
    statuses = [client.get(route).status_code for route in
                ("/scoring", "/summarystats", "/diagnostics", "/health", "/ready")]
    assert statuses == [200] * 5
    assert paths(root) == paths_before
    assert snapshot(root) == before


def test_a_token_with_non_ascii_characters_matches_what_a_client_sends() -> None:
    """A client sends the header's bytes (UTF-8 from curl); WSGI hands them over decoded as Latin-1."""
    sent = "Bearer " + "tök-ü".encode().decode("latin-1")
    assert auth.authorized(sent, "tök-ü")
    assert not auth.authorized(sent, "tok-u")
    assert not auth.authorized("Bearer tök-ü€", "tök-ü")  # not Latin-1 at all: refused, not a 500


@pytest.mark.parametrize("route", ["/scoring", "/diagnostics"])
def test_a_bad_row_in_the_servers_test_data_is_503_not_422(client, deployed: Config, route: str) -> None:
    """The server's own test data is at fault, not the request: not_ready, naming the file, row and column."""
    path = deployed.test_data / "testdata.csv"
    path.write_text(path.read_text(encoding="utf-8") + "acme,-5,1,1,0\n", encoding="utf-8")
    answer = client.get(route)
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["error"] == "not_ready"
    assert "testdata.csv" in body["detail"]
    assert f"column '{FIRST}'" in body["detail"]
