"""Contacts in, through the real API and the contacts folder: good ones recorded once, a bad field or an unknown
client refuses the whole request naming it, a CSV body, and the folder's files read once by content with their
bad lines set aside (the files themselves untouched)."""
from __future__ import annotations

import csv
import json
import os

import pytest
from conftest import snapshot

import ingestion as script
from app import create_app
from risk import catalog, contactlog
from risk.config import Config
from risk.ledger import Ledger, LedgerReader

WHEN = "2024-05-01T10:00:00Z"


def known_ids(client, n: int = 3) -> list[str]:
    return [c["corporation"] for c in client.get("/risk?top=10000").get_json()["clients"][:n]]


def count(config: Config) -> int:
    with LedgerReader(config.ledger_path) as ledger:
        return ledger.contacts.count()


def test_good_contacts_are_recorded_once_and_a_repeat_is_counted(client, deployed: Config) -> None:
    first, second, _ = known_ids(client)
    body = {"contacts": [{"corporation": first, "contacted_at": WHEN, "result": "reached", "note": "called back"},
                         {"corporation": second, "contacted_at": "2024-05-02", "result": "not_reached"}]}
    answer = client.post("/risk/contacts", json=body)
    assert (answer.status_code, answer.get_json()) == (201, {"added": 2, "repeated": 0})
    again = client.post("/risk/contacts", json=body)
    assert (again.status_code, again.get_json()) == (200, {"added": 0, "repeated": 2})
    mixed = {"contacts": [body["contacts"][0], {**body["contacts"][0], "result": "offer_accepted"}]}
    assert client.post("/risk/contacts", json=mixed).get_json() == {"added": 1, "repeated": 1}
    assert count(deployed) == 3  # nothing written twice
    listed = client.get("/risk/contacts?limit=2").get_json()
    assert listed["total"] == 3
    assert [(c["corporation"], c["result"], c["source"]) for c in listed["contacts"]] == [
        (first, "offer_accepted", "api"), (second, "not_reached", "api")]
    assert listed["contacts"][1]["contacted_at"] == "2024-05-02T23:59:59+00:00"
    assert client.get("/risk/contacts?limit=0").status_code == 400


@pytest.mark.parametrize(("change", "words"), [
    ({"corporation": ""}, "missing field(s) ['corporation']"),
    ({"corporation": 7}, "field 'corporation' must be non-empty text"),
    ({"contacted_at": "yesterday"}, "field 'contacted_at' must be an ISO 8601"),
    ({"contacted_at": "1999-12-31"}, "field 'contacted_at' must lie between 2000-01-01 and now"),
    ({"result": "maybe"}, "field 'result' must be one of"),
    ({"note": "x" * 501}, "field 'note' must be at most 500 characters"),
    ({"called_by": "ann"}, "unknown field(s) ['called_by']"),
])
def test_a_bad_field_refuses_the_whole_request_naming_the_record(client, deployed: Config, change: dict,
                                                                 words: str) -> None:
    first, second, _ = known_ids(client)
    good = {"corporation": first, "contacted_at": WHEN, "result": "reached"}
    answer = client.post("/risk/contacts", json={"contacts": [good, {**good, "corporation": second, **change}]})
    assert answer.status_code == 422
    assert answer.get_json()["error"] == "invalid_values"
    assert "contact 1" in answer.get_json()["detail"]
    assert words in answer.get_json()["detail"]
    assert count(deployed) == 0  # the good first contact is not written either


def test_an_unknown_client_is_named_and_nothing_is_written(client, deployed: Config) -> None:
    first = known_ids(client)[0]
    body = {"contacts": [{"corporation": first, "contacted_at": WHEN, "result": "reached"},
                         {"corporation": "nobody-we-know", "contacted_at": WHEN, "result": "reached"}]}
    answer = client.post("/risk/contacts", json=body)
    assert answer.status_code == 422
    detail = answer.get_json()["detail"]
    assert "contact 1: field 'corporation': unknown client 'nobody-we-know'" in detail
    assert count(deployed) == 0


