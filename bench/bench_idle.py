"""Idle cron tick (no new files, a model deployed, a heartbeat URL configured: each tick pings a local HTTP
server, as it would healthchecks.io) against `python -c pass`, timed in the same run.

Targets (issue 3, issue 16): median tick <= 5x the baseline; peak RSS < 40 MiB.
"""
from __future__ import annotations

import http.server
import json
import sys
import threading

from common import REPO, median, peak_rss, project, run_child

RUNS = 15
MAX_RATIO = 5.0
MAX_RSS_MIB = 40.0


class Pings(http.server.BaseHTTPRequestHandler):
    count = 0

    def do_GET(self) -> None:
        Pings.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def measure(runs: int = RUNS) -> dict:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with project() as config:
        settings = json.loads(config.read_text(encoding="utf-8"))
        settings["heartbeat_url"] = f"http://127.0.0.1:{server.server_address[1]}/ping/bench"
        config.write_text(json.dumps(settings), encoding="utf-8")
        tick = [sys.executable, str(REPO / "fullprocess.py"), "--config", str(config)]
        base = [sys.executable, "-c", "pass"]
        run_child(tick)  # warm-up: writes the bytecode cache, as the first cron tick does
        pairs = [(run_child(base), run_child(tick)) for _ in range(runs)]  # interleaved: same noise for both
        memory = [(peak_rss(base), peak_rss(tick)) for _ in range(5)]
    server.shutdown()
    base_s = median([b[0] for b, _ in pairs])
    tick_s = median([t[0] for _, t in pairs])
    rss = max(t for _, t in memory)
    base_rss = max(b for b, _ in memory)
    return {
        "name": "idle cron tick, heartbeat to a local server",
        "heartbeats": Pings.count,
        "baseline_ms": 1000 * base_s,
        "median_ms": 1000 * tick_s,
        "ratio": tick_s / base_s,
        "peak_rss_mib": rss,
        "baseline_peak_rss_mib": base_rss,
        "pass": tick_s / base_s <= MAX_RATIO and rss < MAX_RSS_MIB and Pings.count >= runs + 1,
        "target": f"<= {MAX_RATIO}x python -c pass, < {MAX_RSS_MIB} MiB",
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)))
