"""The call list: the current clients by attrition probability, with reasons a client manager reads.

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

import numpy as np
import pandas as pd

from risk import contract

REASONS_PER_CLIENT = 2
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP, "CSV Injection"


def latest_clients(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per named client: its most recent row in ingestion order (rows without a name are skipped)."""
    named = frame[frame[contract.ID_COLUMN].notna()]
    return named.drop_duplicates(contract.ID_COLUMN, keep="last").reset_index(drop=True)


def current_clients(latest: pd.DataFrame) -> pd.DataFrame:
    """The portfolio: the latest rows whose client has not left."""
    return latest[latest[contract.TARGET] != 1].reset_index(drop=True)


def probabilities(model: object, frame: pd.DataFrame) -> np.ndarray:
    """P(exited = 1) for each row."""
    return model.predict_proba(contract.matrix(frame))[:, 1]


def typical_of(card: dict | None, fallback: pd.DataFrame) -> tuple[np.ndarray, str]:
    """The typical client (per-feature medians, contract order) of a version's training reference, and where it
    came from; a card from before it kept a reference falls back to the current clients' medians."""
    stored = (card or {}).get("reference")
    if stored and stored.get("values"):
        values = np.asarray(stored["values"], dtype=float).reshape(-1, len(stored["features"]))
        medians = dict(zip(stored["features"], np.median(values, axis=0), strict=True))
        if all(name in medians for name in contract.FEATURES):
            return np.array([medians[name] for name in contract.FEATURES]), "the version's training reference"
    medians = np.median(contract.matrix(fallback), axis=0) if len(fallback) else np.zeros(len(contract.FEATURES))
    return medians, "the current clients (no reference on the card)"


def contributions(model: object, frame: pd.DataFrame, typical: np.ndarray) -> np.ndarray:
    """Rows x features: each feature's push on the log-odds against the typical client (0 if not linear)."""
    x = contract.matrix(frame)
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


def rank(frame: pd.DataFrame, model: object, top: int, previous: object | None = None,
         typical: np.ndarray | None = None) -> dict:
    """The `top` current clients by probability with their reasons, and the `top` movers since `previous`.
    `frame` holds each client's latest row (or the history, reduced here to it)."""
    return listed(ranking(frame, model, top, previous, typical), top)


def ranking(frame: pd.DataFrame, model: object, limit: int, previous: object | None = None,
            typical: np.ndarray | None = None) -> dict:
    """The first `limit` clients and movers as arrays (ids, probabilities, pushes, values): what `listed` turns
    into any shorter answer, so a cached ranking holds numbers, not `limit` clients' worth of dicts and text."""
    clients = current_clients(latest_clients(frame))
    if clients.empty:
        return {"population": 0}
    if typical is None:
        typical, _ = typical_of(None, clients)
    risk = probabilities(model, clients)
    order = np.argsort(-risk, kind="stable")[:limit]
    head = clients.take(order)
    out = {"population": len(clients), "typical_values": typical, "ids": head[contract.ID_COLUMN].tolist(),
           "risk": risk[order], "push": contributions(model, head, typical), "values": contract.matrix(head)}
    if previous is not None:
        delta = risk - probabilities(previous, clients)
        rising = [j for j in np.argsort(-delta, kind="stable")[:limit] if delta[j] > 0]
        out["movers"] = (clients[contract.ID_COLUMN].take(rising).tolist(), risk[rising], delta[rising])
    return out


def listed(full: dict, top: int) -> dict:
    """The answer of `rank` for the first `top` clients and movers of a `ranking`: costs `top`, not `limit`."""
    if not full["population"]:
        return {"clients": [], "movers": [], "population": 0}
    ranked = [{"rank": i + 1, "corporation": full["ids"][i], "probability": round(float(full["risk"][i]), 4),
               "reasons": reasons(full["push"][i], full["values"][i], full["typical_values"], float(full["risk"][i]))}
              for i in range(min(top, len(full["ids"])))]
    ids, risk, delta = full.get("movers", ([], [], []))
    movers = [{"corporation": ids[i], "probability": round(float(risk[i]), 4),
               "previous_probability": round(float(risk[i] - delta[i]), 4), "rise": round(float(delta[i]), 4)}
              for i in range(min(top, len(ids)))]
    return {"clients": ranked, "movers": movers, "population": full["population"]}


def spreadsheet_safe(text: str) -> str:
    """OWASP's rule against CSV injection: a cell that a spreadsheet would run as a formula (it starts with
    =, +, -, @, a tab or a carriage return) gets a leading single quote, so it is shown as text."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def as_csv(ranked: list[dict]) -> str:
    """The ranked list as CSV for spreadsheets: rank, corporation, probability, reasons (their words, "; "
    between); the text cells are spreadsheet_safe, the numbers are written as they are."""
    rows = [{"rank": r["rank"], "corporation": spreadsheet_safe(r["corporation"]), "probability": r["probability"],
             "reasons": spreadsheet_safe("; ".join(x["text"] for x in r["reasons"]))}
            for r in ranked]
    return pd.DataFrame(rows, columns=["rank", "corporation", "probability", "reasons"]).to_csv(index=False)
