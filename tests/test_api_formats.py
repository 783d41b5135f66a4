"""POST /prediction in every request format: the same rows give the same answer, batches up to the row limit
work, and every error status (400, 404, 405, 413, 415, 422) is a JSON body naming what was wrong."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_frame
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from risk import contract, registry, serving
from risk.config import Config

FORMATS = ("records", "dataframe_records", "dataframe_split", "dataset_path", "csv", "multipart")
FEATURES = list(contract.FEATURES)


def rows(n: int = 40, seed: int = 7) -> pd.DataFrame:
    """Client rows with ids, including fractional values and the edges of the ranges."""
    frame = synthetic_frame(n, seed=seed).drop(columns=contract.TARGET)
    frame = frame.astype({name: "float64" for name in FEATURES})
    frame.loc[0, FEATURES] = [0.0, 0, 0]
    frame.loc[1, FEATURES] = [250.5, 12.25, 1]
    return frame


def request_for(fmt: str, frame: pd.DataFrame, config: Config, name: str = "rows.csv") -> dict:
    """Keyword arguments for client.post that send `frame` in format `fmt`."""
    records = frame.to_dict(orient="records")
    if fmt in ("records", "dataframe_records"):
        return {"json": {fmt: records}}
    if fmt == "dataframe_split":
        return {"json": {fmt: {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}}
    text = frame.to_csv(index=False).encode()
    if fmt == "csv":
        return {"data": text, "content_type": "text/csv"}
    if fmt == "multipart":
        return multipart(text, name)
    (config.test_data / name).write_bytes(text)
    return {"json": {"dataset_path": f"{config.test_data.name}/{name}"}}


def multipart(text: bytes, name: str = "rows.csv", field: str = "file") -> dict:
    """A multipart body encoded here (the test client would spool a large one to an unclosed temp file)."""
    boundary, body = encode_multipart({field: FileStorage(io.BytesIO(text), name)})
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def expected_probabilities(config: Config, frame: pd.DataFrame) -> np.ndarray:
    model = registry.load_model(registry.current(config.prod_folder))
    return model.predict_proba(frame[FEATURES].to_numpy(dtype="float64"))[:, 1]


def assert_error(answer, status: int, kind: str | None = None) -> str:
    """A JSON error body with exactly `error` and `detail`; returns the detail."""
    assert answer.status_code == status, answer.data[:300]
    assert answer.mimetype == "application/json"
    body = answer.get_json()
    assert set(body) == {"error", "detail"}
    assert body["detail"]
    if kind is not None:
        assert body["error"] == kind
    return body["detail"]


# --- every format, the same answer ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_gives_the_models_probabilities_and_calls(client, deployed: Config, fmt: str) -> None:
    frame = rows()
    answer = client.post("/prediction", **request_for(fmt, frame, deployed))
    assert answer.status_code == 200, answer.data[:300]
    body = answer.get_json()
    expected = expected_probabilities(deployed, frame)
    assert body["probabilities"] == pytest.approx(expected, abs=1e-6)
    assert all(0 <= p <= 1 for p in body["probabilities"])
    assert body["threshold"] == 0.5
    assert body["predictions"] == (expected > body["threshold"]).astype(int).tolist()
    assert set(body["predictions"]) == {0, 1}  # the rows straddle the threshold, so the check means something
    assert body["corporation"] == frame["corporation"].tolist()
    assert body["model_version"] == "1" == answer.headers["X-Model-Version"]


def test_all_formats_agree_row_for_row(client, deployed: Config) -> None:
    frame = rows(seed=11)
    answers = {fmt: client.post("/prediction", **request_for(fmt, frame, deployed, f"{fmt}.csv")).get_json()
               for fmt in FORMATS}
    first = answers["records"]
    for fmt, body in answers.items():
        assert {k: body[k] for k in ("probabilities", "predictions", "corporation")} == \
            {k: first[k] for k in ("probabilities", "predictions", "corporation")}, fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_ids_are_absent_when_not_sent(client, deployed: Config, fmt: str) -> None:
    frame = rows().drop(columns=contract.ID_COLUMN)
    body = client.post("/prediction", **request_for(fmt, frame, deployed)).get_json()
    assert contract.ID_COLUMN not in body
    assert len(body["probabilities"]) == len(body["predictions"]) == len(frame)


@pytest.mark.parametrize("fmt", ["csv", "multipart", "dataset_path"])
def test_csv_tolerates_column_order_extra_columns_and_whitespace(client, deployed: Config, fmt: str) -> None:
    frame = rows(5)
    text = (" number_of_employees , lastyear_activity,corporation, lastmonth_activity ,note\n"
            + "".join(f"{r.number_of_employees}, {r.lastyear_activity} ,{r.corporation}, \"{r.lastmonth_activity}\""
                      f",x\n" for r in frame.itertuples()))
    kwargs = request_for(fmt, frame, deployed)
    if fmt == "csv":
        kwargs["data"] = text.encode()
    elif fmt == "multipart":
        kwargs = multipart(text.encode())
    else:
        (deployed.test_data / "rows.csv").write_text(text, encoding="utf-8")
    body = client.post("/prediction", **kwargs).get_json()
    assert body["probabilities"] == pytest.approx(expected_probabilities(deployed, frame), abs=1e-6)
    assert body["corporation"] == frame["corporation"].tolist()


def test_ids_may_be_missing_on_some_rows(client, deployed: Config) -> None:
    frame = rows(3)
    records = frame.to_dict(orient="records")
    del records[1]["corporation"]
    assert client.post("/prediction", json={"records": records}).get_json()["corporation"] == \
        [records[0]["corporation"], None, records[2]["corporation"]]
    text = frame.to_csv(index=False).replace(f"\n{frame.corporation[1]},", "\n,").encode()
    answer = client.post("/prediction", data=text, content_type="text/csv")
    assert answer.get_json()["corporation"] == [frame.corporation[0], None, frame.corporation[2]]


def test_ids_keep_their_text(client, deployed: Config) -> None:
    frame = rows(2)
    frame["corporation"] = ["007", "1e3"]
    for fmt in ("records", "csv"):
        assert client.post("/prediction", **request_for(fmt, frame, deployed)).get_json()["corporation"] == \
            ["007", "1e3"], fmt


# --- batch size -------------------------------------------------------------------------------------------


def big_frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({"corporation": [f"k{i}" for i in range(n)],
                         "lastmonth_activity": rng.integers(0, 300, n), "lastyear_activity": rng.integers(0, 3000, n),
                         "number_of_employees": rng.integers(1, 1000, n)})


@pytest.mark.parametrize("fmt", ["csv", "records"])
def test_a_batch_of_the_row_limit_is_scored(client, deployed: Config, fmt: str) -> None:
    frame = big_frame(serving.MAX_ROWS)
    answer = client.post("/prediction", **request_for(fmt, frame, deployed))
    assert answer.status_code == 200, answer.data[:300]
    body = answer.get_json()
    assert len(body["probabilities"]) == serving.MAX_ROWS
    assert body["corporation"][-1] == f"k{serving.MAX_ROWS - 1}"
    assert np.allclose(body["probabilities"], expected_probabilities(deployed, frame), atol=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_row_over_the_limit_is_413(client, deployed: Config, fmt: str) -> None:
    frame = big_frame(serving.MAX_ROWS + 1)[["corporation", *FEATURES]]
    detail = assert_error(client.post("/prediction", **request_for(fmt, frame, deployed)), 413, "too_many_rows")
    assert str(serving.MAX_ROWS) in detail
    assert str(serving.MAX_ROWS + 1) in detail


@pytest.mark.parametrize("fmt", ["records", "csv", "multipart"])
def test_a_body_over_max_request_bytes_is_413(client, deployed: Config, fmt: str) -> None:
    frame = pd.concat([rows(1)] * 1000, ignore_index=True)
    frame["corporation"] = "x" * (deployed.max_request_bytes // 1000 + 1)
    assert_error(client.post("/prediction", **request_for(fmt, frame, deployed)), 413)


# --- errors, per format -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"data": b'{"records": [', "content_type": "application/json"}, "bad_json"),
        ({"json": {"dataframe_split": [[1, 2, 3]]}}, "bad_body"),
        ({"json": {"dataframe_split": {"columns": "abc", "data": []}}}, "bad_body"),
        ({"json": {"dataframe_split": {"columns": [1, 2, 3], "data": [[1, 2, 3]]}}}, "bad_body"),
        ({"json": {"dataset_path": 12}}, "bad_body"),
        ({"json": {"dataframe": []}}, "bad_body"),
        ({"data": b"\xff\xfe\x00\x01garbage", "content_type": "text/csv"}, "bad_csv"),
        ({"data": b"", "content_type": "text/csv"}, "bad_csv"),
        ({"data": b'a,"b\n1,2', "content_type": "text/csv"}, "bad_csv"),
        (multipart(b"a,b\n1,2\n", field="upload"), "bad_body"),
        (multipart(b"\xff\xfe\x00\x01"), "bad_csv"),
    ],
)
def test_malformed_bodies_are_400(client, kwargs: dict, kind: str) -> None:
    assert_error(client.post("/prediction", **kwargs), 400, kind)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_invalid_value_is_422_naming_the_row_and_field(client, deployed: Config, fmt: str) -> None:
    frame = rows(4).astype({"lastyear_activity": "object"})
    frame.loc[2, "lastyear_activity"] = -5
    detail = assert_error(client.post("/prediction", **request_for(fmt, frame, deployed)), 422, "invalid_values")
    assert "lastyear_activity" in detail
    assert "-5" in detail
    where = {"records": "records[2]", "dataframe_records": "dataframe_records[2]",
             "dataframe_split": "dataframe_split.data[2]", "csv": "row 4", "multipart": "row 4",
             "dataset_path": "row 4"}[fmt]
    assert where in detail  # a CSV row counts the header as row 1


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("value", ["abc", None, float("inf"), float("nan"), 2.0**60])
def test_non_numbers_are_422(client, deployed: Config, fmt: str, value: object) -> None:
    frame = rows(3).astype({"number_of_employees": "object"})
    frame.loc[1, "number_of_employees"] = value
    detail = assert_error(client.post("/prediction", **request_for(fmt, frame, deployed)), 422, "invalid_values")
    assert "number_of_employees" in detail
    assert ("[1]" if fmt in ("records", "dataframe_records", "dataframe_split") else "row 3") in detail


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_missing_column_is_422_naming_it(client, deployed: Config, fmt: str) -> None:
    frame = rows(3).drop(columns="lastmonth_activity")
    detail = assert_error(client.post("/prediction", **request_for(fmt, frame, deployed)), 422, "invalid_values")
    assert "lastmonth_activity" in detail


@pytest.mark.parametrize("fmt", ["records", "dataframe_records", "dataframe_split"])
@pytest.mark.parametrize("corporation", [1.5, True, ["a"], {"a": 1}])
def test_an_id_that_is_not_text_is_422(client, deployed: Config, fmt: str, corporation: object) -> None:
    frame = rows(2).astype({"corporation": "object"})
    frame.at[1, "corporation"] = corporation
    detail = assert_error(client.post("/prediction", **request_for(fmt, frame, deployed)), 422, "invalid_values")
    assert "[1]" in detail
    assert "corporation" in detail


def test_a_split_row_of_the_wrong_length_is_422(client) -> None:
    body = {"dataframe_split": {"columns": FEATURES, "data": [[1, 2, 3], [1, 2]]}}
    detail = assert_error(client.post("/prediction", json=body), 422, "invalid_values")
    assert "dataframe_split.data[1]" in detail


@pytest.mark.parametrize("fmt", ["csv", "multipart", "dataset_path"])
def test_a_header_only_csv_is_422(client, deployed: Config, fmt: str) -> None:
    answer = client.post("/prediction", **request_for(fmt, rows(3).iloc[:0], deployed))
    detail = assert_error(answer, 422, "invalid_values")
    assert "no data rows" in detail


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded",
                                          "image/png", "application/octet-stream"])
def test_an_unsupported_content_type_is_415(client, content_type: str) -> None:
    detail = assert_error(client.post("/prediction", data=b"a,b\n1,2\n", content_type=content_type), 415,
                          "unsupported_media_type")
    assert "text/csv" in detail


def test_a_dataset_path_that_does_not_exist_is_404(client) -> None:
    assert_error(client.post("/prediction", json={"dataset_path": "testdata/nosuch.csv"}), 404, "dataset_not_found")


@pytest.mark.parametrize("route", ["/nosuch", "/prediction/1", "/risk/x", "/openapi.yaml"])
def test_an_unknown_route_is_404_json(client, route: str) -> None:
    assert_error(client.get(route), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "route", "allowed"),
    [("GET", "/prediction", {"POST"}), ("PUT", "/prediction", {"POST"}), ("DELETE", "/prediction", {"POST"}),
     ("POST", "/risk", {"GET", "HEAD"}), ("POST", "/metrics", {"GET", "HEAD"}), ("PATCH", "/health", {"GET", "HEAD"})],
)
def test_a_wrong_method_is_405_with_allow(client, method: str, route: str, allowed: set[str]) -> None:
    answer = client.open(route, method=method)
    assert_error(answer, 405, "method_not_allowed")
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) - {"OPTIONS"} == allowed


def test_dataset_path_reads_from_each_data_folder(client, deployed: Config) -> None:
    frame = rows(3)
    for folder in deployed.data_folders():
        path = Path(folder) / "some.csv"
        frame.to_csv(path, index=False)
        answer = client.post("/prediction", json={"dataset_path": f"{folder.name}/some.csv"})
        assert answer.status_code == 200, (folder, answer.data[:200])
        assert answer.get_json()["corporation"] == frame["corporation"].tolist()


def test_csv_numbers_parse_to_the_same_floats_as_json() -> None:
    """The CSV fast path (features read straight to float64) rounds exactly like Python's float()."""
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.random(3000) * 10.0 ** rng.integers(-3, 12, 3000), [0.1, 0.3, 1e-7, 2.0**52 + 1]])
    frame = pd.DataFrame({name: rng.permutation(values) for name in FEATURES})
    text = "".join([",".join(FEATURES) + "\n"] + [",".join(repr(float(v)) for v in row) + "\n"
                                                  for row in frame.to_numpy()])
    from_text = serving.from_csv(text.encode(), "body").x
    from_json = serving.from_records(frame.to_dict(orient="records")).x
    assert from_text.tobytes() == from_json.tobytes()
    slow = serving.from_csv(text.replace("\n", " \n").encode(), "body").x  # trailing spaces: read as text
    assert slow.tobytes() == from_json.tobytes()
