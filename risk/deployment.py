"""Deploy the trained model: a new immutable, verified version in the production folder.

Reads trainedmodel.skops, trainedmodel.pkl, their card and latestscore.txt (model folder) and
ingestedfiles.txt (output folder).
Writes production_deployment/versions/<N>/ with a manifest of sha256s, then the `current` pointer, then the
course's flat copies (trainedmodel.pkl, latestscore.txt, ingestedfiles.txt); keeps the last `keep_versions`.
Run: python deployment.py [--config PATH]; --list; --rollback [VERSION] [--reason TEXT]
"""
from __future__ import annotations

import getpass
import logging
import os

from risk import catalog, registry
from risk.config import Config
from risk.errors import MissingInputError, RiskError
from risk.files import read_json, sha256_file
from risk.ledger import Ledger, recorded

logger = logging.getLogger(__name__)


def sources(config: Config, card: dict) -> dict:
    """The files a version is made of, by their name in the version folder. Its ingestedfiles.txt is the list
    of files the model was trained on (training's trainedfiles.txt, which the card vouches for), not what has
    been ingested since; a card from before that list falls back to the current list."""
    trained, expected = config.model_folder / catalog.TRAINED_FILES, card.get("files_sha256")
    if expected is not None and not (trained.is_file() and sha256_file(trained) == expected):
        raise MissingInputError(f"{trained}: not the list of files the trained model's card names (run training.py"
                                " again)")
    return {
        catalog.MODEL: config.model_folder / catalog.MODEL,
        catalog.SAFE_MODEL: config.model_folder / catalog.SAFE_MODEL,
        catalog.SCORE: config.model_folder / catalog.SCORE,
        catalog.VERSION_FILES: trained if expected is not None else config.output_folder / catalog.INGESTEDFILES,
        catalog.CARD: config.model_folder / catalog.CARD,
    }


def read_card(config: Config, model_sha: str) -> dict:
    """The model card, which must describe the model file being deployed (training writes it second)."""
    path = config.model_folder / catalog.CARD
    if not path.is_file():
        raise MissingInputError(f"{path}: model card not found (run training.py first)")
    card = read_json(path)
    safe = config.model_folder / catalog.SAFE_MODEL
    if not safe.is_file() or card.get("safe_model_sha256") != sha256_file(safe):
        raise MissingInputError(f"{path}: card does not describe {safe} (run training.py again)")
    if card.get("model_sha256") != model_sha:
        raise MissingInputError(f"{path}: card is for model {str(card.get('model_sha256'))[:12]}, not the trained"
                                f" model {model_sha[:12]} (run training.py again)")
    return card


def version_info(card: dict, score: float) -> dict:
    return {"score": score, "data_sha256": card.get("data_sha256"), "rows": card.get("rows")}


def run_deployment(config: Config, parent_run: int | None = None) -> dict:
    """Deploy the trained model if its score on record belongs to it; return the new version's manifest."""
    model_path = config.model_folder / catalog.MODEL
    if not model_path.is_file():
        raise MissingInputError(f"{model_path}: no trained model to deploy (run training.py first)")
    with recorded(config.ledger_path, "deployment", parent_run) as (ledger, run_id, detail):
        model_sha = sha256_file(model_path)
        score = ledger.scores.latest_f1(model_sha)
        if score is None:
            raise MissingInputError(f"{model_path}: this model has no score on record (run scoring.py first)")
        card = read_card(config, model_sha)
        version = registry.deploy(config.prod_folder, sources(config, card), version_info(card, score))
        ledger.deployments.record(run_id, version.number, model_sha, score)
        if parent_run is None and card.get("last_file_id"):  # by hand: fullprocess records its own decisions
            detail["settled_files"] = ledger.files.settle_trained(run_id, card["last_file_id"])
        reach = registry.rollback_reach(config.prod_folder, version.number, ledger.deployments.records())
        pruned = registry.prune(config.prod_folder, config.keep_versions, reach)
        detail.update({"version": version.number, "score": score, "model_sha256": model_sha, "pruned": pruned})
    logger.info("deployment: version %d (F1 %.4f) is current in %s%s", version.number, score, config.prod_folder,
                f"; pruned old version(s) {pruned}" if pruned else "")
    return version.manifest


