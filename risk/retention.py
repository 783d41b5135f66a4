"""The retention loop's read side: for each recorded call list, one row per listed client with its group (called
or held out), whether it was contacted, and its next-month outcome; the measured effect of calling from those
rows (risk/effect.py), and the experiment data set's CSV.

Pure functions on the recorded lists (`ledger.call_lists.latest`, newest first), the prepared state's watches
(`state.watches[data_rows]["listed"][client]`: the exited of the client's next row, None until it comes) and
contacts (`ledger.contacts.of_clients`). A list is *superseded* when a later list was recorded on the same
history (a new version, a rollback): only the newest list per history length is in force when its month comes,
and only lists in force count in the effect. Its contact window runs from the first list recorded on its
history to the first list recorded on a longer one.
"""
from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterator

from risk import contract, effect
from risk.holdout import CALL, CONTROL
from risk.risklist import spreadsheet_safe

MAX_LISTS = 500  # lists read for the effect and the experiment data set (ten years of weekly lists)
CONTACTED = ("reached", "offer_accepted", "offer_declined")  # a contact made; not_reached is only a try
EXPERIMENT_COLUMNS = ("list_id", "list_date", "model_version", "superseded", "rank", "corporation", *contract.FEATURES,
                      "probability", "group", "contacted", "result", "left")


def group_of(client: dict) -> str:
    """The client's group on its list; lists recorded before the holdout have none: every client was to be called."""
    return client.get("group") or CALL


def windows(lists: list[dict]) -> list[dict]:
    """Each list (oldest first) with its contact window (`since`, `until`: None for the newest) and whether a later
    list on the same history superseded it."""
    ordered = sorted(lists, key=lambda recorded: recorded["id"])
    groups = [list(same) for _, same in itertools.groupby(ordered, key=lambda recorded: recorded["data_rows"])]
    out = []
    for same, following in itertools.zip_longest(groups, groups[1:]):
        until = following[0]["created_at"] if following else None
        out += [{"list": recorded, "since": same[0]["created_at"], "until": until,
                 "superseded": recorded is not same[-1]} for recorded in same]
    return out


def outcome_rows(recorded: dict, watch: dict | None) -> list[dict]:
    """One row per listed client: list, rank, id, probability, group, features at list time (when the list kept
    them) and `left` (its next row's exited; None until it comes)."""
    listed = (watch or {}).get("listed", {})
    return [{"list_id": recorded["id"], "list_date": recorded["created_at"],
             "model_version": str(recorded["model_version"]), "rank": client["rank"],
             "corporation": client["corporation"], "probability": client["probability"], "group": group_of(client),
             "features": client.get("features") or {}, "left": listed.get(client["corporation"])}
            for client in recorded["clients"]]


def judged_lists(lists: list[dict], watches: dict[int, dict]) -> list[dict]:
    """Every list (oldest first) with its window and client rows: what the effect and the data set are made of,
    computed once per prepared state and recorded lists (readside.per_state); contacts are joined per request."""
    return [{**window, "rows": outcome_rows(window["list"], watches.get(window["list"]["data_rows"]))}
            for window in windows(lists)]


def with_contacts(rows: list[dict], contacts: dict[str, list[dict]]) -> list[dict]:
    """The rows with `contacted` (a contact made in the list's window: reached, or an offer accepted or declined)
    and `result` (the first contact made's result; "not_reached" when every try failed; None without a try)."""
    out = []
    for row in rows:
        tries = contacts.get(row["corporation"], [])
        made = [c["result"] for c in tries if c["result"] in CONTACTED]
        result = made[0] if made else ("not_reached" if tries else None)
        out.append({**row, "contacted": bool(made), "result": result})
    return out


def counts(rows: list[dict]) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(left, clients) among the judged rows: assigned to be called, held out, and actually contacted."""
    def tally(keep: Callable[[dict], bool]) -> tuple[int, int]:
        picked = [row["left"] for row in rows if row["left"] is not None and keep(row)]
        return sum(picked), len(picked)

    return (tally(lambda row: row["group"] == CALL), tally(lambda row: row["group"] == CONTROL),
            tally(lambda row: row["contacted"]))


def judged(entry: dict) -> bool:
    """A list in force whose month has come for at least one of its clients."""
    return not entry["superseded"] and any(row["left"] is not None for row in entry["rows"])


def effect_answer(entries: list[dict], shown: int, cut: bool = False) -> dict:
    """GET /risk/effect from the lists (oldest first, rows with contacts): the effect pooled over every judged
    list, and per list for the newest `shown` judged ones; honest when there is too little (risk/effect.py)."""
    judged_entries = [entry for entry in entries if judged(entry)]
    pooled_rows = [row for entry in judged_entries for row in entry["rows"]]
    per_list = [{"id": entry["list"]["id"], "created_at": entry["list"]["created_at"],
                 "model_version": str(entry["list"]["model_version"]), **_effect(entry["rows"], 1)}
                for entry in judged_entries[::-1][:shown]]
    return {"pooled": _effect(pooled_rows, len(judged_entries)), "lists": per_list,
            "judged_lists": len(judged_entries), "recorded_lists": len(entries),
            "superseded_lists": sum(entry["superseded"] for entry in entries),
            "lists_note": f"only the newest {MAX_LISTS} recorded lists are read" if cut else None}


def _effect(rows: list[dict], months: int) -> dict:
    called, holdout, contacted = counts(rows)
    controls_contacted = sum(row["contacted"] for row in rows if row["group"] == CONTROL and row["left"] is not None)
    return {**effect.summary(called, holdout, contacted, months), "controls_contacted": controls_contacted}


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    return spreadsheet_safe(value) if isinstance(value, str) else value


def experiment_csv(rows: list[dict], header: bool = False) -> str:
    """Rows of the experiment data set as CSV text (EXPERIMENT_COLUMNS; text cells spreadsheet-safe, booleans
    0/1, unknowns empty), with the header line first when asked."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(EXPERIMENT_COLUMNS)
    for row in rows:
        flat = {**row, **{name: row["features"].get(name) for name in contract.FEATURES}}
        writer.writerow([_cell(flat[name]) for name in EXPERIMENT_COLUMNS])
    return buffer.getvalue()


def experiment_chunks(entries: list[dict], contacts_of: Callable[[dict], dict[str, list[dict]]]) -> Iterator[str]:
    """The experiment data set, list by list (oldest first): the header, then each list's rows with its contacts
    (`contacts_of(entry)`, read as the list is written)."""
    yield experiment_csv([], header=True)
    for entry in entries:
        rows = [{**row, "superseded": entry["superseded"]} for row in entry["rows"]]
        yield experiment_csv(with_contacts(rows, contacts_of(entry)))
