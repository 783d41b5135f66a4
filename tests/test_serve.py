"""The API as it runs in production: a real gunicorn on loopback, called by apicalls.py; and app.py's CLI."""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import HEADER, record

import apicalls as apicalls_cli
from risk import apicalls, auth, catalog
from risk.config import Config, load_config

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
START_SECONDS = 20
RECORD = record(10, 100, 5)
TOKEN = "apicalls-test-token"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env() -> dict[str, str]:
    """The test's environment, minus any config override, with pip kept off the network (diagnostics asks it)."""
    env = {k: v for k, v in os.environ.items() if k != "RISK_CONFIG"}
    return {**env, "PIP_NO_INDEX": "1", "PIP_NO_INPUT": "1", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}


def wait_for_health(url: str, process: subprocess.Popen) -> None:
    """Poll /health until it answers 200; fail if the server exits or START_SECONDS pass."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"gunicorn exited with {process.returncode} before answering"
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or workers still importing
            pass
        time.sleep(0.2)
    pytest.fail(f"{url}/health did not answer within {START_SECONDS} s")


def stop(process: subprocess.Popen) -> None:
    """Terminate gunicorn (it stops its workers) and reap it; kill it if it does not stop in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def server(deployed: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real gunicorn with two workers serving the deployed miniature project on a free loopback port."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    url = f"http://127.0.0.1:{free_port()}"
    command = [str(GUNICORN), "--workers", "2", "--bind", url.removeprefix("http://"), "--no-control-socket",
               "--graceful-timeout", "5", f'app:create_app("{deployed.config_path}")']
    with open(tmp_path / "gunicorn.log", "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=server_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_health(url, process)
        yield url, process
    finally:
        stop(process)


def test_gunicorn_serves_predictions_and_apicalls_records_every_call(server, deployed: Config) -> None:
    url, _ = server
    answer = requests.post(f"{url}/prediction", json={"records": [RECORD, RECORD]}, timeout=30)
    assert answer.status_code == 200
    assert answer.json()["model_version"] == "1"
    assert len(answer.json()["predictions"]) == 2

    assert apicalls_cli.main(["--config", str(deployed.config_path), "--url", url]) == 0
    returns = json.loads((deployed.model_folder / catalog.APIRETURNS).read_text(encoding="utf-8"))
    requested = [entry["request"] for entry in returns]
    assert requested == ["POST /prediction", "GET /scoring", "GET /summarystats", "GET /diagnostics"]
    assert [entry["status"] for entry in returns] == [200] * 4
    assert returns[1]["body"]["model_version"] == returns[3]["body"]["model_version"] == "1"
    assert 0 <= returns[1]["body"]["f1"] <= 1


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    """$RISK_API_TOKEN for the server started after this fixture and for apicalls in this process."""
    monkeypatch.setenv(auth.TOKEN_ENV, TOKEN)
    return TOKEN


def test_apicalls_sends_the_token_a_guarded_server_needs(token: str, server, deployed: Config,
                                                         caplog: pytest.LogCaptureFixture,
                                                         capsys: pytest.CaptureFixture) -> None:
    url, _ = server
    assert requests.get(f"{url}/ready", timeout=10).status_code == 401
    caplog.set_level(logging.DEBUG)
    assert apicalls_cli.main(["--config", str(deployed.config_path), "--url", url]) == 0
    written = (deployed.model_folder / catalog.APIRETURNS).read_text(encoding="utf-8")
    assert [entry["status"] for entry in json.loads(written)] == [200] * 4
    said = caplog.text + "".join(capsys.readouterr())
    assert token not in said + written


def test_apicalls_reads_the_token_from_the_configured_file(deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same loader as the server: `api_token_file` in config.json when $RISK_API_TOKEN is unset."""
    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)
    sent: list[str | None] = []

    def recording(session: requests.Session, method: str, url: str, **kwargs: object) -> requests.Response:
        sent.append(session.headers.get("Authorization"))
        raise requests.ConnectionError("no server in this test")

    monkeypatch.setattr(requests.Session, "request", recording)
    assert apicalls_cli.main(["--config", str(deployed.config_path), "--url", "http://127.0.0.1:9"]) == 1
    (deployed.root / "token.txt").write_text(f"{TOKEN}\n", encoding="utf-8")
    settings = json.loads(deployed.config_path.read_text(encoding="utf-8"))
    deployed.config_path.write_text(json.dumps({**settings, "api_token_file": "token.txt"}), encoding="utf-8")
    assert load_config(deployed.config_path).api_token_file is not None
    assert apicalls_cli.main(["--config", str(deployed.config_path), "--url", "http://127.0.0.1:9"]) == 1
    assert sent == [None, f"Bearer {TOKEN}"]


def test_a_body_cut_short_of_its_content_length_is_a_json_400(server) -> None:
    """The client announces more bytes than it sends, then stops sending: a 400 naming the shortfall."""
    url, _ = server
    body = f"{HEADER.rsplit(',', 1)[0]}\nacme,1,2,3\n".encode()
    head = (f"POST /prediction HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            f"Content-Length: {len(body) + 100}\r\nConnection: close\r\n\r\n").encode()
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(head + body)
        client.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    status, _, payload = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 400"), answer[:300]
    error = json.loads(payload)
    assert error["error"] == "bad_request"
    assert f"{len(body)} of the {len(body) + 100} bytes" in error["detail"]


def test_a_chunked_body_over_max_request_bytes_is_413_not_cut_and_scored(deployed: Config, tmp_path: Path) -> None:
    """Without a Content-Length the limit still holds: the body is refused whole, never scored in part."""
    settings = json.loads(deployed.config_path.read_text(encoding="utf-8"))
    deployed.config_path.write_text(json.dumps({**settings, "max_request_bytes": 120}), encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}"
    command = [str(GUNICORN), "--workers", "1", "--bind", url.removeprefix("http://"), "--no-control-socket",
               f'app:create_app("{deployed.config_path}")']
    with open(tmp_path / "gunicorn.log", "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=server_env(), stdout=log, stderr=subprocess.STDOUT)
    head = f"{HEADER.rsplit(',', 1)[0]}\n".encode()
    small, big = head + b"abcd,50,900,12\n", head + b"a" * 28 + b",50,900,12\nefgh,1,2,34567\nijkl,5,5,5\n"
    try:
        wait_for_health(url, process)
        answers = [requests.post(f"{url}/prediction", data=iter([body[:60], body[60:]]), timeout=10,
                                 headers={"Content-Type": "text/csv"}) for body in (small, big)]
    finally:
        stop(process)
    assert answers[0].status_code == 200
    assert answers[0].json()["corporation"] == ["abcd"]
    assert answers[1].status_code == 413
    assert answers[1].json()["error"] == "request_entity_too_large"
    assert "120" in answers[1].json()["detail"]


def test_apicalls_reports_a_stopped_server_in_one_line(server, deployed: Config,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    url, process = server
    assert requests.get(f"{url}/ready", timeout=10).status_code == 200
    stop(process)
    assert process.returncode is not None
    caplog.set_level(logging.INFO)
    assert apicalls_cli.main(["--config", str(deployed.config_path), "--url", url]) == 1
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert url in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage()
    assert not (deployed.model_folder / catalog.APIRETURNS).exists()


def test_apicalls_rejects_a_url_without_a_scheme(deployed: Config, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        apicalls_cli.main(["--config", str(deployed.config_path), "--url", "127.0.0.1:8000"])
    assert exit_info.value.code == 2
    assert "expected an http(s):// URL, got '127.0.0.1:8000'" in capsys.readouterr().err


def test_apicalls_reports_an_answer_cut_short_in_one_line(deployed: Config, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    def cut_short(*args: object, **kwargs: object) -> None:
        raise requests.exceptions.ChunkedEncodingError("connection broken")

    monkeypatch.setattr(requests.Session, "request", cut_short)
    assert apicalls_cli.main(["--config", str(deployed.config_path), "--url", "http://127.0.0.1:9"]) == 1
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == ["http://127.0.0.1:9/prediction: no complete answer (ChunkedEncodingError)"]


def test_apicalls_exits_1_when_a_call_gets_an_error_status(deployed: Config, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    def not_ready(session: object, url: str, method: str, route: str, body: object) -> dict:
        return {"request": f"{method} {route}", "status": 503 if route == "/scoring" else 200, "body": {}}

    monkeypatch.setattr(apicalls, "call", not_ready)
    assert apicalls_cli.main(["--config", str(deployed.config_path), "--url", "http://127.0.0.1:9"]) == 1
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == ["1 of 4 call(s) failed: GET /scoring -> 503 (see apireturns.txt)"]
    written = json.loads((deployed.model_folder / catalog.APIRETURNS).read_text())
    assert [answer["status"] for answer in written] == [200, 503, 200, 200]


def test_app_help_runs_from_another_folder(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "app.py"), "--help"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "--config" in done.stdout
    assert "--port" in done.stdout
    assert list(tmp_path.iterdir()) == []
