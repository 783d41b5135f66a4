"""Report on the deployed model: the confusion matrix PNG, and a PDF and an HTML report for people to read.

Reads the deployed model (verified) and its card, testdata.csv, finaldata.csv (or the prepared read state when
it covers the file exactly: risk/prepared.py) and the ledger (files, rejected
rows, scores, decisions, deployments, diagnostics). Writes to the model folder: confusionmatrix.png, then
reports/<version>/report.pdf and report.html, then reports/latest.pdf and latest.html (each atomically);
removes the report folders of versions the registry has pruned.
Run: python reporting.py [--config PATH] [--json]
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from risk import catalog, contract, holdout, performance, prepared, readside, registry, risklist
from risk import report as content_of
from risk.config import Config
from risk.economics import CURVE_MIN
from risk.errors import ContractError, IntegrityError, MissingInputError
from risk.files import atomic_copy, atomic_write_bytes, atomic_write_text
from risk.ledger import Ledger, now, recorded
from risk.scoring import read_labelled_csv

logger = logging.getLogger(__name__)
LABELS = ["stayed (0)", "exited (1)"]
MAX_REASONS = 20  # rejection reasons the report lists, the most frequent; the rest are counted
SHOWN_LISTS = 6  # judged lists shown with their own effect, and measured lists with expected and realized


def plot_confusion(counts: list[list[int]], title: str) -> bytes:
    """A labelled heatmap with the count in each cell, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    figure, axes = plt.subplots(figsize=(5, 4), dpi=100)
    sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes,
                xticklabels=LABELS, yticklabels=LABELS)
    axes.set(xlabel="predicted", ylabel="actual", title=title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def deciding_record(ledger: Ledger, version: int) -> tuple[dict | None, dict | None]:
    """(the newest deployment of `version`, the decision of the pipeline run that deployed it, if any): one
    indexed look-up of the deploying run's decision, however many decisions came after it."""
    deployment = next((d for d in reversed(ledger.deployments.records()) if d["version"] == version), None)
    stage = ledger.runs.get(deployment["run_id"]) if deployment and deployment["run_id"] else None
    parent = stage["parent_id"] if stage else None
    return deployment, ledger.decisions.of_run(parent) if parent else None


def ledger_inputs(ledger: Ledger, version: int) -> dict:
    """The ledger rows the report shows, each read bounded: the newest MAX_FILES files and the MAX_REASONS most
    frequent rejection reasons, with totals of the rest; the last 1000 decisions."""
    deployment, decision = deciding_record(ledger, version)
    rejections, more_rejections = ledger.files.rejection_counts(MAX_REASONS)
    return {"call_lists": ledger.call_lists.latest(12), "files": ledger.files.newest(content_of.MAX_FILES),
            "file_totals": ledger.files.totals(), "rejections": rejections, "more_rejections": more_rejections,
            "scores": ledger.scores.records(),
            "decisions": ledger.decisions.latest(1000), "deployments": ledger.deployments.records(),
            "diagnostics": ledger.diagnostics.latest(), "deployment": deployment, "decision": decision}


def ledger_content(inputs: dict, version_files: list[str]) -> dict:
    """The lineage and rejection sections from the bounded reads: the files shown, with totals over every file,
    and the reasons shown, with what the rest hold ("and N more")."""
    totals = inputs["file_totals"]
    lineage = {**content_of.lineage(inputs["files"], version_files),
               **{k: totals[k] for k in ("ingested_files", "rejected_files", "ingested_rows", "rejected_rows")},
               "more_files": totals["files"] - len(inputs["files"])}
    return {"lineage": lineage, "rejections": inputs["rejections"], "more_rejections": inputs["more_rejections"]}


def previous_model(config: Config, before: int | None) -> object | None:
    """The previous version's model, the movers' baseline; a version that fails verification costs only the
    movers, not the report."""
    if before is None:
        return None
    try:
        return registry.load_model(registry.verify(config.prod_folder, before))
    except IntegrityError as exc:
        logger.error("no movers in the report: the previous version %d failed verification: %s", before, exc)
        return None


def read_inputs(config: Config, ledger: Ledger) -> dict:
    """Everything the report shows, read once: the version, models, card, data and ledger rows."""
    version = registry.current(config.prod_folder)
    before = ledger.deployments.live_before(version.number)
    raw_path = config.output_folder / catalog.FINALDATA
    if not raw_path.is_file():
        raise MissingInputError(f"{raw_path}: no ingested data (run ingestion.py first)")
    state = prepared.as_of_file(config)  # when it covers finaldata.csv exactly, the history is not read
    return {"version": version, "model": registry.load_model(version), "config": config,
            "effect": effect_now(ledger, state),
            "previous": previous_model(config, before),
            "previous_version": before, "capacity": config.call_capacity,
            "list_size": holdout.list_size(config.call_capacity, config.holdout_share),
            "prepared": state, "data_end": state.data_end_byte if state is not None else raw_path.stat().st_size,
            "observations": state.observations if state else (ledger.files.committed_point() or (None, None))[1],
            "card": risklist.card_of(version) or {},
            "test": read_labelled_csv(config.testdata_path),
            "raw": None if state is not None else  # ids as ingested
            pd.read_csv(raw_path, dtype=str, keep_default_na=False, na_values=[""]),
            "version_files": (version.folder / catalog.VERSION_FILES).read_text(encoding="utf-8").splitlines(),
            **ledger_inputs(ledger, version.number)}


def effect_now(ledger: Ledger, state: prepared.State | None) -> dict | None:
    """The effect of calling as GET /risk/effect and the dashboard give it (the read side's own functions, on the
    ledger and the read state this report reads), the newest SHOWN_LISTS judged lists on their own; None when
    there is no read state covering the data."""
    from risk import retention

    if state is None:
        return None
    entries, cut = readside.entries_of(ledger.call_lists.latest(retention.MAX_LISTS + 1), state)
    return readside.effect_of(ledger, entries, cut, SHOWN_LISTS)


def measured_lists(inputs: dict) -> list[dict]:
    """The recorded lists (the newest 12) that later data has measured, newest first, each with its hit rate, lift,
    and expected beside realized (GET /risk/outcomes' answer, from the read side)."""
    if not inputs.get("call_lists") or inputs.get("prepared") is None:
        return []
    return [o for o in readside.list_outcomes(inputs["call_lists"], inputs["prepared"]) if o["followed"]]


def list_outcome(inputs: dict) -> dict | None:
    """The newest call list that later data has measured: precision at capacity (its hit rate) and lift."""
    measured = measured_lists(inputs)
    return measured[0] if measured else None


def retention_content(inputs: dict, economics: dict | None) -> dict:
    """The retention loop's sections: the effect of calling, how many calls pay (/risk's economics of the list),
    expected beside realized of the newest SHOWN_LISTS measured lists, and how many more were measured."""
    measured = measured_lists(inputs)
    return {"effect": inputs.get("effect"), "economics": economics, "outcomes": measured[:SHOWN_LISTS],
            "more_outcomes": max(len(measured) - SHOWN_LISTS, 0),
            "effect_note": None if inputs.get("effect") else "the effect shows once the prepared read state covers"
                                                             " the ingested data (the next ingestion run)"}


def version_facts(version: registry.Version, card: dict) -> dict:
    m = version.manifest
    return {"label": version.label, "created_at": m.get("created_at"), "score": m.get("score"),
            "rows": m.get("rows", card.get("rows")), "threshold": performance.threshold_of(m),
            "data_sha256": m.get("data_sha256"), "libraries": m.get("libraries", {})}


def build_content(inputs: dict) -> dict:
    """The report's content from what `read_inputs` gathered (pure)."""
    version, model = inputs["version"], inputs["model"]
    x, y = contract.split_xy(inputs["test"])
    proba = performance.probabilities(model, np.asarray(x, dtype=float))
    facts = version_facts(version, inputs["card"])
    try:
        frame = inputs["prepared"].clients if inputs["raw"] is None else \
            contract.validate_frame(inputs["raw"], catalog.FINALDATA, history=True)
        size = inputs.get("list_size", inputs["capacity"])
        ranked = max(size, 2 * inputs["capacity"], CURVE_MIN)  # the profit curve's length, as /risk's
        full = risklist.ranked(inputs["card"], model, frame, ranked, inputs["previous"])  # one builder
        newest = inputs["call_lists"][0] if inputs.get("call_lists") else None
        clients = {**risklist.with_groups(risklist.call_list(full, size), newest, version.number,
                                          inputs.get("data_end"), inputs.get("observations")),
                   "outcome": list_outcome(inputs), "previous_version": inputs["previous_version"]}
        money = readside.list_economics(inputs["config"], inputs["card"], full) if "config" in inputs else None
    except ContractError as exc:
        clients, money = {"clients": [], "movers": [], "population": 0, "problem": str(exc)}, None
    latest = inputs["diagnostics"][-1]["detail"] if inputs["diagnostics"] else {}
    portfolio = clients.get("population") or None  # the current clients the capacity is spread over
    return {
        "generated_at": now(), "version": facts,
        **ledger_content(inputs, inputs["version_files"]),
        "metrics": content_of.metrics_with_ci(np.asarray(y), proba, facts["threshold"]),
        "cv": content_of.cross_validated(inputs["card"]),
        "confusion": performance.confusion_matrix(y, performance.flagged(proba, facts["threshold"])),
        "calibration": content_of.calibration(np.asarray(y), proba),
        "at_capacity": content_of.at_capacity(np.asarray(y), proba, inputs["capacity"], portfolio),
        "calibration_scores": content_of.calibration_scores(np.asarray(y), proba),
        "scores": inputs["scores"], "drift": content_of.drift_history(inputs["decisions"]),
        "decision": content_of.decision_record(inputs["decision"], inputs["deployment"]),
        "quality": prepared.quality(inputs["prepared"]) if inputs["raw"] is None else
        content_of.data_quality(inputs["raw"]),
        "timings": content_of.timing_history(inputs["diagnostics"]),
        "dependencies": latest.get("dependencies") or [], "deployments": inputs["deployments"], "clients": clients,
        "retention": retention_content(inputs, money),
    }


def write_reports(config: Config, content: dict, pdf: bytes, html: str) -> dict[str, Path]:
    """The version's report files, then the latest copies (the record after the payload)."""
    paths = config.report_paths(content["version"]["label"])
    atomic_write_bytes(paths["pdf"], pdf)
    atomic_write_text(paths["html"], html)
    atomic_copy(paths["pdf"], paths["latest_pdf"])
    atomic_copy(paths["html"], paths["latest_html"])
    return paths


def prune_reports(config: Config) -> list[str]:
    """Delete the report folders of versions the registry has pruned (the latest copies stay)."""
    import shutil

    kept = {str(n) for n in registry.finished(config.prod_folder)}
    folder = config.model_folder / catalog.REPORTS
    doomed = [p for p in folder.iterdir() if p.is_dir() and p.name.isdigit() and p.name not in kept]
    for path in doomed:
        shutil.rmtree(path)
    return sorted(p.name for p in doomed)


def run_reporting(config: Config, parent_run: int | None = None) -> dict:
    from risk import report_render

    with recorded(config.ledger_path, "reporting", parent_run) as (ledger, _, detail):
        inputs = read_inputs(config, ledger)
        content = build_content(inputs)
        counts = content["confusion"]  # the PNG shows the report's own matrix
        title = f"Model version {inputs['version'].label} on {len(inputs['test'])} test rows"
        atomic_write_bytes(config.model_folder / catalog.PLOT, plot_confusion(counts, title))
        paths = write_reports(config, content, report_render.pdf(content), report_render.html(content))
        detail["pruned_reports"] = prune_reports(config)
        detail.update({"model_version": inputs["version"].label, "confusion_matrix": counts,
                       "path": str(config.model_folder / catalog.PLOT), "pdf": str(paths["pdf"]),
                       "html": str(paths["html"]), "metrics": {k: content["metrics"][k]["value"]
                                                               for k in ("f1", "precision", "recall", "auc")}})
    logger.info("reporting: version %s, confusion matrix %s -> %s, %s", detail["model_version"], counts,
                config.model_folder / catalog.PLOT, paths["pdf"].parent)
    return dict(detail)
