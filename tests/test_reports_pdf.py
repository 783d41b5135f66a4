"""The PDF model report: rendered to images with pdftoppm and read back with pdftotext (poppler-utils).

A course story with rejected rows, a deferred decision and a drift that redeploys is built once per module;
every section must be in the PDF with the numbers the ledger holds.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FOLDERS, REPO, synthetic_frame, write_frame
from sklearn.metrics import f1_score

from risk import catalog, contract, diagnostics, performance, pipeline, registry, store
from risk.config import Config, load_config
from risk.ledger import Ledger
from risk.report import SECTIONS

PDFTOPPM, PDFTOTEXT = Path("/usr/bin/pdftoppm"), Path("/usr/bin/pdftotext")
PNG = b"\x89PNG\r\n\x1a\n"
BAD_ROWS = (",".join(contract.COLUMNS) + "\n"
            "okay1,10,100,5,0\nneg,-4,100,5,1\nword,12,lots,5,0\nokay2,300,40,2,1\nlabel,5,5,5,7\n")


def judged_rows(config: Config, seed: int) -> object:
    """New rows labelled with the opposite of the deployed model's answers: a drift that retrains."""
    frame = synthetic_frame(60, seed=seed)
    model = registry.load_model(registry.current(config.prod_folder))
    frame[contract.TARGET] = 1 - performance.predictions(model, contract.matrix(contract.validate_frame(frame, "new")))
    return frame


def build_story(root: Path) -> Config:
    """Bootstrap on the practice data plus a file with 3 bad rows, a deferred batch, then a drift -> version 2."""
    for folder in FOLDERS.values():
        (root / folder).mkdir(parents=True)
    for source in sorted((REPO / "practicedata").glob("*.csv")):
        shutil.copy(source, root / "sourcedata" / source.name)
    (root / "sourcedata" / "partly_bad.csv").write_text(BAD_ROWS, encoding="utf-8")
    shutil.copy(REPO / "testdata" / "testdata.csv", root / "testdata" / "testdata.csv")
    (root / "config.json").write_text(json.dumps({**FOLDERS, "api_url": "http://127.0.0.1:9"}), encoding="utf-8")
    config = load_config(root / "config.json")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(diagnostics, "_latest_cached", lambda name, bucket: "unknown")
        assert pipeline.run_fullprocess(config)["action"] == "deployed version 1"
        for source in sorted((REPO / "sourcedata").glob("*.csv")):
            shutil.copy(source, config.input_folder / source.name)
        assert pipeline.run_fullprocess(config)["action"].startswith("deferred")
        write_frame(judged_rows(config, seed=1), config.input_folder / "dataset5.csv")
        assert pipeline.run_fullprocess(config)["action"] == "deployed version 2"
    return config


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return build_story(tmp_path_factory.mktemp("reports") / "project")


