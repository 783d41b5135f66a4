"""The model registry: numbered, immutable versions in the production folder, one `current` pointer.

Layout: versions/<N>/{trainedmodel.skops, trainedmodel.pkl, trainedmodel.json, latestscore.txt, ingestedfiles.txt,
manifest.json}; `current` holds N and is replaced atomically; the course's flat files mirror the current
version. A version without a manifest is unfinished (a killed deploy) and is removed by `recover`. Stdlib only
(a model is read by risk.model, imported when one is loaded).
"""
from __future__ import annotations

import itertools
import json
import logging
from collections import namedtuple
from pathlib import Path

from risk import catalog
from risk.errors import IntegrityError, MissingInputError
from risk.files import atomic_copy, atomic_write_text, remove_temp_files, sha256_file
from risk.ledger import now

PAYLOAD = (catalog.MODEL, catalog.SCORE, catalog.VERSION_FILES)
logger = logging.getLogger(__name__)


class Version(namedtuple("_Version", "number folder manifest")):
    """A verified version: its number, folder and manifest (a namedtuple: cheap to import on the idle path)."""

    __slots__ = ()

    @property
    def model_path(self) -> Path:
        return self.folder / catalog.MODEL

    @property
    def label(self) -> str:
        return str(self.number)


def versions_folder(prod: Path) -> Path:
    return prod / "versions"


