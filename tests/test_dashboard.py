"""The dashboard at /: rendered by Flask's test client, and in a real headless chromium (Playwright) on loopback."""
from __future__ import annotations

import contextlib
import re
import shutil
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import FIRST, REPO, snapshot, synthetic_frame, write_frame
from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import make_server

import deployment as deployment_cli
from app import create_app
from risk import (
    auth,
    calllists,
    catalog,
    contract,
    dashboard,
    deployment,
    diagnostics,
    ingestion,
    pipeline,
    readside,
    registry,
    scoring,
    training,
)
from risk.config import Config
from risk.ledger import Ledger

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-proxy-server"]
HOSTILE = "<script>alert(1)</script> & Co"
PNG = b"\x89PNG\r\n\x1a\n"
READABLE_FEATURES = [contract.LABELS[name] for name in contract.FEATURES]


@pytest.fixture(autouse=True)
def offline_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    """fullprocess runs diagnostics, which would ask pip's index for the latest versions."""
    monkeypatch.setattr(diagnostics, "_latest_cached", lambda name, bucket: "unknown")


# The story's current clients, by hand from the CSVs: of the 26 clients in the practice and source data, those whose
# last row says they stay: abcd, asdf, corp, dfgh, ekci, endi, lsid, pwls, qwer, tyui, wosl, xful, zxcv
STORY_CURRENT = 13


@pytest.fixture
def story(bootstrapped: Config) -> Config:
    """The course story: a first model by fullprocess (the bootstrapped fixture asserts "deployed version 1"), the
    new data (a deferred decision), a second deployment."""
    config = bootstrapped
    for source in sorted((REPO / "sourcedata").glob("*.csv")):
        shutil.copy(source, config.input_folder / source.name)
    pipeline.run_fullprocess(config)
    deployment.run_deployment(config)
    return config


def deploy_with_hostile_name(config: Config) -> Config:
    frame = synthetic_frame(60, seed=3)
    frame.loc[0, "corporation"] = HOSTILE
    frame.loc[0, FIRST] = 5000  # the riskiest client, so it is on the page
    frame.loc[0, contract.TARGET] = 0  # a current client
    write_frame(frame, config.input_folder / "hostile.csv")
    ingestion.run_ingestion(config)
    training.run_training(config)
    scoring.run_scoring(config)
    deployment.run_deployment(config)
    return config


@pytest.mark.slow
def test_the_page_shows_version_score_clients_decisions_and_chart(story: Config) -> None:
    answer = create_app(story).test_client().get("/")
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    html = answer.get_data(as_text=True)
    assert '<dd id="model-version">2</dd>' in html
    assert create_app(story).test_client().get("/risk").get_json()["population"] == STORY_CURRENT
    assert html.count('class="client-row"') == 13  # every current client: 13 is fewer than the 25 listed
    assert html.count('class="decision-row"') == 2
    assert "INCONCLUSIVE" in html
    assert html.count('<circle class="deploy"') == 2
    for external in ("http://", "https://", "<script", "<link rel=\"stylesheet\"", "@import", "url("):
        assert external not in html.replace('xmlns="http://www.w3.org/2000/svg"', ""), external


def test_everything_shown_is_escaped(config: Config) -> None:
    config = deploy_with_hostile_name(config)._replace(call_capacity=10_000)  # every current client on the page
    html = create_app(config).test_client().get("/").get_data(as_text=True)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html


def test_the_chart_escapes_text_and_scales_scores() -> None:
    rows = [{"version": 1, "score": 0.0, "created_at": "2026-01-01T00:00:00.000+00:00", "action": "deploy"},
            {"version": 2, "score": 1.0, "created_at": "2026-01-02T00:00:00.000+00:00", "action": "rollback",
             "reason": "<b>bad</b>"}]
    svg = str(dashboard.score_chart(rows))
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert "<b>" not in svg
    assert "(&lt;b&gt;bad&lt;/b&gt;)" in svg
    bottom, top = dashboard.HEIGHT - dashboard.BOTTOM, dashboard.TOP_PAD
    assert f'cy="{bottom:.1f}"' in svg
    assert f'cy="{top:.1f}"' in svg
    assert '<circle class="rollback"' in svg
    assert str(dashboard.score_chart([])) == ""


def test_without_a_model_or_ledger_the_page_says_so(config: Config) -> None:
    before = snapshot(config.root)
    answer = create_app(config).test_client().get("/")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "No model deployed yet" in html
    assert "failed verification" not in html
    assert "No deployment recorded yet" in html
    assert "No decision recorded yet" in html
    assert snapshot(config.root) == before  # no ledger created, nothing written


@pytest.mark.slow
def test_get_writes_no_pipeline_files(story: Config) -> None:
    before = snapshot(story.root)
    assert create_app(story).test_client().get("/").status_code == 200
    assert snapshot(story.root) == before


def test_a_corrupt_current_pointer_still_renders(deployed: Config) -> None:
    (deployed.prod_folder / "current").write_text("garbage\n", encoding="utf-8")
    answer = create_app(deployed).test_client().get("/")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "No verified model to show" in html
    assert "the deployed model failed verification" in html


