"""deployment.py and risk.registry: numbered verified versions, an atomic `current`, crash recovery."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from conftest import synthetic_frame, write_frame

import deployment as deployment_cli
from risk import catalog, contract, deployment, ingestion, performance, registry, scoring, training
from risk.config import Config
from risk.errors import IntegrityError, MissingInputError
from risk.files import TEMP_PREFIX, atomic_write_text, sha256_file
from risk.ledger import Ledger


def version_folder(config: Config, number: int) -> Path:
    return registry.versions_folder(config.prod_folder) / str(number)


def retrain_on_new_data(config: Config, seed: int) -> None:
    write_frame(synthetic_frame(40, seed=seed), config.input_folder / f"new{seed}.csv")
    ingestion.run_ingestion(config)
    training.run_training(config)


def predicts(version: registry.Version) -> bool:
    model = registry.load_model(version)
    x, _ = contract.split_xy(synthetic_frame(3, seed=9))
    return set(performance.predictions(model, x).tolist()) <= {0, 1}


def test_first_deploy_creates_version_1_with_a_manifest(deployed):
    folder = version_folder(deployed, 1)
    manifest = json.loads((folder / catalog.MANIFEST).read_text(encoding="utf-8"))
    assert set(manifest["sha256"]) == {*registry.PAYLOAD, catalog.SAFE_MODEL, catalog.CARD}
    for name, digest in manifest["sha256"].items():
        assert sha256_file(folder / name) == digest
    assert manifest["version"] == 1
    score = float((deployed.model_folder / catalog.SCORE).read_text(encoding="utf-8"))
    assert manifest["score"] == pytest.approx(score, abs=1e-6)
    assert (deployed.prod_folder / catalog.CURRENT).read_text(encoding="utf-8").strip() == "1"


def test_flat_course_files_equal_the_current_version(deployed):
    for name in registry.PAYLOAD:
        assert (deployed.prod_folder / name).read_bytes() == (version_folder(deployed, 1) / name).read_bytes()
    assert (deployed.prod_folder / catalog.MODEL).read_bytes() == (
        deployed.model_folder / catalog.MODEL).read_bytes()


def test_a_second_deploy_makes_version_2_and_keeps_version_1(deployed):
    retrain_on_new_data(deployed, seed=11)
    scoring.run_scoring(deployed)
    manifest = deployment.run_deployment(deployed)
    assert manifest["version"] == 2
    assert registry.current_number(deployed.prod_folder) == 2
    assert registry.verify(deployed.prod_folder, 1).number == 1
    assert (deployed.prod_folder / catalog.VERSION_FILES).read_text(encoding="utf-8").splitlines()[-1] == "new11.csv"


def test_deploying_the_serving_model_again_by_hand_makes_no_version(deployed, caplog):
    """Run twice, deployment.py would make identical versions and prune the one a rollback needs."""
    with caplog.at_level(logging.INFO):
        assert deployment_cli.main(["--config", str(deployed.config_path)]) == 0
    assert registry.finished(deployed.prod_folder) == [1]
    assert "version 1 already serves the trained model; nothing deployed" in caplog.text
    retrain_on_new_data(deployed, seed=11)
    scoring.run_scoring(deployed)
    assert deployment_cli.main(["--config", str(deployed.config_path)]) == 0  # a new model still deploys
    assert registry.current_number(deployed.prod_folder) == 2


def test_a_version_lists_the_files_its_model_was_trained_on_not_those_ingested_since(deployed):
    retrain_on_new_data(deployed, seed=11)  # trained on the course files and new11.csv
    scoring.run_scoring(deployed)
    write_frame(synthetic_frame(20, seed=12), deployed.input_folder / "later.csv")
    ingestion.run_ingestion(deployed)  # after training, before the deploy
    deployment.run_deployment(deployed)
    listed = (version_folder(deployed, 2) / catalog.VERSION_FILES).read_text(encoding="utf-8").splitlines()
    assert listed[-1] == "new11.csv"
    assert "later.csv" not in listed
    (deployed.model_folder / catalog.TRAINED_FILES).write_text("other.csv\n", encoding="utf-8")
    with pytest.raises(MissingInputError, match="not the list of files the trained model's card names"):
        deployment.run_deployment(deployed)


def test_a_model_without_a_recorded_score_is_refused(deployed, caplog):
    retrain_on_new_data(deployed, seed=12)
    with pytest.raises(MissingInputError, match="this model has no score on record"):
        deployment.run_deployment(deployed)
    with caplog.at_level(logging.INFO):
        assert deployment_cli.main(["--config", str(deployed.config_path)]) == 1
    assert any("no score on record" in r.getMessage() for r in caplog.records)
    assert registry.current_number(deployed.prod_folder) == 1
    assert not version_folder(deployed, 2).exists()


def test_deploy_without_a_model_exits_1(config, caplog):
    with caplog.at_level(logging.INFO):
        assert deployment_cli.main(["--config", str(config.config_path)]) == 1
    assert any("no trained model to deploy" in r.getMessage() for r in caplog.records)
    assert registry.current_number(config.prod_folder) is None


def scored(config: Config) -> Config:
    ingestion.run_ingestion(config)
    training.run_training(config)
    scoring.run_scoring(config)
    return config


def test_deploy_without_a_model_card_exits_1(config, caplog):
    (scored(config).model_folder / catalog.CARD).unlink()
    with caplog.at_level(logging.INFO):
        assert deployment_cli.main(["--config", str(config.config_path)]) == 1
    assert any("model card not found" in r.getMessage() for r in caplog.records)
    assert registry.current_number(config.prod_folder) is None


def test_a_card_of_another_model_is_refused(config):
    card = scored(config).model_folder / catalog.CARD
    other = {**json.loads(card.read_text(encoding="utf-8")), "model_sha256": "ab" * 32}
    card.write_text(json.dumps(other), encoding="utf-8")
    with pytest.raises(MissingInputError, match=r"card is for model abababababab, not the trained model"):
        deployment.run_deployment(config)
    assert not registry.versions_folder(config.prod_folder).exists()


def test_verify_refuses_a_flipped_byte_naming_the_file(deployed):
    model = version_folder(deployed, 1) / catalog.MODEL
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256 does not match the manifest") as err:
        registry.verify(deployed.prod_folder, 1)
    assert str(model) in str(err.value)
    with pytest.raises(IntegrityError):
        registry.current(deployed.prod_folder)


def test_verify_refuses_a_missing_file_naming_it(deployed):
    score = version_folder(deployed, 1) / catalog.SCORE
    score.unlink()
    with pytest.raises(IntegrityError, match="listed in the manifest is missing") as err:
        registry.verify(deployed.prod_folder, 1)
    assert str(score) in str(err.value)


def test_recover_removes_an_unfinished_version_and_temp_files(deployed):
    unfinished = version_folder(deployed, 2)
    unfinished.mkdir()
    (unfinished / catalog.MODEL).write_bytes(b"half")
    temp = deployed.prod_folder / f"{TEMP_PREFIX}current.abc"
    temp.write_text("2\n", encoding="utf-8")
    removed = registry.recover(deployed.prod_folder)
    assert removed == ["1 temp file(s)", "unfinished version 2"]
    assert not unfinished.exists()
    assert not temp.exists()
    assert version_folder(deployed, 1).is_dir()
    assert registry.recover(deployed.prod_folder) == []


def crash_when_writing(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    def failing(target: Path, text: str) -> None:
        if Path(target).name == name:
            raise OSError(28, "No space left on device")
        atomic_write_text(target, text)

    monkeypatch.setattr(registry, "atomic_write_text", failing)


@pytest.mark.parametrize("name", [catalog.MANIFEST, catalog.CURRENT])
def test_a_crash_mid_deploy_leaves_the_previous_version_current(deployed, monkeypatch, name):
    flat_before = {n: (deployed.prod_folder / n).read_bytes() for n in registry.PAYLOAD}
    retrain_on_new_data(deployed, seed=13)
    scoring.run_scoring(deployed)
    crash_when_writing(monkeypatch, name)
    with pytest.raises(OSError, match="No space left"):
        deployment.run_deployment(deployed)
    version = registry.current(deployed.prod_folder)
    assert version.number == 1
    assert predicts(version)
    assert {n: (deployed.prod_folder / n).read_bytes() for n in registry.PAYLOAD} == flat_before
    assert not list(deployed.prod_folder.rglob(TEMP_PREFIX + "*"))
    monkeypatch.undo()
    manifest = deployment.run_deployment(deployed)
    assert registry.current(deployed.prod_folder).number == manifest["version"] > 1
    assert predicts(registry.current(deployed.prod_folder))
    assert (deployed.prod_folder / catalog.MODEL).read_bytes() == (deployed.model_folder / catalog.MODEL).read_bytes()


def usage_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as done:
        deployment_cli.main(argv)
    assert done.value.code == 2
    return capsys.readouterr().err


def test_reason_without_rollback_is_a_usage_error_and_deploys_nothing(deployed, capsys):
    retrain_on_new_data(deployed, seed=14)
    scoring.run_scoring(deployed)  # a plain deployment would make version 2
    for extra in (["--reason", "foo"], ["--list", "--reason", "foo"]):
        err = usage_error(["--config", str(deployed.config_path), *extra], capsys)
        assert "--reason is only for --rollback" in err
    assert registry.current_number(deployed.prod_folder) == 1
    assert not version_folder(deployed, 2).exists()


@pytest.mark.parametrize("argv", [["--rollback", "0"], ["--rollback", "-1"], ["--rollback", "v1"],
                                  ["--rollback", "--reason", " "]])
def test_bad_rollback_arguments_are_usage_errors(deployed, capsys, argv):
    err = usage_error(["--config", str(deployed.config_path), *argv], capsys)
    assert "expected a version number (1, 2, ...; see --list)" in err or "expected a reason" in err
    assert registry.current_number(deployed.prod_folder) == 1


def test_a_rollback_without_a_reason_records_that_none_was_given(deployed):
    retrain_on_new_data(deployed, seed=15)
    scoring.run_scoring(deployed)
    deployment.run_deployment(deployed)
    assert deployment_cli.main(["--config", str(deployed.config_path), "--rollback"]) == 0
    assert deployment_cli.main(["--config", str(deployed.config_path), "--rollback", "2", "--reason", " fixed "]) == 0
    with Ledger(deployed.ledger_path) as ledger:
        rollbacks = [(d["version"], d["reason"]) for d in ledger.deployments.records() if d["action"] == "rollback"]
    assert rollbacks == [(1, "no reason given"), (2, "fixed")]