def serving_version(config: Config) -> registry.Version | None:
    """The current version, if its model is the trained model (same sha256)."""
    model_path, live = config.model_folder / catalog.MODEL, registry.current_number(config.prod_folder)
    if live is None or not model_path.is_file():
        return None
    version = registry.verify(config.prod_folder, live)
    return version if version.manifest["sha256"][catalog.MODEL] == sha256_file(model_path) else None


def actor() -> str:
    """Who is acting, for the ledger: the sudo caller if any, else the login name."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def rollback_target(config: Config, live: int, target: int | None) -> int:
    """The named version, or the one a plain rollback reaches in the deployment history (registry.rollback_reach)."""
    if target is None:
        with Ledger(config.ledger_path) as ledger:
            history = ledger.deployments.records()
        target = registry.rollback_reach(config.prod_folder, live, history)
        if target is None:
            raise MissingInputError(f"{config.prod_folder}: no version to roll back to from {live}: none live before"
                                    " it that was not rolled back from and still verifies (name one: --rollback N)")
    if target == live:
        raise RiskError(f"version {target} is already current")
    return target


def run_rollback(config: Config, target: int | None = None, reason: str | None = None) -> dict:
    """Make the named version current again, or the one live before the current (rollback_target), after
    verifying it; recorded with who and why."""
    live = registry.current_number(config.prod_folder)
    if live is None:
        raise MissingInputError(f"{config.prod_folder}: nothing is deployed, nothing to roll back")
    target = rollback_target(config, live, target)
    with recorded(config.ledger_path, "rollback") as (ledger, run_id, detail):
        version = registry.activate(config.prod_folder, target)  # refuses a version that fails verification
        ledger.deployments.record(run_id, target, version.manifest["sha256"][catalog.MODEL],
                                 version.manifest["score"], action="rollback", reason=reason, actor=actor())
        detail.update({"from": live, "to": target, "reason": reason, "actor": actor()})
        from risk import calllists

        detail["call_list"] = calllists.record_if_changed(config, ledger, run_id)  # the list the rollback gives
    logger.info("rollback: version %d -> %d by %s (%s)", live, target, actor(), reason or "no reason given")
    from risk import notify

    notify.notify(config, "rollback", f"rolled back from version {live} to {target} by {actor()}"
                  f" ({reason or 'no reason given'})", run_id=run_id, model_version=target,
                  details={"from": live, "to": target, "reason": reason, "actor": actor()}, subject=str(target))
    return dict(detail)


def version_table(rows: list[dict]) -> str:
    lines = [f"{'':2}{'version':>7}  {'created (UTC)':<29}  {'F1':>6}  {'data sha256':<12}  status"]
    for row in rows:
        score = f"{row['score']:.4f}" if isinstance(row["score"], float) else "-"
        status = "ok" if row["verified"] else f"REFUSED: {row['problem']}"
        lines.append(f"{'*' if row['current'] else '':2}{row['version']:>7}  {row['created_at'] or '-':<29}  "
                     f"{score:>6}  {(row['data_sha256'] or '-')[:12]:<12}  {status}")
    return "\n".join(lines)


def deploy_by_hand(config: Config) -> dict:
    """What `python deployment.py` does under the pipeline lock: deploy the trained model, unless the current
    version already serves it (run twice by hand, no identical version that would prune a different one)."""
    serving = serving_version(config)
    if serving is not None:
        logger.info("deployment: version %d already serves the trained model; nothing deployed", serving.number)
        return serving.manifest
    return run_deployment(config)
