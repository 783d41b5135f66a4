"""Score a model: F1 on the test data.

Reads trainedmodel.pkl from the model folder and testdata.csv from the test data folder.
Writes latestscore.txt (the F1, one number) to the model folder and the score to the ledger.
Run: python scoring.py [--config PATH] [--json]
"""
from __future__ import annotations

from risk import cli
from risk.scoring import run_scoring


def main(argv: list[str] | None = None) -> int:
    return cli.run(cli.parser(__doc__).parse_args(argv), run_scoring)


if __name__ == "__main__":
    raise SystemExit(main())