def test_a_csv_body_is_recorded_and_a_bad_line_or_unknown_client_is_named_by_line(client, deployed: Config) -> None:
    first, second, _ = known_ids(client)
    csv_body = f"corporation,contacted_at,result,note\n{first},{WHEN},reached,\n{second},{WHEN},offer_declined,no\n"
    answer = client.post("/risk/contacts", data=csv_body, content_type="text/csv")
    assert (answer.status_code, answer.get_json()) == (201, {"added": 2, "repeated": 0})
    bad = f"corporation,contacted_at,result\n{first},{WHEN},reached\n{second},{WHEN},maybe\n"
    refused = client.post("/risk/contacts", data=bad, content_type="text/csv")
    assert refused.status_code == 422
    assert "line 3: field 'result'" in refused.get_json()["detail"]
    unknown = f"corporation,contacted_at,result\n{first},2024-06-01,reached\nghost,{WHEN},reached\n"
    refused = client.post("/risk/contacts", data=unknown, content_type="text/csv")
    assert refused.status_code == 422
    assert "line 3: field 'corporation': unknown client 'ghost'" in refused.get_json()["detail"]
    assert count(deployed) == 2


@pytest.mark.parametrize(("data", "content_type", "status"), [
    ("{not json", "application/json", 400), ('{"records": []}', "application/json", 400),
    ('{"contacts": []}', "application/json", 422), ("a=b", "application/x-www-form-urlencoded", 415)])
def test_a_malformed_body_is_refused_as_json(client, deployed: Config, data: str, content_type: str,
                                             status: int) -> None:
    answer = client.post("/risk/contacts", data=data, content_type=content_type)
    assert answer.status_code == status
    assert set(answer.get_json()) == {"error", "detail"}


