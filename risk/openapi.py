"""The OpenAPI 3 description of every route, served at /openapi.json (schemathesis tests the API against it)."""
from __future__ import annotations

from risk import contacts, contract, serving

FEATURE_PROPS = {name: {"type": "number", "minimum": 0, "maximum": contract.MAX_COUNT} for name in contract.FEATURES}
# An id is text; a JSON integer is taken as its text, and null is a row without one (serving._ids).
ID = {"anyOf": [{"type": "string", "nullable": True}, {"type": "integer"}]}
RECORD = {"type": "object", "required": list(contract.FEATURES),
          "properties": {contract.ID_COLUMN: ID, **FEATURE_PROPS}}
ERROR = {"type": "object", "required": ["error", "detail"], "additionalProperties": False,
         "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}}
PREDICTION = {
    "type": "object", "required": ["model_version", "threshold", "predictions", "probabilities"],
    "properties": {
        "model_version": {"type": "string"}, "threshold": {"type": "number"},
        "predictions": {"type": "array", "items": {"type": "integer", "enum": [0, 1]}},
        "probabilities": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}},
        contract.ID_COLUMN: {"type": "array", "items": {"type": "string", "nullable": True}},
    },
}
REASON = {"type": "object", "required": ["feature", "value", "typical", "log_odds", "odds_ratio", "points", "text"],
          "properties": {"feature": {"type": "string"}, "value": {"type": "number"}, "typical": {"type": "number"},
                         "log_odds": {"type": "number"}, "odds_ratio": {"type": "number"},
                         "points": {"type": "number"}, "text": {"type": "string"}}}
PERCENT = {"type": "number", "description": "in percent to one decimal, rounded once from the unrounded probability"}
CLIENT = {"type": "object", "required": ["rank", "corporation", "probability", "percent", "reasons", "group", "action"],
          "properties": {"rank": {"type": "integer"}, "corporation": {"type": "string"},
                         "probability": {"type": "number"}, "percent": PERCENT,
                         "reasons": {"type": "array", "items": REASON},
                         "group": {"type": "string", "enum": ["call", "control"], "nullable": True,
                                   "description": "from the newest recorded list of this version and data"},
                         "action": {"type": "string", "enum": ["call", "do not call (control)"], "nullable": True}}}
CALL_LIST = {"type": "object", "nullable": True, "description": "the recorded list the groups come from",
             "properties": {"id": {"type": "integer"}, "created_at": {"type": "string"},
                            "capacity": {"type": "integer"}, "holdout_share": {"type": "number"},
                            "holdout_seed": {"type": "integer", "nullable": True}}}
CONTACT_IN = {"type": "object", "required": ["corporation", "contacted_at", "result"], "additionalProperties": False,
              "properties": {"corporation": {"type": "string"},
                             "contacted_at": {"type": "string", "description": "ISO 8601 date or date-time (UTC)"},
                             "result": {"type": "string", "enum": list(contacts.RESULTS)},
                             "note": {"type": "string", "nullable": True}}}
CONTACT = {"type": "object", "properties": {"id": {"type": "integer"}, "corporation": {"type": "string"},
                                            "contacted_at": {"type": "string"}, "result": {"type": "string"},
                                            "note": {"type": "string", "nullable": True},
                                            "source": {"type": "string"}, "recorded_at": {"type": "string"}}}
COUNTS = {"type": "object", "required": ["added", "repeated"],
          "properties": {"added": {"type": "integer"}, "repeated": {"type": "integer"}}}
MOVER = {"type": "object", "required": ["corporation", "probability", "previous_probability", "rise", "percent",
                                       "previous_percent", "rise_points"],
         "properties": {k: {"type": "number"} for k in ("probability", "previous_probability", "rise")}
         | {k: PERCENT for k in ("percent", "previous_percent", "rise_points")} | {"corporation": {"type": "string"}}}
