"""Every call list, recorded, and how right it was once later data arrives.

The pipeline records the list (time, model version, capacity, how much history it saw in rows and bytes, the
listed clients with their ranks, probabilities and reasons, as /risk gives them) whenever it changes: new
data, a new version, a rollback, a new capacity or holdout share. A list holds `call_capacity` clients to call
and, with `holdout_share` above 0, the controls a seeded draw holds out of it (risk/holdout.py: the seed, the
share, each client's group and the expected hit rate of each group are recorded with it and never change).
Later data says what happened: a listed client whose next row arrives is `followed`, and `left` if that row
says it left (a later row does not change the outcome: the list is judged on the horizon it was made for). The
same is measured among the clients current at the list that were not listed (the `base_rate`), so the list's
`hit_rate` has something to beat (`lift`); `missed` counts the clients who left without being listed. Outcomes
are read from the prepared state's watch of each list (risk/prepared.py), never from the history.
"""
from __future__ import annotations

import logging
import secrets

from risk import contract, expected, holdout, prepared, registry, risklist
from risk.config import Config
from risk.ledger import Ledger

logger = logging.getLogger(__name__)
SHOWN_MISSED = prepared.SHOWN_LEFT  # ids of missed clients given with each list (their count is whole)


def ranked_now(config: Config, version: registry.Version, state: prepared.State) -> list[dict]:
    """The call list the version gives now (risklist's one builder): rank, id, probability and reasons of the
    list's clients, as /risk gives them: `holdout.list_size(call_capacity, holdout_share)` of them, so that
    `call_capacity` are left to call once the controls are drawn."""
    size = holdout.list_size(config.call_capacity, config.holdout_share)
    card, model = risklist.card_of(version), registry.load_model(version)
    full = prepared.ranked(state, card, model, size)
    return with_features(risklist.call_list(full, size)["clients"], full)


def with_features(clients: list[dict], full: dict) -> list[dict]:
    """Each listed client with its features as the list saw them (the experiment data set's columns: the
    prepared state keeps only each client's newest row, so they are recorded with the list)."""
    values = full.get("values", [])
    return [{**client, "features": dict(zip(contract.FEATURES, map(float, values[i]), strict=True))}
            for i, client in enumerate(clients)]


def _same_list(recorded: dict, live: int, config: Config, state: prepared.State, clients: list[dict]) -> bool:
    """The same version, capacity and holdout share, on the same data (bytes and observations: /risk marks the
    groups of a list made on the data it reads, risklist.with_groups), and the same clients in the same order with
    the same probabilities (lists recorded before reasons were kept say nothing of reasons, and the same model on
    the same data gives the same ones)."""
    key = lambda entry: (entry["rank"], entry["corporation"], entry["probability"])  # noqa: E731
    return (recorded["model_version"], recorded["capacity"], recorded["holdout_share"], recorded["data_end"],
            recorded["data_rows"]) \
        == (live, config.call_capacity, config.holdout_share, state.data_end_byte, state.observations) \
        and [key(c) for c in recorded["clients"]] == [key(c) for c in clients]


def with_holdout(clients: list[dict], capacity: int, seed: int) -> list[dict]:
    """The clients, each with its group: holdout.assign's draw with `seed` over the list, `capacity` of them to
    call (all of them on a list no longer than that)."""
    groups = holdout.assign(len(clients), min(capacity, len(clients)), seed)
    return [{**client, "group": str(group)} for client, group in zip(clients, groups, strict=True)]


def expected_of(clients: list[dict]) -> dict:
    """The expected hit rate (mean probability, Poisson-binomial interval) of the call group, the control group
    and the whole list; each None when it has no clients."""
    of = lambda chosen: expected.expected_hit_rate([c["probability"] for c in chosen])  # noqa: E731
    return {"call": of([c for c in clients if c["group"] == holdout.CALL]),
            "control": of([c for c in clients if c["group"] == holdout.CONTROL]), "all": of(clients)}


