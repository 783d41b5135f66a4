"""Deployment as the operator uses it: --list, --rollback with who and why, pruning, version warnings, the lock."""
from __future__ import annotations

import json
import logging

import pytest

import deployment as deployment_cli
from risk import deployment, registry, scoring, training
from risk.config import Config
from risk.files import single_flight
from risk.ledger import Ledger


def redeploy(config: Config, times: int = 1) -> None:
    """Deploy the same data again `times` times (each deployment is a new version)."""
    for _ in range(times):
        training.run_training(config)
        scoring.run_scoring(config)
        deployment.run_deployment(config)


def flip_byte(path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_list_shows_every_version_and_marks_the_current_one(deployed: Config, capsys) -> None:
    redeploy(deployed)
    assert deployment_cli.main(["--config", str(deployed.config_path), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["version", "created"]
    assert [line[:9].split() for line in lines[1:]] == [["1"], ["*", "2"]]
    assert all(line.rstrip().endswith("ok") for line in lines[1:])


def test_list_as_json_carries_score_and_data_fingerprint(deployed: Config, capsys) -> None:
    assert deployment_cli.main(["--config", str(deployed.config_path), "--list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    manifest = registry.current(deployed.prod_folder).manifest
    assert row == {"version": 1, "created_at": manifest["created_at"], "score": manifest["score"],
                   "data_sha256": manifest["data_sha256"], "current": True, "verified": True, "problem": None}


def test_rollback_goes_to_the_previous_version_and_records_who_and_why(deployed: Config) -> None:
    redeploy(deployed, 2)
    argv = ["--config", str(deployed.config_path), "--rollback", "--reason", "v3 looks wrong"]
    assert deployment_cli.main(argv) == 0
    assert registry.current(deployed.prod_folder).number == 2
    assert (deployed.prod_folder / "trainedmodel.pkl").read_bytes() == \
        (registry.versions_folder(deployed.prod_folder) / "2" / "trainedmodel.pkl").read_bytes()
    with Ledger(deployed.ledger_path) as ledger:
        last = ledger.deployments.records()[-1]
    assert (last["version"], last["action"], last["reason"]) == (2, "rollback", "v3 looks wrong")
    assert last["actor"]
    assert deployment_cli.main(["--config", str(deployed.config_path), "--rollback"]) == 0
    assert registry.current(deployed.prod_folder).number == 1


def test_rollback_to_a_named_version_and_back_forward(deployed: Config) -> None:
    redeploy(deployed, 2)
    assert deployment_cli.main(["--config", str(deployed.config_path), "--rollback", "1"]) == 0
    assert registry.current(deployed.prod_folder).number == 1
    assert deployment_cli.main(["--config", str(deployed.config_path), "--rollback", "3"]) == 0
    assert registry.current(deployed.prod_folder).number == 3


@pytest.mark.parametrize("argv", [["--rollback"], ["--rollback", "1"], ["--rollback", "7"]])
def test_impossible_rollbacks_exit_1_and_keep_the_current_version(deployed: Config, argv, caplog) -> None:
    assert deployment_cli.main(["--config", str(deployed.config_path), *argv]) == 1
    assert registry.current(deployed.prod_folder).number == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1


def test_rollback_to_a_tampered_version_is_refused_naming_the_file(deployed: Config, caplog) -> None:
    redeploy(deployed)
    bad = registry.versions_folder(deployed.prod_folder) / "1" / "trainedmodel.pkl"
    flip_byte(bad)
    assert deployment_cli.main(["--config", str(deployed.config_path), "--rollback", "1"]) == 1
    assert registry.current(deployed.prod_folder).number == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"{bad}: sha256 does not match the manifest (tampered or truncated)"]
    with Ledger(deployed.ledger_path) as ledger:
        assert [d["action"] for d in ledger.deployments.records()] == ["deploy", "deploy"]


def rollback(config: Config, *argv: str) -> int:
    """`deployment.py --rollback ...` on the project; the exit code."""
    return deployment_cli.main(["--config", str(config.config_path), "--rollback", *argv])


def rejected_3_then_deployed_4(config: Config) -> None:
    """Versions 1 to 3 deployed, the operator rolls 3 back to 1 (rejecting 3), then version 4 is deployed."""
    redeploy(config, 2)
    assert rollback(config, "1", "--reason", "3 misranks") == 0
    redeploy(config)
    assert registry.current_number(config.prod_folder) == 4


def test_a_plain_rollback_undoes_the_deployment_history_never_to_a_rejected_version(deployed: Config) -> None:
    rejected_3_then_deployed_4(deployed)
    assert rollback(deployed) == 0
    assert registry.current_number(deployed.prod_folder) == 1  # live before 4; 3 was rolled back from
    assert rollback(deployed) == 0
    assert registry.current_number(deployed.prod_folder) == 2  # before 1 came 4 and 3, both rolled back from
    assert rollback(deployed) == 1  # 1, 3 and 4 were all rolled back from: nothing left to undo
    assert registry.current_number(deployed.prod_folder) == 2
    with Ledger(deployed.ledger_path) as ledger:
        assert [(d["version"], d["action"]) for d in ledger.deployments.records()] == [
            (1, "deploy"), (2, "deploy"), (3, "deploy"), (1, "rollback"), (4, "deploy"), (1, "rollback"),
            (2, "rollback")]


def test_a_plain_rollback_skips_a_version_whose_files_no_longer_verify(deployed: Config) -> None:
    rejected_3_then_deployed_4(deployed)
    flip_byte(registry.versions_folder(deployed.prod_folder) / "1" / "trainedmodel.pkl")
    assert rollback(deployed) == 0
    assert registry.current_number(deployed.prod_folder) == 2


def test_pruning_protects_the_version_a_plain_rollback_reaches(deployed: Config) -> None:
    config = deployed._replace(keep_versions=3)
    rejected_3_then_deployed_4(config)  # 4 versions, keep 3: 2 goes; 1 (what a rollback reaches) and 4 stay
    assert registry.finished(config.prod_folder) == [1, 3, 4]
    assert rollback(config) == 0
    assert registry.current_number(config.prod_folder) == 1


def test_pruning_keeps_the_last_n_but_never_the_current_or_what_a_rollback_reaches(deployed: Config) -> None:
    config = deployed._replace(keep_versions=3)
    redeploy(config, 4)  # versions 1..5; keep 3 -> 3, 4, 5
    assert registry.finished(config.prod_folder) == [3, 4, 5]
    deployment.run_rollback(config, 3)  # current 3; 5 is rolled back from
    redeploy(config)  # version 6; keep 3 but protect current (6) and what a rollback reaches (3, live before it)
    assert registry.finished(config.prod_folder) == [3, 5, 6]
    deployment.run_rollback(config, 5)  # the operator takes 5 back: 6 is rolled back from
    redeploy(config, 2)  # 7, 8 deployed; then current 8 and 7, live before it
    assert registry.finished(config.prod_folder) == [6, 7, 8]


def test_pruning_never_removes_a_rolled_back_current_version(deployed: Config) -> None:
    config = deployed._replace(keep_versions=2)
    redeploy(config, 2)  # 1, 2, 3 -> keep 2, 3
    deployment.run_rollback(config, 2)
    assert registry.prune(config.prod_folder, 1) == [3]  # 2 is current, and nothing else is protected
    assert registry.current(config.prod_folder).number == 2


def test_a_model_saved_by_other_library_versions_warns_with_both(deployed: Config, caplog) -> None:
    folder = registry.versions_folder(deployed.prod_folder) / "1"
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["libraries"]["sklearn"] = "0.0.1"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    caplog.set_level(logging.WARNING)
    registry.load_model(registry.current(deployed.prod_folder))
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "sklearn 0.0.1 (saved) vs" in warning
    assert registry.library_versions()["sklearn"] in warning


def test_a_manifest_without_the_model_hash_is_refused(deployed: Config) -> None:
    folder = registry.versions_folder(deployed.prod_folder) / "1"
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["sha256"]["trainedmodel.pkl"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(registry.IntegrityError, match="does not list the sha256"):
        registry.current(deployed.prod_folder)


def test_deploy_by_hand_while_the_pipeline_holds_the_lock_exits_1(deployed: Config, caplog) -> None:
    with single_flight(deployed.lock_path) as mine:
        assert mine
        assert deployment_cli.main(["--config", str(deployed.config_path), "--rollback", "1"]) == 1
    assert any("another pipeline run holds the lock" in r.getMessage() for r in caplog.records)
    assert registry.current(deployed.prod_folder).number == 1


def test_the_movers_baseline_is_the_version_live_before_whatever_its_number(tmp_path) -> None:
    # History 1, 2, 3, a rollback 3 -> 1, then 4 deployed: 4 followed 1 (not 3, the next lower number);
    # 1 was last made current by the rollback, after 3; 2 followed 1.
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        for version, action in ((1, "deploy"), (2, "deploy"), (3, "deploy"), (1, "rollback"), (4, "deploy")):
            ledger.deployments.record(None, version, "a" * 64, 0.5, action=action)
        assert [ledger.deployments.live_before(v) for v in (4, 1, 2, 3)] == [1, 3, 1, 2]
        assert ledger.deployments.live_before(5) is None
