"""The cron job: ingest new data, decide on drift, and only then retrain, rescore and redeploy.

Reads the input folder, the ledger and the production folder; calls the stages as functions. The idle tick
(nothing new, a model deployed) imports only the standard library and exits 0 at once.
Run: python fullprocess.py [--config PATH] [--json] [-v]; cron runs it every ten minutes (cronjob.txt).
"""
from __future__ import annotations

import logging

from risk import catalog, contactlog, inbox, methods, notify, registry, views
from risk.config import Config, require_folder
from risk.errors import BusyError, IntegrityError, MissingInputError
from risk.files import read_json, remove_temp_files, single_flight
from risk.ledger import Ledger, recorded

logger = logging.getLogger(__name__)
NOTHING_TO_DECIDE = "nothing to decide: no new rows since the last decision"
INGESTION_BUSY = "another ingestion is running; its data is left to the next tick"
QUALITY_ROWS = 50_000  # the labelled quality of a decided batch is measured on a stratified sample of this many rows


def views_written(config: Config, ledger: Ledger) -> bool:
    """True when ingestedfiles.txt holds exactly what ingestion writes from the ledger.

    Compared whole rather than line by line: a file name may itself hold a newline."""
    try:
        text = (config.output_folder / catalog.INGESTEDFILES).read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        text = ""
    return text == "".join(f"{name}\n" for name in views.ingested_names(ledger))


def prepared_written(config: Config, ledger: Ledger) -> bool:
    """True when the API's read state covers what the ledger has committed (its text tag; stdlib only)."""
    return views.prepared_current(config.output_folder, ledger.files.committed_point())


def deployment_work(config: Config, ledger: Ledger) -> list[str]:
    """What the deployed version still needs: a first model, its ledger record, or its diagnostics and report."""
    live = registry.current_number(config.prod_folder)
    last = ledger.deployments.last()
    if live is None:
        return ["no model deployed yet"]
    if last is None or last["version"] != live:
        return [f"version {live} is current but the ledger has not recorded it"]
    if last["followed_up_run"] is None:
        return [f"version {live}'s diagnostics and report are not made yet"]
    return []


def list_settings_changed(config: Config, ledger: Ledger) -> bool:
    """True when the newest recorded call list was made with another capacity or holdout share than the config's
    (the next run records the list these settings give)."""
    last = ledger.call_lists.last_settings()
    return last is not None and last != (config.call_capacity, config.holdout_share)


def pending_work(config: Config) -> list[str]:
    """Reasons to run; empty when the tick is idle. Hashes only files whose name, size or mtime is new."""
    require_folder(config.input_folder, "input_folder_path")
    with Ledger(config.ledger_path) as ledger:
        reasons = [f"new file {e.name}" for e in inbox.new_entries(config.input_folder, ledger)]
        reasons += deployment_work(config, ledger)
        intent = ledger.intents.unsettled()
        if intent is not None:
            reasons.append(f"run {intent['run_id']} stopped before recording its {intent['verdict']} decision")
        if ledger.files.has_new_rows():  # deferred data waits for new rows: no heavy tick for it alone
            reasons.append("ingested data awaits a drift decision")
        if not views_written(config, ledger):
            reasons.append("ingested-data views are behind the ledger")
        if not prepared_written(config, ledger):
            reasons.append("the API's prepared read state is behind the ledger")
        reasons += [f"new contacts file {f.name}" for f in contactlog.new_files(config, ledger)]
        if list_settings_changed(config, ledger):
            reasons.append("call_capacity or holdout_share changed since the last call list")
        if not reasons:
            ledger.runs.record_idle("fullprocess", {"reason": "nothing new"})
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
    if number is None or ledger.deployments.last_version() == number:
        return
    version = registry.verify(config.prod_folder, number)
    ledger.deployments.record(run_id, number, version.manifest["sha256"][catalog.MODEL], version.manifest["score"],
                             action="recovered", reason="a killed run made this version current before recording it")
    registry.sync_mirror(config.prod_folder, version)
    logger.info("recovered: recorded version %d, current since a killed run", number)
    notify.notify(config, "recovery", f"version {number} was made current by a killed run; recorded and serving",
                  run_id=run_id, model_version=number, subject=str(number))


