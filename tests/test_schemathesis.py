"""schemathesis (pinned in requirements-dev.txt) against the app's own /openapi.json, in process through WSGI:
at least 100 generated cases for every operation that takes input, both valid (positive) and invalid
(negative) data, with the token configured; no 5xx, and every answer conforms to the schema (status code,
content type, headers, body)."""
from __future__ import annotations

import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from risk import auth, diagnostics, openapi, reporting
from risk.config import Config
from risk.ledger import Ledger

pytestmark = pytest.mark.system

TOKEN = "schemathesis-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SAME_ORIGIN = {"Origin": "http://localhost"}  # as a browser posts the dashboard's form (the WSGI client's host)
CASES = 100
# An operation without input (no body, no query) varies only in the Authorization header schemathesis generates,
# which every call replaces with BEARER: its cases are one request repeated; a few of them say all 100 did.
CASES_WITHOUT_INPUT = 3
BUDGET_SECONDS = 120
CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
               response_schema_conformance]
MODES = tuple(schemathesis.GenerationMode)  # positive and negative (schema-violating) requests


@pytest.fixture
def api(deployed: Config, monkeypatch: pytest.MonkeyPatch):
    """The app on a deployed project with a token, a finished pipeline run and a drift decision in the ledger."""
    monkeypatch.setenv(auth.TOKEN_ENV, TOKEN)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(diagnostics, "_latest_cached", lambda name, bucket: "99.0")  # no pip, no network
    timings = {"ingestion_seconds": 0.01, "training_seconds": 0.02}  # a real scratch run costs ~1 s a call
    monkeypatch.setattr(diagnostics, "execution_time", lambda config: timings)
    with Ledger(deployed.ledger_path) as ledger:
        run = ledger.runs.start("fullprocess")
        ledger.decisions.record(run, "no_drift", "none", {"method": "statistical", "files": ["a.csv"]}, [])
        ledger.runs.end(run, "no_drift")
    reporting.run_reporting(deployed)  # GET /reports/latest.* answer 200 once a report exists
    return create_app(deployed)


def takes_input(operation) -> bool:
    return bool(operation.body) or bool(operation.query)


def run_operation(operation, mode: schemathesis.GenerationMode, counts: Counter, statuses: Counter) -> None:
    """Up to CASES generated cases of one operation (CASES_WITHOUT_INPUT without input), each called and
    validated against the schema."""

    @settings(max_examples=CASES if takes_input(operation) else CASES_WITHOUT_INPUT, deadline=None, database=None,
              derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case) -> None:
        counts[operation.label, mode.value] += 1
        answer = case.call_and_validate(headers={**BEARER, **SAME_ORIGIN}, checks=CONFORMANCE)
        statuses[operation.label, mode.value, answer.status_code] += 1

    check()


def test_every_operation_conforms_to_openapi_json(api) -> None:
    started = time.monotonic()
    schema = schemathesis.openapi.from_wsgi("/openapi.json", api, headers=BEARER)
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {f"{m.upper()} {p}" for p, ms in openapi.spec()["paths"].items() for m in ms}
    assert {op.label for op in operations} == documented - {"GET /openapi.json"}  # it leaves out its source
    counts: Counter = Counter()
    statuses: Counter = Counter()
    for operation in operations:
        for mode in MODES if takes_input(operation) else MODES[:1]:  # nothing to violate without input
            run_operation(operation, mode, counts, statuses)
    elapsed = time.monotonic() - started
    print(f"\nschemathesis {schemathesis.__version__}: {sum(counts.values())} cases in {elapsed:.1f} s, no failure")
    for (label, mode), n in sorted(counts.items()):
        seen = {status: k for (op, m, status), k in sorted(statuses.items()) if (op, m) == (label, mode)}
        print(f"  {label:<24} {mode:<9} {n:>4} cases, statuses {seen}")
    for operation in operations:
        positive = counts[operation.label, "positive"]
        assert positive >= (CASES if takes_input(operation) else 1), (operation.label, positive)
        # the token got through: a 200, or for contacts (generated ids name no known client) the 422 naming one
        through = {"POST /risk/contacts": (200, 422), "POST /dashboard/contacts": (303, 422)}.get(operation.label,
                                                                                                  (200,))
        assert sum(statuses[operation.label, "positive", status] for status in through) > 0, operation.label
    assert elapsed < BUDGET_SECONDS