@pytest.fixture(scope="module")
def pdf_text(story: Config) -> str:
    assert PDFTOTEXT.is_file(), f"{PDFTOTEXT} is missing: run `make system-deps` (apt-get install poppler-utils)"
    pdf = story.model_folder / catalog.REPORTS / catalog.LATEST_PDF
    done = subprocess.run([str(PDFTOTEXT), "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def ledger_rows(story: Config) -> Iterator[dict]:
    with Ledger(story.ledger_path) as ledger:
        yield {"files": ledger.files.records(), "deployments": ledger.deployments.records(),
               "decisions": ledger.decisions.latest(), "diagnostics": ledger.diagnostics.latest(),
               "rejected": ledger.files.rejected_rows()}


def line_with(text: str, needle: str) -> str:
    lines = [line for line in text.splitlines() if needle in line]
    assert lines, f"{needle!r} not in the PDF text"
    return lines[0]


@pytest.mark.slow
def test_the_deploy_wrote_pdf_html_and_png_for_the_version_and_as_latest(story: Config) -> None:
    folder = story.model_folder / catalog.REPORTS
    assert (folder / "2" / "report.pdf").read_bytes() == (folder / catalog.LATEST_PDF).read_bytes()
    assert (folder / "2" / "report.html").read_bytes() == (folder / catalog.LATEST_HTML).read_bytes()
    assert (folder / "1" / "report.pdf").read_bytes().startswith(b"%PDF-")
    assert (story.model_folder / catalog.PLOT).read_bytes().startswith(PNG)
    assert not list(folder.rglob(".tmp-*"))


def test_every_section_is_in_the_pdf(pdf_text: str) -> None:
    for title in SECTIONS:
        assert title in pdf_text, title
    assert "Client attrition model · version 2" in pdf_text


def test_pdftoppm_renders_six_full_pages(story: Config, tmp_path: Path) -> None:
    assert PDFTOPPM.is_file(), f"{PDFTOPPM} is missing: run `make system-deps` (apt-get install poppler-utils)"
    pdf = story.model_folder / catalog.REPORTS / catalog.LATEST_PDF
    subprocess.run([str(PDFTOPPM), "-png", "-r", "60", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 6
    for page in pages:
        data = page.read_bytes()
        assert data.startswith(PNG)
        assert len(data) > 8_000, page  # a blank A4 page at 60 dpi is about 1 kB


def test_lineage_lists_every_file_with_its_rows_and_rejected_rows(pdf_text: str, ledger_rows: dict) -> None:
    bad = next(f for f in ledger_rows["files"] if f["name"] == "partly_bad.csv")
    assert bad["rejected_rows"] == 3 == len([r for r in ledger_rows["rejected"] if r["file"] == "partly_bad.csv"])
    for record in ledger_rows["files"]:
        fields = line_with(pdf_text, record["name"]).split()
        assert record["status"] in fields
        assert str(record["rows"]) in fields
        assert str(record["rejected_rows"] or 0) in fields
    ingested = sum(f["rows"] for f in ledger_rows["files"] if f["status"] == "ingested")
    assert f"{ingested} rows ingested" in pdf_text
    assert f"{sum(f['rejected_rows'] or 0 for f in ledger_rows['files'])} rows rejected" in pdf_text


def test_metrics_are_the_deployed_models_on_the_test_data_and_the_cards(story: Config, pdf_text: str) -> None:
    version = registry.current(story.prod_folder)
    model = registry.load_model(version)
    x, y = contract.split_xy(contract.read_csv(story.test_data / "testdata.csv"))
    f1 = f1_score(y, performance.predictions(model, np.asarray(x, dtype=float)), zero_division=1.0)
    assert re.search(rf"^\s*F1\s+{f1:.3f}\s+\[\d\.\d{{3}}, \d\.\d{{3}}\]", pdf_text, re.MULTILINE)
    card = json.loads((version.folder / "trainedmodel.json").read_text())["expected_performance"]
    assert f"{card['f1']:.3f} ± {card['f1_se']:.3f}" in pdf_text
    assert re.search(r"Recall\s+\d\.\d{3}\s+\[\d\.\d{3}, \d\.\d{3}\]", pdf_text)


def test_precision_and_lift_at_capacity_and_calibration_are_in_the_pdf(story: Config, pdf_text: str) -> None:
    from app import create_app

    model = registry.load_model(registry.current(story.prod_folder))
    x, y = contract.split_xy(contract.read_csv(story.test_data / "testdata.csv"))
    y, proba = np.asarray(y), model.predict_proba(np.asarray(x, dtype=float))[:, 1]
    assert create_app(story).test_client().get("/risk").get_json()["population"] == 72
    assert (y.tolist(), int(np.argmax(proba))) == ([1, 0, 0, 1, 1], 0)  # version 2 puts werf, a leaver, first
    # 20 calls for 72 current clients, judged on 5 test rows: 20 x 5 / 72 = 1.39 -> the top 1; it is a leaver:
    # precision 1/1 = 1.000, over a base rate of 3/5: lift 1 / 0.6 = 1.667
    assert re.search(r"Precision in top 1\s+1\.000\s+\[\d\.\d{3}, \d\.\d{3}\]", pdf_text)
    assert re.search(r"Lift in top 1\s+1\.667\s+\[", pdf_text)
    assert re.search(r"Brier score \d\.\d{3}, expected calibration error \d\.\d{3}", " ".join(pdf_text.split()))


def test_decision_deployments_timings_and_dependencies_come_from_the_ledger(pdf_text: str,
                                                                            ledger_rows: dict) -> None:
    drift = next(d for d in ledger_rows["decisions"] if d["verdict"] == "DRIFT")
    assert f"DRIFT by statistical -> {drift['action']}" in pdf_text
    assert "F1 dropped by" in pdf_text
    for deployment in ledger_rows["deployments"]:
        pattern = rf"^\s*{deployment['version']}\s+{deployment['action']}\s+.*\s{deployment['score']:.4f}\b"
        assert re.search(pattern, pdf_text, re.MULTILINE), deployment
    latest = ledger_rows["diagnostics"][-1]
    assert (f"ingestion {latest['ingestion_seconds'] * 1000:.1f} ms, training {latest['training_seconds'] * 1000:.1f}"
            f" ms (median of {latest['repeats']} runs)") in pdf_text
    for package in latest["detail"]["dependencies"]:
        assert package["pinned"] in line_with(pdf_text, f" {package['name']} ")


def test_the_top_clients_are_the_risk_lists(story: Config, pdf_text: str) -> None:
    """The ten highest risks among the current clients, computed here without risk.risklist: each client's newest
    row in finaldata.csv, those whose newest row says they left dropped, scored by the deployed model."""
    data = pd.read_csv(story.output_folder / catalog.FINALDATA, dtype={contract.ID_COLUMN: str})
    latest = data[data[contract.ID_COLUMN].notna()].groupby(contract.ID_COLUMN, sort=False).tail(1)
    latest = latest[latest[contract.TARGET] == 0]
    model = registry.load_model(registry.current(story.prod_folder))
    proba = model.predict_proba(latest[list(contract.FEATURES)].to_numpy(dtype="float64"))[:, 1]
    top = sorted(zip(latest[contract.ID_COLUMN], proba, strict=True), key=lambda pair: -pair[1])[:10]
    assert (len(latest), top[0][0]) == (72, "okay1")  # partly_bad.csv's low-activity client (10, 100, 5) leads
    for name, probability in top:  # shown rounded once (0.45253 -> 45.3%, not 0.4525 -> 45.2%)
        assert f"{probability:.1%}" in line_with(pdf_text, f" {name} ")


def test_data_quality_and_the_decisions_tests_have_their_numbers(story: Config, pdf_text: str,
                                                                 ledger_rows: dict) -> None:
    raw = store.read_history(story)
    for column in contract.FEATURES:
        fields = re.search(rf"^\s*{column}\s+(.*)$", pdf_text, re.MULTILINE).group(1).split()
        assert fields == [f"{raw[column].isna().mean():.1%}", f"{raw[column].min():.0f}", f"{raw[column].max():.0f}",
                          f"{raw[column].mean():.1f}", f"{raw[column].median():.1f}"]
    drift = next(d for d in ledger_rows["decisions"] if d["verdict"] == "DRIFT")
    for test in drift["evidence"]["tests"]:
        numbers = [str(test["n"]), f"{test['statistic']:.3f}", f"{test['p_adjusted']:.3f}", f"{test['effect']:.3f}"]
        rows = re.findall(rf"^\s*{test['name']}\s+.*$", pdf_text, re.MULTILINE)
        assert any(row.split()[-5:-1] == numbers or row.split()[-4:] == numbers for row in rows), (numbers, rows)


def words_of(path: Path) -> str:
    """The PDF's text as one line of words (pdftotext), so that a sentence wrapped over lines reads whole."""
    done = subprocess.run([str(PDFTOTEXT), "-layout", str(path), "-"], capture_output=True, text=True, check=True)
    return " ".join(done.stdout.split())


@pytest.mark.slow
def test_the_retention_page_has_the_effect_the_profit_curve_and_expected_beside_realized(deployed: Config) -> None:
    from scipy import stats
    from test_retention import called_and_held_out

    from app import create_app
    from risk import reporting

    called_and_held_out(deployed)  # 10 of 100 called left, 20 of 100 held out; 60 reached, 3 of them left
    reporting.run_reporting(deployed)
    words = words_of(deployed.model_folder / catalog.REPORTS / catalog.LATEST_PDF)
    page = words[words.index(SECTIONS[11]):]
    assert ("Over 1 judged list(s): Assigned to be called: 10 of 100 left (10.0%); Holdout (not called): 20 of 100"
            " left (20.0%); Actually reached (a hint: not randomized): 3 of 60 left (5.0%).") in page
    # Newcombe by hand (tests/test_effect.py): -10 points [-19.95, -0.01]; saves per 100 calls 10 [0.01, 19.95]
    assert ("Called minus holdout: -10.00 points (95% interval -19.95 to -0.01): calls help. Saves per 100 calls:"
            " 10.00 (95% interval 0.01 to 19.95).") in page
    client = create_app(deployed).test_client()
    pooled = client.get("/risk/effect").get_json()["pooled"]  # the same numbers as the API, from the same functions
    assert f"The smallest detectable fall is {pooled['detectable_points']:.1f} points" in page
    money = client.get("/risk").get_json()["economics"]
    assert f"Recommended calls: {money['recommended_calls']} (capacity {money['capacity']};" in page
    assert f"Expected profit at capacity: {money['at_capacity']:,.2f}; most profitable: {money['best_calls']}" in page
    # the list's hit rate: 30 of 200 left; expected on the holdout: 100 clients at p = 0.15, Binomial(100, 0.15)'s
    # 2.5% and 97.5% points; realized on the same 100: 20 left
    low, high = stats.binom(100, 0.15).ppf([0.025, 0.975])
    assert f" 15% of 200 holdout 15% ({low:.0f}%-{high:.0f}%) 20% (20 of 100) page 6" in page
    html = (deployed.model_folder / catalog.REPORTS / catalog.LATEST_HTML).read_text(encoding="utf-8")
    assert "Called minus holdout: -10.00 points (95% interval -19.95 to -0.01): calls help." in html
    assert f"Recommended calls: {money['recommended_calls']} (capacity {money['capacity']};" in html
