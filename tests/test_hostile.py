"""Hostile bodies against POST /prediction: each gets a JSON 4xx, never a 500, and never a file's contents."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from risk import contract
from risk.config import Config

MARKER = f"SECRET-{uuid.uuid4().hex}"
FEATURE_HEADER = ",".join(contract.COLUMNS)
A, B, C = (name.encode() for name in contract.FEATURES[:3])


@pytest.fixture
def planted(deployed: Config) -> Config:
    """Secrets outside the data folders (shaped as valid-looking CSVs, so a leak would echo them) and traps inside."""
    root = deployed.root
    secret = f"{FEATURE_HEADER}\n{MARKER},{MARKER},1,1,0\n"
    (root.parent / "secret.csv").write_text(secret, encoding="utf-8")
    (root / "secret.csv").write_text(secret, encoding="utf-8")
    (root / "secret.txt").write_text(MARKER, encoding="utf-8")
    source = deployed.input_folder
    (source / "link.csv").symlink_to(root.parent / "secret.csv")
    (source / "linkdir").symlink_to(root.parent)
    (source / "loop.csv").symlink_to(source / "loop.csv")
    (source / "folder.csv").mkdir()
    (source / "notes.txt").write_text(f"{FEATURE_HEADER}\n{MARKER},1,1,1,0\n", encoding="utf-8")
    return deployed


def assert_safe_4xx(answer) -> dict:
    """A JSON error in the 4xx range that echoes no planted secret and no system file."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.data[:300])
    assert answer.is_json
    body = answer.get_json()
    assert set(body) == {"error", "detail"}
    assert MARKER.encode() not in answer.data
    assert b"root:" not in answer.data
    assert len(answer.data) < 1000
    return body


def dataset_paths(config: Config) -> list[str]:
    root = config.root
    return [
        "../../etc/passwd",
        "../config.json",
        "../secret.csv",
        "secret.csv",
        "config.json",
        "testdata/../secret.csv",
        "sourcedata/../../secret.csv",
        "/etc/passwd",
        str(root / "config.json"),
        str(root / "secret.csv"),
        str(root.parent / "secret.csv"),
        "sourcedata/link.csv",
        "sourcedata/linkdir/secret.csv",
        "sourcedata/loop.csv",
        "sourcedata",
        "sourcedata/folder.csv",
        "sourcedata/notes.txt",
        "sourcedata/nosuch.csv",
        "sourcedata/dataset3.csv/x.csv",
        "sourcedata/" + "a" * 300 + ".csv",
        "sourcedata/" + "a/" * 2000 + "x.csv",
        "a" * 5000,
        "sourcedata/dataset3.csv\x00",
        "\x00",
        "",
        "file:///etc/passwd",
        "~/secret.csv",
    ]


def test_dataset_paths_are_confined_to_the_data_folders(client, planted: Config) -> None:
    kinds = {}
    for path in dataset_paths(planted):
        answer = client.post("/prediction", json={"dataset_path": path})
        kinds[path[:40]] = assert_safe_4xx(answer)["error"]
    assert set(kinds.values()) <= {"dataset_not_found", "bad_body"}
    assert kinds["../secret.csv"] == "dataset_not_found"


def test_a_forbidden_file_is_answered_exactly_like_a_missing_one(client, planted: Config) -> None:
    missing = client.post("/prediction", json={"dataset_path": "../nosuch.csv"})
    assert missing.status_code == 404
    for forbidden in ("../secret.csv", "secret.csv", "sourcedata/link.csv", "sourcedata/folder.csv",
                      str(planted.root.parent / "secret.csv")):
        answer = client.post("/prediction", json={"dataset_path": forbidden})
        assert (answer.status_code, answer.data) == (missing.status_code, missing.data)


@pytest.mark.parametrize("value", [1, 1.5, True, None, [], ["testdata/testdata.csv"], {"path": "x.csv"}])
def test_dataset_path_of_the_wrong_type_is_400(client, planted: Config, value: object) -> None:
    assert assert_safe_4xx(client.post("/prediction", json={"dataset_path": value}))["error"] == "bad_body"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"42",
        b'"../secret.csv"',
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b"[" * 500 + b"]" * 500,
        b'{"records": ' + b"[" * 100_000 + b"}",
        b"NaN",
        b"-Infinity",
        b'{"dataset_path": NaN}',
        b'{"dataset_path": Infinity}',
        b'{"records": [{"' + A + b'": NaN, "' + B + b'": 1, "' + C + b'": 1}]}',
        b'{"records": [{"' + A + b'": -Infinity, "' + B + b'": 1, "' + C + b'": 1}]}',
        b'{"records": [{"' + A + b'": 1e999, "' + B + b'": 1, "' + C + b'": 1}]}',
        b'{"records": [{"' + A + b'": ' + b"9" * 5000 + b', "' + B + b'": 1, "' + C + b'": 1}]}',
        b'{"records": [{"' + A + b'": "' + b"x" * 100_000 + b'", "' + B + b'": 1, "' + C + b'": 1}]}',
        b'{"records": [' + b"[" * 500 + b"]" * 500 + b"]}",
        b'{"records": null}',
        b'{"dataset_path": "\\u0000"}',
        b"\x00\x00\x00",
        b"\xef\xbb\xbf{}",
        b"not json at all",
        b"{'dataset_path': 'testdata/testdata.csv'}",
    ],
)
def test_hostile_json_bodies_get_a_json_4xx(client, planted: Config, body: bytes) -> None:
    assert_safe_4xx(client.post("/prediction", data=body, content_type="application/json"))


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", ""])
def test_non_json_content_types_get_415(client, planted: Config, content_type: str) -> None:
    answer = client.post("/prediction", data=b'{"dataset_path": "../secret.csv"}', content_type=content_type)
    assert assert_safe_4xx(answer)["error"] == "unsupported_media_type"


def test_a_multipart_body_without_a_file_field_is_400(client, planted: Config) -> None:
    answer = client.post("/prediction", data=b'{"dataset_path": "../secret.csv"}',
                         content_type="multipart/form-data; boundary=x")
    assert assert_safe_4xx(answer)["error"] == "bad_body"


def test_an_oversized_body_gets_413(client, planted: Config) -> None:
    too_big = b'{"dataset_path": "' + b"a" * (planted.max_request_bytes + 1) + b'"}'
    assert_safe_4xx(client.post("/prediction", data=too_big, content_type="application/json"))
    assert client.post("/prediction", data=too_big, content_type="application/json").status_code == 413


def test_a_csv_inside_the_data_folders_that_is_not_data_is_422_not_500(client, planted: Config) -> None:
    source = planted.input_folder
    (source / "binary.csv").write_bytes(os.urandom(64) + b"\xff\xfe")
    (source / "empty.csv").write_bytes(b"")
    (source / "header.csv").write_text(FEATURE_HEADER + "\n", encoding="utf-8")
    (source / "wrong.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    for name in ("binary.csv", "empty.csv", "header.csv", "wrong.csv"):
        answer = client.post("/prediction", json={"dataset_path": f"sourcedata/{name}"})
        assert assert_safe_4xx(answer)["error"] == "invalid_values"


def test_the_planted_secret_is_really_readable(planted: Config) -> None:
    """The guard above means something: the secret exists, and reading it would leak the marker."""
    assert MARKER in Path(planted.input_folder / "link.csv").read_text(encoding="utf-8")
    assert MARKER in (planted.root / "secret.csv").read_text(encoding="utf-8")
