"""risk.config: folders resolve beside config.json; every bad config names the file and the key."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from conftest import FOLDERS

import ingestion
import training
from risk.config import DEFAULT_API_URL, DEFAULT_MAX_REQUEST_BYTES, load_config
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


@pytest.mark.parametrize("stage", [ingestion, training])
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
        assert ingestion.main(["--config", str(path)]) == 1
    lines = error_lines(caplog)
    assert len(lines) == 1
    assert "'max_request_bytes'" in lines[0]
    assert str(path) in lines[0]