_RATE = {"type": "number", "nullable": True}
_CI = {"type": "array", "items": {"type": "number"}, "nullable": True}
OUTCOME = {"type": "object",
           "required": ["created_at", "model_version", "capacity", "clients", "followed", "left", "hit_rate",
                        "hit_rate_ci95", "base_rate", "lift", "missed"],
           "properties": {"id": {"type": "integer"}, "created_at": {"type": "string"},
                          "model_version": {"type": "string"}, "capacity": {"type": "integer"},
                          "clients": {"type": "array", "items": {"type": "string"}},
                          "followed": {"type": "integer"}, "left": {"type": "integer"}, "hit_rate": _RATE,
                          "hit_rate_ci95": _CI, "base_followed": {"type": "integer"},
                          "base_left": {"type": "integer"}, "base_rate": _RATE, "lift": _RATE,
                          "missed": {"type": "integer"},
                          "missed_clients": {"type": "array", "items": {"type": "string"}},
                          "expected": {"type": "object", "nullable": True, "properties": {
                              "group": {"type": "string"}, "rate": {"type": "number"}, "low": {"type": "number"},
                              "high": {"type": "number"}, "n": {"type": "integer"}}},
                          "realized": {"type": "object", "properties": {
                              "group": {"type": "string"}, "followed": {"type": "integer"},
                              "left": {"type": "integer"}, "rate": _RATE}},
                          "outside": {"type": "boolean", "nullable": True}}}
_GROUP = {"type": "object", "required": ["left", "clients", "leave_rate"],
          "properties": {"left": {"type": "integer"}, "clients": {"type": "integer"}, "leave_rate": _RATE}}
_DIFFERENCE = {"type": "object", "properties": {k: {"type": "number"} for k in ("difference", "low", "high",
                                                                                 "confidence")}}
EFFECT_FIGURES = {
    "type": "object", "required": ["called", "holdout", "contacted", "months", "note"],
    "properties": {"called": _GROUP, "holdout": _GROUP, "contacted": _GROUP, "months": {"type": "integer"},
                   "note": {"type": "string", "nullable": True, "description": "why no effect is estimated"},
                   "intention_to_treat": _DIFFERENCE, "contacted_vs_holdout": _DIFFERENCE,
                   "verdict": {"type": "string", "enum": ["calls help", "calls harm", "not shown either way"]},
                   "saves_per_100_calls": {"type": "object", "properties": {
                       k: {"type": "number"} for k in ("estimate", "low", "high")}},
                   "detectable_points": _RATE, "months_for_10_points": {"type": "integer", "nullable": True},
                   "controls_contacted": {"type": "integer"}}}
EFFECT = {"type": "object", "required": ["pooled", "lists", "judged_lists", "recorded_lists"],
          "properties": {"pooled": EFFECT_FIGURES,
                         "lists": {"type": "array", "items": {"allOf": [EFFECT_FIGURES, {
                             "type": "object", "properties": {"id": {"type": "integer"},
                                                              "created_at": {"type": "string"},
                                                              "model_version": {"type": "string"}}}]}},
                         "judged_lists": {"type": "integer"}, "recorded_lists": {"type": "integer"},
                         "superseded_lists": {"type": "integer"},
                         "lists_note": {"type": "string", "nullable": True}}}
_NUMBER = {"type": "number", "nullable": True}
ECONOMICS = {"type": "object", "required": ["recommended_calls", "capacity", "curve", "at_capacity", "best_calls"],
             "properties": {"recommended_calls": {"type": "integer"}, "capacity": {"type": "integer"},
                            "profit_optimal_calls": {"type": "integer", "nullable": True}, "share": _NUMBER,
                            "emp": _NUMBER, "note": {"type": "string", "nullable": True},
                            "settings": {"type": "object", "additionalProperties": {"type": "number"}},
                            "curve": {"type": "array", "items": {
                                "type": "object", "required": ["calls", "profit"],
                                "properties": {"calls": {"type": "integer"}, "profit": {"type": "number"}}}},
                            "at_capacity": {"type": "number"}, "best_calls": {"type": "integer"}}}
