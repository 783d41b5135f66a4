"""Migrate, in place, what was written before an upgrade: the history after a column was added to the data
contract, and versions deployed before models were kept in skops format.

The history: finaldata.csv gains the new columns, empty in every existing row (the contract's `fill` says
what they mean there); the ledger's byte range of every ingested file moves with its rows; the de-duplication
index is rebuilt from the migrated rows as one merged segment. The order makes it crash-safe: the new file
and index are written beside the old ones, then one ledger transaction records the new ranges and index,
then the new file replaces the old (one rename). Killed before the transaction, the next run starts again;
killed after it, the next run sees that the ledger describes the new file and only renames it.

Versions: a version without trainedmodel.skops gets one, converted from its trainedmodel.pkl, and its manifest
lists it. This is the one place that unpickles, once, for versions this project deployed and verified
(manifest sha256) before the upgrade: run it on versions you trust.

Idempotent: a second run finds nothing to do. Runs under the pipeline and ingestion locks.
Run: python -m risk.migrate [--config PATH] [--json] [-v]
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from risk import catalog, cli, contract, prepared, registry, rowindex, rowtext, store
from risk.config import Config
from risk.errors import BusyError, IntegrityError
from risk.files import atomic_write_bytes, atomic_write_text, fsync_dir, sha256_file, single_flight
from risk.ledger import Ledger

logger = logging.getLogger(__name__)
SUFFIX = ".migrating"


def header_of(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.readline()


def added_columns(written: list[str]) -> list[str]:
    """The contract's columns the history lacks; IntegrityError if it cannot be migrated to the contract."""
    unknown = [name for name in written if name not in contract.COLUMNS]
    if unknown or [c for c in contract.COLUMNS if c in written] != written:
        raise IntegrityError(f"{catalog.FINALDATA}: columns {written} cannot become {list(contract.COLUMNS)}: only "
                             "adding columns is migrated (a removed or reordered column is not)")
    added = [c for c in contract.COLUMNS if c not in written]
    unfilled = [c for c in added if contract.BY_NAME[c].role != "feature" or contract.BY_NAME[c].fill is None]
    if unfilled:
        raise IntegrityError(f"{catalog.FINALDATA}: new column(s) {unfilled} need a `fill` in the contract (the value "
                             "older rows take): only a feature with a fill can be added to a history")
    return added


