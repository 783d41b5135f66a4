"""Webhook messages and heartbeats, against a real HTTP server on 127.0.0.1: sent on the events an operator acts
on, not repeated while a condition lasts, bounded by a 2 s timeout, never failing the tick, never leaking a token."""
from __future__ import annotations

import contextlib
import http.server
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from test_fullprocess import last_run

from risk import deployment, notify, pipeline, training
from risk.config import Config, load_config
from risk.errors import ConfigError, IntegrityError, RiskError

pytestmark = pytest.mark.slow  # real HTTP servers and pipeline runs
TOKEN = "T000-SECRET-TOKEN"


class Receiver(http.server.ThreadingHTTPServer):
    """Records every request; answers with `status`, or hangs for `hang` seconds first."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str, dict | None]] = []
        self.status, self.hang = 200, 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def events(self) -> list[str]:
        return [body["event"] for method, path, body in self.requests if method == "POST"]

    def pings(self) -> list[str]:
        return [path for method, path, body in self.requests if method == "GET"]


class Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, self.path, body))
        time.sleep(self.server.hang)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that gave up (its timeout)
            self.send_response(self.server.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def with_urls(config: Config, receiver: Receiver, **more: object) -> Config:
    data = json.loads(config.config_path.read_text(encoding="utf-8"))
    data.update({"alert_webhook_url": f"{receiver.url}/hooks/{TOKEN}", "heartbeat_url": f"{receiver.url}/ping/abc",
                 **more})
    config.config_path.write_text(json.dumps(data), encoding="utf-8")
    return load_config(config.config_path)


def test_a_first_deployment_is_announced_and_every_tick_beats(config: Config, receiver: Receiver) -> None:
    config = with_urls(config, receiver)
    pipeline.run_fullprocess(config)
    assert receiver.events() == ["deployment"]
    message = receiver.requests[1][2]
    assert message["severity"] == "info"
    assert message["model_version"] == "1"
    assert message["text"].startswith("[info] risk pipeline: version 1 deployed after a BOOTSTRAP decision")
    assert set(message) == {"event", "severity", "summary", "time", "run_id", "model_version", "details", "text"}
    pipeline.run_fullprocess(config)  # idle: a heartbeat from a forked child, no message
    deadline = time.monotonic() + 10
    while len(receiver.pings()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.pings() == ["/ping/abc/start", "/ping/abc", "/ping/abc"]
    assert receiver.events() == ["deployment"]


def test_a_failure_is_sent_once_while_it_lasts_and_again_after_a_good_run(
        config: Config, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    config = with_urls(config, receiver)

    def broken(*args: object) -> None:
        raise RiskError("training broke")

    monkeypatch.setattr(training, "run_training", broken)
    for _ in range(2):
        with pytest.raises(RiskError, match="training broke"):
            pipeline.run_fullprocess(config)
    assert receiver.events() == ["failed"]  # the second failure is the same condition, within alert_repeat_hours
    failed = receiver.requests[1][2]
    assert (failed["severity"], failed["details"]["error"]) == ("critical", "RiskError: training broke")
    assert receiver.pings() == ["/ping/abc/start", "/ping/abc/fail", "/ping/abc/start", "/ping/abc/fail"]
    monkeypatch.undo()
    pipeline.run_fullprocess(config)  # a good run ends the condition
    monkeypatch.setattr(pipeline, "act", broken)
    (config.input_folder / "more.csv").write_bytes((config.input_folder / "dataset1.csv").read_bytes() + b"z,1,2,3,0\n")
    with pytest.raises(RiskError):
        pipeline.run_fullprocess(config)
    assert receiver.events() == ["failed", "deployment", "failed"]


def test_a_webhook_that_hangs_or_fails_never_fails_the_tick_or_leaks_its_token(
        config: Config, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    config = with_urls(config, receiver)
    receiver.hang = 3.0  # longer than the 2 s timeout
    with caplog.at_level(logging.WARNING):
        started = time.monotonic()
        assert notify.notify(config, "rollback", "a test message") is False
        assert time.monotonic() - started < 2.9  # gave up at the timeout, did not wait for the answer
    receiver.hang, receiver.status = 0.0, 500
    with caplog.at_level(logging.WARNING):
        assert notify.notify(config, "rollback", "a test message", subject="2") is False
        pipeline.run_fullprocess(config)  # the tick itself goes on: bootstrap and deploy
    assert (config.prod_folder / "current").is_file()
    lines = [r.getMessage() for r in caplog.records if r.name == "risk.notify"]
    assert len(lines) >= 3
    assert all(TOKEN not in line and "/hooks" not in line and "127.0.0.1" in line for line in lines)
    assert all(TOKEN not in json.dumps(body) for _, _, body in receiver.requests)


def test_the_environment_wins_and_a_rollback_is_announced(deployed: Config, receiver: Receiver,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = with_urls(deployed, receiver, alert_webhook_url="http://127.0.0.1:9/nowhere")
    monkeypatch.setenv(notify.WEBHOOK_ENV, f"{receiver.url}/from-env")
    training.run_training(config)
    from risk import scoring

    scoring.run_scoring(config)
    deployment.run_deployment(config)  # version 2, by hand: no message (a hand deploy is its operator's news)
    deployment.run_rollback(config, 1, "a test")
    assert receiver.events() == ["rollback"]
    method, path, message = receiver.requests[-1]
    assert (method, path) == ("POST", "/from-env")
    assert message["details"] == {"from": 2, "to": 1, "reason": "a test", "actor": deployment.actor()}


@pytest.mark.parametrize(("key", "value", "said"), [
    ("alert_webhook_url", f"hooks.example/{TOKEN}", "must be an http(s) URL (value not shown"),
    ("heartbeat_url", 7, "must be an http(s) URL"),
    ("alert_repeat_hours", 0, "must be a number above 0, got 0"),
    ("alert_repeat_hours", "4", "must be a number above 0, got '4'"),
])
def test_bad_alert_keys_are_named_and_a_token_is_not_echoed(config: Config, key: str, value: object,
                                                             said: str) -> None:
    data = json.loads(config.config_path.read_text(encoding="utf-8"))
    config.config_path.write_text(json.dumps({**data, key: value}), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"key '{key}' {said}")) as error:
        load_config(config.config_path)
    assert TOKEN not in str(error.value)


def test_nothing_is_sent_without_urls(config: Config) -> None:
    with contextlib.suppress(Exception):
        assert notify.notify(config, "failed", "x") is False
    assert notify.heartbeat(config) is False


def test_a_drift_decision_and_its_deployment_are_each_one_message(config: Config, receiver: Receiver) -> None:
    from conftest import write_frame
    from test_fullprocess import judged_rows

    config = with_urls(config, receiver)
    pipeline.run_fullprocess(config)  # bootstrap: version 1
    write_frame(judged_rows(config, seed=1, agree=False), config.input_folder / "dataset5.csv")
    assert pipeline.run_fullprocess(config)["action"] == "deployed version 2"
    assert receiver.events() == ["deployment", "drift", "deployment"]
    drift, deployed = (body for method, path, body in receiver.requests[-3:] if method == "POST")
    assert (drift["severity"], drift["model_version"]) == ("warning", "2")
    assert drift["details"]["files"] == ["dataset5.csv"]
    assert drift["summary"].startswith("drift found (")
    assert "F1 dropped by" in drift["summary"]
    assert (deployed["model_version"], deployed["details"]["verdict"]) == ("2", "DRIFT")


@pytest.fixture
def not_http() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that answers every connection with a line that is not HTTP (a wrong port)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                with connection:
                    connection.recv(65536)
                    connection.sendall(b"+OK not http\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_an_answer_that_is_not_http_never_fails_the_tick(config: Config, not_http: str,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    data = json.loads(config.config_path.read_text(encoding="utf-8"))
    data.update(alert_webhook_url=f"{not_http}/hooks/{TOKEN}", heartbeat_url=f"{not_http}/ping/{TOKEN}")
    config.config_path.write_text(json.dumps(data), encoding="utf-8")
    config = load_config(config.config_path)

    def broken(*args: object) -> None:
        raise RiskError("training broke")

    monkeypatch.setattr(training, "run_training", broken)
    with caplog.at_level(logging.WARNING), pytest.raises(RiskError, match="training broke"):
        pipeline.run_fullprocess(config)  # the run's own failure, not the webhook's (http.client.BadStatusLine)
    assert notify.notify(config, "rollback", "a test message") is False
    assert notify.heartbeat(config) is False
    assert notify.notify(config._replace(alert_webhook_url="http://127.0.0.1:port/x"), "rollback", "x") is False
    lines = [r.getMessage() for r in caplog.records if r.name == "risk.notify"]
    assert len(lines) == 6  # start, failed, fail; then the three above
    assert all(TOKEN not in line and "BadStatusLine" in line for line in lines[:5])


def test_a_failed_idle_check_is_announced_and_the_message_names_no_version_it_cannot_read(
        deployed: Config, receiver: Receiver) -> None:
    """The idle check fails (a corrupt `current` pointer): the message and /fail are sent, each within its
    2 s timeout while the receiver hangs, and the run's own error is what the tick raises."""
    config = with_urls(deployed, receiver)
    (config.prod_folder / "current").write_text("garbage\n", encoding="utf-8")
    receiver.hang = 3.0
    started = time.monotonic()
    with pytest.raises(IntegrityError, match="expected a version number"):
        pipeline.run_fullprocess(config)
    assert time.monotonic() - started < 2 * notify.TIMEOUT_SECONDS + 1.5
    assert [(method, path) for method, path, body in receiver.requests] == [
        ("POST", f"/hooks/{TOKEN}"), ("GET", "/ping/abc/fail")]
    message = receiver.requests[0][2]
    assert (message["event"], message["run_id"], message["model_version"]) == ("failed", None, None)
    assert message["details"]["error"].startswith("IntegrityError:")


def test_a_failed_run_names_its_run_and_a_good_idle_tick_ends_the_failure(
        config: Config, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    config = with_urls(config, receiver)

    def broken(*args: object) -> None:
        raise RiskError("training broke")

    monkeypatch.setattr(training, "run_training", broken)
    with pytest.raises(RiskError):
        pipeline.run_fullprocess(config)
    failed = receiver.requests[1][2]
    assert failed["event"] == "failed"
    assert failed["run_id"] == last_run(config, "fullprocess")["id"]
    assert last_run(config, "fullprocess")["outcome"] == "failed"
    monkeypatch.setattr(pipeline, "pending_work", lambda config: [])  # an idle tick: nothing to do, done well
    assert pipeline.run_fullprocess(config) == {"action": "nothing new"}
    monkeypatch.undo()
    monkeypatch.setattr(training, "run_training", broken)
    with pytest.raises(RiskError):
        pipeline.run_fullprocess(config)
    assert receiver.events() == ["failed", "failed"]  # the idle tick ended the first failure: the second is news