def reconcile(config: Config, ledger: Ledger, run_id: int) -> None:
    """Finish what a run killed during a deploy left: the switch's record, then the decision it acted on.

    A decision that deploys writes its intent (verdict, evidence, files) before `current` switches. If a newer
    version than the intent's starting one is current, the deploy happened: record the decision as the killed
    run would have, so its files are settled (the new model was trained on them). Otherwise the deploy never
    happened: drop the intent; its files stay undecided and this run decides them again."""
    intent, live = ledger.intents.unsettled(), registry.current_number(config.prod_folder)
    deployed = intent is not None and live is not None and (intent["from_version"] or 0) < live
    made_by = ledger.runs.child(intent["run_id"], "deployment") if deployed else None
    reconcile_deployment(config, ledger, made_by or run_id)  # the deployment stage run that switched, if known
    if intent is None:
        return
    if not deployed:
        ledger.intents.abandon(intent["id"], run_id)
        logger.info("recovered: run %d stopped before deploying; its data is decided again", intent["run_id"])
        return
    action = f"deployed version {live}"
    evidence = {**intent["evidence"], "action": action,
                "recovered": f"recorded by run {run_id}: run {intent['run_id']} stopped after deploying"}
    ledger.decisions.record(intent["run_id"], intent["verdict"], action, evidence, intent["file_ids"], intent["id"],
                           settled_by=run_id)
    logger.info("recovered: recorded run %d's decision %s -> %s", intent["run_id"], intent["verdict"], action)


def retrain_and_deploy(config: Config, run_id: int) -> dict:
    """Train on all ingested data, score on the test data, deploy a new version."""
    from risk import deployment, scoring, training

    training.run_training(config, run_id)
    scoring.run_scoring(config, run_id)
    return deployment.run_deployment(config, run_id)


def deploy_on(config: Config, ledger: Ledger, run_id: int, verdict: str, evidence: dict,
              pending: list[dict]) -> tuple[dict, int]:
    """Record the intent (the decision and its files), then retrain and deploy. Returns (manifest, intent id)."""
    intent = ledger.intents.record(run_id, registry.current_number(config.prod_folder), verdict,
                                  {**evidence, "files": [f["name"] for f in pending]}, [f["id"] for f in pending])
    return retrain_and_deploy(config, run_id), intent


def thresholds_of(config: Config):  # -> drift.Thresholds
    from risk import drift

    return drift.Thresholds(config.drift_alpha, config.drift_min_rows, config.drift_min_f1_drop,
                            config.drift_min_feature_effect)


def reference_of(config: Config, version: registry.Version):  # -> drift.Reference | None
    """The deployed version's reference: its card's cross-validated performance and its sample of training
    rows (a card from before it kept one: its training rows, read from the history once); None when the card
    has no cross-validated performance (a class had < 2 rows)."""
    import numpy as np

    from risk import contract, drift, performance, training

    card = read_json(version.folder / catalog.CARD)
    stored = card.get("reference")
    if stored and "expected_performance" in card:  # the card holds the reference: the history is not read
        expected = card["expected_performance"]
        columns = dict(zip(stored["features"], np.asarray(stored["values"], dtype=float).reshape(
            -1, len(stored["features"])).T, strict=True))
        nothing = np.full(int(stored["rows"]), np.nan)  # a feature the version was not trained with: no reference
        reference_x = np.column_stack([columns.get(name, nothing) for name in contract.FEATURES])
    else:
        x, y = training.read_training_arrays(config.output_folder / catalog.FINALDATA)
        reference_x, y = x[:card["rows"]], y[:card["rows"]]
        expected = card.get("expected_performance") or training.expected_of(reference_x, y)
    if expected is None:
        return None
    counts = np.array([expected["confusion"][k] for k in performance.COUNTS])
    return drift.Reference(counts, np.asarray(expected["row_log_loss"]), reference_x)