def migrated_rows(text: str, written: list[str], source: str) -> tuple[bytes, list[list[str]]]:
    """The rows of one file's byte range with the new columns (empty) and their parsed cells; IntegrityError if
    the range does not read back exactly as written (so no byte of the history is reinterpreted)."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    old, new = io.StringIO(newline=""), io.StringIO(newline="")
    csv.writer(old, lineterminator="\n").writerows(rows)
    if old.getvalue() != text or any(len(row) != len(written) for row in rows):
        raise IntegrityError(f"{source}: rows that do not read back as written; restore finaldata.csv from a backup")
    position = {name: i for i, name in enumerate(written)}
    cells = [[row[position[c]] if c in position else "" for c in contract.COLUMNS] for row in rows]
    csv.writer(new, lineterminator="\n").writerows(cells)
    return new.getvalue().encode(), cells


def row_keys(cells: list[list[str]]) -> np.ndarray:
    """The de-duplication hashes of migrated rows, as ingestion computes them (NaN where a new column is empty)."""
    ident = pa.array([row[0] for row in cells], pa.string())
    numbers = {}
    for j, name in enumerate(contract.COLUMNS):
        if name != contract.ID_COLUMN:
            numbers[name] = np.array([float(row[j]) if row[j] else np.nan for row in cells], dtype="float64")
    return rowtext.row_hashes(ident, numbers)


def write_migrated(config: Config, ledger: Ledger, written: list[str]) -> tuple[dict, str, int]:
    """Write finaldata.csv.migrating and the rebuilt index segment; ({file id: (start, end)}, segment, rows)."""
    path = config.finaldata_path
    files = [f for f in ledger.files.records(status="ingested") if f["data_end"] is not None]
    ranges, chunks, keys, offset = {}, [store.DATA_HEADER], [], len(store.DATA_HEADER)
    with open(path, "rb") as handle:
        for record in sorted(files, key=lambda f: f["data_start"]):
            handle.seek(record["data_start"])
            text = handle.read(record["data_end"] - record["data_start"]).decode("utf-8")
            data, cells = migrated_rows(text, written, f"{path} ({record['name']})")
            ranges[record["id"]] = (offset, offset + len(data))
            chunks.append(data)
            keys.append(row_keys(cells))
            offset += len(data)
    atomic_write_bytes(path.with_name(path.name + SUFFIX), b"".join(chunks))
    merged = np.unique(np.concatenate(keys)) if keys else np.array([], dtype=np.uint64)
    last = max((f["id"] for f in files), default=0)
    segment = f"migrated-{last}-{len(contract.COLUMNS)}.npy"
    rowindex.save(store.index_folder(config) / segment, merged)
    return ranges, segment, len(merged)


def finish(config: Config, segment: str | None) -> None:
    """Put the migrated file in place (one rename) and drop the index segments the migrated one replaces."""
    path = config.finaldata_path
    os.replace(path.with_name(path.name + SUFFIX), path)
    fsync_dir(path.parent)
    if segment:
        for old in store.index_folder(config).glob("*.npy"):
            if old.name != segment:
                old.unlink()


def migrate_history(config: Config, ledger: Ledger) -> dict:
    """Give the history the contract's columns; {"history": "current" | "migrated", ...}."""
    path = config.finaldata_path
    pending = path.with_name(path.name + SUFFIX)
    if not path.is_file() or header_of(path) == store.DATA_HEADER:
        pending.unlink(missing_ok=True)
        return {"history": "current"}
    data_end, _ = ledger.files.committed_ends()
    if pending.is_file() and header_of(pending) == store.DATA_HEADER and data_end == pending.stat().st_size:
        segment = ledger.files.index_segment()
        finish(config, segment["path"] if segment else None)  # killed after the ledger moved: only the rename is left
        return {"history": "migrated", "resumed": True}
    written = header_of(path).decode("utf-8").rstrip("\r\n").split(",")
    added = added_columns(written)
    ranges, segment, rows = write_migrated(config, ledger, written)
    last = max(ranges, default=0)
    ledger.files.move_history(ranges, segment, last, rows)
    finish(config, segment)
    logger.info("migrate: %s gained column(s) %s; %d file range(s) moved, index rebuilt (%d rows)", path.name,
                added, len(ranges), rows)
    return {"history": "migrated", "added_columns": added, "files": len(ranges), "index_rows": rows}


def convert_versions(config: Config) -> list[int]:
    """Give every version without a skops model one, converted from its verified pickle; the numbers converted."""
    import pickle  # the one unpickling in the project: versions this project deployed, verified first

    from risk import model

    converted = []
    for number in registry.finished(config.prod_folder):
        version = registry.verify(config.prod_folder, number)
        if catalog.SAFE_MODEL in version.manifest["sha256"]:
            continue
        estimator = pickle.loads(version.model_path.read_bytes())
        atomic_write_bytes(version.folder / catalog.SAFE_MODEL, model.dumps(estimator))
        manifest = dict(version.manifest)
        safe_sha = sha256_file(version.folder / catalog.SAFE_MODEL)
        manifest["sha256"] = {**manifest["sha256"], catalog.SAFE_MODEL: safe_sha}
        atomic_write_text(version.folder / catalog.MANIFEST, json.dumps(manifest, indent=2) + "\n")
        converted.append(number)
        logger.info("migrate: version %d now has %s", number, catalog.SAFE_MODEL)
    return converted


def run_migration(config: Config) -> dict:
    with single_flight(config.lock_path) as pipeline, single_flight(config.output_folder / catalog.INGESTION_LOCK) \
            as ingestion:
        if not (pipeline and ingestion):
            raise BusyError(f"{config.lock_path}: the pipeline or an ingestion is running; migrate when it is done")
        result = {}
        if config.ledger_path.is_file():
            with Ledger(config.ledger_path) as ledger:
                result = migrate_history(config, ledger)
                if result["history"] == "migrated":  # the API's read state gains the column too
                    prepared.advance(config, prepared.committed(ledger))
        result["converted_versions"] = convert_versions(config)
    if result.get("history") != "migrated" and not result["converted_versions"]:
        logger.info("migrate: nothing to do (the history has the contract's columns; every version has %s)",
                    catalog.SAFE_MODEL)
    return result


def main(argv: list[str] | None = None) -> int:
    return cli.run(cli.parser(__doc__).parse_args(argv), run_migration)


if __name__ == "__main__":
    raise SystemExit(main())
