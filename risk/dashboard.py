"""The dashboard at GET /: one self-contained HTML page for client managers (inline CSS, no script, no assets).

Reads what the API reads (the verified deployed model, the ingested data, the ledger) and writes nothing.
Shows the deployed version and score, the ranked risk list with reasons, the last drift decisions and the
score over time as an SVG drawn here. app.py's create_app calls `register(app, config, holder)`.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, Response, make_response, render_template
from markupsafe import Markup, escape

import diagnostics
from risk import decisions, registry, risklist
from risk.config import Config
from risk.errors import IntegrityError, MissingInputError
from risk.ledger import Ledger
from risk.serving import ApiError

if TYPE_CHECKING:
    from app import ModelHolder

logger = logging.getLogger(__name__)
TOP = 20
LAST_DECISIONS = 10
# Nothing but this page and its inline styles may load: the browser enforces "no external assets".
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
WIDTH, HEIGHT, LEFT, RIGHT, TOP_PAD, BOTTOM, INSET = 1000, 260, 48, 16, 24, 44, 32
GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


@functools.lru_cache(maxsize=8)
def previous_model(prod: Path, number: int) -> tuple[object | None, str | None]:
    """Version `number`'s model, the movers' baseline, or None and why not. Versions are immutable, so each
    is verified and loaded once per process (a failure too, as the ModelHolder does for the current one)."""
    try:
        return registry.load_model(registry.verify(prod, number)), None
    except (IntegrityError, MissingInputError) as exc:
        logger.error("no movers: the previous version %d failed verification: %s", number, exc)
        return None, f"no movers: the previous version {number} failed verification (see the server log)"


def risk_ranking(config: Config, holder: ModelHolder, top: int) -> tuple[registry.Version, dict]:
    """The served version and GET /risk's answer: the `top` clients with reasons, and movers since the last
    one; a previous version that fails verification costs only the movers (`movers_note` says why)."""
    version, model = holder.get()
    before = registry.predecessor(config.prod_folder, version.number)
    previous, note = previous_model(config.prod_folder, before) if before else (None, None)
    frame = diagnostics.read_ingested(config)
    return version, {"model_version": version.label, "previous_version": before,
                     **risklist.rank(frame, model, top, previous), "movers_note": note}


def served_version(holder: ModelHolder) -> tuple[registry.Version | None, str | None]:
    """The version the API serves, or None and a problem (None when simply nothing is deployed yet)."""
    try:
        return holder.get()[0], None
    except ApiError as exc:
        return None, None if exc.kind == "no_model" else exc.detail
    except IntegrityError as exc:  # a corrupt `current` pointer
        logger.error("%s", exc)
        return None, "the deployed model failed verification; see the server log"


def ranking_or_reason(config: Config, holder: ModelHolder) -> tuple[dict | None, str | None]:
    """The ranked list for the page, or None and a sentence saying why there is none."""
    try:
        return risk_ranking(config, holder, TOP)[1], None
    except diagnostics.UnusableIngestedData as exc:
        return None, f"The ingested data breaks the data contract: {exc}"
    except MissingInputError:
        return None, "No ingested data yet: run ingestion.py or fullprocess.py."
    except (ApiError, IntegrityError) as exc:
        logger.error("dashboard: no ranking: %s", exc)
        return None, "A model version failed verification; see the server log."


def ledger_history(config: Config) -> tuple[list[dict], list[dict]]:
    """(every deployment oldest first, the last decisions newest first); empty before the first run."""
    if not config.ledger_path.is_file():  # a GET never creates the ledger
        return [], []
    with Ledger(config.ledger_path) as ledger:
        return ledger.deployments(), decisions.decisions(ledger, LAST_DECISIONS)


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


def page(config: Config, holder: ModelHolder) -> dict:
    """Everything the template shows; each part says why it is missing instead of failing the page."""
    version, problem = served_version(holder)
    ranking, no_ranking = ranking_or_reason(config, holder) if version else (None, None)
    deployments, recent = ledger_history(config)
    pointer = registry.current_number(config.prod_folder) if version else None
    return {"version": version, "manifest": version.manifest if version else {}, "problem": problem,
            "refused": pointer if version and pointer != version.number else None,
            "ranking": ranking, "no_ranking": no_ranking, "decisions": recent, "deployments": deployments,
            "chart": score_chart(deployments), "when": when, "number": number,
            "report": (config.model_folder / "reports" / "latest.html").is_file()}


def register(app: Flask, config: Config, holder: ModelHolder) -> None:
    @app.get("/")
    def dashboard() -> Response:
        answer = make_response(render_template("dashboard.html", **page(config, holder)))
        answer.headers["Content-Security-Policy"] = CSP
        answer.headers["Cache-Control"] = "no-store"
        return answer
