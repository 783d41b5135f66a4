"""The alert rules ship with what they need: every metric they watch is exposed by /metrics, every runbook
they point at is a section of docs/operations.md. (promtool unit-tests the rules themselves in make test.)"""
from __future__ import annotations

import re

from conftest import REPO

from app import create_app
from risk.config import Config

RULES = (REPO / "monitoring" / "alerts.yml").read_text(encoding="utf-8")


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, spaces to dashes, punctuation dropped."""
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", markdown, flags=re.M)}


def test_every_runbook_url_is_a_section_of_the_operations_page() -> None:
    urls = re.findall(r"runbook_url: (\S+)", RULES)
    assert len(urls) == len(re.findall(r"- alert: ", RULES)) >= 8
    page = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [url for url in urls if url.split("#")[0] != "docs/operations.md" or url.split("#")[1] not in
               anchors(page)]
    assert missing == []


def test_every_metric_the_rules_watch_is_exposed(deployed: Config) -> None:
    text = create_app(deployed).test_client().get("/metrics").get_data(as_text=True)
    exposed = set(re.findall(r"^# TYPE (\S+) (\S+)", text, flags=re.M))
    names = {name for name, kind in exposed} | {f"{name}_total" for name, kind in exposed if kind == "counter"}
    watched = set(re.findall(r"\b(risk_[a-z_]+)", RULES))
    assert watched == {"risk_pipeline_last_run_timestamp_seconds", "risk_drift_decisions_total", "risk_model_ready",
                       "risk_model_refused", "risk_ledger_readable", "risk_http_requests_total",
                       "risk_calibration_alert"}
    assert watched - names == set()
    assert "risk_model_ready 1.0" in text  # a verified model is loaded
    assert 'risk_model_refused{version=""} 0.0' in text  # and the current version is not refused
    assert "risk_calibration_alert 0.0" in text  # no list judged yet


def test_each_verdict_is_exposed_from_zero_so_the_first_drift_fires(deployed: Config) -> None:
    """Before any DRIFT decision its series reads 0: increase() from 0 to 1 fires RiskDriftDecided, a series that
    first appeared at 1 would not (monitoring/alerts_test.yml has the case)."""
    text = create_app(deployed).test_client().get("/metrics").get_data(as_text=True)
    counts = dict(re.findall(r'^risk_drift_decisions_total\{verdict="([^"]+)"\} (\S+)$', text, flags=re.M))
    assert counts == {"DRIFT": "0.0", "NO DRIFT": "0.0", "INCONCLUSIVE": "0.0", "RETRAIN": "0.0"}  # no decision
