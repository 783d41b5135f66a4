"""The API's routes as one Flask blueprint: parse the request, call the read side, answer JSON.

Each route reads through risk/readside.py (or scores a posted batch with risk/serving.py); errors are JSON
`{"error": kind, "detail": what was expected}` with the right status, never a stack trace. app.py registers
this blueprint and the dashboard's; `Served` (app.extensions["risk"]) carries what the routes share.
"""
from __future__ import annotations

import logging
import os
import time
from collections import namedtuple

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from risk import auth, contactlog, decisions, openapi, performance, readside, risklist, serving
from risk.dashboard import REPORT_CSP
from risk.errors import ApiError, ContractError, IntegrityError, MissingInputError

logger = logging.getLogger(__name__)
MAX_TOP = 10_000
MAX_CONTACTS_SHOWN = 1000  # GET /risk/contacts?limit=N
api = Blueprint("api", __name__)
# What every route shares, built once by create_app: the Config, the ModelHolder, the Metrics, the API token
# (None: open), and this worker's cache of latest package versions (a GET writes no file).
Served = namedtuple("Served", "config models metrics token versions")


def served() -> Served:
    return current_app.extensions["risk"]


def error_response(status: int, kind: str, detail: str) -> tuple[Response, int]:
    return jsonify({"error": kind, "detail": detail}), status


