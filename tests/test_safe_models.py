"""Models that cannot run code: every load reads the skops file with a list of trusted types; the course's
pickle is never unpickled; a version whose model and manifest were replaced together is refused and runs nothing."""
from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import skops.io

from app import create_app
from risk import catalog, contract, diagnostics, migrate, model, registry, reporting
from risk.config import Config
from risk.errors import IntegrityError
from risk.files import sha256_file
from tests.test_app import RECORD

ROOT = Path(__file__).resolve().parents[1]


class RunsOnLoad:
    """An object whose loading runs code: skops would call __setstate__, pickle calls what __reduce__ names."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __setstate__(self, state: dict) -> None:
        Path(state["marker"]).write_text("ran", encoding="utf-8")

    def __reduce__(self) -> tuple:
        return Path.write_text, (Path(self.marker), "ran")


def replace_with_manifest(version: Path, name: str, data: bytes) -> None:
    """Replace a version's file and its manifest entry together, as someone who can write the folder would."""
    (version / name).write_bytes(data)
    manifest = json.loads((version / catalog.MANIFEST).read_text(encoding="utf-8"))
    manifest["sha256"][name] = sha256_file(version / name)
    (version / catalog.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def test_a_skops_file_with_code_is_refused_runs_nothing_and_ready_says_why(deployed: Config, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    version = registry.versions_folder(deployed.prod_folder) / "1"
    replace_with_manifest(version, catalog.SAFE_MODEL, skops.io.dumps(RunsOnLoad(str(marker))))
    with pytest.raises(IntegrityError, match=r"types that are not trusted: .*RunsOnLoad"):
        registry.load_model(registry.verify(deployed.prod_folder, 1))
    client = create_app(deployed).test_client()
    answer = client.get("/ready")
    assert answer.status_code == 503
    assert answer.json["error"] == "model_unverified"
    assert "RunsOnLoad" in answer.json["detail"]
    assert str(deployed.root) not in answer.json["detail"]
    assert client.post("/prediction", json={"records": [RECORD]}).status_code == 503
    assert not marker.exists()


@pytest.mark.slow  # a second or more
def test_a_pickle_with_code_beside_the_model_is_never_run(deployed: Config, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    version = registry.versions_folder(deployed.prod_folder) / "1"
    replace_with_manifest(version, catalog.MODEL, pickle.dumps(RunsOnLoad(str(marker))))
    (deployed.prod_folder / catalog.MODEL).write_bytes((version / catalog.MODEL).read_bytes())
    (deployed.model_folder / catalog.MODEL).write_bytes((version / catalog.MODEL).read_bytes())
    client = create_app(deployed).test_client()
    assert client.get("/ready").status_code == 200
    assert client.post("/prediction", json={"records": [RECORD]}).status_code == 200
    diagnostics.run_diagnostics(deployed)
    reporting.run_reporting(deployed)
    assert not marker.exists()


def test_a_file_that_is_not_a_skops_model_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / catalog.SAFE_MODEL
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(IntegrityError, match=f"{path}: not a readable skops model"):
        model.read(path, contract.FEATURES)


def test_nothing_under_risk_unpickles() -> None:
    """No module of the library calls pickle.load(s) or joblib.load: the course's pickle is written, never read
    (risk/migrate.py converts versions deployed before skops, and says so; it is the one exception)."""
    offenders = []
    for path in sorted((ROOT / "risk").glob("*.py")):
        if path.name == "migrate.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in {"load", "loads", "Unpickler"} \
                    and isinstance(node.value, ast.Name) and node.value.id in {"pickle", "joblib", "cloudpickle"}:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
    assert model.TRUSTED == ()  # a new trusted type is a reviewed change to this line


def test_the_model_takes_its_own_features_by_name_from_contract_rows(deployed: Config) -> None:
    loaded = registry.load_model(registry.current(deployed.prod_folder))
    assert loaded.features == contract.FEATURES
    x = np.array([[1.0, 2.0, 3.0], [40.0, 5.0, 600.0]])[:, :len(contract.FEATURES)]
    reversed_features = tuple(reversed(contract.FEATURES))
    trained_reversed = model.Model(loaded.estimator, reversed_features)
    np.testing.assert_allclose(trained_reversed.predict_proba(x), loaded.estimator.predict_proba(x[:, ::-1]),
                               rtol=1e-12)
    np.testing.assert_array_equal(trained_reversed.coef_[0][::-1], loaded.estimator.coef_[0])
    with pytest.raises(IntegrityError, match=r"trained on feature\(s\) \['gone'\] that the data contract"):
        model.Model(loaded.estimator, [*contract.FEATURES, "gone"])


def test_a_version_from_before_skops_is_refused_until_migrate_converts_it(deployed: Config) -> None:
    version = registry.versions_folder(deployed.prod_folder) / "1"
    (version / catalog.SAFE_MODEL).unlink()
    manifest = json.loads((version / catalog.MANIFEST).read_text(encoding="utf-8"))
    del manifest["sha256"][catalog.SAFE_MODEL]
    (version / catalog.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    answer = create_app(deployed).test_client().get("/ready")
    assert answer.status_code == 503
    assert "run `python -m risk.migrate` once" in answer.json["detail"]
    assert migrate.run_migration(deployed) == {"history": "current", "converted_versions": [1]}
    assert create_app(deployed).test_client().get("/ready").json == {"status": "ready", "model_version": "1"}
    assert migrate.run_migration(deployed) == {"history": "current", "converted_versions": []}


def test_a_version_that_would_run_code_is_refused_by_every_stage_and_by_rollback(deployed: Config,
                                                                                 tmp_path: Path) -> None:
    from risk import deployment, pipeline, scoring, training
    from risk.errors import RiskError

    training.run_training(deployed)
    scoring.run_scoring(deployed)
    deployment.run_deployment(deployed)  # version 2, good
    marker = tmp_path / "ran"
    version = registry.versions_folder(deployed.prod_folder) / "1"
    replace_with_manifest(version, catalog.SAFE_MODEL, skops.io.dumps(RunsOnLoad(str(marker))))
    with pytest.raises(IntegrityError, match=rf"{version / catalog.SAFE_MODEL}: refused, .*not trusted"):
        deployment.run_rollback(deployed, 1, "to the tampered one")
    assert registry.current_number(deployed.prod_folder) == 2  # the good version stays
    (deployed.prod_folder / catalog.CURRENT).write_text("1\n", encoding="utf-8")  # forced, as an attacker would
    for stage in (diagnostics.run_diagnostics, reporting.run_reporting):
        with pytest.raises(RiskError, match="not trusted"):
            stage(deployed)
    (deployed.input_folder / "more.csv").write_bytes((deployed.input_folder / "dataset1.csv").read_bytes())
    with pytest.raises(RiskError, match="not trusted"):
        pipeline.run_fullprocess(deployed)
    assert create_app(deployed).test_client().get("/ready").status_code == 503
    assert not marker.exists()
