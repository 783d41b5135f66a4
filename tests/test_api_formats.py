"""POST /prediction in every request format: the same rows give the same answer, batches up to the row limit
work, and every error status (400, 404, 405, 413, 415, 422) is a JSON body naming what was wrong."""
from __future__ import annotations

import codecs
import io
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from conftest import synthetic_frame
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from risk import contract, registry, serving
from risk.config import Config

FORMATS = ("records", "dataframe_records", "dataframe_split", "dataset_path", "csv", "multipart")
FEATURES = list(contract.FEATURES)
ID_COLUMN = contract.ID_COLUMN


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
    first, second, third = FEATURES[:3]
    text = (f" {third} , {second},corporation, {first} ,note\n"
            + "".join(f"{r[third]}, {r[second]} ,{r[ID_COLUMN]}, \"{r[first]}\",x\n" for r in frame.to_dict("records")))
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
                         **dict(zip(FEATURES, (rng.integers(0, 300, n), rng.integers(0, 3000, n),
                                               rng.integers(1, 1000, n)), strict=True))})


@pytest.mark.slow
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


@pytest.mark.slow  # a second or more
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
        (multipart(b"\xff\xfe\x00\xd8"), "bad_csv"),  # half a UTF-16 pair: no text at all
    ],
)
def test_malformed_bodies_are_400(client, kwargs: dict, kind: str) -> None:
    assert_error(client.post("/prediction", **kwargs), 400, kind)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_invalid_value_is_422_naming_the_row_and_field(client, deployed: Config, fmt: str) -> None:
    frame = rows(4).astype({FEATURES[1]: "object"})
    frame.loc[2, FEATURES[1]] = -5
    detail = assert_error(client.post("/prediction", **request_for(fmt, frame, deployed)), 422, "invalid_values")
    assert FEATURES[1] in detail
    assert "-5" in detail
    where = {"records": "records[2]", "dataframe_records": "dataframe_records[2]",
             "dataframe_split": "dataframe_split.data[2]", "csv": "row 4", "multipart": "row 4",
             "dataset_path": "row 4"}[fmt]
    assert where in detail  # a CSV row counts the header as row 1


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("value", ["abc", None, float("inf"), float("nan"), 2.0**60])
def test_non_numbers_are_422(client, deployed: Config, fmt: str, value: object) -> None:
    frame = rows(3).astype({FEATURES[2]: "object"})
    frame.loc[1, FEATURES[2]] = value
    detail = assert_error(client.post("/prediction", **request_for(fmt, frame, deployed)), 422, "invalid_values")
    assert FEATURES[2] in detail
    assert ("[1]" if fmt in ("records", "dataframe_records", "dataframe_split") else "row 3") in detail


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_missing_column_is_422_naming_it(client, deployed: Config, fmt: str) -> None:
    frame = rows(3).drop(columns=FEATURES[0])
    detail = assert_error(client.post("/prediction", **request_for(fmt, frame, deployed)), 422, "invalid_values")
    assert FEATURES[0] in detail


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


# ---- the CSV fast path (Arrow) agrees with the text path (pandas + contract) wherever it answers ----------
ID_TEXT = st.one_of(st.sampled_from(["NA", "null", "None", "n/a", "", "a,b", 'say "hi"', "é", " x", "\tx", "1"]),
                    st.text(alphabet="abcXYZ09 _-,\"'é\\\x01\u2028", max_size=8))
GOOD_NUMBER = st.one_of(st.integers(0, 10**6).map(str), st.floats(0, 1e9).map(repr))
ODD_NUMBER = st.sampled_from(["", "-1", "nan", "inf", "1,000", " 5", "5 ", "x", "1e400", '"7"', "+3", "1e3"])


