"""The dashboard at GET /: one self-contained HTML page for client managers (inline CSS, no script, no assets).

Reads through the API's read side (risk/readside.py: the verified deployed model, the ingested data, the
ledger) and GET writes nothing. Shows the deployed version and score, the ranked risk list with reasons (each
client's action: call, or do not call when the recorded list holds it out as a control), a form to record a
call, how many calls pay (the expected profit curve), how right the lists were (expected beside realized), the
measured effect of calling, the last drift decisions and the score over time, its charts as SVG drawn here.
POST /dashboard/contacts is the form's (risk/callform.py). app.py registers `page_blueprint`.
"""
from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request
from markupsafe import Markup, escape

from risk import callform, prepared, readside, registry, store
from risk.config import Config
from risk.errors import ApiError, ContractError, IntegrityError, MissingInputError
from risk.readside import ModelHolder

logger = logging.getLogger(__name__)
LAST_DECISIONS = 10
SHOWN_MOVERS = 10  # movers named on the page (the JSON gives as many as the list); the rest are counted
SHOWN_EFFECT_LISTS = 6  # judged lists whose own effect is shown (the pooled one counts them all)
SHOWN_CONTACTS = 5  # the newest contacts shown under the form; the rest are counted
# Nothing but this page and its inline styles may load: the browser enforces "no external assets". The report
# (served with REPORT_CSP) has no form; the dashboard's one form may post only to this origin.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'")
CSP = REPORT_CSP.replace("form-action 'none'", "form-action 'self'")
WIDTH, HEIGHT, LEFT, RIGHT, TOP_PAD, BOTTOM, INSET = 1000, 260, 48, 16, 24, 44, 32
GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def ranking_or_reason(config: Config, holder: ModelHolder) -> tuple[dict | None, str | None]:
    """The ranked list for the page, or None and a sentence saying why there is none."""
    try:
        return readside.risk_ranking(config, holder, readside.list_size(config))[1], None
    except store.UnusableIngestedData as exc:
        return None, f"The ingested data breaks the data contract: {exc}"
    except prepared.StaleReadState:
        return None, ("The list is being prepared (its read state is behind the ingested data): the next"
                      " fullprocess.py or ingestion.py run brings it up to date.")
    except MissingInputError:
        return None, "No ingested data yet: run ingestion.py or fullprocess.py."
    except (ApiError, IntegrityError) as exc:
        logger.error("dashboard: no ranking: %s", exc)
        return None, "A model version failed verification; see the server log."


def when(stamp: str | None) -> str:
    """'2026-11-25T11:51:50.247+00:00' as '2026-11-25 11:51 UTC'."""
    if not stamp:
        return "-"
    return stamp[:16].replace("T", " ") + (" UTC" if stamp.endswith("+00:00") else "")