def record_if_changed(config: Config, ledger: Ledger, run_id: int | None) -> int | None:
    """Record the current call list unless it is the last one recorded (same version, capacity, holdout share,
    data, clients and probabilities), with a fresh seed's holdout drawn over it; the new list's id, or None. A list
    recorded once keeps its groups: nothing here changes a recorded list."""
    live = registry.current_number(config.prod_folder)
    if live is None:
        return None
    state = prepared.advance(config, prepared.committed(ledger))
    if state is None:  # no data yet
        return None
    version = registry.verify(config.prod_folder, live)
    clients = ranked_now(config, version, state)
    last = ledger.call_lists.latest(1)
    if last and _same_list(last[0], live, config, state, clients):
        return None
    seed = secrets.randbits(31)
    clients = with_holdout(clients, config.call_capacity, seed)
    list_id = ledger.call_lists.record(run_id, live, config.call_capacity, state.observations,
                                      state.data_end_byte, clients, seed, config.holdout_share, expected_of(clients))
    controls = sum(c["group"] == holdout.CONTROL for c in clients)
    logger.info("call list %d: %d client(s) from version %d, %d to call and %d held out (seed %d)", list_id,
                len(clients), live, len(clients) - controls, controls, seed)
    return list_id


def wilson(successes: int, trials: int) -> list[float] | None:
    """The 95% Wilson score interval of a proportion (scipy's), or None without trials."""
    if not trials:
        return None
    from scipy import stats

    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return [round(float(interval.low), 4), round(float(interval.high), 4)]


def outcome(recorded: dict, state: prepared.State) -> dict:
    """What later data says about one recorded list: each client's next row after the list."""
    watch = state.watches.get(recorded["data_rows"]) or prepared.unwatched()
    ids = [c["corporation"] for c in recorded["clients"]]
    outcomes = [watch["listed"].get(name) for name in ids]
    n_followed = sum(o is not None for o in outcomes)
    n_left = sum(o == 1 for o in outcomes)
    n_base, n_base_left = watch["followed"] - n_followed, watch["left"] - n_left
    hit_rate = n_left / n_followed if n_followed else None
    base_rate = n_base_left / n_base if n_base else None
    listed = set(ids)
    return {"id": recorded["id"], "created_at": recorded["created_at"], "model_version": str(recorded["model_version"]),
            "capacity": recorded["capacity"], "clients": ids,
            "followed": n_followed, "left": n_left,
            "hit_rate": None if hit_rate is None else round(hit_rate, 4), "hit_rate_ci95": wilson(n_left, n_followed),
            "base_followed": n_base, "base_left": n_base_left,
            "base_rate": None if base_rate is None else round(base_rate, 4),
            "lift": round(hit_rate / base_rate, 4) if hit_rate is not None and base_rate else None,
            "missed": n_base_left,
            "missed_clients": [name for name in watch["left_ids"] if name not in listed][:SHOWN_MISSED],
            **expected_vs_realized(recorded, outcomes)}


def _judged_group(recorded: dict) -> str:
    """The group whose outcomes say how calibrated the list was: the holdout where there is one (calls change the
    called clients' outcomes), else the whole list."""
    forecast = recorded.get("expected") or {}
    if forecast.get(holdout.CONTROL) or any(c.get("group") == holdout.CONTROL for c in recorded["clients"]):
        return holdout.CONTROL
    return "all"


def expected_vs_realized(recorded: dict, outcomes: list[int | None]) -> dict:
    """The list's expected hit rate (as recorded with it, else the mean probability of the same clients) beside the
    realized one on the same clients, and whether it fell outside the interval: judged against the interval of
    the clients followed so far (the recorded one once every client of the group is followed)."""
    group = _judged_group(recorded)
    members = [(c["probability"], o) for c, o in zip(recorded["clients"], outcomes, strict=True)
               if group == "all" or c.get("group") == group]
    forecast = (recorded.get("expected") or {}).get(group) or expected.expected_hit_rate([p for p, _ in members])
    followed = [(p, o) for p, o in members if o is not None]
    left = sum(o for _, o in followed)
    against = forecast if len(followed) == len(members) else expected.expected_hit_rate([p for p, _ in followed])
    rounded = None if forecast is None else {**forecast, **{k: round(forecast[k], 4) for k in ("rate", "low", "high")}}
    return {"expected": rounded and {**rounded, "group": group},
            "realized": {"group": group, "followed": len(followed), "left": left,
                         "rate": round(left / len(followed), 4) if followed else None},
            "outside": expected.outside(against, left, len(followed))}


def outcomes(lists: list[dict], state: prepared.State) -> list[dict]:
    return [outcome(recorded, state) for recorded in lists]
