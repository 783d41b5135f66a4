"""The cron job: ingest new data, decide on drift, and only then retrain, rescore and redeploy.

Reads the input folder, the ledger and the production folder; calls the stages as functions. The idle tick
(nothing new, a model deployed) imports only the standard library and exits 0 at once.
Run: python fullprocess.py [--config PATH] [--json] [-v]; cron runs it every ten minutes (cronjob.txt).
"""
from __future__ import annotations

import json
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
        live = registry.current_number(config.prod_folder)
        if live is None:
            reasons.append("no model deployed yet")
        elif ledger.last_deployed_version() != live:
            reasons.append(f"version {live} is current but the ledger has not recorded it")
        if ledger.has_undeferred_pending():  # deferred data waits for new data: no heavy tick for it alone
            reasons.append("ingested data awaits a drift decision")
        if not views.views_current(config.output_folder, ledger):
            reasons.append("ingested-data views are behind the ledger")
        if not reasons:
            ledger.record_idle("fullprocess", {"reason": "nothing new"})
    return reasons


def recover(config: Config) -> list[str]:
    """Clean what a killed run left (temp files, unfinished versions); only under the lock."""
    from risk import store

    folders = (config.output_folder, store.index_folder(config), config.model_folder)
    removed = [f"{n} temp file(s) in {f}" for f in folders if (n := remove_temp_files(f))]
    return removed + registry.recover(config.prod_folder)


def reconcile_deployment(config: Config, ledger: Ledger, run_id: int) -> None:
    """A run killed between switching `current` and recording it: record the switch, refresh the flat copies.

    The pointer is the truth of what is served; the ledger's last deployment must name the same version."""
    number = registry.current_number(config.prod_folder)
    if number is None or ledger.last_deployed_version() == number:
        return
    version = registry.verify(config.prod_folder, number)
    ledger.record_deployment(run_id, number, version.manifest["sha256"][registry.MODEL], version.manifest["score"],
                             action="recovered", reason="a killed run made this version current before recording it")
    registry.sync_mirror(config.prod_folder, version)
    logger.info("recovered: recorded version %d, current since a killed run", number)


def retrain_and_deploy(config: Config, run_id: int) -> dict:
    """Train on all ingested data, score on the test data, deploy a new version."""
    import deployment
    import scoring
    import training

    training.run_training(config, run_id)
    scoring.run_scoring(config, run_id)
    return deployment.run_deployment(config, run_id)


def thresholds_of(config: Config):  # -> drift.Thresholds
    from risk import drift

    return drift.Thresholds(config.drift_alpha, config.drift_min_rows, config.drift_min_f1_drop,
                            config.drift_min_feature_effect)


def statistical_decision(config: Config, version: registry.Version, model: object, new):  # -> drift.Decision
    """Tests of the new rows against the deployed model's card (performance) and training data (features)."""
    import numpy as np

    import training
    from risk import contract, drift

    card = json.loads((version.folder / training.CARD).read_text(encoding="utf-8"))
    trained_on = training.read_training_data(config.output_folder / training.FINALDATA).head(card["rows"])
    expected = card.get("expected_performance") or training.expected_performance(trained_on)
    if expected is None:
        reason = "the deployed model's training data cannot be cross-validated (a class has < 2 rows)"
        return drift.Decision(drift.INCONCLUSIVE, "statistical", {"new_rows": len(new)}, reason)
    counts = np.array([expected["confusion"][k] for k in ("tp", "fp", "fn", "tn")])
    reference = drift.Reference(counts, np.asarray(expected["row_log_loss"]), contract.matrix(trained_on))
    x, y = contract.split_xy(new)
    proba = model.predict_proba(x)[:, 1] if len(y) else np.empty(0)
    predicted = model.predict(x) if len(y) else np.empty(0, dtype=int)
    batch = drift.Batch(y, predicted, proba, x)
    return drift.statistical_rule(reference, batch, contract.FEATURES, thresholds_of(config))


def decide(config: Config, ledger: Ledger, pending: list[dict]):  # -> drift.Decision
    """Score the deployed model on every undecided row (new and deferred); apply `drift_method`."""
    import scoring
    from risk import drift, store

    version = registry.current(config.prod_folder)
    model = registry.load_model(version)
    new = store.read_ingested(config, [f for f in pending if f["rows"]])
    if config.drift_method == "statistical":
        return statistical_decision(config, version, model, new)
    if not len(new):
        return drift.Decision(drift.NO_DRIFT, config.drift_method, {"new_rows": 0}, "no new rows")
    new_f1 = scoring.f1_of(model, new)
    if config.drift_method == "raw":
        return drift.course_rule(new_f1, float(version.manifest["score"]), len(new))
    past = ledger.scores_of(version.manifest["sha256"][registry.MODEL])
    return drift.history_rule(new_f1, past, len(new), config.drift_method)