def number(value: float) -> str:
    """A measure as people read it: 1,234 for whole values, 12.35 otherwise."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def chart_points(deployments: list[dict]) -> list[tuple[float, float, dict]]:
    """(x, y, deployment) for each deployment, evenly spaced oldest to newest, y from score 0 (bottom) to 1."""
    inner_w, inner_h = WIDTH - LEFT - RIGHT - 2 * INSET, HEIGHT - TOP_PAD - BOTTOM
    step = inner_w / (len(deployments) - 1) if len(deployments) > 1 else 0.0
    start = LEFT + INSET + (0.0 if len(deployments) > 1 else inner_w / 2)
    return [(start + i * step, TOP_PAD + (1 - min(max(float(d["score"]), 0.0), 1.0)) * inner_h, d)
            for i, d in enumerate(deployments)]


def chart_axes() -> list[str]:
    """Horizontal grid lines with their score labels."""
    inner_h = HEIGHT - TOP_PAD - BOTTOM
    parts = []
    for level in GRID:
        y = TOP_PAD + (1 - level) * inner_h
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{level:.2f}</text>')
    return parts


def chart_marks(points: list[tuple[float, float, dict]]) -> list[str]:
    """A dot per deployment (hollow for a rollback) with its score above and its version below; escaped text."""
    every = max(1, len(points) // 12)
    parts = []
    for i, (x, y, d) in enumerate(points):
        tip = escape(f"version {d['version']}: F1 {d['score']:.4f}, {d.get('action') or 'deploy'} "
                     f"{when(d['created_at'])}" + (f" ({d['reason']})" if d.get("reason") else ""))
        kind = "rollback" if d.get("action") == "rollback" else "deploy"
        parts.append(f'<circle class="{kind}" cx="{x:.1f}" cy="{y:.1f}" r="5"><title>{tip}</title></circle>')
        if i % every == 0 or i == len(points) - 1:
            parts.append(f'<text class="value" x="{x:.1f}" y="{y - 10:.1f}" text-anchor="middle">'
                         f'{d["score"]:.3f}</text><text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" '
                         f'text-anchor="middle">v{escape(str(d["version"]))}</text>')
    return parts


def score_chart(deployments: list[dict]) -> Markup:
    """The deployed model's F1 at each deployment as an inline SVG line chart (empty Markup without one)."""
    if not deployments:
        return Markup("")
    points = chart_points(deployments)
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
    label = escape(f"F1 on the test data at each of {len(points)} deployment(s), "
                   f"from {when(deployments[0]['created_at'])} to {when(deployments[-1]['created_at'])}")
    ends = [(LEFT, "start", deployments[0]), (WIDTH - RIGHT, "end", deployments[-1])] if len(points) > 1 \
        else [(points[0][0], "middle", deployments[0])]  # the first and the last deployment's date
    dates = [f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
             f'{escape(when(d["created_at"]))}</text>' for x, anchor, d in ends]
    body = [*chart_axes(), f'<polyline class="line" points="{line}"/>', *chart_marks(points), *dates]
    return Markup(f'<svg id="score-chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {HEIGHT}" '  # noqa: S704
                  f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
                  f'<title>{label}</title>{"".join(body)}</svg>')


def outcome_chart(outcomes: list[dict]) -> Markup:
    """Each measured list's hit rate (dark) beside the base rate (light) as an inline SVG bar chart."""
    measured = [o for o in outcomes if o["hit_rate"] is not None]
    if not measured:
        return Markup("")
    inner_h, slot = HEIGHT - TOP_PAD - BOTTOM, (WIDTH - LEFT - RIGHT) / len(measured)
    width, body = min(60.0, slot / 3), list(chart_axes())
    for i, o in enumerate(measured):
        x = LEFT + i * slot + slot / 2
        for offset, rate, css in ((-width, o["hit_rate"], "hit"), (0.0, o["base_rate"] or 0.0, "base")):
            top = TOP_PAD + (1 - min(max(rate, 0.0), 1.0)) * inner_h
            body.append(f'<rect class="{css}" x="{x + offset:.1f}" y="{top:.1f}" width="{width:.1f}" '
                        f'height="{TOP_PAD + inner_h - top:.1f}"/>')
        body.append(f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
                    f'{escape(when(o["created_at"]))}</text>')
    label = escape(f"Hit rate of the last {len(measured)} measured call list(s) beside the base rate")
    return Markup(f'<svg id="outcome-chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {HEIGHT}" '  # noqa: S704
                  f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
                  f'<title>{label}</title>{"".join(body)}</svg>')


def profit_scale(curve: list[dict]) -> tuple:
    """The profit chart's x (calls) and y (profit) mappings and its lowest and highest profit (0 always shown)."""
    profits = [point["profit"] for point in curve]
    low, high = min(0.0, *profits), max(0.0, *profits)
    span, last = (high - low) or 1.0, curve[-1]["calls"] or 1
    inner_w, inner_h = WIDTH - LEFT - RIGHT - 2 * INSET, HEIGHT - TOP_PAD - BOTTOM

    def x(calls: float) -> float:
        return LEFT + INSET + calls / last * inner_w

    def y(profit: float) -> float:
        return TOP_PAD + (high - profit) / span * inner_h

    return x, y, low, high