def test_contacts_need_the_token_like_every_route(deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_API_TOKEN", "s3cret")
    client = create_app(deployed).test_client()
    body = {"contacts": [{"corporation": "x", "contacted_at": WHEN, "result": "reached"}]}
    assert client.post("/risk/contacts", json=body).status_code == 401
    assert client.get("/risk/contacts").status_code == 401
    first = client.get("/risk", headers={"Authorization": "Bearer s3cret"}).get_json()["clients"][0]["corporation"]
    body["contacts"][0]["corporation"] = first
    assert client.post("/risk/contacts", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 201


def test_of_clients_gives_each_clients_contacts_in_the_window_oldest_first(deployed: Config) -> None:
    rows = [("a", "2024-05-03T09:00:00+00:00", "reached", None), ("a", "2024-05-01T09:00:00+00:00", "not_reached", "x"),
            ("b", "2024-05-10T00:00:00+00:00", "reached", None), ("c", "2024-04-01T00:00:00+00:00", "reached", None)]
    with Ledger(deployed.ledger_path) as ledger:
        assert ledger.contacts.record(rows, "test.csv") == {"added": 4, "repeated": 0}
    with LedgerReader(deployed.ledger_path) as reader:
        found = reader.of_clients(["a", "b", "c", "d"], "2024-05-01T09:00:00.000+00:00", "2024-05-10")
        assert found == reader.contacts.of_clients(["a", "b", "c", "d"], "2024-05-01T09:00:00Z", "2024-05-10")
    assert [c["contacted_at"] for c in found["a"]] == ["2024-05-01T09:00:00+00:00", "2024-05-03T09:00:00+00:00"]
    assert found["a"][0] == {"corporation": "a", "contacted_at": "2024-05-01T09:00:00+00:00", "result": "not_reached",
                             "note": "x", "source": "test.csv"}
    assert (found["b"], found["c"], found["d"]) == ([], [], [])  # until is excluded, since included
    with LedgerReader(deployed.ledger_path) as reader:  # a bound is cut to its second, as contacts are: a call
        # logged in the second its list was recorded counts for that list
        assert reader.of_clients(["a"], "2024-05-01T09:00:00.5+00:00")["a"][0]["result"] == "not_reached"
        assert reader.of_clients(["a"], "2024-05-01T09:00:01+00:00")["a"][0]["result"] == "reached"


# ---- the contacts folder -------------------------------------------------------------------------------------
def set_aside(config: Config) -> list[dict]:
    with open(config.output_folder / catalog.CONTACTS_REJECTS, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def drop(config: Config, name: str, text: str) -> None:
    config.contacts_folder.mkdir(exist_ok=True)
    (config.contacts_folder / name).write_text(text, encoding="utf-8")


def test_the_folders_bad_lines_are_set_aside_with_reasons_and_the_same_file_twice_counts_once(
        deployed: Config) -> None:
    first, second, _ = known_ids(create_app(deployed).test_client())
    text = (f"corporation,contacted_at,result,note,extra\n{first},{WHEN},reached,fine,1\n{second},{WHEN},maybe,,\n"
            f"ghost,{WHEN},reached,,\n{second},2024-05-02,offer_accepted,,\n")
    drop(deployed, "week1.csv", text)
    drop(deployed, "broken.csv", "who,when\nx,y\n")
    before = snapshot(deployed.contacts_folder)
    summary = contactlog.run_contacts(deployed)
    assert [(f["name"], f["status"]) for f in summary["files"]] == [("broken.csv", "recorded"),
                                                                     ("week1.csv", "recorded")]
    assert (summary["added"], summary["set_aside"]) == (2, 3)
    rejects = set_aside(deployed)
    assert [(r["file"], r["line"]) for r in rejects] == [("broken.csv", ""), ("week1.csv", "3"), ("week1.csv", "4")]
    assert rejects[0]["reason"].startswith("broken.csv: header must name")
    assert "field 'result' must be one of" in rejects[1]["reason"]
    assert rejects[2]["reason"] == ("field 'corporation': unknown client 'ghost': in no recorded call list and not"
                                    " in the ingested data")
    with LedgerReader(deployed.ledger_path) as reader:
        record = reader.contact_files.latest(1)[0]
        assert (record["name"], record["added"], record["set_aside"]) == ("week1.csv", 2, 2)
        assert [line["line"] for line in record["detail"]["set_aside"]] == [3, 4]
        assert {c["source"] for c in reader.latest_contacts(10)} == {"week1.csv"}
    drop(deployed, "week1-copy.csv", text)  # the same content under another name
    again = contactlog.run_contacts(deployed)
    assert again["files"] == [{"name": "week1-copy.csv", "status": "duplicate", "same_as": "week1.csv"}]
    assert count(deployed) == 2
    assert contactlog.run_contacts(deployed)["files"] == []  # nothing new: nothing read
    assert set_aside(deployed) == rejects
    after = snapshot(deployed.contacts_folder)
    assert {name: after[name] for name in before} == before  # read, never modified or deleted


def test_a_changed_file_is_read_again_and_its_old_contacts_count_as_repeated(deployed: Config) -> None:
    first = known_ids(create_app(deployed).test_client())[0]
    drop(deployed, "calls.csv", f"corporation,contacted_at,result\n{first},{WHEN},reached\n")
    assert contactlog.run_contacts(deployed)["added"] == 1
    path = deployed.contacts_folder / "calls.csv"
    path.write_text(path.read_text(encoding="utf-8") + f"{first},2024-05-09,not_reached\n", encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    summary = contactlog.run_contacts(deployed)
    assert (summary["added"], summary["repeated"]) == (1, 1)


def test_ingestion_contacts_flag_reads_the_folder(deployed: Config) -> None:
    first = known_ids(create_app(deployed).test_client())[0]
    drop(deployed, "calls.csv", f"corporation,contacted_at,result\n{first},{WHEN},reached\n")
    history = deployed.finaldata_path.read_bytes()
    assert script.main(["--config", str(deployed.config_path), "--contacts"]) == 0
    assert count(deployed) == 1
    assert deployed.finaldata_path.read_bytes() == history  # the flag reads contacts, not client data


def test_a_killed_runs_rejects_tail_is_cut_by_the_next(deployed: Config) -> None:
    drop(deployed, "a.csv", f"corporation,contacted_at,result\nghost,{WHEN},reached\n")
    contactlog.run_contacts(deployed)
    path = deployed.output_folder / catalog.CONTACTS_REJECTS
    kept = path.read_bytes()
    with open(path, "ab") as handle:
        handle.write(b"b.csv,2,a line a killed run wrote before its record\n")
    drop(deployed, "b.csv", f"corporation,contacted_at,result\nphantom,{WHEN},reached\n")
    contactlog.run_contacts(deployed)
    assert path.read_bytes().startswith(kept)
    assert b"killed run" not in path.read_bytes()
    assert json.dumps(path.read_text(encoding="utf-8")).count("phantom") == 1


@pytest.mark.slow
def test_the_cron_tick_reads_a_new_contacts_file_once_and_stays_idle_after(bootstrapped: Config) -> None:
    from risk import pipeline

    config = bootstrapped  # the first model and its list, by fullprocess
    assert pipeline.run_fullprocess(config)["action"] == "nothing new"
    first = known_ids(create_app(config).test_client())[0]
    drop(config, "calls.csv", f"corporation,contacted_at,result\n{first},{WHEN},offer_accepted\nghost,{WHEN},reached\n")
    assert pipeline.pending_work(config) == ["new contacts file calls.csv"]
    detail = pipeline.run_fullprocess(config)
    assert (detail["contacts"]["added"], detail["contacts"]["set_aside"]) == (1, 1)
    assert pipeline.run_fullprocess(config)["action"] == "nothing new"
    assert count(config) == 1
