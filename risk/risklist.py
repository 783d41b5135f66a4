"""The ranked risk list: the clients of the latest ingested data by attrition probability, with reasons.

Reason codes come from the model's coefficients on standardised features: a feature's contribution to a
client's log-odds, relative to the average client, is coef * (value - mean). Movers are the clients whose
probability rose most between the previous deployed model and the current one.
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


def probabilities(model: object, frame: pd.DataFrame) -> np.ndarray:
    """P(exited = 1) for each row."""
    return model.predict_proba(contract.matrix(frame))[:, 1]


def contributions(model: object, frame: pd.DataFrame) -> np.ndarray:
    """Rows x features: each feature's push on the log-odds relative to the average client (0 if not linear)."""
    x = contract.matrix(frame)
    coef = getattr(model, "coef_", None)
    if coef is None:
        return np.zeros_like(x)
    return (x - x.mean(axis=0)) * np.asarray(coef)[0]


def reasons(row: np.ndarray, values: np.ndarray) -> list[dict]:
    """The features that push this client's risk up most, strongest first."""
    order = [j for j in np.argsort(-row) if row[j] > 0][:REASONS_PER_CLIENT]
    return [{"feature": contract.FEATURES[j], "value": float(values[j]), "log_odds": round(float(row[j]), 4)}
            for j in order]


def rank(frame: pd.DataFrame, model: object, top: int, previous: object | None = None) -> dict:
    """The `top` clients by probability with their reasons, and the `top` movers since `previous`."""
    clients = latest_clients(frame)
    if clients.empty:
        return {"clients": [], "movers": [], "population": 0}
    risk = probabilities(model, clients)
    push, values = contributions(model, clients), contract.matrix(clients)
    ids = clients[contract.ID_COLUMN].tolist()
    order = np.argsort(-risk, kind="stable")[:top]
    ranked = [{"rank": i + 1, "corporation": ids[j], "probability": round(float(risk[j]), 4),
               "reasons": reasons(push[j], values[j])} for i, j in enumerate(order)]
    return {"clients": ranked, "movers": movers(clients, risk, previous, top), "population": len(clients)}


def movers(clients: pd.DataFrame, risk: np.ndarray, previous: object | None, top: int) -> list[dict]:
    """Clients whose probability rose most from the previous model to this one (empty without one)."""
    if previous is None:
        return []
    delta = risk - probabilities(previous, clients)
    order = [j for j in np.argsort(-delta, kind="stable")[:top] if delta[j] > 0]
    ids = clients[contract.ID_COLUMN].tolist()
    return [{"corporation": ids[j], "probability": round(float(risk[j]), 4),
             "previous_probability": round(float(risk[j] - delta[j]), 4), "rise": round(float(delta[j]), 4)}
            for j in order]


def spreadsheet_safe(text: str) -> str:
    """OWASP's rule against CSV injection: a cell that a spreadsheet would run as a formula (it starts with
    =, +, -, @, a tab or a carriage return) gets a leading single quote, so it is shown as text."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def as_csv(ranked: list[dict]) -> str:
    """The ranked list as CSV for spreadsheets: rank, corporation, probability, reasons ("feature
    (+log-odds); ..."); the text cells are spreadsheet_safe, the numbers are written as they are."""
    rows = [{"rank": r["rank"], "corporation": spreadsheet_safe(r["corporation"]), "probability": r["probability"],
             "reasons": spreadsheet_safe("; ".join(f"{x['feature']} (+{x['log_odds']})" for x in r["reasons"]))}
            for r in ranked]
    return pd.DataFrame(rows, columns=["rank", "corporation", "probability", "reasons"]).to_csv(index=False)
