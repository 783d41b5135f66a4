"""The call list: the current clients by attrition probability, with reasons a client manager reads.

One builder for every list shown or kept: `ranked` (the costly half: every current client scored once, as
numbers) then `call_list` (the answer for the first `top`, in words); the API (/risk, /risk.csv), the
dashboard, the report and the lists recorded in the ledger all call them, and read the version's card one way
(`card_of`). Each client's latest row comes from one function, `latest_clients`, for the prepared read state,
the training card's portfolio and the list alike.

The portfolio is the current clients: each named client's latest row, unless that row says it left
(`exited` = 1); rows without a name are not ranked. Reasons compare a client with the typical client of the
deployed version's own training reference (the medians of the sample on its card), so the same client gets
the same reasons from the same model whatever else is in the data: for a linear model a feature's push on
the log-odds is coef * (value - typical), shown as the percentage points of risk the client would lose were
that measure typical (and, in the JSON, as log-odds and an odds ratio). Only features that raise the risk are
reasons. Movers are the clients whose probability rose most between the
previous deployed model and the current one.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from risk import catalog, clientkeys, contract

if TYPE_CHECKING:
    import pandas as pd

    from risk.registry import Version

REASONS_PER_CLIENT = 2
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP, "CSV Injection"


def latest_clients(frame: pd.DataFrame, start_row: int = 0) -> pd.DataFrame:
    """One row per named client, its newest in ingestion order (rows without a name are skipped), in that order,
    with `position` (its row number in the history, the frame's first row being `start_row`) and
    `first_position` (its first row's: when it became a client). A frame that already has them (latest rows,
    or latest rows of two stretches of history, oldest first) keeps them: the earliest first position wins.
    The grouping is risk.clientkeys.latest_rows, as the prepared read state's."""
    if "position" not in frame.columns:
        frame = frame.assign(position=np.arange(start_row, start_row + len(frame), dtype=np.int64))
    named = frame[frame[contract.ID_COLUMN].notna()]
    firsts = named["first_position" if "first_position" in named.columns else "position"].to_numpy(np.int64)
    last, first = clientkeys.latest_rows(clientkeys.keys_of(named[contract.ID_COLUMN]), firsts)
    order = np.argsort(last)
    return named.iloc[last[order]].assign(first_position=first[order]).reset_index(drop=True)


def current_clients(latest: pd.DataFrame) -> pd.DataFrame:
    """The portfolio: the latest rows whose client has not left."""
    return latest[latest[contract.TARGET] != 1].reset_index(drop=True)


def probabilities(model: object, frame: pd.DataFrame) -> np.ndarray:
    """P(exited = 1) for each row."""
    return model.predict_proba(contract.matrix(frame))[:, 1]


def card_of(version: Version) -> dict | None:
    """The version's model card when its manifest lists one (so `registry.verify` checked it); None otherwise."""
    from risk.files import read_json

    return read_json(version.folder / catalog.CARD) if catalog.CARD in version.manifest["sha256"] else None


def reference_of(card: dict | None) -> np.ndarray | None:
    """The typical client (per-feature medians, contract order) of a version's training reference on its card, or
    None for a card from before it kept one."""
    stored = (card or {}).get("reference")
    if stored and stored.get("values"):
        values = np.asarray(stored["values"], dtype=float).reshape(-1, len(stored["features"]))
        medians = dict(zip(stored["features"], np.median(values, axis=0), strict=True))
        if all(name in medians for name in contract.FEATURES):
            return np.array([medians[name] for name in contract.FEATURES])
    return None


def _typical(card: dict | None, fallback: Callable[[], np.ndarray]) -> tuple[np.ndarray, str]:
    reference = reference_of(card)
    if reference is not None:
        return reference, "the version's training reference"
    x = fallback()
    medians = np.median(x, axis=0) if len(x) else np.zeros(len(contract.FEATURES))
    return medians, "the current clients (no reference on the card)"


def contributions(model: object, frame: pd.DataFrame, typical: np.ndarray) -> np.ndarray:
    """Rows x features: each feature's push on the log-odds against the typical client (0 if not linear)."""
    return pushes(model, contract.matrix(frame), typical)


def pushes(model: object, x: np.ndarray, typical: np.ndarray) -> np.ndarray:
    """`contributions` of a features matrix (rows x FEATURES)."""
    coef = getattr(model, "coef_", None)
    if coef is None:
        return np.zeros_like(x)
    return (x - typical) * np.asarray(coef)[0]


def words(number: float) -> str:
    return f"{number:,.0f}" if float(number).is_integer() else f"{number:,.2f}"


def in_points(points: float) -> str:
    """Percentage points as a manager reads them: "+12 points", "+1 point", "under 1 point"."""
    if points < 0.5:
        return "under 1 point"
    return f"+{points:.0f} point{'' if points < 1.5 else 's'}"


def reasons(row: np.ndarray, values: np.ndarray, typical: np.ndarray, probability: float) -> list[dict]:
    """The features that raise this client's risk most, strongest first, in words and in numbers: `points` is
    how many percentage points the client's risk would fall were this one measure typical (the others kept)."""
    order = [j for j in np.argsort(-row) if row[j] > 0][:REASONS_PER_CLIENT]
    logit = np.log(max(probability, 1e-15) / max(1 - probability, 1e-15))
    out = []
    for j in order:
        name = contract.FEATURES[j]
        points = 100 * (probability - 1 / (1 + np.exp(min(row[j] - logit, 700.0))))
        out.append({"feature": name, "value": float(values[j]), "typical": round(float(typical[j]), 4),
                    "log_odds": round(float(row[j]), 4), "odds_ratio": float(f"{np.exp(min(row[j], 700.0)):.4g}"),
                    "points": round(float(points), 1),
                    "text": f"{contract.LABELS[name]} {words(values[j])}, typical {words(round(typical[j], 2))}:"
                            f" {in_points(points)} of risk"})
    return out


def ranked(card: dict | None, model: object, frame: pd.DataFrame, limit: int, previous: object | None = None) -> dict:
    """The call list's costly half: every current client of `frame` (each client's latest row, or the history,
    reduced here to it) scored by a version's `model`, and the first `limit` clients and movers since `previous`
    kept as arrays (ids, probabilities, pushes, values) against the typical client of the version's `card`
    (`card_of(version)`). What `call_list` turns into any answer up to `limit`: a cached ranking holds numbers,
    not dicts and text. `ranked_from` with the frame as one piece."""
    clients = current_clients(latest_clients(frame))
    piece = (clients[contract.ID_COLUMN].to_numpy(dtype=object), contract.matrix(clients),
             clients["position"].to_numpy(np.int64))
    return ranked_from(card, model, lambda: iter([piece]), limit, previous)


Piece = tuple  # (ids, features matrix in the contract's order, positions) of some current clients


def _best(held: tuple | None, new: tuple, limit: int) -> tuple:
    """The first `limit` of `held` and `new` (score, position, ...) by score, highest first, then position."""
    both = new if held is None else tuple(np.concatenate([a, b]) for a, b in zip(held, new, strict=True))
    order = np.lexsort((both[1], -both[0]))[:limit]
    return tuple(column[order] for column in both)


def ranked_from(card: dict | None, model: object, pieces: Callable[[], Iterator[Piece]], limit: int,
                previous: object | None = None, names: Callable[[np.ndarray], list] = list) -> dict:
    """`ranked` of the current clients given a bounded piece at a time (`pieces()` yields (ids, features,
    positions); `names` turns the kept ids into text): the memory of a piece and of `limit` clients, whatever the
    portfolio. Ties rank by position, the client's latest row's place in the history (as `ranked` of a frame in
    that order). The typical client of a card without a reference takes a first pass over every piece."""
    typical, source = _typical(card, lambda: np.concatenate(
        [np.empty((0, len(contract.FEATURES))), *(x for _, x, _ in pieces())]))
    out = {"population": 0, "typical_values": typical, "typical_from": source}
    top = movers = None
    for ids, x, position in pieces():
        if not len(ids):
            continue
        out["population"] += len(ids)
        risk = model.predict_proba(x)[:, 1]
        top = _best(top, (risk, position, ids, x), limit)
        if previous is not None:
            delta = risk - previous.predict_proba(x)[:, 1]
            movers = _best(movers, (delta, position, ids, risk), limit)
    if top is None:
        return out
    risk, _, ids, x = top
    out.update({"ids": names(ids), "risk": risk, "push": pushes(model, x, typical), "values": x})
    if movers is not None:
        delta, _, ids, now = movers
        rising = delta > 0
        out["movers"] = (names(ids[rising]), now[rising], delta[rising])
    return out


def percent(probability: float) -> float:
    """A probability as the dashboard and the report show it: in percent to one decimal, rounded once from the
    unrounded value (0.952524 -> 95.3, where the 4-place 0.9525 would give 95.2)."""
    return round(100 * float(probability), 1)


def call_list(full: dict, top: int) -> dict:
    """The call list of a `ranked`: the first `top` current clients (rank, id, probability to 4 places, the
    `percent` people read, reasons) and movers, the population they are drawn from and the typical client the
    reasons compare with. Costs `top`."""
    typical = dict(zip(contract.FEATURES, full["typical_values"].round(4).tolist(), strict=True))
    ids, risk = full.get("ids", []), full.get("risk", [])
    clients = [{"rank": i + 1, "corporation": ids[i], "probability": round(float(risk[i]), 4),
                "percent": percent(risk[i]),
                "reasons": reasons(full["push"][i], full["values"][i], full["typical_values"], float(risk[i]))}
               for i in range(min(top, len(ids)))]
    names, now, delta = full.get("movers", ([], [], []))
    movers = [{"corporation": names[i], "probability": round(float(now[i]), 4), "percent": percent(now[i]),
               "previous_probability": round(float(now[i] - delta[i]), 4),
               "previous_percent": percent(now[i] - delta[i]), "rise": round(float(delta[i]), 4),
               "rise_points": percent(delta[i])}
              for i in range(min(top, len(names)))]
    return {"clients": clients, "movers": movers, "population": full["population"], "typical": typical,
            "typical_from": full["typical_from"]}


ACTIONS = {"call": "call", "control": "do not call (control)"}  # a group as the managers read it
NO_LIST = ("no call list is recorded yet for this model version and data: the pipeline's next run records it and"
           " draws its random holdout; until then no client is marked")


def with_groups(answer: dict, recorded: dict | None, version: int, data_end: int | None,
                observations: int | None) -> dict:
    """`call_list`'s answer with each client's `group` ("call" or "control") and `action` ("call" or "do not call
    (control)") taken from `recorded`, the newest recorded list, when it was made from this `version` on the same
    data: `data_end`, the byte length of the history it saw, and `observations`, the accepted rows, duplicates
    included (its `data_rows`: a month of repeats moves the count, not the bytes); otherwise (or for a client
    ranked beyond that list) both null, and `note` says why. `call_list` names the recorded list (id, time,
    capacity, holdout)."""
    same = recorded is not None and (recorded["model_version"], recorded["data_end"], recorded["data_rows"]) \
        == (version, data_end, observations)
    groups = {c["corporation"]: c["group"] for c in recorded["clients"]} if same else {}
    clients = [{**c, "group": groups.get(c["corporation"]), "action": ACTIONS.get(groups.get(c["corporation"]))}
               for c in answer["clients"]]
    listing = {k: recorded[k] for k in ("id", "created_at", "capacity", "holdout_share", "holdout_seed")} \
        if same else None
    return {**answer, "clients": clients, "call_list": listing, "note": None if same else NO_LIST}


def spreadsheet_safe(text: str) -> str:
    """OWASP's rule against CSV injection: a cell that a spreadsheet would run as a formula (it starts with
    =, +, -, @, a tab or a carriage return) gets a leading single quote, so it is shown as text."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


CSV_COLUMNS = ["rank", "corporation", "probability", "reasons", "group", "action"]


def as_csv(ranked: list[dict]) -> str:
    """The ranked list as CSV for spreadsheets: rank, corporation, probability, reasons (their words, "; "
    between), group and action (empty when no recorded list marks the client); the text cells are
    spreadsheet_safe, the numbers are written as they are."""
    rows = [{"rank": r["rank"], "corporation": spreadsheet_safe(r["corporation"]), "probability": r["probability"],
             "reasons": spreadsheet_safe("; ".join(x["text"] for x in r["reasons"])), "group": r.get("group"),
             "action": r.get("action")}
            for r in ranked]
    import pandas as pd  # here: the read state's builders import this module without pandas

    return pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(index=False)
