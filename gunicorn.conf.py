"""gunicorn settings for `make serve`: workers on loopback, one access-log line per request on stdout,
Prometheus counts shared by the workers, and no binding beyond loopback without an API token.

Override with the usual flags or the environment: RISK_BIND (default 127.0.0.1:8000), RISK_WORKERS (2),
RISK_CONFIG (the config.json to serve), RISK_API_TOKEN.
"""
import os
import shutil
import tempfile

bind = [os.environ.get("RISK_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("RISK_WORKERS", "2"))
timeout = 120
accesslog = "-"
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(B)s %(M)sms "%(a)s" pid=%(p)s'  # one line per request
control_socket_disable = True
wsgi_app = "app:create_app()"


def on_starting(server) -> None:
    """Before any worker: refuse a wide bind without a token; give the workers a fresh metrics folder."""
    from risk import auth
    from risk.config import load_config
    from risk.errors import ConfigError

    try:
        token = auth.load_token(load_config(os.environ.get("RISK_CONFIG")))
        for address in server.cfg.bind:
            host = address if address.startswith("unix:") else address.rsplit(":", 1)[0]
            auth.check_bind(host, token)
    except ConfigError as exc:
        server.log.error("%s", exc)
        raise SystemExit(1) from None
    folder = tempfile.mkdtemp(prefix="risk-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    server.log.info("metrics shared through %s", folder)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and os.path.basename(folder).startswith("risk-metrics-"):
        shutil.rmtree(folder, ignore_errors=True)
