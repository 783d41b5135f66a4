"""The retention loop on the dashboard: the "called" form (POST /dashboard/contacts: recorded as POST /risk/contacts
records, refused from another site, errors shown with nothing written), the effect of calling with the
hand-computed answer of tests/test_retention.py, how many calls pay, expected beside realized; through Flask's test
client, and the form in a real headless chromium."""
from __future__ import annotations

import re

import pytest
from conftest import snapshot
from playwright.sync_api import Browser, expect
from scipy import stats
from test_dashboard import assert_local_and_clean, browser, serving, watched  # noqa: F401
from test_retention import called_and_held_out, month, record_list

from app import create_app
from risk import auth, callform, dashboard, readside
from risk.config import Config

HERE = {"Origin": "http://localhost"}  # what a browser sends with a form posted from the test client's host


def section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}">')
    return html[start:html.index("</section>", start)]


def text_of(html: str) -> str:
    """The words of some HTML, tags dropped and spaces folded, as a reader sees them."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def listed_client(client) -> str:
    return next(c["corporation"] for c in client.get("/risk").get_json()["clients"] if c["group"] != "control")


def contact(client_id: str, **changes: str) -> dict:
    return {"corporation": client_id, "result": "reached", "contacted_at": "2024-05-02", "note": "", **changes}


# ---- the form ---------------------------------------------------------------------------------------------------
def test_the_form_records_a_contact_as_the_api_does_and_says_so(deployed: Config) -> None:
    client = create_app(deployed).test_client()
    name = listed_client(client)
    answer = client.post("/dashboard/contacts", data=contact(name, note="will think about it"), headers=HERE)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/?contact=recorded#record-call"
    recorded = client.get("/risk/contacts").get_json()
    assert recorded["total"] == 1
    assert {k: recorded["contacts"][0][k] for k in ("corporation", "contacted_at", "result", "note", "source")} == {
        "corporation": name, "contacted_at": "2024-05-02T23:59:59+00:00", "result": "reached",
        "note": "will think about it", "source": "dashboard"}  # a date alone: the end of that day, as the API
    html = client.get("/?contact=recorded").get_data(as_text=True)
    assert '<p class="recorded" id="form-outcome">Contact recorded.</p>' in html
    assert re.findall(r'<tr class="contact-row"><td class="client">(.*?)</td>', html) == [name]
    again = client.post("/dashboard/contacts", data=contact(name, note="will think about it"), headers=HERE)
    assert again.headers["Location"] == "/?contact=repeated#record-call"
    assert client.get("/risk/contacts").get_json()["total"] == 1
    assert "That contact was recorded before: nothing added." in client.get("/?contact=repeated").get_data(as_text=True)


@pytest.mark.parametrize(("changes", "message"), [
    ({"result": "hung_up"}, "Not recorded: field 'result' must be one of ['reached', 'not_reached', 'offer_accepted',"
                            " 'offer_declined'], got 'hung_up'"),
    ({"corporation": "nobody"}, "Not recorded: field 'corporation': unknown client 'nobody': in no recorded call list"
                                " and not in the ingested data"),
    ({"contacted_at": "2999-01-01"}, "Not recorded: field 'contacted_at' must lie between 2000-01-01 and now, got"
                                     " '2999-01-01'"),
    ({"corporation": ""}, "Not recorded: missing field(s) ['corporation']: a contact needs ['corporation',"
                          " 'contacted_at', 'result']"),
])
def test_a_bad_field_or_an_unknown_client_is_shown_and_nothing_written(deployed: Config, changes: dict,
                                                                      message: str) -> None:
    client = create_app(deployed).test_client()
    sent = contact(listed_client(client), note="<b>kept</b>", **changes)
    before = snapshot(deployed.root)
    answer = client.post("/dashboard/contacts", data=sent, headers=HERE)
    assert answer.status_code == 422
    assert answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    assert re.search(r'<p class="refused" id="form-problem">(.*?)</p>', html).group(1) == str(
        dashboard.escape(message))
    assert 'value="&lt;b&gt;kept&lt;/b&gt;"' in html  # the form as sent, escaped, to correct and send again
    assert snapshot(deployed.root) == before
    assert client.get("/risk/contacts").get_json()["total"] == 0


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "http://localhost.evil.example"},
    {"Origin": "null"},
    {},  # neither Origin nor Referer: a browser always sends one with a form
    {"Referer": "https://evil.example/page"},
    {"Origin": "http://localhost", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://localhost", "Sec-Fetch-Site": "same-site"},
])
def test_a_post_from_another_site_is_refused(deployed: Config, headers: dict) -> None:
    client = create_app(deployed).test_client()
    before = snapshot(deployed.root)
    answer = client.post("/dashboard/contacts", data=contact(listed_client(client)), headers=headers)
    assert answer.status_code == 403
    assert answer.get_json() == {"error": "cross_site_post", "detail": callform.CROSS_SITE}
    assert snapshot(deployed.root) == before


def test_a_same_site_referer_or_fetch_header_is_taken(deployed: Config) -> None:
    client = create_app(deployed).test_client()
    name = listed_client(client)
    assert client.post("/dashboard/contacts", data=contact(name), headers={
        "Referer": "http://localhost/?client=x"}).status_code == 303
    assert client.post("/dashboard/contacts", data=contact(name, result="offer_accepted"), headers={
        **HERE, "Sec-Fetch-Site": "same-origin"}).status_code == 303
    assert client.get("/risk/contacts").get_json()["total"] == 2


def test_the_form_needs_the_token_like_the_page(deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(auth.TOKEN_ENV, "s3cret")
    client = create_app(deployed).test_client()
    bearer = {"Authorization": "Bearer s3cret"}
    name = next(c["corporation"] for c in client.get("/risk", headers=bearer).get_json()["clients"])
    assert client.post("/dashboard/contacts", data=contact(name), headers=HERE).status_code == 401
    assert client.post("/dashboard/contacts", data=contact(name), headers={**HERE, **bearer}).status_code == 303
    assert client.get("/risk/contacts", headers=bearer).get_json()["total"] == 1


def test_get_never_writes_and_a_row_link_picks_only_a_listed_client(deployed: Config) -> None:
    client = create_app(deployed).test_client()
    name = listed_client(client)
    before = snapshot(deployed.root)
    html = client.get(f"/?client={name}&contact=recorded").get_data(as_text=True)
    assert f'value="{name}"' in section(html, "record-call")
    assert f'href="/?client={name}#record-call"' in section(html, "risk-list")
    stranger = client.get("/?client=Call+0800+now").get_data(as_text=True)
    assert "0800" not in stranger
    assert snapshot(deployed.root) == before
    assert "form-action 'self'" in client.get("/").headers["Content-Security-Policy"]  # the form posts only here
    assert "form-action 'none'" in dashboard.REPORT_CSP  # the report has no form


# ---- what the page says about the loop ------------------------------------------------------------------------
def test_the_effect_section_has_the_hand_computed_answer(deployed: Config) -> None:
    called_and_held_out(deployed)  # 10 of 100 called left, 20 of 100 held out; 60 contacted, 3 of them left
    words = text_of(section(create_app(deployed).test_client().get("/").get_data(as_text=True), "effect"))
    assert "Assigned to be called 100 10 10.0%" in words
    assert "Holdout: not called 100 20 20.0%" in words
    assert "Actually reached (a hint, not randomized) 60 3 5.0%" in words
    # Newcombe by hand (tests/test_effect.py): -10 points, [-19.95, -0.01]; saves per 100 calls 10 [0.01, 19.95]
    assert "Called minus holdout -10.00 points 95% interval -19.95 to -0.01" in words
    assert "Verdict calls help" in words
    assert "Saves per 100 calls 10.00 95% interval 0.01 to 19.95" in words
    pooled = create_app(deployed).test_client().get("/risk/effect").get_json()["pooled"]
    assert f"is {pooled['detectable_points']:.1f} points" in words
    months = pooled["months_for_10_points"]
    assert ("already detectable" in words) if months == 0 else (f"{months} more month(s)" in words)
    assert "Too little data" not in words


def test_too_little_data_is_said_never_a_bare_number(deployed: Config) -> None:
    client = create_app(deployed).test_client()
    empty = text_of(section(client.get("/").get_data(as_text=True), "effect"))
    assert "Too little data to say whether calls help: no holdout client has been judged yet" in empty
    month(deployed, "m0", {f"c{i}": 0 for i in range(7)})
    record_list(deployed, [(f"c{i}", 0.2, "call" if i < 5 else "control") for i in range(7)])
    month(deployed, "m1", {f"c{i}": int(i in (0, 5)) for i in range(7)})
    html = section(client.get("/").get_data(as_text=True), "effect")
    words = text_of(html)
    assert "Too little data to say whether calls help: too little data: 5 called and 2 holdout clients judged" in words
    assert "Assigned to be called 5 1 20.0%" in words
    assert "Holdout: not called 2 1 50.0%" in words
    for number in ("effect-difference", "effect-verdict", "effect-saves", "effect-power"):
        assert number not in html
    assert text_of(html.split('<tr class="effect-row">')[1]).endswith("1 of 5 1 of 2 too little data")


def test_the_effect_lists_are_capped_and_the_rest_counted(deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = []

    def effect(config: Config, limit: int) -> dict:
        shown.append(limit)
        lists = [{"id": i, "created_at": "2026-01-01T00:00:00.000+00:00", "model_version": "1", "note": "few",
                  "called": {"left": 0, "clients": 1}, "holdout": {"left": 0, "clients": 1}} for i in range(limit)]
        return {"pooled": {"note": "few", **{k: {"left": 0, "clients": 9, "leave_rate": 0.0}
                                             for k in ("called", "holdout", "contacted")}},
                "lists": lists, "judged_lists": 9, "recorded_lists": 9, "superseded_lists": 0}

    monkeypatch.setattr(readside, "effect_of_calling", effect)
    html = create_app(deployed).test_client().get("/").get_data(as_text=True)
    assert shown == [dashboard.SHOWN_EFFECT_LISTS] == [6]
    assert html.count('class="effect-row"') == 6
    assert re.search(r'id="more-effect-lists">and 3 more', html)


def test_how_many_calls_pay_is_the_apis_economics_with_capacity_marked(deployed: Config) -> None:
    client = create_app(deployed).test_client()
    money = client.get("/risk").get_json()["economics"]
    html = section(client.get("/").get_data(as_text=True), "economics")
    assert f'<dd id="recommended-calls">{money["recommended_calls"]}</dd>' in html
    assert f'<dd id="profit-at-capacity">{dashboard.number(money["at_capacity"])}</dd>' in html
    assert html.count("<polyline") == 1
    assert len(re.search(r'points="([^"]*)"', html).group(1).split()) == len(money["curve"])
    assert f">capacity {money['capacity']}</text>" in html
    assert html.count('<line class="capacity"') == 1
    assert html.count('<circle class="best"') == 1


def test_the_profit_chart_marks_capacity_and_the_recommended_count() -> None:
    curve = [{"calls": k, "profit": p} for k, p in enumerate([0.0, 40.0, 60.0, 50.0, -20.0])]
    money = {"curve": curve, "capacity": 3, "recommended_calls": 2, "best_calls": 2}
    svg = str(dashboard.profit_chart(money))
    x, y, low, high = dashboard.profit_scale(curve)
    assert (low, high) == (-20.0, 60.0)
    assert f'<line class="capacity" x1="{x(3):.1f}"' in svg
    assert f'<line class="recommended" x1="{x(2):.1f}"' in svg
    assert f'<circle class="best" cx="{x(2):.1f}" cy="{y(60.0):.1f}"' in svg
    assert f'y1="{y(0.0):.1f}"' in svg  # the zero line
    assert str(dashboard.profit_chart(None)) == str(dashboard.profit_chart({**money, "curve": curve[:1]})) == ""


def test_expected_beside_realized_on_the_holdout(deployed: Config) -> None:
    called_and_held_out(deployed)  # 200 clients at p = 0.15; the holdout's 100: 20 left
    html = section(create_app(deployed).test_client().get("/").get_data(as_text=True), "list-outcomes")
    binomial = stats.binom(100, 0.15)  # the Poisson-binomial of equal probabilities; its 2.5% and 97.5% points
    low, high = binomial.ppf(0.025), binomial.ppf(0.975)
    assert re.search(r'<td class="num expected">(.*?)</td>', html, re.S).group(1).split() == [
        "15%", f"({low:.0f}-{high:.0f}%)", "<small>holdout</small>"]
    assert text_of(re.search(r'<td class="num realized[^"]*">(.*?)</td>', html, re.S).group(1)) == "20% 20 of 100"


# ---- in the browser ------------------------------------------------------------------------------------------------
@pytest.mark.system
def test_a_call_recorded_from_the_dashboard_in_a_real_browser(deployed: Config, browser: Browser) -> None:  # noqa: F811
    called_and_held_out(deployed)
    with serving(deployed) as url, watched(browser) as (page, seen):
        assert page.goto(f"{url}/").status == 200
        form = page.locator("#record-call form")
        form.locator('input[name="corporation"]').fill("call5")
        form.locator('select[name="result"]').select_option("offer_accepted")
        form.locator('input[name="note"]').fill("from the browser")
        expect(form.locator('input[name="contacted_at"]')).not_to_have_value("")  # today, by default
        form.locator("button").click()
        expect(page.locator("#form-outcome")).to_have_text("Contact recorded.")
        assert page.url == f"{url}/?contact=recorded#record-call"
        expect(page.locator("#latest-contacts tr.contact-row").first).to_contain_text("call5")
        listed = page.request.get(f"{url}/risk/contacts?limit=1").json()
        newest = listed["contacts"][0]
        assert (newest["corporation"], newest["result"], newest["note"], newest["source"]) == (
            "call5", "offer_accepted", "from the browser", "dashboard")
        assert listed["total"] == 63  # called_and_held_out's 62, and this one
        effect = page.locator("#effect")
        expect(effect.locator("#effect-verdict")).to_have_text("calls help")
        expect(effect.locator("#effect-difference")).to_contain_text("-10.00")
        expect(effect.locator("#effect-interval")).to_have_text("95% interval -19.95 to -0.01")
        form.locator('input[name="corporation"]').fill("nobody")
        form.locator("button").click()
        expect(page.locator("#form-problem")).to_contain_text("unknown client 'nobody'")
    refusal = [f for f in seen["failed"] if f.endswith("/dashboard/contacts 422")]
    assert len(refusal) == 1  # the unknown client's page: shown with its 422, as the console says
    seen["failed"] = [f for f in seen["failed"] if f not in refusal]
    seen["errors"] = [e for e in seen["errors"] if "status of 422" not in e]
    assert_local_and_clean(seen)
    assert create_app(deployed).test_client().get("/risk/contacts").get_json()["total"] == 63  # not the refused one



def test_a_post_before_any_data_is_a_503_and_writes_nothing(config: Config) -> None:
    answer = create_app(config).test_client().post("/dashboard/contacts", data=contact("abcd"), headers=HERE)
    assert answer.status_code == 503
    html = answer.get_data(as_text=True)
    assert "No model deployed yet" in html
    assert not config.ledger_path.exists()