def deployed_of(config: Config, ledger: Ledger, version: registry.Version) -> methods.Deployed:
    """The deployed version as the decision sees it: its model, card reference, score and past scores."""
    sha = version.manifest["sha256"][catalog.MODEL]
    return methods.Deployed(registry.load_model(version), reference_of(config, version),
                            float(version.manifest["score"]), ledger.scores.f1s_of(sha), sha)


def last_state(ledger: Ledger) -> dict | None:
    """The stream state the newest decision record left (methods.decide ignores it when it was for another model)."""
    latest = ledger.decisions.latest(1)
    return (latest[0]["evidence"].get("stream") or {}).get("state") if latest else None


def decide(config: Config, ledger: Ledger, pending: list[dict]) -> methods.Outcome:
    """The one decision function (methods.decide, which make bench-drift calls too) on every undecided row (new
    and deferred), from the state the last decision left; the decided history is read only for a challenger."""
    from risk import store, training

    new = store.read_ingested(config, [f for f in pending if f["rows"]])
    undecided = {f["id"] for f in pending}

    def history():  # -> pd.DataFrame: every decided row, the challengers' training data beside the new rows
        return store.read_ingested(config, [f for f in ledger.files.records(status="ingested")
                                            if f["rows"] and f["id"] not in undecided])

    deployed = deployed_of(config, ledger, registry.current(config.prod_folder))
    outcome = methods.decide(config.drift_method, deployed, new, history, last_state(ledger), thresholds_of(config),
                             training.train_model)
    outcome.decision.evidence.update(labelled_quality(config, deployed.model, new))
    return outcome


def labelled_quality(config: Config, model: object, new) -> dict:
    """What the decided batch's labels say of the deployed model beside the drift tests: precision and lift in
    the top `call_capacity` (scaled to the batch against the current clients) with bootstrap intervals, and
    calibration (Brier score, expected calibration error), on a stratified sample of QUALITY_ROWS rows when the
    batch has more (`sampled_from`: the batch's rows). Recorded, never a reason to retrain."""
    from risk import contract, prepared, report, training

    x, y = contract.split_xy(new)
    if not len(y):
        return {}
    index = training.sample_index(y, QUALITY_ROWS)
    if index is not None:
        x, y = x[index], y[index]
    proba = model.predict_proba(x)[:, 1]
    state = prepared.as_of_file(config)
    portfolio = prepared.population(state) if state is not None else None
    return {"at_capacity": report.at_capacity(y, proba, config.call_capacity, portfolio or None, draws=400),
            "calibration": report.calibration_scores(y, proba),
            **({"sampled_from": len(new)} if index is not None else {})}


def act_on(config: Config, ledger: Ledger, run_id: int,
           pending: list[dict]) -> tuple[str, str, dict | None, dict, int | None]:
    """Decide; on DRIFT or RETRAIN (drift.RETRAINS), deploy a challenger unless it is worse. Returns (verdict,
    action, manifest, evidence, the intent id of a deploy)."""
    from risk import drift

    outcome = decide(config, ledger, pending)
    decision = outcome.decision
    evidence, manifest, intent = decision.record(), None, None
    if decision.verdict in drift.RETRAINS:
        evidence["challenger"] = outcome.challenger
        if outcome.deploy:
            manifest, intent = deploy_on(config, ledger, run_id, decision.verdict, evidence, pending)
        action = (f"deployed version {manifest['version']}" if manifest
                  else f"kept the champion: {evidence['challenger']['reason']}")
    elif decision.verdict == drift.INCONCLUSIVE:
        action = "deferred: the data joins the next decision"
    else:
        action = "kept the deployed model"
    if manifest is None and decision.verdict != drift.INCONCLUSIVE:
        record_new_score(config, ledger, run_id, decision.evidence)
    logger.log(logging.WARNING if "warning" in evidence else logging.INFO, "decision: %s -> %s", decision.line(),
               action)
    return decision.verdict, action, manifest, evidence, intent


def record_new_score(config: Config, ledger: Ledger, run_id: int, evidence: dict) -> None:
    """The kept model's F1 on the decided rows: the past scores of the parametric and nonparametric rules."""
    if evidence.get("new_f1") is not None and evidence.get("new_rows"):
        model_sha = registry.current(config.prod_folder).manifest["sha256"][catalog.MODEL]
        ledger.scores.record(run_id, model_sha, "new rows", evidence["new_f1"], evidence["new_rows"])