def test_movers_since_the_previous_version_are_shown(deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    def ranking(config: Config, holder: object, top: int) -> tuple[object, dict]:
        version = holder.get()[0]
        mover = {"corporation": "acme", "probability": 0.62, "previous_probability": 0.5, "rise": 0.12, "percent": 62.0,
                 "previous_percent": 50.0, "rise_points": 12.0}
        return version, {"model_version": "2", "previous_version": 1, "clients": [], "movers": [mover],
                         "population": 0}

    monkeypatch.setattr(readside, "risk_ranking", ranking)
    html = create_app(deployed).test_client().get("/").get_data(as_text=True)
    assert "Rising since version 1" in html
    assert "50.0%" in html
    assert "+12.0 pts" in html
    assert "The latest ingested data names no clients." in html


def test_the_page_needs_the_token_when_one_is_configured(deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(auth.TOKEN_ENV, "s3cret")
    client = create_app(deployed).test_client()
    assert client.get("/").status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_ids_are_shown_as_ingestion_kept_them(deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = ["NA", "null", "None", "nan", "00007"]
    frame = synthetic_frame(len(ids), seed=5)
    frame["corporation"] = ids
    frame[contract.TARGET] = 0  # current clients
    write_frame(frame, deployed.input_folder / "odd-ids.csv")
    ingestion.run_ingestion(deployed)
    deployed = deployed._replace(call_capacity=10_000)  # every client on the page
    html = create_app(deployed).test_client().get("/").get_data(as_text=True)
    for name in ids:
        assert f'<td class="client">{name}</td>' in html, name


def test_a_corrupt_previous_version_still_shows_the_ranking(deployed: Config) -> None:
    for _ in range(2):
        training.run_training(deployed)
        scoring.run_scoring(deployed)
        deployment.run_deployment(deployed)
    assert deployment_cli.main(["--config", str(deployed.config_path), "--rollback"]) == 0
    score = registry.versions_folder(deployed.prod_folder) / "3" / catalog.SCORE
    score.write_bytes(score.read_bytes() + b"x")
    answer = create_app(deployed).test_client().get("/")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert '<dd id="model-version">2</dd>' in html
    # the 11 current course clients (tests/test_calllist.py names them), fewer than the 25 listed: all listed
    assert create_app(deployed).test_client().get("/risk").get_json()["population"] == 11
    assert html.count('class="client-row"') == 11
    movers = html[html.index('<section id="movers">'):]
    assert "no movers: the previous version 3 failed verification" in movers[:movers.index("</section>")]


@pytest.mark.parametrize("tail", [b"torn,12", b"a,1,2,3,4,5,6,7\n"])
def test_a_torn_tail_in_finaldata_is_invisible_on_the_page(deployed: Config, tail: bytes) -> None:
    with open(deployed.output_folder / "finaldata.csv", "ab") as handle:
        handle.write(tail)
    answer = create_app(deployed).test_client().get("/")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert 'class="client-row"' in html
    assert "torn" not in html


def test_a_read_state_behind_the_ledger_is_said_on_the_page(deployed: Config) -> None:
    (deployed.output_folder / "prepared.npz").unlink()
    answer = create_app(deployed).test_client().get("/")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "The list is being prepared" in html
    assert 'class="client-row"' not in html


# In the browser -----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def serving(config: Config) -> Iterator[str]:
    """The app on a werkzeug server on a free loopback port, in a thread."""
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextlib.contextmanager
def watched(browser: Browser) -> Iterator[tuple[Page, dict[str, list[str]]]]:
    """A page that records every request it makes, every failed or 4xx/5xx answer and every console error."""
    seen: dict[str, list[str]] = {"requests": [], "failed": [], "errors": []}
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("requestfailed", lambda request: seen["failed"].append(f"{request.url} {request.failure}"))
    page.on("response", lambda r: r.status >= 400 and seen["failed"].append(f"{r.url} {r.status}"))
    page.on("console", lambda m: m.type in ("error", "warning") and seen["errors"].append(m.text))
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    try:
        yield page, seen
    finally:
        context.close()


def assert_local_and_clean(seen: dict[str, list[str]]) -> None:
    assert seen["requests"], "the page made no request at all"
    outside = [u for u in seen["requests"] if urlsplit(u).scheme != "data" and urlsplit(u).hostname != "127.0.0.1"]
    assert outside == []
    assert seen["failed"] == []
    assert seen["errors"] == []


def assert_png(path: Path, min_width: int) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= min_width
    assert height >= 400
    assert len(data) > 20_000  # a blank page compresses to a few kB


@pytest.mark.system
def test_dashboard_in_a_real_browser(story: Config, browser: Browser, tmp_path: Path) -> None:
    with serving(story) as url, watched(browser) as (page, seen):
        assert page.goto(f"{url}/").status == 200
        expect(page).to_have_title("Client attrition risk · model v2")
        expect(page.locator("#model-version")).to_have_text("2")
        expect(page.locator("#model-score")).to_have_text("0.5714")
        first = page.locator("#risk-list tr.client-row").first
        expect(first).to_be_visible()
        expect(first.locator(".reason").first).to_contain_text(re.compile("|".join(READABLE_FEATURES)))
        expect(page.locator("#risk-list tr.client-row")).to_have_count(STORY_CURRENT)  # fewer than the 25 listed
        expect(page.locator("#decisions tr.decision-row").first).to_contain_text("INCONCLUSIVE")
        expect(page.locator("#score-chart")).to_be_visible()
        expect(page.locator("#score-chart circle")).to_have_count(2)
        assert page.locator("script").count() == 0
        page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
    assert_local_and_clean(seen)
    assert_png(tmp_path / "dashboard.png", 1280)


@pytest.mark.system
def test_the_list_who_left_since_and_the_hit_rate_chart_in_a_real_browser(after_month1: Config, browser: Browser,
                                                                          tmp_path: Path) -> None:
    from test_calllist import monthly_snapshots

    config = after_month1  # two monthly snapshots through fullprocess: the first list is measured by the second
    months = monthly_snapshots(seed=11)
    gone = months[1].loc[months[1][contract.TARGET] == 1, contract.ID_COLUMN].tolist()
    with serving(config) as url, watched(browser) as (page, seen):
        assert page.goto(f"{url}/").status == 200
        expect(page.locator("#risk-list tr.client-row")).to_have_count(readside.list_size(config))
        expect(page.locator("#risk-list td.action.control")).to_have_count(
            readside.list_size(config) - config.call_capacity)
        left_since = page.locator("#left-since")
        expect(left_since).to_be_visible()
        expect(left_since.locator(".departed-row")).to_have_count(len(gone))
        expect(left_since.locator("td.client").first).to_have_text(gone[0])
        expect(page.locator("#outcome-chart")).to_be_visible()
        expect(page.locator("#outcome-chart rect.hit")).to_have_count(1)
        page.screenshot(path=tmp_path / "outcomes.png", full_page=True)
    assert_local_and_clean(seen)
    assert_png(tmp_path / "outcomes.png", 1280)


@pytest.mark.system
def test_dashboard_without_a_model_in_a_real_browser(config: Config, browser: Browser, tmp_path: Path) -> None:
    with serving(config) as url, watched(browser) as (page, seen):
        assert page.goto(f"{url}/").status == 200
        expect(page.locator("#model h2")).to_have_text("No model deployed yet")
        expect(page.locator("#decisions")).to_contain_text("No decision recorded yet")
        expect(page.locator("#risk-list")).to_have_count(0)
        page.screenshot(path=tmp_path / "no-model.png", full_page=True)
    assert_local_and_clean(seen)
    assert (tmp_path / "no-model.png").read_bytes()[:8] == PNG


def month_of(config: Config, names: list[str], left: int, file: str) -> None:
    """A month of one row for each client of `names`, the riskiest of clients (`exited` = `left`), ingested."""
    frame = synthetic_frame(len(names), seed=6)
    frame["corporation"] = names
    frame[FIRST] = 5000
    frame[contract.TARGET] = left
    write_frame(frame, config.input_folder / file)
    ingestion.run_ingestion(config)


@pytest.mark.parametrize(("leavers", "more"), [(30, "and 10 more"), (20, None)])
def test_who_left_since_the_last_list_is_capped_and_the_rest_counted(deployed: Config, leavers: int,
                                                                     more: str | None) -> None:
    assert readside.SHOWN_DEPARTED == 20
    names = [f"gone{i:02d}" for i in range(leavers)]
    month_of(deployed, names, 0, "stay.csv")
    with Ledger(deployed.ledger_path) as ledger:
        assert calllists.record_if_changed(deployed, ledger, None) is not None  # the list the managers had
    month_of(deployed, names, 1, "leave.csv")
    with Ledger(deployed.ledger_path) as ledger:
        assert calllists.record_if_changed(deployed, ledger, None) is not None  # the list the new month gives
    html = create_app(deployed).test_client().get("/").get_data(as_text=True)
    section = html[html.index('<section id="left-since">'):]
    section = section[:section.index("</section>")]
    assert re.findall(r'<tr class="departed-row"><td class="client">(.*?)</td>', section) == names[:20]
    assert re.findall(r'id="more-departed">(.*?)</p>', section) == ([more] if more else [])


def test_movers_beyond_the_shown_ones_are_counted(deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    def ranking(config: Config, holder: object, top: int) -> tuple[object, dict]:
        movers = [{"corporation": f"m{i}", "probability": 0.6, "previous_probability": 0.5, "rise": 0.1,
                   "percent": 60.0, "previous_percent": 50.0, "rise_points": 10.0}
                  for i in range(13)]
        return holder.get()[0], {"model_version": "2", "previous_version": 1, "clients": [], "movers": movers,
                                 "population": 0}

    monkeypatch.setattr(readside, "risk_ranking", ranking)
    html = create_app(deployed).test_client().get("/").get_data(as_text=True)
    assert dashboard.SHOWN_MOVERS == 10
    assert html.count('class="mover-row"') == 10
    assert re.search(r'id="more-movers">and 3 more', html)
