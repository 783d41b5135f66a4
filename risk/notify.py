"""Telling someone: a webhook message on the events an operator acts on, and a heartbeat for every tick.

Webhook (`alert_webhook_url`, or `$RISK_ALERT_WEBHOOK_URL`, which wins): one JSON POST per event - a failed
run, a DRIFT decision, a deployment, a rollback, a recovery - with `event`, `severity`, `summary` (one
sentence), `time`, `run_id`, `model_version`, `details` and `text` (what Slack- and Mattermost-style incoming
webhooks show). While a condition lasts, an event kind is sent at most once per `alert_repeat_hours`: the
times are kept in ingesteddata/notified.json; a good run clears `failed`, a decision without drift clears
`drift`, and a deployment, rollback or recovery of another version is a new condition.

Heartbeat (`heartbeat_url`, the healthchecks.io convention): `<url>/start` when a run with work starts,
`<url>` when any run ends well (idle ticks too, so silence means cron stopped), `<url>/fail` when it fails.

Both use the standard library (imported only when a URL is set), time out after 2 s, and never fail the tick:
a failure is one log line naming the host only, since such URLs carry their token in the path.
"""
from __future__ import annotations

import json
import logging
import os
import time

from risk import catalog
from risk.config import Config
from risk.files import atomic_write_text

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 2.0
WEBHOOK_ENV = "RISK_ALERT_WEBHOOK_URL"
SEVERITY = {"failed": "critical", "drift": "warning", "deployment": "info", "rollback": "warning",
            "recovery": "warning"}
CLEARS = {"ok": ("failed",), "no_drift": ("drift",)}  # what ends a condition


def where(url: str) -> str:
    """The URL as a log line may show it: scheme and host, never the path, query or credentials."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number: the reason the send failed, not a second failure
        port = ":?"
    return f"{parts.scheme}://{parts.hostname or '?'}{port}/..."


def _send(url: str, body: bytes | None, what: str) -> bool:
    import http.client  # here, not at the top: the idle tick without a URL imports none of it
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (the config check allows only http and https URLs)
        url, data=body, method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json", "User-Agent": "risk-pipeline"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            answer.read(1024)
        return True
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:  # HTTPException: an
        # answer that is not HTTP (a wrong port), cut short or with overlong lines; it is no OSError
        reason = getattr(exc, "reason", None) or getattr(exc, "code", None) or type(exc).__name__
        logger.warning("%s to %s failed (%s); the run goes on", what, where(url), reason)
        return False


def webhook_url(config: Config) -> str | None:
    """$RISK_ALERT_WEBHOOK_URL, which wins, or the config's; None (and one warning) for anything but http(s)."""
    url = os.environ.get(WEBHOOK_ENV) or config.alert_webhook_url
    if url and not url.startswith(("http://", "https://")):
        logger.warning("$%s is not an http(s) URL; no webhook message is sent", WEBHOOK_ENV)
        return None
    return url


def _state_path(config: Config):  # -> Path
    return config.output_folder / catalog.NOTIFIED


def _state(config: Config) -> dict:
    try:
        return json.loads(_state_path(config).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def clear(config: Config, outcome: str) -> None:
    """A condition has ended (`ok`: a good run; `no_drift`: a decision without drift): its next event is news."""
    state = _state(config)
    kept = {k: v for k, v in state.items() if k.split(":")[0] not in CLEARS.get(outcome, ())}
    if kept != state:
        atomic_write_text(_state_path(config), json.dumps(kept) + "\n")


def notify(config: Config, event: str, summary: str, *, run_id: int | None = None,
           model_version: int | str | None = None, details: dict | None = None, subject: str = "") -> bool:
    """POST one message for `event` unless the same condition was sent within alert_repeat_hours; True if sent."""
    url = webhook_url(config)
    if not url:
        return False
    key, now = f"{event}:{subject}" if subject else event, time.time()
    state = _state(config)
    if now - state.get(key, 0.0) < config.alert_repeat_hours * 3600:
        logger.info("notify: %s already sent within %g h; not repeated", key, config.alert_repeat_hours)
        return False
    severity = SEVERITY.get(event, "info")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    message = {"event": event, "severity": severity, "summary": summary, "time": stamp, "run_id": run_id,
               "model_version": None if model_version is None else str(model_version), "details": details or {},
               "text": f"[{severity}] risk pipeline: {summary}"}
    sent = _send(url, json.dumps(message, default=str).encode(), f"notify {event}")
    if sent:
        atomic_write_text(_state_path(config), json.dumps({**state, key: now}) + "\n")
    return sent


def heartbeat(config: Config, signal: str = "", wait: bool = True) -> bool:
    """Ping `heartbeat_url` (`signal`: "" for a good end, "start" or "fail"); False when unset or it failed.

    `wait=False` (the idle tick) pings from a new process (`python -m risk.notify URL`) and returns at once:
    the tick pays neither the import of urllib (30-50 ms, more than the rest of the idle tick) nor the server's
    answer. (posix_spawn, not fork: a forked child makes the exiting tick copy every page it touches.)"""
    if not config.heartbeat_url:
        return False
    url, what = config.heartbeat_url + (f"/{signal}" if signal else ""), f"heartbeat {signal or 'ok'}"
    if wait or not hasattr(os, "posix_spawn"):
        return _send(url, None, what)
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    try:
        os.posix_spawn(sys.executable, [sys.executable, "-m", "risk.notify", url], env)
    except OSError as exc:
        logger.warning("%s to %s not sent (%s); the run goes on", what, where(url), exc.strerror)
        return False
    return True


def main(argv: list[str]) -> int:
    """`python -m risk.notify URL`: one heartbeat ping (the idle tick's, sent from this process)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    return 0 if _send(argv[0], None, "heartbeat ok") else 1


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
