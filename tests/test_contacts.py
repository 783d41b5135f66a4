"""The contacts contract: good records, each kind of bad one named by its record or line and field."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from risk import contacts
from risk.errors import ContractError

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
GOOD = {"corporation": "abcd", "contacted_at": "2026-12-01", "result": "reached", "note": "  spoke to the CFO "}


def test_a_good_record_is_normalised():
    found = contacts.from_records([GOOD, {**GOOD, "contacted_at": "2026-12-02T09:30:00+01:00", "note": ""}], NOW)
    assert found[0] == contacts.Contact("abcd", "2026-12-01T23:59:59+00:00", "reached", "spoke to the CFO")
    assert found[1].contacted_at == "2026-12-02T08:30:00+00:00"  # converted to UTC
    assert found[1].note is None
    assert found[0].key() == ("abcd", "2026-12-01T23:59:59+00:00", "reached")


@pytest.mark.parametrize(("change", "words"), [
    ({"result": "called"}, "contact 1: field 'result' must be one of ['reached', 'not_reached'"),
    ({"contacted_at": "01/12/2026"}, "contact 1: field 'contacted_at' must be an ISO 8601 date"),
    ({"contacted_at": "2026-12-06"}, "field 'contacted_at' must lie between 2000-01-01 and now, got '2026-12-06'"),
    ({"contacted_at": 20261201}, "field 'contacted_at' must be an ISO 8601 date or date-time text, got 20261201"),
    ({"corporation": "  "}, "field 'corporation' must be non-empty text"),
    ({"corporation": None}, "contact 1: missing field(s) ['corporation']"),
    ({"note": "x" * 501}, "field 'note' must be at most 500 characters, got 501"),
    ({"reslt": "reached"}, "contact 1: unknown field(s) ['reslt']"),
])
def test_a_bad_record_refuses_the_request_naming_its_index_and_field(change, words):
    with pytest.raises(ContractError) as err:
        contacts.from_records([GOOD, {**GOOD, **change}], NOW)
    assert words in str(err.value)


@pytest.mark.parametrize("body", [[], {}, "abcd", None])
def test_a_body_that_is_not_a_list_of_contacts_is_refused(body):
    with pytest.raises(ContractError, match="'contacts' must be a non-empty list"):
        contacts.from_records(body, NOW)


def test_a_csv_sets_bad_lines_aside_with_their_line_numbers_and_drops_extra_columns():
    raw = ("\ufeffcorporation,contacted_at,result,note,manager\n"
           "abcd,2026-12-01,reached,,ann\n"
           "efgh,2026-13-01,reached,,bob\n"
           "ijkl,2026-12-02,offer_accepted,\"kept, with a discount\",ann\n"
           "mnop,2026-12-02,maybe,,ann,extra\n").encode()
    good, bad = contacts.from_csv(raw, "calls.csv", NOW)
    assert [c.corporation for c in good] == ["abcd", "ijkl"]
    assert good[1].note == "kept, with a discount"
    assert [b["line"] for b in bad] == [3, 5]
    assert "field 'contacted_at' must be an ISO 8601 date" in bad[0]["reason"]
    assert bad[1]["reason"] == "more cells than the header's 5 columns"
    with pytest.raises(ContractError, match=r"calls.csv: line 3: field 'contacted_at' .* \(and 1 more bad lines\)"):
        contacts.strict((good, bad), "calls.csv")


@pytest.mark.parametrize(("raw", "words"), [(b"corporation,result\nabcd,reached\n", "missing ['contacted_at']"),
                                            (b"\xff\xfe\x00", "not UTF-8 text"),
                                            (b"corporation,contacted_at,result\n", "no contacts")])
def test_a_csv_without_its_header_or_lines_is_refused_whole(raw, words):
    with pytest.raises(ContractError) as err:
        contacts.strict(contacts.from_csv(raw, "calls.csv", NOW), "calls.csv")
    assert words in str(err.value)


def test_unknown_clients_are_named_once_in_order():
    found = contacts.from_records([{**GOOD, "corporation": c} for c in ("zz", "abcd", "yy", "zz")], NOW)
    assert contacts.unknown_clients(found, {"abcd"}) == ["zz", "yy"]
