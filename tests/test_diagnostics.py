"""diagnostics.py: predictions, summary statistics, missing values, timings, dependencies and the report."""
from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import snapshot

import diagnostics
from risk import contract, registry
from risk.config import Config
from risk.views import FINALDATA

SECTIONS = {"model_version", "predictions", "summary_statistics", "missing_share", "execution_time", "dependencies"}


@pytest.fixture(autouse=True)
def fresh_latest_cache() -> Iterator[None]:
    diagnostics._latest_cached.cache_clear()
    yield
    diagnostics._latest_cached.cache_clear()


@pytest.fixture
def no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip with no usable package index: no config files, no find-links, a closed loopback port."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)


def fake_latest(name: str) -> str:
    return f"latest-{name}"


def test_predictions_of_the_deployed_model_on_the_test_data(deployed: Config) -> None:
    report = diagnostics.diagnose(deployed, timings=False, latest=fake_latest)
    assert report["model_version"] == "1"
    assert len(report["predictions"]) == 5
    assert set(report["predictions"]) <= {0, 1}
    test = contract.read_csv(deployed.test_data / "testdata.csv")
    model = registry.load_model(registry.current(deployed.prod_folder))
    assert report["predictions"] == model.predict(contract.split_xy(test)[0]).tolist()


def test_summary_statistics_are_pandas_mean_median_and_std_of_finaldata(deployed: Config) -> None:
    stats = diagnostics.diagnose(deployed, timings=False, latest=fake_latest)["summary_statistics"]
    finaldata = pd.read_csv(deployed.output_folder / FINALDATA)
    assert set(stats) == set(contract.FEATURES)
    for column in contract.FEATURES:
        expected = {"mean": finaldata[column].mean(), "median": finaldata[column].median(),
                    "std": finaldata[column].std()}
        assert stats[column] == pytest.approx(expected)


def test_missing_share_per_column() -> None:
    frame = pd.DataFrame({"a": [1.0, None, 3.0, None], "b": [1, 2, 3, 4], "c": [None, "x", "y", "z"]})
    assert diagnostics.missing_share(frame) == {"a": 0.5, "b": 0.0, "c": 0.25}


def test_execution_time_is_positive_and_touches_no_project_file(deployed: Config) -> None:
    folders = (deployed.input_folder, deployed.output_folder, deployed.model_folder, deployed.prod_folder)
    before = [snapshot(folder) for folder in folders]
    timings = diagnostics.execution_time(deployed)
    assert timings["ingestion_seconds"] > 0
    assert timings["training_seconds"] > 0
    assert [snapshot(folder) for folder in folders] == before


def test_execution_time_with_nothing_to_ingest_says_why(config: Config) -> None:
    for path in config.input_folder.glob("*.csv"):
        path.unlink()
    timings = diagnostics.execution_time(config)
    assert timings["ingestion_seconds"] is None
    assert str(config.input_folder) in timings["note"]


def test_dependencies_lists_installed_pinned_and_latest(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# runtime\npandas==3.1.1\nflask>=3\nNumPy == 2.4.6 ; python_version > '3'\n"
                            "surely-not-installed-pkg==1.0\n")
    rows = diagnostics.dependencies(requirements, latest=fake_latest)
    assert rows == [
        {"name": "pandas", "installed": importlib.metadata.version("pandas"), "pinned": "3.1.1",
         "latest": "latest-pandas"},
        {"name": "numpy", "installed": importlib.metadata.version("numpy"), "pinned": "2.4.6",
         "latest": "latest-numpy"},
        {"name": "surely-not-installed-pkg", "installed": "not installed", "pinned": "1.0",
         "latest": "latest-surely-not-installed-pkg"},
    ]


def test_the_shipped_requirements_are_all_pinned_and_reported() -> None:
    rows = diagnostics.dependencies(diagnostics.REQUIREMENTS, latest=fake_latest)
    names = [row["name"] for row in rows]
    assert {"pandas", "numpy", "scikit-learn", "flask", "matplotlib"} <= set(names)
    assert all(row["installed"] == row["pinned"] for row in rows), rows


def test_latest_version_without_a_network_is_unknown(no_index: None) -> None:
    start = time.monotonic()
    assert diagnostics.latest_version("pandas") == "unknown"
    assert time.monotonic() - start < diagnostics.PIP_TIMEOUT_SECONDS + 5


def test_latest_version_with_no_index_at_all_is_unknown(monkeypatch: pytest.MonkeyPatch, no_index: None) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    assert diagnostics.latest_version("pandas") == "unknown"


def test_latest_version_gives_up_on_an_index_that_never_answers(monkeypatch: pytest.MonkeyPatch,
                                                                no_index: None) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{silent.getsockname()[1]}/simple")
        monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "60")
        monkeypatch.setattr(diagnostics, "PIP_TIMEOUT_SECONDS", 2)
        start = time.monotonic()
        assert diagnostics.latest_version("pandas") == "unknown"
        assert time.monotonic() - start < 10


def test_main_json_prints_every_section_and_writes_the_report(deployed: Config, capsys: pytest.CaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnostics, "_latest_cached", lambda name, bucket: "unknown")
    assert diagnostics.main(["--config", str(deployed.config_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == SECTIONS
    assert printed == json.loads((deployed.model_folder / diagnostics.REPORT).read_text())
    assert printed["model_version"] == "1"
    assert printed["execution_time"]["training_seconds"] > 0
    assert {row["latest"] for row in printed["dependencies"]} == {"unknown"}


def test_main_without_a_deployed_model_exits_1(config: Config, caplog: pytest.LogCaptureFixture) -> None:
    assert diagnostics.main(["--config", str(config.config_path)]) == 1
    assert "no model deployed yet" in caplog.text
    assert not (config.model_folder / diagnostics.REPORT).exists()