def profit_marks(money: dict, x, y) -> list[str]:  # x, y: profit_scale's mappings
    """Capacity and the recommended count as labelled vertical lines, the best count as a dot."""
    last, parts = money["curve"][-1]["calls"], []
    marks = [("capacity", money["capacity"], f"capacity {money['capacity']}")]
    if money["recommended_calls"] != money["capacity"]:
        marks.append(("recommended", money["recommended_calls"], f"recommended {money['recommended_calls']}"))
    for i, (css, calls, label) in enumerate(marks):
        at = x(min(calls, last))
        parts.append(f'<line class="{css}" x1="{at:.1f}" y1="{TOP_PAD}" x2="{at:.1f}" y2="{HEIGHT - BOTTOM}"/>'
                     f'<text class="mark" x="{at + 4:.1f}" y="{TOP_PAD + 12 + 14 * i}">{escape(label)}</text>')
    best = money["curve"][money["best_calls"]]
    tip = escape(f"most profitable: {best['calls']} calls, expected profit {number(best['profit'])}")
    parts.append(f'<circle class="best" cx="{x(best["calls"]):.1f}" cy="{y(best["profit"]):.1f}" r="5">'
                 f'<title>{tip}</title></circle>')
    return parts


def profit_chart(money: dict | None) -> Markup:
    """The expected profit of calling the first k clients of the list (/risk's economics: risk/economics.py)
    against k as an inline SVG line, with capacity and the recommended count marked (empty Markup without one)."""
    if not money or len(money["curve"]) < 2:
        return Markup("")
    curve = money["curve"]
    x, y, low, high = profit_scale(curve)
    levels = sorted({low, 0.0, high})
    body = [f'<line class="grid{" zero" if v == 0 else ""}" x1="{LEFT}" y1="{y(v):.1f}" x2="{WIDTH - RIGHT}" '
            f'y2="{y(v):.1f}"/><text class="tick" x="{LEFT - 8}" y="{y(v) + 4:.1f}" text-anchor="end">'
            f'{v:,.0f}</text>' for v in levels]
    line = " ".join(f"{x(p['calls']):.1f},{y(p['profit']):.1f}" for p in curve)
    body.append(f'<polyline class="line" points="{line}"/>')
    body += [f'<text class="tick" x="{x(k):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{k}</text>'
             for k in sorted({0, min(money["capacity"], curve[-1]["calls"]), curve[-1]["calls"]})]
    body.append(f'<text class="tick" x="{(WIDTH + LEFT) / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle">'
                f'calls, the riskiest client first</text>')
    body += profit_marks(money, x, y)
    label = escape(f"Expected profit of calling the first 0 to {curve[-1]['calls']} clients of the list; "
                   f"capacity {money['capacity']}, recommended {money['recommended_calls']}, "
                   f"most profitable {money['best_calls']}")
    return Markup(f'<svg id="profit-chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {HEIGHT}" '  # noqa: S704
                  f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
                  f'<title>{label}</title>{"".join(body)}</svg>')


def feedback_or_none(config: Config) -> dict:
    """The lists' outcomes for the page, or nothing (and a log line) when they cannot be read."""
    try:
        return readside.list_feedback(config)
    except (MissingInputError, ApiError, IntegrityError) as exc:
        logger.info("dashboard: no list outcomes: %s", exc)
        return {"outcomes": [], "departed": [], "more_departed": 0, "since": None}


def effect_or_reason(config: Config) -> tuple[dict | None, str | None]:
    """GET /risk/effect's answer for the page (the newest SHOWN_EFFECT_LISTS lists on their own), or None and why."""
    try:
        return readside.effect_of_calling(config, SHOWN_EFFECT_LISTS), None
    except MissingInputError as exc:
        logger.info("dashboard: no effect of calling: %s", exc)
        return None, "The effect of calling shows once the list's read state is up to date (the next pipeline run)."


