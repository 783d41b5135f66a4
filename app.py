"""The scoring API: predictions, the ranked risk list, scores, decisions, diagnostics, metrics, a dashboard.

Reads the production folder (through the verifying registry), the ledger, the test and the ingested data;
it never writes pipeline files. Run: python app.py [--config PATH] [--host 127.0.0.1] [--port 8000];
in production: gunicorn -c gunicorn.conf.py 'app:create_app()' (make serve).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

import diagnostics
import reporting
import scoring
from risk import auth, contract, dashboard, decisions, openapi, registry, risklist, serving
from risk.config import Config, load_config
from risk.errors import ConfigError, ContractError, IntegrityError, MissingInputError
from risk.ledger import Ledger
from risk.metrics import Metrics
from risk.serving import ApiError

logger = logging.getLogger(__name__)
MAX_TOP = 10_000


class ModelHolder:
    """The deployed model, reloaded (verify first, then swap) when the `current` pointer changes.
    `on_load(number)` runs after each load, so that the version gauge follows any route that loads a model."""

    def __init__(self, prod: Path, on_load: Callable[[int], None] = lambda number: None) -> None:
        self.prod = prod
        self.on_load = on_load
        self.lock = threading.Lock()
        self.loaded: tuple[registry.Version, object] | None = None
        self.refused: int | None = None  # a version that failed verification: not re-read on every request

    def get(self) -> tuple[registry.Version, object]:
        number = registry.current_number(self.prod)
        if number is None:
            raise ApiError(503, "no_model", "no model deployed yet: run fullprocess.py or deployment.py")
        with self.lock:
            stale = self.loaded is None or self.loaded[0].number != number
            if stale and not (self.loaded and number == self.refused):
                self._swap(number)
            return self.loaded

    def _swap(self, number: int) -> None:
        try:
            version = registry.verify(self.prod, number)
            model = registry.load_model(version)
        except (IntegrityError, MissingInputError) as exc:
            logger.error("refusing version %d: %s", number, exc)
            self.refused = number
            if self.loaded is None:
                raise ApiError(503, "model_unverified", f"version {number} failed verification") from None
            return
        self.loaded = (version, model)
        self.on_load(number)
        logger.info("serving model version %d", number)


def error_response(status: int, kind: str, detail: str) -> tuple[Response, int]:
    return jsonify({"error": kind, "detail": detail}), status


@contextlib.contextmanager
def reading_ledger(config: Config) -> Iterator[Ledger | None]:
    """The ledger for reading, or None before the first pipeline run (a GET never creates it)."""
    if not config.ledger_path.is_file():
        yield None
        return
    with Ledger(config.ledger_path) as ledger:
        yield ledger


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
    copies all it has read ahead on each of those reads (2 ms of a 2.4 MB CSV; README benchmarks);
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


@contextlib.contextmanager
def servers_own_data() -> Iterator[None]:
    """Around reading data the server holds (testdata.csv): if it breaks the contract the fault is not the
    request's, so the answer is 503 not_ready, naming the file, row and column, not 422."""
    try:
        yield
    except ContractError as exc:
        raise MissingInputError(str(exc)) from None


def wants_csv() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


def register_errors(app: Flask, config: Config) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> tuple[Response, int]:
        return error_response(exc.status, exc.kind, exc.detail)

    @app.errorhandler(ContractError)
    def contract_error(exc: ContractError) -> tuple[Response, int]:
        return error_response(422, "invalid_values", str(exc))

    @app.errorhandler(IntegrityError)
    def integrity_error(exc: IntegrityError) -> tuple[Response, int]:
        logger.error("%s", exc)
        return error_response(503, "model_unverified", "the deployed model failed verification; see the server log")

    @app.errorhandler(MissingInputError)
    def missing_input(exc: MissingInputError) -> tuple[Response, int]:
        return error_response(503, "not_ready", str(exc).replace(f"{config.root}{os.sep}", ""))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        kind = (exc.name or "error").lower().replace(" ", "_")
        answer, status = error_response(exc.code or 500, kind, exc.description or kind)
        if getattr(exc, "valid_methods", None):  # a 405 says which methods the route takes
            answer.headers["Allow"] = ", ".join(exc.valid_methods)
        return answer, status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal", "unexpected server error; see the server log")


