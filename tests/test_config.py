"""risk.config: folders resolve beside config.json; every bad config names the file and the key."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from conftest import FOLDERS, REPO

import ingestion as ingestion_cli
import training
from risk.config import DEFAULT_API_URL, DEFAULT_MAX_REQUEST_BYTES, DEFAULTS, KNOWN_KEYS, load_config
from risk.errors import ConfigError


def write_config(folder: Path, data: object) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_folders_resolve_relative_to_the_config_file_not_the_cwd(project, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(project / "config.json")
    assert config.input_folder == (project / "sourcedata").resolve()
    assert config.output_folder == (project / "ingesteddata").resolve()
    assert config.test_data == (project / "testdata").resolve()
    assert config.model_folder == (project / "practicemodels").resolve()
    assert config.prod_folder == (project / "production_deployment").resolve()
    assert config.root == project.resolve()


def test_a_relative_config_path_is_resolved_once_from_the_cwd(project, monkeypatch):
    monkeypatch.chdir(project.parent)
    config = load_config(Path(project.name) / "config.json")
    assert config.config_path == (project / "config.json").resolve()
    assert config.ledger_path == (project / "ingesteddata" / "ledger.sqlite").resolve()


def test_optional_settings_take_their_defaults(tmp_path):
    config = load_config(write_config(tmp_path, FOLDERS))
    assert config.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES
    assert config.api_url == DEFAULT_API_URL


def test_api_url_loses_its_trailing_slash(tmp_path):
    config = load_config(write_config(tmp_path, {**FOLDERS, "api_url": "http://127.0.0.1:8000/"}))
    assert config.api_url == "http://127.0.0.1:8000"


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="config file not found") as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_invalid_json_names_the_path_and_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "input_folder_path": \n}', encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON") as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "line 3" in str(err.value)


def test_a_json_list_is_not_a_config(tmp_path):
    path = write_config(tmp_path, ["sourcedata"])
    with pytest.raises(ConfigError, match="expected a JSON object of settings, got list") as err:
        load_config(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("key", sorted(FOLDERS))
def test_missing_key_is_named(tmp_path, key):
    data = {k: v for k, v in FOLDERS.items() if k != key}
    path = write_config(tmp_path, data)
    with pytest.raises(ConfigError, match=f"missing key '{key}'") as err:
        load_config(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("value", [3, "", "   ", ["sourcedata"], False])
def test_folder_of_the_wrong_type_is_named_with_its_value(tmp_path, value):
    path = write_config(tmp_path, {**FOLDERS, "test_data_path": value})
    with pytest.raises(ConfigError, match="'test_data_path' must be a non-empty string path") as err:
        load_config(path)
    assert repr(value) in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("value", [0, -1, "1024", 1.5, True, None])
def test_bad_max_request_bytes_is_named(tmp_path, value):
    path = write_config(tmp_path, {**FOLDERS, "max_request_bytes": value})
    with pytest.raises(ConfigError, match="'max_request_bytes' must be a positive integer") as err:
        load_config(path)
    assert repr(value) in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("value", ["127.0.0.1:8000", "ftp://host", 8000, "", None])
def test_bad_api_url_is_named(tmp_path, value):
    path = write_config(tmp_path, {**FOLDERS, "api_url": value})
    with pytest.raises(ConfigError, match="'api_url' must be an http\\(s\\) URL") as err:
        load_config(path)
    assert repr(value) in str(err.value)


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("stage", [ingestion_cli, training])
def test_main_with_a_missing_config_exits_1_with_one_line(tmp_path, caplog, stage):
    path = tmp_path / "missing.json"
    with caplog.at_level(logging.INFO):
        assert stage.main(["--config", str(path)]) == 1
    lines = error_lines(caplog)
    assert len(lines) == 1
    assert str(path) in lines[0]
    assert "not found" in lines[0]
    assert "\n" not in lines[0]


def test_main_with_a_bad_key_exits_1_naming_the_key(tmp_path, caplog):
    path = write_config(tmp_path, {**FOLDERS, "max_request_bytes": -5})
    with caplog.at_level(logging.INFO):
        assert ingestion_cli.main(["--config", str(path)]) == 1
    lines = error_lines(caplog)
    assert len(lines) == 1
    assert "'max_request_bytes'" in lines[0]
    assert str(path) in lines[0]


def test_a_config_that_is_not_utf8_names_the_file_and_the_byte(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(json.dumps({**FOLDERS, "test_data_path": "tests"}).replace("tests", "t\xe9sts").encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at offset \d+\)") as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_a_folder_key_naming_a_file_is_refused(tmp_path):
    path = write_config(tmp_path, FOLDERS)
    (tmp_path / FOLDERS["output_folder_path"]).write_text("not a folder", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"key 'output_folder_path' must name a folder, but .* is a file") as err:
        load_config(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(("key", "value"), [
    ("output_folder_path", "sourcedata"),
    ("output_folder_path", "sourcedata/ingested"),
    ("output_folder_path", "."),
    ("output_model_path", "sourcedata"),
    ("prod_deployment_path", "sourcedata/prod"),
])
def test_the_input_folder_must_be_apart_from_every_written_folder(tmp_path, key, value):
    path = write_config(tmp_path, {**FOLDERS, key: value})
    with pytest.raises(ConfigError, match=f"keys 'input_folder_path' .* and '{key}' .* must name separate folders"):
        load_config(path)


@pytest.mark.parametrize(("typo", "meant"), [("drift_min_row", "drift_min_rows"), ("keep_version", "keep_versions"),
                                             ("api_urls", "api_url"), ("input_folder", "input_folder_path")])
def test_an_unknown_key_is_refused_naming_the_closest_known_key(tmp_path, typo, meant):
    path = write_config(tmp_path, {**FOLDERS, typo: 5})
    with pytest.raises(ConfigError, match=f"unknown key '{typo}'; did you mean '{meant}'\\?") as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_an_unknown_key_like_no_other_lists_the_known_keys(tmp_path):
    path = write_config(tmp_path, {**FOLDERS, "zzz": 1})
    with pytest.raises(ConfigError, match="unknown key 'zzz'; known keys: input_folder_path, ") as err:
        load_config(path)
    assert "api_token_file" in str(err.value)


def test_every_known_key_is_accepted(tmp_path):
    settings = {"max_request_bytes": 1024, "api_url": "http://127.0.0.1:1", "keep_versions": 3,
                "drift_method": "raw", "drift_alpha": 0.01, "drift_min_rows": 5, "drift_min_f1_drop": 0.1,
                "drift_min_feature_effect": 0.2, "api_token_file": "token.txt",
                "alert_webhook_url": "https://hooks.example/x/", "alert_repeat_hours": 0.5,
                "heartbeat_url": "https://hc.example/ping/abc", "call_capacity": 50, "holdout_share": 0.5,
                "client_value": 500, "offer_cost": 0, "contact_cost": 2.5, "accept_alpha": 1, "accept_beta": 1,
                "contacts_folder_path": "calls/in"}
    assert set(settings) | set(FOLDERS) == set(KNOWN_KEYS)
    config = load_config(write_config(tmp_path, {**FOLDERS, **settings}))
    assert (config.drift_min_rows, config.keep_versions) == (5, 3)
    assert config.contacts_folder == (tmp_path / "calls" / "in").resolve()
    assert (config.alert_webhook_url, config.alert_repeat_hours, config.heartbeat_url) == (
        "https://hooks.example/x", 0.5, "https://hc.example/ping/abc")


@pytest.mark.parametrize("name", ["config.json", "config.practice.json"])
def test_the_shipped_configs_load(name):
    config = load_config(REPO / name)
    assert config.input_folder != config.output_folder


def test_a_config_without_optional_keys_takes_each_default_of_the_table(tmp_path):
    config = load_config(write_config(tmp_path, FOLDERS))
    assert {key: getattr(config, key) for key in DEFAULTS} == DEFAULTS


def _documented_defaults() -> dict[str, str]:
    """docs/operations.md's configuration table: key -> its default cell, backticks removed."""
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    table = text.split("## Configuration keys", 1)[1].split("\n## ", 1)[0]
    rows = (line.split("|") for line in table.splitlines() if line.startswith("| `"))
    return {cells[1].strip().strip("`"): cells[2].strip().strip("`") for cells in rows}


