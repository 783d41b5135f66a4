"""/metrics in Prometheus text format; bearer-token auth (from the environment or a file named in config);
and the refusal to serve beyond loopback without a token (app.py and gunicorn.conf.py), with a real gunicorn
on loopback whose two workers' counts add up in /metrics."""
from __future__ import annotations

import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
import requests
from conftest import paths, record, snapshot
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from risk import auth, deployment, scoring, training
from risk.config import Config, load_config
from risk.ledger import Ledger

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
TOKEN = "s3cret-token-for-tests"
RECORD = record(10, 100, 5)
GUARDED = [("GET", "/ready"), ("GET", "/risk"), ("GET", "/metrics"), ("GET", "/openapi.json"), ("GET", "/scoring"),
           ("GET", "/summarystats"), ("GET", "/decisions"), ("POST", "/prediction"), ("GET", "/nosuch")]
START_SECONDS = 30


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token, config override or shared metrics folder leaks in from the shell running the tests."""
    for name in (auth.TOKEN_ENV, "RISK_CONFIG", "PROMETHEUS_MULTIPROC_DIR", "RISK_BIND", "RISK_WORKERS"):
        monkeypatch.delenv(name, raising=False)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus text exposition, keyed by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def call(client, method: str, route: str, token: str | None = None, raw: str | None = None):
    headers = {"Authorization": raw if raw is not None else f"Bearer {token}"} if (token or raw) else {}
    body = {"json": {"records": [RECORD]}} if method == "POST" else {}
    return client.open(route, method=method, headers=headers, **body)


# --- /metrics -----------------------------------------------------------------------------------------------


def test_metrics_count_requests_latencies_predictions_and_the_model(client) -> None:
    for _ in range(3):
        assert client.post("/prediction", json={"records": [RECORD, RECORD]}).status_code == 200
    assert client.post("/prediction", json={"records": [{"x": 1}]}).status_code == 422
    assert client.get("/health").status_code == 200
    assert client.get("/no/such").status_code == 404
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.mimetype == "text/plain"
    got = samples(answer.get_data(as_text=True))
    key = lambda route, status, method="POST": ("risk_http_requests_total",  # noqa: E731
                                                (("method", method), ("route", route), ("status", status)))
    assert got[key("/prediction", "200")] == 3
    assert got[key("/prediction", "422")] == 1
    assert got[key("/health", "200", "GET")] == 1
    assert got[key("unmatched", "404", "GET")] == 1
    assert got[("risk_http_request_duration_seconds_count", (("route", "/prediction"),))] == 4
    assert got[("risk_http_request_duration_seconds_bucket", (("le", "+Inf"), ("route", "/prediction")))] == 4
    assert 0 < got[("risk_http_request_duration_seconds_sum", (("route", "/prediction"),))] < 60
    assert got[("risk_predictions_total", ())] == 6
    assert got[("risk_model_version", ())] == 1


def test_the_model_version_is_set_when_a_model_loads_not_only_on_prediction(client) -> None:
    """/ready and /risk load the model too: the gauge says which version that is before any /prediction."""
    assert client.get("/ready").get_json()["model_version"] == "1"
    assert client.get("/risk").status_code == 200
    assert samples(client.get("/metrics").get_data(as_text=True))[("risk_model_version", ())] == 1


def test_made_up_methods_share_one_label_value(env_token_client) -> None:
    """An unauthenticated client cannot grow the label set: unknown methods all count as "other"."""
    for i in range(40):
        assert env_token_client.open("/risk", method=f"X{i}").status_code == 401
    assert call(env_token_client, "HEAD", "/ready").status_code == 401
    got = samples(call(env_token_client, "GET", "/metrics", TOKEN).get_data(as_text=True))
    methods = {dict(labels)["method"] for name, labels in got if name == "risk_http_requests_total"}
    assert methods == {"other", "HEAD"}
    assert got[("risk_http_requests_total", (("method", "other"), ("route", "unmatched"), ("status", "401")))] == 40


def test_metrics_report_the_last_pipeline_run_from_the_ledger(client, deployed: Config) -> None:
    family = "risk_pipeline_last_run_timestamp_seconds"
    assert not [k for k in samples(client.get("/metrics").get_data(as_text=True)) if k[0] == family]
    with Ledger(deployed.ledger_path) as ledger:
        finished = ledger.runs.start("fullprocess")
        ledger.runs.end(finished, "deployed")
        ledger.runs.start("fullprocess")  # still running: not the last finished run
        ended = ledger.runs.get(finished)["ended_at"]
    got = samples(client.get("/metrics").get_data(as_text=True))
    runs = {k: v for k, v in got.items() if k[0] == family}
    assert runs == {(family, (("outcome", "deployed"),)): datetime.fromisoformat(ended).timestamp()}
    assert abs(time.time() - next(iter(runs.values()))) < 60


def test_metrics_and_risk_write_no_pipeline_files(client, deployed: Config) -> None:
    with Ledger(deployed.ledger_path) as ledger:
        ledger.runs.end(ledger.runs.start("fullprocess"), "no_new_data")
    before, paths_before = snapshot(deployed.root), paths(deployed.root)
    for route in ("/metrics", "/risk", "/risk?top=3", "/openapi.json", "/ready"):
        assert client.get(route).status_code == 200, route
    assert paths(deployed.root) == paths_before
    assert snapshot(deployed.root) == before


# --- auth ---------------------------------------------------------------------------------------------------


@pytest.fixture
def env_token_client(deployed: Config, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(auth.TOKEN_ENV, TOKEN)
    return create_app(deployed).test_client()


@pytest.fixture
def file_token_client(deployed: Config):
    (deployed.root / "api-token.txt").write_text(f"  {TOKEN}\n", encoding="utf-8")
    settings = json.loads(deployed.config_path.read_text(encoding="utf-8"))
    deployed.config_path.write_text(json.dumps({**settings, "api_token_file": "api-token.txt"}), encoding="utf-8")
    return create_app(load_config(deployed.config_path)).test_client()


@pytest.mark.parametrize("source", ["env_token_client", "file_token_client"])
@pytest.mark.parametrize(("method", "route"), GUARDED)
def test_every_route_but_health_needs_the_token(request: pytest.FixtureRequest, source: str, method: str,
                                                 route: str) -> None:
    client = request.getfixturevalue(source)
    for raw in (None, f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Bearer x{TOKEN}", "Bearer ", "Bearer",
                f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN.upper()}", f"Bearer {TOKEN[:-1]}é"):
        answer = call(client, method, route, raw=raw)
        assert answer.status_code == 401, (raw, answer.data[:200])
        assert answer.get_json() == {"error": "unauthorized",
                                     "detail": "expected the header Authorization: Bearer <token>"}
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert TOKEN not in answer.get_data(as_text=True)
    right = call(client, method, route, TOKEN)
    assert right.status_code == (404 if route == "/nosuch" else 200), right.data[:200]
    assert call(client, method, route, raw=f"bearer   {TOKEN} ").status_code == right.status_code


@pytest.mark.parametrize("source", ["env_token_client", "file_token_client"])
def test_health_is_open(request: pytest.FixtureRequest, source: str) -> None:
    client = request.getfixturevalue(source)
    assert client.get("/health").status_code == 200
    assert call(client, "GET", "/health", raw="Bearer wrong").status_code == 200


def test_without_a_token_no_header_is_needed(client) -> None:
    assert client.get("/risk").status_code == 200
    assert call(client, "GET", "/risk", raw="Bearer anything").status_code == 200


def test_the_environment_token_wins_over_the_file(file_token_client, deployed: Config,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(auth.TOKEN_ENV, "from-the-environment")
    client = create_app(load_config(deployed.config_path)).test_client()
    assert call(client, "GET", "/ready", "from-the-environment").status_code == 200
    assert call(client, "GET", "/ready", TOKEN).status_code == 401


@pytest.mark.parametrize(("content", "problem"), [(None, "cannot read"), ("  \n", "is empty")])
def test_an_unreadable_or_empty_token_file_is_a_config_error(deployed: Config, content: str | None,
                                                             problem: str) -> None:
    if content is not None:
        (deployed.root / "token.txt").write_text(content, encoding="utf-8")
    settings = json.loads(deployed.config_path.read_text(encoding="utf-8"))
    deployed.config_path.write_text(json.dumps({**settings, "api_token_file": "token.txt"}), encoding="utf-8")
    with pytest.raises(auth.ConfigError, match=problem):
        create_app(load_config(deployed.config_path))


def test_the_token_is_compared_with_compare_digest(env_token_client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behaviour: every comparison goes through hmac.compare_digest (constant time), whatever the outcome."""
    seen = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    assert call(env_token_client, "GET", "/ready", "wrong").status_code == 401
    assert call(env_token_client, "GET", "/ready", TOKEN).status_code == 200
    assert seen == [(b"wrong", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True),
                                                ("::1", True), ("[::1]", True), ("unix:/tmp/x.sock", True),
                                                ("0.0.0.0", False), ("", False), ("::", False), ("[::]", False),
                                                ("10.0.0.5", False), ("example.com", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert auth.is_loopback(host) is loopback
    if loopback:
        auth.check_bind(host, None)
    else:
        with pytest.raises(auth.ConfigError, match=f"refusing to bind {re.escape(host)}: no API token"):
            auth.check_bind(host, None)
    auth.check_bind(host, TOKEN)


# --- refusing to bind widely without a token (real processes) -----------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    drop = (auth.TOKEN_ENV, "RISK_CONFIG", "PROMETHEUS_MULTIPROC_DIR", "RISK_BIND", "RISK_WORKERS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", **extra}


def must_exit(command: list[str], env: dict[str, str], seconds: float = 30) -> subprocess.CompletedProcess:
    """Run a server command that must refuse to start; if it is still running after `seconds`, kill it and fail."""
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=10)
        pytest.fail(f"{command} started serving instead of refusing")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.mark.system
@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_app_py_refuses_a_wide_bind_without_a_token(deployed: Config, host: str) -> None:
    done = must_exit([sys.executable, str(REPO / "app.py"), "--config", str(deployed.config_path),
                      "--host", host, "--port", str(free_port())], child_env())
    assert done.returncode == 1
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"refusing to bind {host}: no API token is configured" in lines[0]
    assert auth.TOKEN_ENV in lines[0]
    assert "api_token_file" in lines[0]


@pytest.mark.system
@pytest.mark.parametrize("how", ["RISK_BIND", "--bind"])
def test_gunicorn_refuses_a_wide_bind_without_a_token(deployed: Config, how: str) -> None:
    address = f"0.0.0.0:{free_port()}"
    command = [str(GUNICORN), "-c", str(REPO / "gunicorn.conf.py")] + (["--bind", address] if how == "--bind" else [])
    env = child_env(RISK_CONFIG=str(deployed.config_path), **({"RISK_BIND": address} if how == "RISK_BIND" else {}))
    done = must_exit(command, env)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "refusing to bind 0.0.0.0: no API token is configured" in output
    assert "Booting worker" not in output
    assert "Listening at" not in output


@pytest.fixture
def gunicorn_with_token(deployed: Config, tmp_path: Path):
    """gunicorn.conf.py with a token, two workers, on a free loopback port; yields (url, log path)."""
    url = f"http://127.0.0.1:{free_port()}"
    env = child_env(RISK_CONFIG=str(deployed.config_path), RISK_BIND=url.removeprefix("http://"),
                    RISK_WORKERS="2", **{auth.TOKEN_ENV: TOKEN})
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(GUNICORN), "-c", str(REPO / "gunicorn.conf.py")], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or workers still importing
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield url, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.mark.system
def test_gunicorn_with_a_token_serves_and_sums_both_workers_metrics(gunicorn_with_token) -> None:
    url, log_path = gunicorn_with_token
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(f"{url}/ready", timeout=10).status_code == 401
    assert requests.get(f"{url}/ready", headers=bearer, timeout=10).status_code == 200

    def predict(_: int) -> int:
        return requests.post(f"{url}/prediction", json={"records": [RECORD] * 3}, headers=bearer,
                             timeout=30).status_code

    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while sent < 400:
            assert set(pool.map(predict, range(40))) == {200}
            sent += 40
            if len(worker_pids(log_path, "POST /prediction")) >= 2:
                break
    assert len(worker_pids(log_path, "POST /prediction")) == 2, "both workers should have answered"
    got = samples(requests.get(f"{url}/metrics", headers=bearer, timeout=10).text)
    requests_key = ("risk_http_requests_total", (("method", "POST"), ("route", "/prediction"), ("status", "200")))
    assert got[requests_key] == sent
    assert got[("risk_predictions_total", ())] == 3 * sent
    assert got[("risk_http_request_duration_seconds_count", (("route", "/prediction"),))] == sent
    assert got[("risk_model_version", ())] == 1
    assert got[("risk_http_requests_total", (("method", "GET"), ("route", "/ready"), ("status", "401")))] == 1