RISK = {"type": "object", "required": ["model_version", "clients", "movers", "population"],
        "properties": {"model_version": {"type": "string"}, "previous_version": {"type": "integer", "nullable": True},
                       "clients": {"type": "array", "items": CLIENT}, "movers": {"type": "array", "items": MOVER},
                       "population": {"type": "integer"},
                       "typical": {"type": "object", "additionalProperties": {"type": "number"}},
                       "typical_from": {"type": "string"},
                       "movers_note": {"type": "string", "nullable": True,
                                       "description": "why there are no movers though there is a previous version"},
                       "call_list": CALL_LIST,
                       "note": {"type": "string", "nullable": True,
                                "description": "why no client is marked call or control"},
                       "economics": ECONOMICS}}
DECISION = {"type": "object", "required": ["id", "created_at", "verdict", "action", "summary", "evidence"],
            "properties": {"id": {"type": "integer"}, "created_at": {"type": "string"},
                           "verdict": {"type": "string"}, "action": {"type": "string"},
                           "summary": {"type": "string"}, "evidence": {"type": "object"}}}
OBJECT = {"type": "object"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    return {str(code): _json(ERROR, "an error, with what was expected") for code in (401, *codes)}


def _get(summary: str, schema: dict, *codes: int, parameters: list | None = None, extra: dict | None = None) -> dict:
    ok = _json(schema, "success")
    ok["content"].update(extra or {})
    operation = {"summary": summary, "responses": {"200": ok, **_errors(*codes)}}
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


def _int_param(name: str, high: int, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "integer", "minimum": 1, "maximum": high}}


def _rows(items: dict) -> dict:
    return {"type": "array", "items": items, "minItems": 1, "maxItems": serving.MAX_ROWS}