def act(config: Config, ledger: Ledger, run_id: int) -> str:
    """Bootstrap, or decide on the undecided data when new rows joined it, and act on the verdict; the action."""
    pending = ledger.files.records(status="ingested", pending=True)
    if registry.current_number(config.prod_folder) is None:
        if not ledger.files.records(status="ingested"):
            raise MissingInputError(f"{config.input_folder}: nothing to train on (no file ingested yet)")
        logger.info("decision: no model deployed yet -> train and deploy a first model")
        verdict, evidence = "BOOTSTRAP", {}
        manifest, intent = deploy_on(config, ledger, run_id, verdict, evidence, pending)
        action = f"deployed version {manifest['version']}"
        evidence = bootstrap_warning(config)
    elif ledger.files.has_new_rows():  # deferred rows alone were decided already: no second decision on them
        verdict, action, manifest, evidence, intent = act_on(config, ledger, run_id, pending)
    else:
        return NOTHING_TO_DECIDE
    evidence = {**evidence, "files": [f["name"] for f in pending], "action": action}
    if verdict == "INCONCLUSIVE":
        ledger.decisions.defer(run_id, verdict, action, evidence, [f["id"] for f in pending])
    else:  # with the intent settled in the same transaction
        ledger.decisions.record(run_id, verdict, action, evidence, [f["id"] for f in pending], intent)
    announce(config, run_id, verdict, action, manifest, evidence)
    return action


def bootstrap_warning(config: Config) -> dict:
    """{"warning": why} when the first model's card keeps no cross-validated reference (logged too), else {}."""
    from risk import training

    warning = training.no_reference(read_json(registry.current(config.prod_folder).folder / catalog.CARD))
    if warning is None:
        return {}
    logger.warning("decision: the first model cannot be cross-validated: %s", warning)
    return {"warning": warning}


def announce(config: Config, run_id: int, verdict: str, action: str, manifest: dict | None, evidence: dict) -> None:
    """The webhook's messages for a recorded decision: a DRIFT, a deployment (risk/notify.py). A RETRAIN (a model
    without a reference retrained) is no drift: only its deployment is announced."""
    from risk import drift  # loaded already: a decision was made (the idle tick imports neither)

    live = registry.current_number(config.prod_folder)
    if verdict == drift.DRIFT:
        notify.notify(config, "drift", f"drift found ({evidence.get('reason', 'see the decision')}); {action}",
                      run_id=run_id, model_version=live, details={k: evidence.get(k) for k in (
                          "reason", "new_f1", "expected_f1", "new_rows", "files", "action")})
    elif verdict == drift.NO_DRIFT:
        notify.clear(config, "no_drift")
    if manifest is not None:
        notify.notify(config, "deployment", f"version {manifest['version']} deployed after a {verdict} decision"
                      f" (F1 {manifest['score']:.4f} on the test data)", run_id=run_id,
                      model_version=manifest["version"], details={"verdict": verdict, "score": manifest["score"]},
                      subject=str(manifest["version"]))


def after_deploy(config: Config, run_id: int) -> None:
    """Diagnostics and the report for the new model, then the API calls if the app is up."""
    from risk import apicalls, diagnostics, reporting

    diagnostics.run_diagnostics(config, run_id)
    reporting.run_reporting(config, run_id)
    try:
        apicalls.run_apicalls(config, config.api_url)
    except apicalls.ServerDown as exc:
        logger.info("apicalls skipped: %s", exc)


def follow_up(config: Config, ledger: Ledger, run_id: int) -> None:
    """After-deploy work for the newest deployment, unless a run finished it (a killed run did not)."""
    last = ledger.deployments.last()
    if last is None or last["followed_up_run"] is not None:
        return
    after_deploy(config, run_id)
    ledger.deployments.record_follow_up(last["id"], run_id)


def ingest(config: Config, run_id: int, detail: dict) -> bool:
    """Ingest the input folder's new files; False when an ingestion run by hand holds its lock."""
    from risk import ingestion

    if not inbox.csv_paths(config.input_folder):
        return True
    try:
        detail["ingestion"] = ingestion.run_ingestion(config, run_id)
    except BusyError:
        return False
    return True


