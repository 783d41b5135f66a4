"""Idle cron tick (no new files, a model deployed) against `python -c pass`, timed in the same run.

Targets (issue 3): median tick <= 5x the baseline; peak RSS < 40 MiB.
"""
from __future__ import annotations

import json
import sys

from common import REPO, median, peak_rss, project, run_child

RUNS = 15
MAX_RATIO = 5.0
MAX_RSS_MIB = 40.0


def measure(runs: int = RUNS) -> dict:
    with project() as config:
        tick = [sys.executable, str(REPO / "fullprocess.py"), "--config", str(config)]
        base = [sys.executable, "-c", "pass"]
        run_child(tick)  # warm-up: writes the bytecode cache, as the first cron tick does
        pairs = [(run_child(base), run_child(tick)) for _ in range(runs)]  # interleaved: same noise for both
        memory = [(peak_rss(base), peak_rss(tick)) for _ in range(5)]
    base_s = median([b[0] for b, _ in pairs])
    tick_s = median([t[0] for _, t in pairs])
    rss = max(t for _, t in memory)
    base_rss = max(b for b, _ in memory)
    return {
        "name": "idle cron tick",
        "baseline_ms": 1000 * base_s,
        "median_ms": 1000 * tick_s,
        "ratio": tick_s / base_s,
        "peak_rss_mib": rss,
        "baseline_peak_rss_mib": base_rss,
        "pass": tick_s / base_s <= MAX_RATIO and rss < MAX_RSS_MIB,
        "target": f"<= {MAX_RATIO}x python -c pass, < {MAX_RSS_MIB} MiB",
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)))