def worker_pids(log_path: Path, request_line: str, since: int = 0) -> set[str]:
    """The worker pids in the access-log lines for `request_line` after byte `since` (lines end with pid=<pid>)."""
    with open(log_path, "rb") as log:
        log.seek(since)
        text = log.read().decode("utf-8")
    lines = [line for line in text.splitlines() if request_line in line]
    return {match.group(1) for line in lines if (match := re.search(r"pid=<?(\d+)>?", line))}


def answer_from_both_workers(url: str, headers: dict[str, str], log_path: Path, since: int) -> None:
    """Send predictions until two worker pids have answered one in the log after byte `since` (a respawned
    worker answers only once it has imported the app), for at most START_SECONDS."""
    def predict(_: int) -> int:
        return requests.post(f"{url}/prediction", json={"records": [RECORD]}, headers=headers, timeout=30).status_code

    deadline = time.monotonic() + START_SECONDS
    with ThreadPoolExecutor(8) as pool:
        while len(worker_pids(log_path, "POST /prediction", since)) < 2:
            assert time.monotonic() < deadline, f"one worker answered every prediction for {START_SECONDS} s"
            assert set(pool.map(predict, range(40))) == {200}


def model_version_gauge(url: str, headers: dict[str, str]) -> float:
    return samples(requests.get(f"{url}/metrics", headers=headers, timeout=10).text)[("risk_model_version", ())]


