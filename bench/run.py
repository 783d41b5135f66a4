"""Run every benchmark, print medians and ratios to their same-run baselines, save bench/results/latest.json.

Exit 1 when a target is missed. Run: make bench (or .venv/bin/python bench/run.py [--quick]).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import bench_batch
import bench_deploy
import bench_ingest
import bench_reports
import bench_serve

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "latest.json"


def idle_tick(runs: int) -> dict:
    """bench_idle in a process of its own: a child's peak RSS counts the memory of the process it was forked
    from, and this one has pandas and pyarrow loaded; bench_idle's process holds the standard library only."""
    done = subprocess.run([sys.executable, str(HERE / "bench_idle.py"), str(runs)], capture_output=True,
                          text=True, check=True, timeout=600)
    return json.loads(done.stdout)


def show(result: dict) -> None:
    print(f"\n{result['name']}  [{'PASS' if result['pass'] else 'FAIL'}; target {result['target']}]")
    for key, value in result.items():
        if key not in ("name", "pass", "target"):
            print(f"  {key:>20}: {value:.3f}" if isinstance(value, float) else f"  {key:>20}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and shorter loads")
    args = parser.parse_args(argv)
    results = [
        idle_tick(runs=5 if args.quick else 15),
        bench_serve.measure(rounds=1 if args.quick else bench_serve.ROUNDS,
                            seconds=1.0 if args.quick else bench_serve.SECONDS),
        bench_batch.measure(runs=3 if args.quick else bench_batch.RUNS),
        bench_deploy.measure(seconds=8.0 if args.quick else bench_deploy.SECONDS),
        *bench_ingest.measure(quick=args.quick),
        bench_reports.measure(runs=3 if args.quick else bench_reports.RUNS),
    ]
    for result in results:
        show(result)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
