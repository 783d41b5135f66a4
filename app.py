"""The scoring API: predictions, scores, summary statistics and diagnostics of the deployed model, as JSON.

Reads the production folder (through the verifying registry), the test data and the ingested data; it never
writes pipeline files. Run: python app.py [--config PATH] [--host 127.0.0.1] [--port 8000];
in production: gunicorn -w 2 -b 127.0.0.1:8000 'app:create_app()' (make serve).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import threading
from pathlib import Path

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

import diagnostics
import scoring
from risk import cli, contract, registry
from risk.config import Config, load_config
from risk.errors import ConfigError, ContractError, IntegrityError, MissingInputError

logger = logging.getLogger(__name__)
MAX_PATH_CHARS = 4096


class ApiError(Exception):
    """An error answer: HTTP status, a short kind and what was expected."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail


class ModelHolder:
    """The deployed model, reloaded (verify first, then swap) when the `current` pointer changes."""

    def __init__(self, prod: Path) -> None:
        self.prod = prod
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
        logger.info("serving model version %d", number)


def error_response(status: int, kind: str, detail: str) -> tuple[Response, int]:
    return jsonify({"error": kind, "detail": detail}), status


def parse_json_object() -> dict:
    """The request body as a JSON object, or an ApiError (415 wrong type, 400 malformed)."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "expected Content-Type: application/json")
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_body", "expected a JSON object with 'records' or 'dataset_path'")
    return body


def confined_csv(config: Config, candidate: Path) -> Path | None:
    """The resolved CSV file inside a data folder, or None (also for names the OS refuses: too long, loops)."""
    try:
        path = candidate.resolve()
        inside = any(path.is_relative_to(folder) for folder in config.data_folders())
        return path if inside and path.suffix.lower() == ".csv" and path.is_file() else None
    except (OSError, RuntimeError):  # ENAMETOOLONG from is_file; RuntimeError: symlink loop (Python 3.11)
        return None


def resolve_dataset(config: Config, value: object) -> Path:
    """A CSV path confined to the data folders; anything else is one 404 that says nothing of existence."""
    if not isinstance(value, str) or not value or len(value) > MAX_PATH_CHARS or "\0" in value:
        raise ApiError(400, "bad_body", "dataset_path must be a non-empty string path")
    path = confined_csv(config, config.root / value)
    if path is None:
        folders = ", ".join(folder.name for folder in config.data_folders())
        raise ApiError(404, "dataset_not_found", f"dataset_path must name a CSV file inside one of: {folders}")
    return path


def features_from(config: Config, body: dict):  # -> np.ndarray (rows x contract.FEATURES)
    if "records" in body:
        return contract.validate_records(body["records"])
    if "dataset_path" in body:
        path = resolve_dataset(config, body["dataset_path"])
        return contract.matrix(contract.read_csv(path, labelled=False, source=body["dataset_path"]))
    raise ApiError(400, "bad_body", "expected a JSON object with 'records' or 'dataset_path'")


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
        return error_response(exc.code or 500, kind, exc.description or kind)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal", "unexpected server error; see the server log")


def register_routes(app: Flask, config: Config, holder: ModelHolder) -> None:
    @app.post("/prediction")
    def prediction() -> Response:
        frame = features_from(config, parse_json_object())
        version, model = holder.get()
        answer = jsonify({"predictions": [int(p) for p in model.predict(frame)], "model_version": version.label})
        answer.headers["X-Model-Version"] = version.label
        return answer

    @app.get("/scoring")
    def scoring_route() -> Response:
        version, model = holder.get()
        frame = scoring.read_labelled_csv(scoring.testdata_file(config))
        return jsonify({"f1": scoring.f1_of(model, frame), "rows": len(frame), "model_version": version.label})

    @app.get("/summarystats")
    def summarystats() -> Response:
        raw = diagnostics.read_ingested(config)
        return jsonify(diagnostics.summary_statistics(contract.validate_frame(raw, "finaldata.csv")))

    @app.get("/diagnostics")
    def diagnostics_route() -> Response:
        holder.get()
        return jsonify(diagnostics.diagnose(config))

    @app.get("/health")
    def health() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/ready")
    def ready() -> Response:
        version, _ = holder.get()
        return jsonify({"status": "ready", "model_version": version.label})


def create_app(config: Config | str | Path | None = None) -> Flask:
    """Build the app; `config` is a Config, a path to config.json, or None ($RISK_CONFIG or the default)."""
    if not isinstance(config, Config):
        config = load_config(config if config is not None else os.environ.get("RISK_CONFIG"))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    app.json.sort_keys = False
    holder = ModelHolder(config.prod_folder)
    app.extensions["risk"] = {"config": config, "models": holder}
    register_errors(app, config)
    register_routes(app, config, holder)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the scoring API (dev server; gunicorn in production).")
    parser.add_argument("--config", metavar="PATH", help="config.json to use")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    cli.setup_logging(args.verbose)
    try:
        app = create_app(args.config)
    except ConfigError as exc:
        logger.error("%s", exc)
        return 1
    app.run(host=args.host, port=args.port, debug=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