def int_arg(name: str, default: int, high: int) -> int:
    """A query parameter that must be an integer from 1 to `high`; 400 naming it otherwise."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= high:
        raise ApiError(400, "bad_query", f"{name} must be an integer from 1 to {high}, got {raw[:40]!r}")
    return int(raw)


def body_bytes() -> bytes:
    """The request body, with MAX_CONTENT_LENGTH held to whatever the framing.

    With a Content-Length it is read in one call: werkzeug's get_data reads 64 KiB at a time, and gunicorn
    copies all it has read ahead on each of those reads (2 ms of a 2.4 MB CSV; docs/benchmarks.md);
    request.stream refuses a length over the limit, and a body cut short is a 400. A chunked body is read
    to one byte past the limit: werkzeug would hand back the first MAX_CONTENT_LENGTH bytes, cut mid-row."""
    length, limit = request.content_length, request.max_content_length
    if length is None and limit is not None and request.environ.get("wsgi.input_terminated"):
        body = request.environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            raise RequestEntityTooLarge(f"the body is over max_request_bytes ({limit} bytes)")
        return body
    if not length:
        return request.get_data(cache=False)
    body = request.stream.read(length)
    if len(body) != length:
        raise BadRequest(f"the body ended after {len(body)} of the {length} bytes its Content-Length announced")
    return body


def wants_csv() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


# ---- errors and the per-request hooks (for every blueprint of the app) ----------------------------------
@api.app_errorhandler(ApiError)
def api_error(exc: ApiError) -> tuple[Response, int]:
    return error_response(exc.status, exc.kind, exc.detail)


@api.app_errorhandler(ContractError)
def contract_error(exc: ContractError) -> tuple[Response, int]:
    return error_response(422, "invalid_values", str(exc))


@api.app_errorhandler(IntegrityError)
def integrity_error(exc: IntegrityError) -> tuple[Response, int]:
    logger.error("%s", exc)
    return error_response(503, "model_unverified", "the deployed model failed verification; see the server log")


@api.app_errorhandler(MissingInputError)
def missing_input(exc: MissingInputError) -> tuple[Response, int]:
    return error_response(503, "not_ready", str(exc).replace(f"{served().config.root}{os.sep}", ""))


@api.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[Response, int]:
    kind = (exc.name or "error").lower().replace(" ", "_")
    answer, status = error_response(exc.code or 500, kind, exc.description or kind)
    if getattr(exc, "valid_methods", None):  # a 405 says which methods the route takes
        answer.headers["Allow"] = ", ".join(exc.valid_methods)
    return answer, status


@api.app_errorhandler(Exception)
def unexpected(exc: Exception) -> tuple[Response, int]:
    logger.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(500, "internal", "unexpected server error; see the server log")


@api.before_app_request
def start() -> tuple[Response, int] | None:
    g.started = time.perf_counter()
    token = served().token
    if token and request.path not in auth.OPEN_ROUTES and not auth.authorized(
            request.headers.get("Authorization"), token):
        answer, status = error_response(401, "unauthorized", "expected the header Authorization: Bearer <token>")
        answer.headers["WWW-Authenticate"] = "Bearer"
        return answer, status
    return None


@api.after_app_request
def count(answer: Response) -> Response:
    route = request.url_rule.rule if request.url_rule else "unmatched"
    served().metrics.observe(route, request.method, answer.status_code, time.perf_counter() - g.get("started", 0))
    return answer


# ---- the model --------------------------------------------------------------------------------------------
@api.post("/prediction")
def prediction() -> Response:
    state = served()
    upload = request.mimetype == "multipart/form-data"
    body = b"" if upload else body_bytes()
    batch = serving.batch_from(request.mimetype, body, request.files if upload else {}, state.config)
    version, model = state.models.get()
    threshold = performance.threshold_of(version.manifest)
    answer = Response(serving.encode(serving.answer(batch, model, threshold, version.label)),
                      mimetype="application/json", headers={"X-Model-Version": version.label})
    state.metrics.predictions.inc(len(batch.x))
    return answer


@api.get("/risk")
def risk() -> Response:
    state = served()
    top = int_arg("top", readside.list_size(state.config), MAX_TOP)  # by default the list: to call and controls
    version, ranked = readside.risk_ranking(state.config, state.models, top)
    if wants_csv():
        return Response(risklist.as_csv(ranked["clients"]), mimetype="text/csv",
                        headers={"X-Model-Version": version.label})
    return jsonify(ranked)


@api.post("/risk/contacts")
def record_contacts() -> tuple[Response, int]:
    """Contacts in (JSON {"contacts": [...]} or a CSV body), all or nothing: 201 with what was added, 200 when
    every contact was recorded before."""
    found, first_line = contactlog.contacts_of_body(request.mimetype, body_bytes())
    counts = contactlog.record_request(served().config, found, first_line)
    return jsonify(counts), 201 if counts["added"] else 200


@api.get("/risk/contacts")
def contacts_list() -> Response:
    """The newest contacts recorded, newest first (?limit=N, default 50), and how many there are."""
    return jsonify(readside.latest_contacts(served().config, int_arg("limit", 50, MAX_CONTACTS_SHOWN)))


@api.get("/risk/outcomes")
def risk_outcomes() -> Response:
    """The recorded call lists, newest first, with their hit rate against the base rate."""
    return jsonify(readside.call_list_outcomes(served().config, int_arg("limit", 12, 100)))


@api.get("/risk/effect")
def risk_effect() -> Response:
    """The measured effect of calling: called against the holdout, pooled and for the newest judged lists."""
    return jsonify(readside.effect_of_calling(served().config, int_arg("limit", 12, 100)))


@api.get("/risk/experiment.csv")
def risk_experiment() -> Response:
    """One row per listed client per recorded list, streamed: what an uplift model is trained on."""
    return Response(readside.experiment_stream(served().config), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=experiment.csv"})


@api.get("/scoring")
def scoring_route() -> Response:
    return jsonify(readside.test_score(served().config, served().models))


@api.get("/summarystats")
def summarystats() -> Response:
    return jsonify(readside.summary_statistics(served().config))


@api.get("/diagnostics")
def diagnostics_route() -> Response:
    state = served()
    return jsonify(readside.diagnostics_now(state.config, state.models, state.versions))


@api.get("/ready")
def ready() -> Response:
    """200 while the version `current` names is the one served; 503 naming it and why while it is refused."""
    readside.require_readable_ledger(served().config)
    version, _ = served().models.get()
    refused = served().models.refused_now()
    if refused is not None:
        number, why, serving = refused
        raise ApiError(503, "model_refused", f"version {number} refused: {why}; still serving version {serving}")
    return jsonify({"status": "ready", "model_version": version.label})


# ---- operations ---------------------------------------------------------------------------------------
@api.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@api.get("/metrics")
def metrics_route() -> Response:
    version, _ = readside.served_version(served().models)
    refused = served().models.refused_now()
    exposition = served().metrics.exposition(model_ready=version is not None, refused=refused and refused[0],
                                             calibration=readside.calibration_alert(served().config))
    return Response(exposition, mimetype="text/plain; version=0.0.4")


@api.get("/openapi.json")
def openapi_route() -> Response:
    return jsonify(openapi.spec())


@api.get("/decisions/latest")
def latest_decision() -> Response:
    record = readside.latest_decision(served().config)
    if record is None:
        raise ApiError(404, "no_decision", "no drift decision has been recorded yet")
    return jsonify(record)


@api.get("/decisions")
def decision_list() -> Response:
    limit = int_arg("limit", 20, decisions.MAX_LIMIT)
    return jsonify({"decisions": readside.decision_list(served().config, limit)})


# ---- the model report ---------------------------------------------------------------------------------
def report(kind: str, mimetype: str) -> Response:
    path = readside.report_file(served().config, kind)
    answer = Response(path.read_bytes(), mimetype=mimetype, headers={"Cache-Control": "no-store"})
    if mimetype == "text/html":
        answer.headers["Content-Security-Policy"] = REPORT_CSP
    return answer


@api.get("/reports/latest.pdf")
def report_pdf() -> Response:
    return report("pdf", "application/pdf")


@api.get("/reports/latest.html")
def report_html() -> Response:
    return report("html", "text/html")