def refresh_views(config: Config, ledger: Ledger) -> None:
    """Rewrite ingestedfiles.txt when it is behind (removed, edited, or ingestion had nothing to run on)."""
    from risk import ingestion

    if not views_written(config, ledger):
        ingestion.write_views(config, ledger)


def refresh_prepared(config: Config, ledger: Ledger) -> None:
    """Bring the API's read state up to the ledger (after a killed run, an upgrade, or an ingestion by hand
    that was killed between its commit and the state)."""
    if not prepared_written(config, ledger):
        from risk import prepared

        prepared.advance(config, prepared.committed(ledger))


def process(config: Config, run: dict | None = None) -> dict:
    """One run with work to do, recorded in the ledger (its id put in `run`, for a failure's message). The
    ingestion lock is held from the decision to the report, so that a hand-run ingestion cannot add rows the new
    model trains on but the decision never saw."""

    with recorded(config.ledger_path, "fullprocess") as (ledger, run_id, detail):
        if run is not None:
            run["run_id"] = run_id
        for leftover in recover(config):
            logger.info("recovered: removed %s", leftover)
        reconcile(config, ledger, run_id)
        done = ingest(config, run_id, detail)
        with single_flight(config.output_folder / catalog.INGESTION_LOCK) as free:
            if not (done and free):
                logger.info("fullprocess: %s (%s held)", INGESTION_BUSY, config.output_folder / catalog.INGESTION_LOCK)
                detail["action"] = INGESTION_BUSY
                return detail
            refresh_views(config, ledger)
            refresh_prepared(config, ledger)
            detail["action"] = act(config, ledger, run_id)
            logger.info("fullprocess: %s", detail["action"])
            from risk import calllists

            # new data, a new version or new settings; before the report, which shows the list's groups
            detail["call_list"] = calllists.record_if_changed(config, ledger, run_id)
            follow_up(config, ledger, run_id)
            detail["contacts"] = contactlog.read_folder(config, ledger, run_id)  # knows the clients of the new list
    return detail


def run_fullprocess(config: Config) -> dict:
    """Single flight: if another run holds the lock, exit at once; if nothing is new, exit at once. Every run
    under the lock is announced (risk/notify.py): a heartbeat when it ends well, idle or not, or `/fail` and a
    webhook message when it fails, in the idle check too (a missing input folder, an unreadable ledger)."""
    with single_flight(config.lock_path) as mine:
        if not mine:
            logger.info("another run holds %s; leaving the work to it", config.lock_path)
            return {"action": "another run is in progress"}
        reasons, run = [], {}  # `run` gets the id process() records, for the failure message
        try:
            reasons = pending_work(config)
            detail = work(config, reasons, run) if reasons else {"action": "nothing new"}
        except Exception as exc:
            failed(config, exc, run.get("run_id"), reasons)
            raise
        notify.clear(config, "ok")  # a good run, an idle one too, ends a failure: the next one is news
        if not reasons:
            logger.info("nothing new in %s; the deployed model stays", config.input_folder)
    # after the lock is released: a spawned heartbeat process must never be what the next tick finds holding it
    notify.heartbeat(config, wait=bool(reasons))  # idle: from a spawned process, the tick does not wait
    return detail


def work(config: Config, reasons: list[str], run: dict) -> dict:
    logger.info("work to do: %s", "; ".join(reasons))
    notify.heartbeat(config, "start")
    return process(config, run)


def failed(config: Config, exc: Exception, run_id: int | None, reasons: list[str]) -> None:
    """The failure message (run_id None when the idle check failed, before a run was recorded) and `/fail`."""
    try:
        live = registry.current_number(config.prod_folder)
    except IntegrityError:  # a corrupt `current` pointer may be the very failure being announced
        live = None
    notify.notify(config, "failed", f"the pipeline run failed: {str(exc)[:300]}", run_id=run_id, model_version=live,
                  details={"error": f"{type(exc).__name__}: {str(exc)[:1000]}", "reasons": reasons})
    notify.heartbeat(config, "fail")