def _prediction() -> dict:
    body = {"oneOf": [
        {"type": "object", "required": ["records"], "properties": {"records": _rows(RECORD)}},
        {"type": "object", "required": ["dataframe_records"], "properties": {"dataframe_records": _rows(RECORD)}},
        {"type": "object", "required": ["dataframe_split"], "properties": {"dataframe_split": {
            "type": "object", "required": ["columns", "data"],
            "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                           "data": _rows({"type": "array", "description": "one value per column"})}}}},
        {"type": "object", "required": ["dataset_path"], "properties": {"dataset_path": {"type": "string"}}},
    ]}
    content = {"application/json": {"schema": body},
               "text/csv": {"schema": {"type": "string", "description": "a header row naming the columns, then rows"}},
               "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                   "file": {"type": "string", "format": "binary"}}}}}
    responses = {"200": _json(PREDICTION, "probabilities and 0/1 calls per row"),
                 **_errors(400, 404, 413, 415, 422, 503)}
    return {"post": {"summary": "Score client rows", "requestBody": {"required": True, "content": content},
                     "responses": responses}}


def _contacts() -> dict:
    body = {"application/json": {"schema": {"type": "object", "required": ["contacts"], "additionalProperties": False,
                                             "properties": {
        "contacts": {"type": "array", "items": CONTACT_IN, "minItems": 1, "maxItems": contacts.MAX_CONTACTS}}}},
        "text/csv": {"schema": {"type": "string", "description": "a header naming corporation, contacted_at, result"
                                " (and optionally note), then one contact a line"}}}
    responses = {"201": _json(COUNTS, "recorded: how many were new and how many recorded before"),
                 "200": _json(COUNTS, "every contact was recorded before: nothing added"),
                 **_errors(400, 413, 415, 422, 503)}
    listing = _get("The newest contacts recorded, newest first", {"type": "object", "properties": {
        "contacts": {"type": "array", "items": CONTACT}, "total": {"type": "integer"}}}, 400,
        parameters=[_int_param("limit", 1000, "how many contacts (default 50)")])
    return {"post": {"summary": "Record contacts with clients, all or nothing", "requestBody": {
        "required": True, "content": body}, "responses": responses}, **listing}


def _call_form() -> dict:
    """POST /dashboard/contacts: the dashboard's form, for browsers (risk/callform.py)."""
    fields = {**CONTACT_IN["properties"], "note": {"type": "string"}}
    body = {"application/x-www-form-urlencoded": {"schema": {**CONTACT_IN, "properties": fields}}}
    page = {"text/html": {"schema": {"type": "string"}}}
    return {"post": {"summary": "The dashboard's form: record one contact as POST /risk/contacts does, from the"
                                " dashboard's own page only (Origin or Referer naming this host)",
                     "requestBody": {"required": True, "content": body}, "responses": {
        "303": {"description": "recorded (or recorded before): back to the dashboard, which says so",
                "headers": {"Location": {"schema": {"type": "string"}}}},
        "422": {"description": "a bad field or an unknown client: the dashboard saying why, nothing written",
                "content": page},
        "503": {"description": "no data ingested yet: the dashboard saying so, nothing written", "content": page},
        **_errors(403, 413)}}}


def _report(summary: str, media: str) -> dict:
    body = {media: {"schema": {"type": "string", "format": "binary"}}}
    return {"get": {"summary": summary, "responses": {"200": {"description": "the report", "content": body},
                                                       **_errors(404)}}}


def spec() -> dict:
    """The whole document."""
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Dynamic Risk Assessment API", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/": {"get": {"summary": "The dashboard for client managers: one self-contained HTML page", "responses": {
                "200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}},
                **_errors()}}},
            "/dashboard/contacts": _call_form(),
            "/prediction": _prediction(),
            "/risk": _get("Clients ranked by attrition probability, with reasons and movers", RISK, 400, 503,
                          parameters=[_int_param("top", 10_000, "how many clients")],
                          extra={"text/csv": {"schema": {"type": "string"}}}),
            "/risk/contacts": _contacts(),
            "/risk/outcomes": _get("The recorded call lists, newest first, with their hit rate against the base rate",
                                   {"type": "array", "items": OUTCOME}, 400, 503,
                                   parameters=[_int_param("limit", 100, "how many lists (default 12)")]),
            "/risk/effect": _get("The measured effect of calling: called against the holdout, pooled and per list",
                                 EFFECT, 400, 503,
                                 parameters=[_int_param("limit", 100, "how many lists (default 12)")]),
            "/risk/experiment.csv": {"get": {
                "summary": "One row per listed client per recorded list: group, contact, next-month outcome",
                "responses": {"200": {"description": "CSV, streamed", "content": {
                    "text/csv": {"schema": {"type": "string"}}}}, **_errors(503)}}},
            "/scoring": _get("F1 of the deployed model on the test data", OBJECT, 503),
            "/summarystats": _get("Mean, median, std of each feature of the ingested data", OBJECT, 503),
            "/diagnostics": _get("Predictions, statistics, missing shares, timings, dependencies", OBJECT, 503),
            "/ready": _get("200 while the version `current` names is verified and served; else 503", OBJECT, 503),
            "/health": {"get": {"summary": "Liveness", "security": [],
                                "responses": {"200": _json(OBJECT, "the process is up")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "text exposition format", "content": text}, **_errors()}}},
            "/openapi.json": _get("This document", OBJECT),
            "/reports/latest.pdf": _report("The latest model report as PDF", "application/pdf"),
            "/reports/latest.html": _report("The latest model report as one self-contained HTML page", "text/html"),
            "/decisions/latest": _get("The newest drift decision record", DECISION, 404),
            "/decisions": _get("The latest drift decision records, newest first",
                               {"type": "object", "required": ["decisions"],
                                "properties": {"decisions": {"type": "array", "items": DECISION}}}, 400,
                               parameters=[_int_param("limit", 1000, "how many records")]),
        },
    }