def contacts_or_none(config: Config) -> dict:
    try:
        return readside.latest_contacts(config, SHOWN_CONTACTS)
    except MissingInputError as exc:  # a ledger of another schema: other sections say so
        logger.info("dashboard: no contacts: %s", exc)
        return {"contacts": [], "total": 0}


def call_form(ranking: dict | None, sent: dict | None) -> dict:
    """What the form shows: the listed clients to pick from (those to call first), today's date (UTC, the
    contract's zone), the values sent back after an error, or a client picked by a row's link (?client=, only
    a listed one: the page repeats no text from the address)."""
    listed = [c["corporation"] for c in (ranking or {}).get("clients", [])]
    calls = [name for c, name in zip(ranking["clients"], listed, strict=True) if c.get("group") != "control"] \
        if ranking else []
    picked = request.args.get("client")
    values = dict(sent or {}) or {"corporation": picked if picked in listed else ""}
    return {"clients": calls, "today": datetime.now(UTC).date().isoformat(), "sent": values,
            "results": callform.RESULTS, "outcome": callform.OUTCOMES.get(request.args.get("contact", ""))}


def page(config: Config, holder: ModelHolder, problem: str | None = None, sent: dict | None = None) -> dict:
    """Everything the template shows; each part says why it is missing instead of failing the page. `problem`
    and `sent`: why the form's contact was not recorded, and what was sent, shown back in the form."""
    version, model_problem = readside.served_version(holder)
    ranking, no_ranking = ranking_or_reason(config, holder) if version else (None, None)
    deployments, recent = readside.ledger_history(config, LAST_DECISIONS)
    pointer = registry.current_number(config.prod_folder) if version else None
    effect, no_effect = effect_or_reason(config)
    return {"version": version, "manifest": version.manifest if version else {}, "problem": model_problem,
            "refused": pointer if version and pointer != version.number else None,
            "ranking": ranking, "no_ranking": no_ranking, "decisions": recent, "deployments": deployments,
            "chart": score_chart(deployments), "when": when, "number": number,
            "shown_movers": SHOWN_MOVERS,
            "report": readside.report_written(config), "feedback": (feedback := feedback_or_none(config)),
            "outcome_chart": outcome_chart(feedback["outcomes"]), "effect": effect, "no_effect": no_effect,
            "profit_chart": profit_chart((ranking or {}).get("economics")), "contacts": contacts_or_none(config),
            "form": call_form(ranking, sent), "form_problem": problem}


page_blueprint = Blueprint("dashboard", __name__)


def rendered(values: dict, status: int = 200) -> tuple[Response, int]:
    answer = make_response(render_template("dashboard.html", **values), status)
    answer.headers["Content-Security-Policy"] = CSP
    answer.headers["Cache-Control"] = "no-store"
    return answer, status


@page_blueprint.get("/")
def dashboard() -> tuple[Response, int]:
    state = current_app.extensions["risk"]
    return rendered(page(state.config, state.models))


@page_blueprint.post("/dashboard/contacts")
def record_call() -> Response | tuple[Response, int]:
    """The form's contact, recorded as POST /risk/contacts records one: then back to the page (303) saying so; a
    bad field or an unknown client: the page again (422; 503 before any data) with why and the form as sent;
    another site's post: 403."""
    state = current_app.extensions["risk"]
    if not callform.same_origin(request.headers, request.host):
        raise ApiError(403, "cross_site_post", callform.CROSS_SITE)
    try:
        counts = callform.record(state.config, request.form, datetime.now(UTC))
    except (ContractError, MissingInputError) as exc:
        sent = callform.record_of(request.form)
        why = callform.message(exc, f"{state.config.root}{os.sep}")
        status = 503 if isinstance(exc, MissingInputError) else 422  # no data yet: the server's, not the form's
        return rendered(page(state.config, state.models, why, {**sent, "note": sent["note"] or ""}), status)
    return redirect(f"/?contact={'recorded' if counts['added'] else 'repeated'}#record-call", 303)