def current_number(prod: Path) -> int | None:
    """The current version number, or None when nothing is deployed."""
    try:
        text = (prod / catalog.CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not text.isdigit():
        raise IntegrityError(f"{prod / catalog.CURRENT}: expected a version number, got {text[:40]!r}")
    return int(text)


def _numbers(prod: Path) -> list[int]:
    """Every version folder's number, finished or not (a new version never reuses one)."""
    folder = versions_folder(prod)
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def verify(prod: Path, number: int) -> Version:
    """Check every file of a version against its manifest; raise IntegrityError naming the bad file."""
    folder = versions_folder(prod) / str(number)
    try:
        manifest = json.loads((folder / catalog.MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingInputError(f"{folder}: version {number} has no manifest (not deployed)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise IntegrityError(f"{folder / catalog.MANIFEST}: manifest is not valid JSON") from None
    hashes = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not isinstance(hashes, dict) or not set(PAYLOAD) <= set(hashes):
        raise IntegrityError(f"{folder / catalog.MANIFEST}: manifest does not list the sha256 of {list(PAYLOAD)}")
    for name, expected in hashes.items():
        path = folder / name
        if not path.is_file():
            raise IntegrityError(f"{path}: file listed in the manifest is missing")
        if sha256_file(path) != expected:
            raise IntegrityError(f"{path}: sha256 does not match the manifest (tampered or truncated)")
    return Version(number, folder, manifest)


def files_identity(prod: Path, number: int) -> tuple:
    """(name, inode, size, mtime) of each file in a version's folder: cheap to read (one scandir), and it changes
    when a file is repaired or replaced, so that a refused version is verified again only then."""
    import os

    try:
        entries = list(os.scandir(versions_folder(prod) / str(number)))
    except FileNotFoundError:
        return ()
    stats = ((entry.name, entry.stat()) for entry in entries)
    return tuple(sorted((name, st.st_ino, st.st_size, st.st_mtime_ns) for name, st in stats))


def current(prod: Path) -> Version:
    """The verified current version; MissingInputError when nothing is deployed."""
    number = current_number(prod)
    if number is None:
        raise MissingInputError(f"{prod}: no model deployed yet (run deployment.py or fullprocess.py)")
    return verify(prod, number)


def library_versions() -> dict[str, str]:
    """The versions that decide whether a saved model loads the same: recorded in every manifest."""
    import platform

    import numpy
    import sklearn

    return {"python": platform.python_version(), "sklearn": sklearn.__version__, "numpy": numpy.__version__}


def features_of(version: Version) -> list[str]:
    """The features a version's model was trained on, in order, from its card (verified with the version)."""
    from risk.files import read_json

    card_path = version.folder / catalog.CARD
    if catalog.CARD not in version.manifest["sha256"]:
        raise MissingInputError(f"{version.folder}: version {version.number} has no model card, so no feature list")
    features = read_json(card_path).get("features")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise IntegrityError(f"{card_path}: the card does not list the model's features")
    return features


def load_model(version: Version) -> object:
    """A verified version's model (risk.model.Model), read from its skops file: nothing in it runs. Warns, naming
    both, if it was saved with other library versions. The course's pickle beside it is never read."""
    import warnings

    from risk import model

    if catalog.SAFE_MODEL not in version.manifest["sha256"]:
        raise MissingInputError(f"{version.folder}: version {version.number} has no {catalog.SAFE_MODEL} (deployed "
                                "before models were kept in skops format): run `python -m risk.migrate` once")
    saved_with = version.manifest.get("libraries", {})
    here = library_versions()
    differ = {k: (v, here.get(k)) for k, v in saved_with.items() if here.get(k) != v}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = model.read(version.folder / catalog.SAFE_MODEL, features_of(version))
    if differ or caught:
        detail = ", ".join(f"{k} {old} (saved) vs {new} (here)" for k, (old, new) in differ.items())
        logger.warning("version %d was saved with other library versions: %s%s", version.number,
                       detail or "see below", "".join(f"; {w.message}" for w in caught))
    return loaded


def recover(prod: Path) -> list[str]:
    """Remove what a killed deploy left: temp files and version folders without a manifest.

    Only under the pipeline lock (fullprocess): a deploy by hand at the same time would lose its files.
    """
    temps = remove_temp_files(prod)
    removed = [f"{temps} temp file(s)"] if temps else []
    folder = versions_folder(prod)
    if folder.is_dir():
        for child in folder.iterdir():
            if child.is_dir() and not (child / catalog.MANIFEST).is_file() and child.name != str(current_number(prod)):
                import shutil

                shutil.rmtree(child)
                removed.append(f"unfinished version {child.name}")
    return removed


def _write_version(prod: Path, number: int, sources: dict[str, Path], info: dict) -> Version:
    folder = versions_folder(prod) / str(number)
    folder.mkdir(parents=True)
    for name, source in sources.items():
        atomic_copy(source, folder / name)
    manifest = {"version": number, "created_at": now(), **info, "libraries": library_versions(),
                "sha256": {name: sha256_file(folder / name) for name in sources}}
    atomic_write_text(folder / catalog.MANIFEST, json.dumps(manifest, indent=2) + "\n")  # the record, last
    return verify(prod, number)


def finished(prod: Path) -> list[int]:
    """Numbers of the complete versions (with a manifest), oldest first."""
    return [n for n in _numbers(prod) if (versions_folder(prod) / str(n) / catalog.MANIFEST).is_file()]


def describe(prod: Path) -> list[dict]:
    """Every complete version: number, time, score, data fingerprint, whether current and whether it verifies."""
    now_current = current_number(prod)
    rows = []
    for number in finished(prod):
        try:
            manifest, problem = verify(prod, number).manifest, None
        except (IntegrityError, MissingInputError) as exc:
            manifest, problem = {}, str(exc)
        rows.append({"version": number, "created_at": manifest.get("created_at"), "score": manifest.get("score"),
                     "data_sha256": manifest.get("data_sha256"), "current": number == now_current,
                     "verified": problem is None, "problem": problem})
    return rows


def rolled_back_from(history: list[dict]) -> set[int]:
    """The versions whose last time as current ended in a rollback (the operator rejected them). `history` is
    the ledger's deployments, oldest first: each row a version made current (`version`, `action`)."""
    left: dict[int, bool] = {}
    for before, after in itertools.pairwise(history):
        if before["version"] != after["version"]:
            left[before["version"]] = after["action"] == "rollback"
    return {number for number, rejected in left.items() if rejected}


def verifies(prod: Path, number: int) -> bool:
    try:
        verify(prod, number)
    except (IntegrityError, MissingInputError):
        return False
    return True


def rollback_reach(prod: Path, live: int, history: list[dict]) -> int | None:
    """What a plain rollback from `live` goes back to: walking the deployment history back from its newest row,
    the first version that is not `live`, was not rolled back from and still verifies (pruned ones do not).
    Each rollback rejects the version it leaves, so successive ones undo the history: after 1, 2, 3,
    a rollback 3 -> 1 and a deployment of 4, they go 4 -> 1 -> 2 and then nowhere."""
    skipped = rolled_back_from(history) | {live}
    for number in (row["version"] for row in reversed(history)):
        if number not in skipped and verifies(prod, number):
            return number
        skipped.add(number)  # checked once
    return None


def activate(prod: Path, number: int) -> Version:
    """Verify a version and read its model (skops: nothing runs; a model that would run code is refused), then
    make it current (one atomic pointer write) and refresh the flat copies."""
    version = verify(prod, number)
    load_model(version)
    atomic_write_text(prod / catalog.CURRENT, f"{version.number}\n")
    sync_mirror(prod, version)
    return version


def prune(prod: Path, keep: int, reach: int | None = None) -> list[int]:
    """Delete the oldest complete versions beyond `keep`, never the current one or `reach` (what a plain rollback
    would go back to: rollback_reach)."""
    import shutil

    protected = {current_number(prod), reach}
    candidates = [n for n in finished(prod) if n not in protected]
    excess = max(0, len(finished(prod)) - keep)
    doomed = candidates[:excess]
    for number in doomed:
        shutil.rmtree(versions_folder(prod) / str(number))
    return doomed


def sync_mirror(prod: Path, version: Version) -> None:
    """Write the course's flat production files as copies of the current version."""
    for name in PAYLOAD:
        atomic_copy(version.folder / name, prod / name)


def deploy(prod: Path, sources: dict[str, Path], info: dict) -> Version:
    """Write a new verified version from `sources` ({payload name: path}), then make it current."""
    missing = [str(path) for path in sources.values() if not Path(path).is_file()]
    if missing:
        raise MissingInputError(f"cannot deploy: missing {', '.join(missing)}")
    numbers = _numbers(prod)
    version = _write_version(prod, (numbers[-1] if numbers else 0) + 1, sources, info)
    return activate(prod, version.number)
