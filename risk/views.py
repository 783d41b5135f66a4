"""The course's view files of the ingested data, and whether they agree with the ledger. Stdlib only.

finaldata.csv is written before ingestedfiles.txt, so a current ingestedfiles.txt means both are current.
"""
from __future__ import annotations

from pathlib import Path

from risk import catalog
from risk.ledger import Ledger


def ingested_names(ledger: Ledger) -> list[str]:
    return [f["name"] for f in ledger.files.records(status="ingested")]


def views_current(output_folder: Path, ledger: Ledger) -> bool:
    """True when ingestedfiles.txt lists exactly the files the ledger says were ingested."""
    try:
        listed = (output_folder / catalog.INGESTEDFILES).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        listed = []
    return listed == ingested_names(ledger)
