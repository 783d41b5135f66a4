"""The views of the ingested data beside the ledger, and whether they agree with it. Stdlib only (the idle tick).

finaldata.csv is written before ingestedfiles.txt, so a current ingestedfiles.txt means both are current. The
prepared read state (risk/prepared.py) is tagged in prepared.tag with its format, the byte length of
finaldata.csv and the observations (accepted rows, duplicates included) it covers: `prepared_tag` is the one place
that text is made.
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


def prepared_tag(data_end_byte: int, observations: int) -> str:
    """The text of prepared.tag for a read state covering finaldata.csv up to `data_end_byte` and `observations`
    accepted rows (duplicates included)."""
    return f"{catalog.PREPARED_FORMAT}:{data_end_byte}:{observations}\n"


def prepared_current(output_folder: Path, point: tuple[int, int] | None) -> bool:
    """True when the prepared read state covers `point` (the ledger's committed (end byte, observations); None:
    no data yet, nothing to cover) in this format, by its text tag."""
    if point is None:
        return True
    try:
        tag = (output_folder / catalog.PREPARED_TAG).read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return tag.strip() == prepared_tag(*point).strip() and (output_folder / catalog.PREPARED).is_file()
