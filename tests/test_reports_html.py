"""The HTML model report and the report routes: self-contained, served read-only, and clean in headless chromium."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import runs, snapshot
from playwright.sync_api import Browser, expect
from test_dashboard import assert_local_and_clean, assert_png, browser, serving, watched  # noqa: F401
from test_reports_pdf import build_story

import reporting as reporting_cli
from app import create_app
from risk import auth, catalog, diagnostics
from risk.config import Config
from risk.ledger import Ledger
from risk.report import SECTIONS

MAX_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return build_story(tmp_path_factory.mktemp("reports-html") / "project")


@pytest.fixture(autouse=True)
def offline_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnostics, "_latest_cached", lambda name, bucket: "unknown")


@pytest.mark.slow
def test_the_html_is_self_contained_and_small(story: Config) -> None:
    page = (story.model_folder / catalog.REPORTS / catalog.LATEST_HTML).read_text(encoding="utf-8")
    assert len(page.encode()) < MAX_BYTES
    for title in SECTIONS:
        assert f">{title}<" in page.replace("&amp;", "&"), title
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources
    assert all(s.startswith("data:") for s in sources), [s[:40] for s in sources if not s.startswith("data:")]
    for external in ("http://", "https://", "<script", "@import", "url("):
        assert external not in page, external
    assert page.count('class="file-row"') == 6
    assert page.count('class="deployment-row"') == 2


def test_routes_serve_the_latest_report_and_write_nothing(story: Config) -> None:
    before = snapshot(story.root)
    client = create_app(story).test_client()
    pdf = client.get("/reports/latest.pdf")
    assert (pdf.status_code, pdf.mimetype) == (200, "application/pdf")
    assert pdf.data == (story.model_folder / catalog.REPORTS / catalog.LATEST_PDF).read_bytes()
    html = client.get("/reports/latest.html")
    assert (html.status_code, html.mimetype) == (200, "text/html")
    assert "default-src 'none'" in html.headers["Content-Security-Policy"]
    dashboard = client.get("/").get_data(as_text=True)
    assert 'href="/reports/latest.html"' in dashboard
    assert 'href="/reports/latest.pdf"' in dashboard
    assert snapshot(story.root) == before


def test_before_any_report_the_routes_are_404_json_and_the_dashboard_has_no_link(deployed: Config) -> None:
    client = create_app(deployed).test_client()
    for route in ("/reports/latest.pdf", "/reports/latest.html"):
        answer = client.get(route)
        assert answer.status_code == 404
        assert answer.get_json()["error"] == "no_report"
    assert "/reports/latest.html" not in client.get("/").get_data(as_text=True)
    assert not (deployed.model_folder / catalog.REPORTS).exists()


def test_the_report_routes_need_the_token(story: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(auth.TOKEN_ENV, "s3cret")
    client = create_app(story).test_client()
    assert client.get("/reports/latest.pdf").status_code == 401
    assert client.get("/reports/latest.pdf", headers={"Authorization": "Bearer s3cret"}).status_code == 200


@pytest.mark.slow
def test_reporting_on_demand_rewrites_the_latest_report(story: Config) -> None:
    latest = story.model_folder / catalog.REPORTS / catalog.LATEST_HTML
    before = latest.stat().st_mtime_ns
    detail = reporting_cli.main(["--config", str(story.config_path)])
    assert detail == 0
    assert latest.stat().st_mtime_ns > before
    with Ledger(story.ledger_path) as ledger:
        run = next(r for r in runs(ledger) if r["stage"] == "reporting")
    assert run["outcome"] == "ok"
    assert '"pdf"' in run["detail"]


@pytest.mark.system
def test_the_html_report_in_a_real_browser(story: Config, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    with serving(story) as url, watched(browser) as (page, seen):
        assert page.goto(f"{url}/reports/latest.html").status == 200
        expect(page).to_have_title("Model report · version 2")
        for title in SECTIONS:
            expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        expect(page.locator("#version")).to_have_text("2")
        images = page.locator("img")
        assert images.count() == 6  # confusion, calibration, scores, drift, timings, the profit curve
        for i in range(images.count()):
            assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 300"), i
        assert create_app(story).test_client().get("/risk").get_json()["population"] == 72
        # the 20 calls and the 5 controls held out of them (holdout_share 0.2: 20 / 0.8), of 72 current clients
        expect(page.locator("tr.client-row")).to_have_count(25)
        assert page.locator("script").count() == 0
        page.screenshot(path=tmp_path / "report.png", full_page=True)
    assert_local_and_clean(seen)
    assert_png(tmp_path / "report.png", 1280)


def test_after_a_rollback_the_routes_serve_the_report_of_the_version_now_current(story: Config) -> None:
    from risk import deployment, registry

    live = registry.current_number(story.prod_folder)
    assert live == 2
    deployment.run_rollback(story, 1, "test: the report follows the pointer")
    try:
        client = create_app(story).test_client()
        served = client.get("/reports/latest.pdf").data
        assert served == story.report_paths("1")["pdf"].read_bytes()
        assert served != (story.model_folder / catalog.REPORTS / catalog.LATEST_PDF).read_bytes()
    finally:
        deployment.run_rollback(story, live, "test: back")
    assert create_app(story).test_client().get("/reports/latest.pdf").data == \
        story.report_paths("2")["pdf"].read_bytes()
