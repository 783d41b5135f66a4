"""Report on the deployed model: the confusion matrix PNG, and a PDF and an HTML report for people to read.

Reads the deployed model (verified) and its card, testdata.csv, finaldata.csv and the ledger (files, rejected
rows, scores, decisions, deployments, diagnostics). Writes to the model folder: confusionmatrix.png, then
reports/<version>/report.pdf and report.html, then reports/latest.pdf and latest.html (each atomically);
removes the report folders of versions the registry has pruned.
Run: python reporting.py [--config PATH] [--json]
"""
from __future__ import annotations

from risk import cli
from risk.reporting import run_reporting


def main(argv: list[str] | None = None) -> int:
    return cli.run(cli.parser(__doc__).parse_args(argv), run_reporting)


if __name__ == "__main__":
    raise SystemExit(main())