@st.composite
def csv_bodies(draw: st.DrawFn) -> bytes:
    """CSV bodies, clean and not: ids that pandas would read as missing, quoted and spaced values, bad
    numbers, an extra column, columns in any order, CRLF line ends, a byte-order mark, a space after commas."""
    columns = draw(st.permutations([ID_COLUMN, *FEATURES, "extra"]))
    numbers = draw(st.sampled_from([GOOD_NUMBER, st.one_of(GOOD_NUMBER, ODD_NUMBER)]))
    rows = draw(st.lists(st.fixed_dictionaries({ID_COLUMN: ID_TEXT, "extra": st.just("z"),
                                                **{name: numbers for name in FEATURES}}), max_size=6))
    buffer = io.StringIO()
    pd.DataFrame(rows, columns=columns).to_csv(buffer, index=False,
                                               lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    text = buffer.getvalue().replace(",", draw(st.sampled_from([",", ", "])))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + text.encode()


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(csv_bodies())
def test_csv_fast_path_agrees_with_the_text_path(body: bytes) -> None:
    fast = serving.fast_csv(body)
    if fast is None:
        return
    text = serving.text_csv(body, "body")
    assert fast.x.tobytes() == text.x.tobytes()
    assert orjson.loads(orjson.dumps(fast.ids)) == text.ids  # a list, or the JSON text of one


def test_csv_fast_path_takes_clean_bodies() -> None:
    """What makes a 100k-row CSV fast: a clean body never falls back to the text path."""
    frame = rows(500)
    frame.loc[3, ID_COLUMN] = "Acme, Inc"  # quoted, with no space after the comma it holds
    frame.loc[4, ID_COLUMN] = " NA "  # a name, as in ingestion: trimmed, not missing
    frame.loc[5, ID_COLUMN] = ""  # missing
    body = frame.to_csv(index=False).replace("Acme, Inc", "Acme,Inc").encode()
    fast = serving.fast_csv(body)
    assert fast is not None
    assert len(fast.x) == 500
    ids = orjson.loads(orjson.dumps(fast.ids))
    assert ids[3] == "Acme,Inc"
    assert ids[4:6] == ["NA", None]
    crlf = serving.fast_csv(body.replace(b"\n", b"\r\n"))  # Windows line ends: the same rows, still fast
    assert (crlf.x.tobytes(), orjson.loads(orjson.dumps(crlf.ids))) == (fast.x.tobytes(), ids)
    assert serving.fast_csv(body.replace(b"\n", b" \n")) is None  # trailing spaces: the text path reads it


@pytest.mark.parametrize(("names", "joined_by_arrow"), [
    (["a", "é b", "x,y", "it's"], True),  # nothing to escape: Arrow writes the JSON array
    (["abcd", "C-0042"], True), (["abcd", " C-0042\t"], True),  # codes, as in the course data; trimmed
    (["abcd", "back\\slash"], False), (["abcd", ""], False),
    (['say "hi"', "b"], False), (["back\\slash", "b"], False), (["tab\there", "b"], False), (["a", ""], False),
])
def test_csv_ids_reach_the_json_answer_unchanged(names: list[str], joined_by_arrow: bool) -> None:
    frame = rows(len(names))
    frame[ID_COLUMN] = names
    batch = serving.fast_csv(frame.to_csv(index=False).encode())
    assert isinstance(batch.ids, orjson.Fragment) == joined_by_arrow
    assert orjson.loads(orjson.dumps({"ids": batch.ids}))["ids"] == [name.strip() or None for name in names]


# --- found in review: shapes and values the fast and text paths must both refuse, or agree on -------------
HEAD = ",".join([ID_COLUMN, *FEATURES]) + "\n"


@pytest.mark.parametrize(("body", "row", "fields"), [
    (HEAD + "abcd,50,900,12,5\nefgh,1,2,3,4\n", 2, 5),  # pandas would take the first column as an index
    (HEAD + "abcd,50,900,12\nefgh,1,2,3,4\n", 3, 5),
    (HEAD + "abcd,50,900,12,\n", 2, 5),  # a trailing comma is a fifth, empty field
])
@pytest.mark.parametrize("fmt", ["csv", "multipart", "dataset_path"])
def test_a_row_longer_than_the_header_is_refused_by_its_row(client, deployed: Config, fmt: str, body: str,
                                                            row: int, fields: int) -> None:
    (deployed.test_data / "ragged.csv").write_text(body, encoding="utf-8")
    request = {"csv": {"data": body.encode(), "content_type": "text/csv"}, "multipart": multipart(body.encode()),
               "dataset_path": {"json": {"dataset_path": f"{deployed.test_data.name}/ragged.csv"}}}[fmt]
    status, kind = (422, "invalid_values") if fmt == "dataset_path" else (400, "bad_csv")
    detail = assert_error(client.post("/prediction", **request), status, kind)
    assert f"row {row} has {fields} fields; the header names 4" in detail


def test_a_quote_left_open_in_the_last_column_does_not_swallow_the_rows_after_it(client) -> None:
    body = b"%s,%s,%s,%s\n50,900,12,\"acme\n1,2,3,beta\n4,5,6,gamma\n" % (*[f.encode() for f in FEATURES],
                                                                       ID_COLUMN.encode())
    assert serving.fast_csv(body) is None  # the text path reads it, and says what is wrong
    detail = assert_error(client.post("/prediction", data=body, content_type="text/csv"), 400, "bad_csv")
    assert "the quote opened in row 2 is never closed" in detail
    closed = body.replace(b'"acme\n', b'"acme\ninc"\n')
    answer = client.post("/prediction", data=closed, content_type="text/csv").get_json()
    assert answer[ID_COLUMN] == ["acme\ninc", "beta", "gamma"]  # a quoted id may hold a line break


@pytest.mark.parametrize("header", [f"{HEAD.strip()},{FEATURES[0]}", f"{HEAD.strip()}, {FEATURES[0]}"])
def test_a_csv_column_named_twice_is_422(client, header: str) -> None:
    body = f"{header}\nabcd,50,900,12,60\n".encode()
    detail = assert_error(client.post("/prediction", data=body, content_type="text/csv"), 422, "invalid_values")
    assert f"duplicated column(s) ['{FEATURES[0]}']" in detail


def test_a_split_column_named_twice_is_422(client) -> None:
    split = {"columns": [ID_COLUMN, *FEATURES, FEATURES[0]], "data": [["abcd", 50, 900, 12, 60]]}
    detail = assert_error(client.post("/prediction", json={"dataframe_split": split}), 422, "invalid_values")
    assert f"duplicated column(s) ['{FEATURES[0]}']" in detail


@pytest.mark.parametrize("key", ["records", "dataframe_records"])
def test_json_ids_follow_the_csv_rule_trimmed_and_empty_is_null(client, key: str) -> None:
    records = [{ID_COLUMN: name, **dict.fromkeys(FEATURES, 1)} for name in (" abcd ", "", 7, None, "NA")]
    answer = client.post("/prediction", json={key: records}).get_json()
    assert answer[ID_COLUMN] == ["abcd", None, "7", None, "NA"]


@pytest.mark.parametrize("body", [
    b'{"records": [{"corporation": "\\ud800", ' + b", ".join(b'"%s": 1' % f.encode() for f in FEATURES) + b"}]}",
    b'{"dataframe_split": {"columns": ["corporation", ' + b", ".join(b'"%s"' % f.encode() for f in FEATURES)
    + b'], "data": [["ok", 1, 2, 3], ["x\\udfff", 1, 2, 3]]}}',
])
def test_an_id_with_half_a_surrogate_pair_is_422_not_500(client, body: bytes) -> None:
    detail = assert_error(client.post("/prediction", data=body, content_type="application/json"), 422)
    assert "surrogate" in detail


def test_a_dataset_path_with_half_a_surrogate_pair_is_404(client) -> None:
    body = b'{"dataset_path": "testdata/\\ud800.csv"}'
    assert_error(client.post("/prediction", data=body, content_type="application/json"), 404, "dataset_not_found")


def test_a_dataset_path_file_over_max_request_bytes_is_413(client, deployed: Config) -> None:
    big = rows(1).to_csv(index=False) + "x,1,1,1\n" * (deployed.max_request_bytes // 8 + 1)
    (deployed.test_data / "big.csv").write_text(big, encoding="utf-8")
    detail = assert_error(client.post("/prediction", json={"dataset_path": "testdata/big.csv"}), 413)
    assert str(deployed.max_request_bytes) in detail


@pytest.mark.parametrize(("value", "said"), [("1_000", "not a number"), ("x" * 5000, "'xxxxxxxxxxxxxxxx")])
def test_csv_value_errors_say_why_and_quote_the_value_short(client, value: str, said: str) -> None:
    body = (HEAD + f"abcd,{value},900,12\n").encode()
    answer = client.post("/prediction", data=body, content_type="text/csv")
    detail = assert_error(answer, 422, "invalid_values")
    assert f"row 2, column '{FEATURES[0]}'" in detail
    assert said in detail
    assert len(answer.data) < 400


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_utf16_csv_with_a_byte_order_mark_is_read_as_ingestion_reads_it(client, encoding: str) -> None:
    text = HEAD + "abcd,50,900,12\nNA,1,2,3\n"
    body = (codecs.BOM_UTF16_BE if encoding == "utf-16-be" else b"") + text.encode(encoding)
    utf8 = client.post("/prediction", data=text.encode(), content_type="text/csv").get_json()
    answer = client.post("/prediction", data=body, content_type="text/csv").get_json()
    assert answer == utf8
    broken = client.post("/prediction", data=codecs.BOM_UTF16_LE + b"a\x00b", content_type="text/csv")
    assert "UTF-16" in assert_error(broken, 400, "bad_csv")
