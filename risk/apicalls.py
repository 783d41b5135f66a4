"""Call every endpoint of the running API and write the answers together to apireturns.txt.

Reads the API (default: `api_url` in config.json, or --url) and the API token as the server does
($RISK_API_TOKEN, else `api_token_file`). Writes apireturns.txt to the model folder. Exits 1 with one line
when the server is down or any call got an error status.
Run: python apicalls.py [--config PATH] [--url URL]
"""
from __future__ import annotations

import json
import logging
import os

import requests

from risk import auth, catalog
from risk.config import Config
from risk.errors import RiskError
from risk.files import atomic_write_text

logger = logging.getLogger(__name__)
TIMEOUT = (3, 300)  # connect, read (diagnostics times a training run)


class ServerDown(RiskError):
    """The API did not answer at all."""


def calls(config: Config) -> list[tuple[str, str, dict | None]]:
    dataset = os.path.relpath(config.testdata_path, config.root)
    return [
        ("POST", "/prediction", {"dataset_path": dataset}),
        ("GET", "/scoring", None),
        ("GET", "/summarystats", None),
        ("GET", "/diagnostics", None),
    ]


def call(session: requests.Session, url: str, method: str, route: str, body: dict | None) -> dict:
    try:
        answer = session.request(method, url + route, json=body, timeout=TIMEOUT)
    except requests.ConnectionError:
        raise ServerDown(f"{url}: the API is not reachable (is `make serve` running?)") from None
    except requests.Timeout:
        raise ServerDown(f"{url}{route}: no answer within {TIMEOUT[1]} s") from None
    except requests.RequestException as exc:  # e.g. the connection dropped mid-answer
        raise ServerDown(f"{url}{route}: no complete answer ({type(exc).__name__})") from None
    try:
        payload = answer.json()
    except ValueError:
        payload = {"non_json_body": answer.text[:200]}
    return {"request": f"{method} {route}", "status": answer.status_code, "body": payload}


def auth_headers(config: Config) -> dict[str, str]:
    """The bearer header when a token is configured, from the server's own loader, so that a guarded API
    answers instead of a 401; the token goes in no log line and no file."""
    token = auth.load_token(config)
    return {"Authorization": f"Bearer {token}"} if token else {}


def run_apicalls(config: Config, url: str | None = None) -> list[dict]:
    """Call each endpoint; write all answers to apireturns.txt (only when every call got an answer)."""
    url = (url or config.api_url).rstrip("/")
    with requests.Session() as session:
        session.headers.update(auth_headers(config))
        answers = [call(session, url, *spec) for spec in calls(config)]
    atomic_write_text(config.model_folder / catalog.APIRETURNS, json.dumps(answers, indent=2) + "\n")
    failed = [a["request"] for a in answers if a["status"] >= 400]
    logger.info("apicalls: %d call(s) to %s, %d failed %s -> %s", len(answers), url, len(failed), failed or "",
                config.model_folder / catalog.APIRETURNS)
    return answers