def _same_default(cell: str, default: object) -> bool:
    if default is None:
        return cell == "none"
    if isinstance(default, str):
        return cell == default
    return float(cell.replace(" ", "")) == float(default)


def test_every_config_key_is_documented_with_its_default():
    documented = _documented_defaults()
    assert set(documented) == set(KNOWN_KEYS)
    assert all(documented[key] == "required" for key in FOLDERS)
    wrong = {key: (documented[key], default) for key, default in DEFAULTS.items()
             if not _same_default(documented[key], default)}
    assert wrong == {}


@pytest.mark.parametrize("value", ["sourcedata", "sourcedata/contacts", ".", "ingesteddata", "practicemodels/in"])
def test_the_contacts_folder_must_be_apart_from_the_input_and_every_written_folder(tmp_path, value):
    path = write_config(tmp_path, {**FOLDERS, "contacts_folder_path": value})
    with pytest.raises(ConfigError, match=r"keys 'contacts_folder_path' .* must name separate folders"):
        load_config(path)


def test_the_contacts_folder_defaults_to_contacts_beside_the_config(tmp_path):
    assert load_config(write_config(tmp_path, FOLDERS)).contacts_folder == (tmp_path / "contacts").resolve()


@pytest.mark.parametrize(("key", "value", "words"), [
    ("holdout_share", 0.95, "'holdout_share' must be a number from 0 (no holdout) to 0.9"),
    ("holdout_share", -0.1, "'holdout_share' must be a number from 0"), ("holdout_share", True, "'holdout_share'"),
    ("offer_cost", -1, "'offer_cost' must be a number of at least 0"), ("contact_cost", "1", "'contact_cost'"),
    ("client_value", 0, "'client_value' must be a number above 0"), ("accept_beta", -2, "'accept_beta'")])
def test_a_bad_retention_setting_is_named_with_its_value(tmp_path, key, value, words):
    path = write_config(tmp_path, {**FOLDERS, key: value})
    with pytest.raises(ConfigError, match=re.escape(words)) as err:
        load_config(path)
    assert repr(value) in str(err.value)


def test_no_holdout_is_a_setting(tmp_path):
    assert load_config(write_config(tmp_path, {**FOLDERS, "holdout_share": 0})).holdout_share == 0.0
