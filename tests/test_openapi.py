"""/openapi.json against the app: every route is described, ids are typed as the API takes them, and what a
bad finaldata.csv makes the API answer is a declared status."""
from __future__ import annotations

import jsonschema_rs
import pytest
from flask import Flask

from risk import contract, openapi

ROW = {name: 1 for name in contract.FEATURES}


def json_schema(schema: object) -> object:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable: true` next to a type becomes a union with null."""
    if isinstance(schema, list):
        return [json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: json_schema(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable"):
        out["type"] = [schema["type"], "null"]
    return out


def test_every_route_is_described(app: Flask) -> None:
    paths = openapi.spec()["paths"]
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        methods = {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}}
        assert rule.rule in paths, rule.rule
        assert methods <= set(paths[rule.rule]), (rule.rule, methods)
    assert "text/html" in paths["/"]["get"]["responses"]["200"]["content"]


@pytest.mark.parametrize(("value", "status"), [
    ("abcd", 200), ("", 200), ("NA", 200), (7, 200), (2**70, 200), (None, 200),  # a name, a number, or none
    (True, 422), (1.5, 422), ({"a": 1}, 422), (["x"], 422)])  # a flag, a fraction, an object, a list: no name
def test_the_record_id_schema_accepts_what_the_api_accepts(client, value: object, status: int) -> None:
    schema = jsonschema_rs.Draft7Validator(json_schema(openapi.RECORD))
    answer = client.post("/prediction", json={"records": [{contract.ID_COLUMN: value, **ROW}]})
    assert answer.status_code == status, answer.get_json()
    assert (answer.status_code == 200) == schema.is_valid({contract.ID_COLUMN: value, **ROW}), value