def challenge(config: Config, ledger: Ledger, pending: list[dict]) -> tuple[bool, dict]:
    """Challengers trained on all data but one fold of the new rows, against the champion on that fold."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import KFold

    import training
    from risk import contract, drift, store
    from risk.errors import ContractError

    new = store.read_ingested(config, [f for f in pending if f["rows"]])
    undecided = {f["id"] for f in pending}
    old = store.read_ingested(config, [f for f in ledger.files(status="ingested")
                                           if f["rows"] and f["id"] not in undecided])
    if len(new) < 2:
        return True, {"reason": f"{len(new)} new row(s): nothing to hold out; the challenger is deployed"}
    champion = registry.load_model(registry.current(config.prod_folder))
    x, y = contract.split_xy(new)
    challenger = np.empty(len(y), dtype=y.dtype)
    try:
        for fit, held in KFold(min(5, len(y)), shuffle=True, random_state=0).split(x):
            frame = pd.concat([old, new.iloc[fit]], ignore_index=True)
            challenger[held] = training.train_model(frame).predict(x[held])
    except ContractError as exc:
        return False, {"reason": f"no challenger could be trained: {exc}"}
    test = drift.mcnemar_worse(champion.predict(x) == y, challenger == y)
    deploy, reason = drift.challenger_verdict(test, config.drift_alpha)
    return deploy, {"reason": reason, "test": test}


def act_on(config: Config, ledger: Ledger, run_id: int, pending: list[dict]) -> tuple[str, str, dict | None, dict]:
    """Decide; on DRIFT, deploy a challenger unless it is worse. Returns (verdict, action, manifest, evidence)."""
    from risk import drift

    decision = decide(config, ledger, pending)
    evidence, manifest = decision.record(), None
    if decision.verdict == drift.DRIFT:
        deploy, evidence["challenger"] = challenge(config, ledger, pending)
        manifest = retrain_and_deploy(config, run_id) if deploy else None
        action = (f"deployed version {manifest['version']}" if manifest
                  else f"kept the champion: {evidence['challenger']['reason']}")
    elif decision.verdict == drift.INCONCLUSIVE:
        action = "deferred: the data joins the next decision"
    else:
        action = "kept the deployed model"
    if manifest is None and decision.verdict != drift.INCONCLUSIVE:
        record_new_score(config, ledger, run_id, decision.evidence)
    logger.info("decision: %s -> %s", decision.line(), action)
    return decision.verdict, action, manifest, evidence


def record_new_score(config: Config, ledger: Ledger, run_id: int, evidence: dict) -> None:
    """The kept model's F1 on the decided rows: the past scores of the parametric and nonparametric rules."""
    if evidence.get("new_f1") is not None and evidence.get("new_rows"):
        model_sha = registry.current(config.prod_folder).manifest["sha256"][registry.MODEL]
        ledger.record_score(run_id, model_sha, "new rows", evidence["new_f1"], evidence["new_rows"])


def act(config: Config, ledger: Ledger, run_id: int) -> tuple[str, dict | None]:
    """Bootstrap, or decide on the undecided data and act on the verdict. Returns (action, new manifest)."""
    pending = ledger.files(status="ingested", pending=True)
    if registry.current_number(config.prod_folder) is None:
        if not ledger.files(status="ingested"):
            raise MissingInputError(f"{config.input_folder}: nothing to train on (no file ingested yet)")
        logger.info("decision: no model deployed yet -> train and deploy a first model")
        manifest, verdict, evidence = retrain_and_deploy(config, run_id), "BOOTSTRAP", {}
        action = f"deployed version {manifest['version']}"
    elif pending:
        verdict, action, manifest, evidence = act_on(config, ledger, run_id, pending)
    else:
        return "views refreshed", None
    evidence = {**evidence, "files": [f["name"] for f in pending], "action": action}
    record = ledger.record_deferral if verdict == "INCONCLUSIVE" else ledger.record_decision
    record(run_id, verdict, action, evidence, [f["id"] for f in pending])
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
        reconcile_deployment(config, ledger, run_id)
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