def respawned_after_kill(log_path: Path, pid: str) -> None:
    """SIGTERM one worker and wait (bounded) until gunicorn has booted its replacement."""
    booted = log_path.read_text(encoding="utf-8").count("Booting worker")
    os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + START_SECONDS
    while log_path.read_text(encoding="utf-8").count("Booting worker") == booted:
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.2)


@pytest.mark.system
def test_the_model_version_gauge_follows_a_rollback_past_a_dead_worker(gunicorn_with_token, deployed: Config) -> None:
    """v2 served by both workers, one killed and respawned, rollback to 1: /metrics says 1 as /ready does,
    from the first answer after the rollback on (a dead worker's last value must not count)."""
    url, log_path = gunicorn_with_token
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    training.run_training(deployed)
    scoring.run_scoring(deployed)
    deployment.run_deployment(deployed)
    answer_from_both_workers(url, bearer, log_path, 0)
    version = lambda: model_version_gauge(url, bearer)  # noqa: E731
    assert version() == 2
    killed = sorted(worker_pids(log_path, "POST /prediction"))[0]
    respawned_after_kill(log_path, killed)
    shared = Path(re.search(r"metrics shared through (\S+)", log_path.read_text(encoding="utf-8")).group(1))
    assert not list(shared.glob(f"gauge_*_{killed}.db")), "the dead worker's version still counts"
    deployment.run_rollback(deployed, 1, "test")
    assert requests.get(f"{url}/ready", headers=bearer, timeout=10).json()["model_version"] == "1"
    assert version() == 1
    answer_from_both_workers(url, bearer, log_path, log_path.stat().st_size)
    assert version() == 1