def register_hooks(app: Flask, token: str | None, metrics: Metrics) -> None:
    @app.before_request
    def start() -> tuple[Response, int] | None:
        g.started = time.perf_counter()
        if token and request.path not in auth.OPEN_ROUTES and not auth.authorized(
                request.headers.get("Authorization"), token):
            answer, status = error_response(401, "unauthorized", "expected the header Authorization: Bearer <token>")
            answer.headers["WWW-Authenticate"] = "Bearer"
            return answer, status
        return None

    @app.after_request
    def count(answer: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.observe(route, request.method, answer.status_code, time.perf_counter() - g.get("started", 0))
        return answer


def model_routes(app: Flask, config: Config, holder: ModelHolder, metrics: Metrics) -> None:
    @app.post("/prediction")
    def prediction() -> Response:
        upload = request.mimetype == "multipart/form-data"
        body = b"" if upload else body_bytes()
        batch = serving.batch_from(request.mimetype, body, request.files if upload else {}, config)
        version, model = holder.get()
        threshold = float(version.manifest.get("threshold", 0.5))
        answer = Response(serving.encode(serving.answer(batch, model, threshold, version.label)),
                          mimetype="application/json", headers={"X-Model-Version": version.label})
        metrics.predictions.inc(len(batch.x))
        return answer

    @app.get("/risk")
    def risk() -> Response:
        version, ranked = dashboard.risk_ranking(config, holder, int_arg("top", 20, MAX_TOP))
        if wants_csv():
            return Response(risklist.as_csv(ranked["clients"]), mimetype="text/csv",
                            headers={"X-Model-Version": version.label})
        return jsonify(ranked)

    @app.get("/scoring")
    def scoring_route() -> Response:
        version, model = holder.get()
        with servers_own_data():
            frame = scoring.read_labelled_csv(scoring.testdata_file(config))
        return jsonify({"f1": scoring.f1_of(model, frame), "rows": len(frame), "model_version": version.label})

    @app.get("/summarystats")
    def summarystats() -> Response:
        raw = diagnostics.read_ingested(config)
        return jsonify(diagnostics.summary_statistics(contract.validate_frame(raw, "finaldata.csv")))

    versions: dict[str, tuple[str, float]] = {}  # latest-version lookups of this worker (a GET writes no file)

    @app.get("/diagnostics")
    def diagnostics_route() -> Response:
        holder.get()
        with servers_own_data():
            return jsonify(diagnostics.diagnose_online(config, versions))

    @app.get("/ready")
    def ready() -> Response:
        version, _ = holder.get()
        return jsonify({"status": "ready", "model_version": version.label})


def ops_routes(app: Flask, config: Config, holder: ModelHolder, metrics: Metrics) -> None:
    @app.get("/health")
    def health() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/metrics")
    def metrics_route() -> Response:
        return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4")

    @app.get("/openapi.json")
    def openapi_route() -> Response:
        return jsonify(openapi.spec())

    @app.get("/decisions/latest")
    def latest_decision() -> Response:
        with reading_ledger(config) as ledger:
            record = decisions.latest_decision(ledger) if ledger else None
        if record is None:
            raise ApiError(404, "no_decision", "no drift decision has been recorded yet")
        return jsonify(record)

    @app.get("/decisions")
    def decision_list() -> Response:
        limit = int_arg("limit", 20, decisions.MAX_LIMIT)
        with reading_ledger(config) as ledger:
            return jsonify({"decisions": decisions.decisions(ledger, limit) if ledger else []})


def report_routes(app: Flask, config: Config) -> None:
    """The model report as PDF and as self-contained HTML: the current version's (so that a rollback shows
    the report of the version it went back to), else the newest written; 404 before one."""
    def report(kind: str, mimetype: str) -> Response:
        number = registry.current_number(config.prod_folder)
        paths = reporting.report_paths(config, str(number))
        path = paths[kind] if number is not None and paths[kind].is_file() else paths[f"latest_{kind}"]
        if not path.is_file():
            raise ApiError(404, "no_report", "no report written yet: run reporting.py or fullprocess.py")
        answer = Response(path.read_bytes(), mimetype=mimetype, headers={"Cache-Control": "no-store"})
        if mimetype == "text/html":
            answer.headers["Content-Security-Policy"] = dashboard.CSP
        return answer

    @app.get("/reports/latest.pdf")
    def report_pdf() -> Response:
        return report("pdf", "application/pdf")

    @app.get("/reports/latest.html")
    def report_html() -> Response:
        return report("html", "text/html")


def create_app(config: Config | str | Path | None = None) -> Flask:
    """Build the app; `config` is a Config, a path to config.json, or None ($RISK_CONFIG or the default)."""
    if not isinstance(config, Config):
        config = load_config(config if config is not None else os.environ.get("RISK_CONFIG"))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    app.json.sort_keys = False
    metrics = Metrics(config.ledger_path)
    holder = ModelHolder(config.prod_folder, metrics.model_version.set)
    app.extensions["risk"] = {"config": config, "models": holder, "metrics": metrics}
    register_errors(app, config)
    register_hooks(app, auth.load_token(config), metrics)
    model_routes(app, config, holder, metrics)
    ops_routes(app, config, holder, metrics)
    report_routes(app, config)
    dashboard.register(app, config, holder)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the scoring API (dev server; gunicorn in production).")
    parser.add_argument("--config", metavar="PATH", help="config.json to use")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    try:
        config = load_config(args.config)
        auth.check_bind(args.host, auth.load_token(config))
        app = create_app(config)
    except ConfigError as exc:
        logger.error("%s", exc)
        return 1
    app.run(host=args.host, port=args.port, debug=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
