"""The scoring API: predictions, the ranked risk list, scores, decisions, diagnostics, metrics, a dashboard.

Reads the production folder (through the verifying registry), the ledger, the test and the ingested data;
it never writes pipeline files. Run: python app.py [--config PATH] [--host 127.0.0.1] [--port 8000];
in production: gunicorn -c gunicorn.conf.py 'app:create_app()' (make serve). The routes are blueprints
(risk/routes.py, risk/dashboard.py) reading through one read side (risk/readside.py).
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from flask import Flask

from risk import auth, dashboard, routes
from risk.config import Config, load_config
from risk.errors import ConfigError
from risk.metrics import Metrics
from risk.readside import ModelHolder

logger = logging.getLogger(__name__)


def create_app(config: Config | str | Path | None = None) -> Flask:
    """Build the app; `config` is a Config, a path to config.json, or None ($RISK_CONFIG or the default)."""
    if not isinstance(config, Config):
        config = load_config(config if config is not None else os.environ.get("RISK_CONFIG"))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    app.json.sort_keys = False
    metrics = Metrics(config.ledger_path)
    holder = ModelHolder(config.prod_folder, metrics.model_version.set)
    app.extensions["risk"] = routes.Served(config, holder, metrics, auth.load_token(config), {})
    app.register_blueprint(routes.api)
    app.register_blueprint(dashboard.page_blueprint)
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
