"""The cron job: ingest new data, decide on drift, and only then retrain, rescore and redeploy.

Reads the input folder, the ledger and the production folder; calls the stages as functions. The idle tick
(nothing new, a model deployed) imports only the standard library and exits 0 at once.
Run: python fullprocess.py [--config PATH] [--json] [-v]; cron runs it every ten minutes (cronjob.txt).
"""
from __future__ import annotations

import logging

from risk import cli, inbox, registry, views
from risk.config import Config, require_folder
from risk.errors import MissingInputError
from risk.files import remove_temp_files, single_flight
from risk.ledger import Ledger, recorded

logger = logging.getLogger(__name__)


def pending_work(config: Config) -> list[str]:
    """Reasons to run; empty when the tick is idle. Hashes only files whose name, size or mtime is new."""
    require_folder(config.input_folder, "input_folder_path")
    with Ledger(config.ledger_path) as ledger:
        reasons = [f"new file {e.name}" for e in inbox.new_entries(config.input_folder, ledger)]
        if registry.current_number(config.prod_folder) is None:
            reasons.append("no model deployed yet")
        if ledger.has_pending():
            reasons.append("ingested data awaits a drift decision")
        if not views.views_current(config.output_folder, ledger):
            reasons.append("ingested-data views are behind the ledger")
        if not reasons:
            ledger.record_idle("fullprocess", {"reason": "nothing new"})
    return reasons


def recover(config: Config) -> list[str]:
    """Clean what a killed run left (temp files, unfinished versions); only under the lock."""
    import ingestion

    folders = (config.output_folder, ingestion.parts_folder(config), config.model_folder)
    removed = [f"{n} temp file(s) in {f}" for f in folders if (n := remove_temp_files(f))]
    return removed + registry.recover(config.prod_folder)


def retrain_and_deploy(config: Config, run_id: int) -> dict:
    """Train on all ingested data, score on the test data, deploy a new version."""
    import deployment
    import scoring
    import training

    training.run_training(config, run_id)
    scoring.run_scoring(config, run_id)
    return deployment.run_deployment(config, run_id)


def decide(config: Config, pending: list[dict]):  # -> drift.Decision
    """Score the deployed model on the rows that arrived since the last decision; apply the drift rule."""
    import pandas as pd

    import ingestion
    import scoring
    from risk import drift

    frames = [ingestion.read_part(ingestion.part_path(config, f)) for f in pending if f["rows"]]
    version = registry.current(config.prod_folder)
    deployed_f1 = float(version.manifest["score"])
    if not frames:
        return drift.Decision(drift.NO_DRIFT, "raw", {"new_rows": 0, "deployed_f1": deployed_f1})
    new = pd.concat(frames, ignore_index=True)
    new_f1 = scoring.f1_of(registry.load_model(version), new)
    return drift.course_rule(new_f1, deployed_f1, len(new))


def act(config: Config, ledger: Ledger, run_id: int) -> tuple[str, dict | None]:
    """Bootstrap, or decide on the pending data and redeploy on drift. Returns (action, new manifest)."""
    pending = ledger.files(status="ingested", pending=True)
    if registry.current_number(config.prod_folder) is None:
        if not ledger.files(status="ingested"):
            raise MissingInputError(f"{config.input_folder}: nothing to train on (no file ingested yet)")
        logger.info("decision: no model deployed yet -> train and deploy a first model")
        manifest, verdict, evidence = retrain_and_deploy(config, run_id), "BOOTSTRAP", {}
    elif pending:
        decision = decide(config, pending)
        logger.info("decision: %s", decision.line())
        verdict, evidence = decision.verdict, decision.evidence
        manifest = retrain_and_deploy(config, run_id) if verdict == "DRIFT" else None
    else:
        return "views refreshed", None
    action = f"deployed version {manifest['version']}" if manifest else "kept the deployed model"
    evidence = {**evidence, "files": [f["name"] for f in pending]}
    ledger.record_decision(run_id, verdict, action, evidence, [f["id"] for f in pending])
    return action, manifest


def after_deploy(config: Config, run_id: int) -> None:
    """Diagnostics and the report for the new model, then the API calls if the app is up."""
    import apicalls
    import diagnostics
    import reporting

    diagnostics.run_diagnostics(config, run_id)
    reporting.run_reporting(config, run_id)
    try:
        apicalls.run_apicalls(config, config.api_url)
    except apicalls.ServerDown as exc:
        logger.info("apicalls skipped: %s", exc)


def process(config: Config) -> dict:
    """One run with work to do, recorded in the ledger."""
    import ingestion

    with recorded(config.ledger_path, "fullprocess") as (ledger, run_id, detail):
        for leftover in recover(config):
            logger.info("recovered: removed %s", leftover)
        if inbox.csv_paths(config.input_folder):
            detail["ingestion"] = ingestion.run_ingestion(config, run_id)
        action, manifest = act(config, ledger, run_id)
        detail["action"] = action
    logger.info("fullprocess: %s", action)
    if manifest:
        after_deploy(config, run_id)
    return detail


def run_fullprocess(config: Config) -> dict:
    """Single flight: if another run holds the lock, exit at once; if nothing is new, exit at once."""
    with single_flight(config.lock_path) as mine:
        if not mine:
            logger.info("another run holds %s; leaving the work to it", config.lock_path)
            return {"action": "another run is in progress"}
        reasons = pending_work(config)
        if not reasons:
            logger.info("nothing new in %s; the deployed model stays", config.input_folder)
            return {"action": "nothing new"}
        logger.info("work to do: %s", "; ".join(reasons))
        return process(config)


def main(argv: list[str] | None = None) -> int:
    return cli.run(cli.parser(__doc__).parse_args(argv), run_fullprocess)


if __name__ == "__main__":
    raise SystemExit(main())
