"""Call every endpoint of the running API and write the answers together to apireturns.txt.

Reads the API (default: `api_url` in config.json, or --url) and the API token as the server does
($RISK_API_TOKEN, else `api_token_file`). Writes apireturns.txt to the model folder. Exits 1 with one line
when the server is down or any call got an error status.
Run: python apicalls.py [--config PATH] [--url URL]
"""
from __future__ import annotations

import argparse

from risk import catalog, cli
from risk.apicalls import run_apicalls
from risk.config import Config
from risk.errors import RiskError


def base_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an http(s):// URL, got {value!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(__doc__)
    parser.add_argument("--url", type=base_url, help="base URL of the API (default: api_url in config.json)")
    args = parser.parse_args(argv)

    def stage(config: Config) -> list[dict]:
        answers = run_apicalls(config, args.url)
        failed = [f"{a['request']} -> {a['status']}" for a in answers if a["status"] >= 400]
        if failed:
            raise RiskError(f"{len(failed)} of {len(answers)} call(s) failed: {', '.join(failed)} "
                            f"(see {catalog.APIRETURNS})")
        return answers

    return cli.run(args, stage)


if __name__ == "__main__":
    raise SystemExit(main())
