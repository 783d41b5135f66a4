"""The API's read side: everything a route or the dashboard reads, in one place, and nothing that writes.

Reads the verified deployed model (ModelHolder), the ledger, the ingested history, the test data and the
reports the pipeline wrote. The routes (risk/routes.py, risk/dashboard.py) parse a request, call one function
here and shape the answer.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from risk import catalog, decisions, diagnostics, holdout, prepared, registry, risklist, scoring
from risk.config import Config
from risk.errors import ApiError, ContractError, IntegrityError, MissingInputError
from risk.ledger import LedgerReader

logger = logging.getLogger(__name__)


class ModelHolder:
    """The deployed model, reloaded (verify first, then swap) when the `current` pointer changes.
    `on_load(number)` runs after each load, so that the version gauge follows any route that loads a model.
    A version that fails verification is refused (the one before keeps serving) and verified again when its
    files change (registry.files_identity) or RETRY_SECONDS after the last try, not on every request."""

    RETRY_SECONDS = 60.0

    def __init__(self, prod: Path, on_load: Callable[[int], None] = lambda number: None) -> None:
        self.prod = prod
        self.on_load = on_load
        self.lock = threading.Lock()
        self.loaded: tuple[registry.Version, object] | None = None
        self.refused: int | None = None  # a version that failed verification: not re-read on every request
        self.refusal: tuple[str, tuple, float] = ("", (), 0.0)  # why, its files' identity, when (monotonic)

    def get(self) -> tuple[registry.Version, object]:
        number = registry.current_number(self.prod)
        if number is None:
            raise ApiError(503, "no_model", "no model deployed yet: run fullprocess.py or deployment.py")
        with self.lock:
            stale = self.loaded is None or self.loaded[0].number != number
            if stale and not (self.loaded and number == self.refused and not self._retry_due(number)):
                self._swap(number)
            return self.loaded

    def _retry_due(self, number: int) -> bool:
        _, files, when = self.refusal
        return registry.files_identity(self.prod, number) != files or time.monotonic() - when > self.RETRY_SECONDS

    def refused_now(self) -> tuple[int, str, int | None] | None:
        """(the version the `current` pointer names, why it is refused, the version served instead or None)
        while this worker refuses it; None otherwise (a corrupt pointer is the routes' 503, not a refusal)."""
        try:
            number = registry.current_number(self.prod)
        except IntegrityError:
            return None
        with self.lock:
            serving = self.loaded[0].number if self.loaded else None
            return (number, self.refusal[0], serving) if number == self.refused != serving else None

    def _swap(self, number: int) -> None:
        try:
            version = registry.verify(self.prod, number)
            model = registry.load_model(version)
        except (IntegrityError, MissingInputError) as exc:
            logger.error("refusing version %d: %s", number, exc)
            reason = str(exc).replace(f"{self.prod}{os.sep}", "")  # the server's paths stay in its log
            self.refused = number
            self.refusal = (reason, registry.files_identity(self.prod, number), time.monotonic())
            if self.loaded is None:
                raise ApiError(503, "model_unverified", f"version {number} refused: {reason}") from None
            return
        self.loaded, self.refused = (version, model), None
        self.on_load(number)
        logger.info("serving model version %d", number)


@contextlib.contextmanager
def reading_ledger(config: Config) -> Iterator[LedgerReader | None]:
    """The ledger for reading, or None before the first pipeline run (a GET never creates it)."""
    if not config.ledger_path.is_file():
        yield None
        return
    with LedgerReader(config.ledger_path) as ledger:
        yield ledger


def require_readable_ledger(config: Config) -> None:
    """OldLedger (a 503 naming the cure) when the ledger is of another schema; nothing before the first run."""
    with reading_ledger(config):
        pass


@contextlib.contextmanager
def servers_own_data() -> Iterator[None]:
    """Around reading data the server holds (testdata.csv): if it breaks the contract the fault is not the
    request's, so the answer is 503 not_ready, naming the file, row and column, not 422."""
    try:
        yield
    except ContractError as exc:
        raise MissingInputError(str(exc)) from None


# ---- the model and the data ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def previous_model(prod: Path, number: int) -> tuple[object | None, str | None]:
    """Version `number`'s model, the movers' baseline, or None and why not. Versions are immutable, so each
    is verified and loaded once per process (a failure too, as the ModelHolder does for the current one)."""
    try:
        return registry.load_model(registry.verify(prod, number)), None
    except (IntegrityError, MissingInputError) as exc:
        logger.error("no movers: the previous version %d failed verification: %s", number, exc)
        return None, f"no movers: the previous version {number} failed verification (see the server log)"


RANK_LIMIT = 10_000  # the longest list /risk gives (its `top`)
SHOWN_DEPARTED = 20  # clients named under the dashboard's "left since the last list"; the rest are counted
_rankings: dict[tuple, tuple[dict, str | None]] = {}  # (prod, version, previous, data end, observations) -> ranked
_rankings_lock = threading.Lock()


_before: dict[tuple, int | None] = {}  # (prod folder, version, the `current` pointer file's identity) -> live before


def live_before(config: Config, number: int) -> int | None:
    """The version current before `number` became current (the ledger's deployment history), read once per
    activation: every activation rewrites the `current` pointer file, so its identity keys the answer."""
    from risk.ledger import read_once

    try:
        pointer = (config.prod_folder / catalog.CURRENT).stat()
    except FileNotFoundError:
        return None
    key = (config.prod_folder, number, pointer.st_ino, pointer.st_mtime_ns)
    if key not in _before:
        _before.clear()
        _before[key] = read_once(config.ledger_path, lambda reader: reader.deployments.live_before(number), None)
    return _before[key]


def risk_ranking(config: Config, holder: ModelHolder, top: int) -> tuple[registry.Version, dict]:
    """The served version and GET /risk's answer: the call list of the `top` current clients with reasons against
    the version's typical client, and movers since the last version (risklist's one builder); a previous version
    that fails verification costs only the movers (`movers_note` says why). Each client's group and action come
    from the newest recorded list when it was made from this version on this data (risklist.with_groups). The
    ranking is computed once per version and data change (per worker) from the prepared state, then each answer
    costs its `top` and one read of the newest recorded list."""
    version, model = holder.get()
    before = live_before(config, version.number)
    state = prepared.as_of_committed(config)
    key = (config.prod_folder, version.number, before, state.data_end_byte, state.observations)
    with _rankings_lock:
        held = _rankings.get(key)
        if held is None:
            previous, note = previous_model(config.prod_folder, before) if before else (None, None)
            card = risklist.card_of(version)
            full = prepared.ranked(state, card, model, RANK_LIMIT, previous)
            held = (full, note, list_economics(config, card, full))
            _rankings.clear()  # one ranking per worker: the newest
            _rankings[key] = held
    full, note, money = held
    with reading_ledger(config) as ledger:
        recorded = ledger.call_lists.latest(1) if ledger else []
    answer = {"model_version": version.label, "previous_version": before, **risklist.call_list(full, top),
              "movers_note": note, "economics": money}
    return version, risklist.with_groups(answer, recorded[0] if recorded else None, version.number,
                                         state.data_end_byte, state.observations)


def list_size(config: Config) -> int:
    """How many clients a recorded list holds: `call_capacity` to call and the random controls (the default
    length of /risk and the dashboard's list)."""
    return holdout.list_size(config.call_capacity, config.holdout_share)


def list_economics(config: Config, card: dict | None, full: dict) -> dict:
    """/risk's `economics`: how many of the ranked clients pay to call (the version card's profit-optimal share of
    the current clients, at most call_capacity) and the expected profit curve, with config's economics."""
    from risk import economics

    return economics.for_list((card or {}).get("economics"), full.get("risk", []), full["population"],
                              config.call_capacity, economics.from_config(config))


def served_version(holder: ModelHolder) -> tuple[registry.Version | None, str | None]:
    """The version the API serves, or None and a problem (None when simply nothing is deployed yet)."""
    try:
        return holder.get()[0], None
    except ApiError as exc:
        return None, None if exc.kind == "no_model" else exc.detail
    except IntegrityError as exc:  # a corrupt `current` pointer
        logger.error("%s", exc)
        return None, "the deployed model failed verification; see the server log"


def test_score(config: Config, holder: ModelHolder) -> dict:
    """GET /scoring: the served model's F1 on the test data."""
    version, model = holder.get()
    with servers_own_data():
        frame = scoring.read_labelled_csv(config.testdata_path)
    return {"f1": scoring.f1_of(model, frame), "rows": len(frame), "model_version": version.label}


def summary_statistics(config: Config) -> dict:
    """GET /summarystats: mean, median and standard deviation of each feature of the ingested history, kept
    up to date by the pipeline as rows arrive (risk/prepared.py)."""
    return prepared.summary(prepared.as_of_committed(config))


def diagnostics_now(config: Config, holder: ModelHolder, versions: dict[str, tuple[str, float]]) -> dict:
    """GET /diagnostics; `versions` is the worker's own cache of latest package versions."""
    holder.get()
    with servers_own_data():
        return diagnostics.diagnose_online(config, versions)


def call_list_outcomes(config: Config, limit: int) -> list[dict]:
    """GET /risk/outcomes: the newest `limit` recorded call lists, each with what later data says about it."""
    with reading_ledger(config) as ledger:
        lists = ledger.call_lists.latest(limit) if ledger else []
    return list_outcomes(lists, prepared.as_of_committed(config)) if lists else []


CALIBRATION_LISTS = 24  # the newest lists the calibration alert reads (it needs the newest three judged)


def calibration_alert(config: Config) -> int:
    """1 when the newest expected.RUN judged lists all fell outside their expected interval (risk/expected.py),
    else 0; 0 too when it cannot be known now (no list, or the read state is behind: other alerts say so)."""
    from risk import expected

    try:
        with reading_ledger(config) as ledger:
            lists = ledger.call_lists.latest(CALIBRATION_LISTS) if ledger else []
        state = prepared.as_of_committed(config) if lists else None
    except MissingInputError:  # the ledger of another schema, or the read state behind it
        return 0
    if state is None:
        return 0
    return int(expected.alert([outcome["outside"] for outcome in list_outcomes(lists, state)][::-1]))


_answers: dict[tuple, tuple[object, object]] = {}  # (what, id(state), list ids) -> (the state, the answer)
_answers_lock = threading.RLock()  # feedback_of asks for list_outcomes inside


def per_state(what: str, state, lists: list[dict], compute: Callable[[], object]) -> object:
    """compute(), once per worker for each prepared state (one per version of its file, of one project) and
    recorded lists (neither changes between ingestions): answers that read every client's latest row then cost
    a dictionary look-up. The entry keeps its state, so an id is never taken for another state's."""
    key = (what, id(state), tuple(recorded["id"] for recorded in lists))
    with _answers_lock:
        held = _answers.get(key)
        if held is None or held[0] is not state:
            if len(_answers) >= 8:
                _answers.clear()
            held = _answers[key] = (state, compute())
        return held[1]


def list_outcomes(lists: list[dict], state) -> list[dict]:  # state: prepared.State
    """calllists.outcomes of `lists` against the prepared state, computed once per (state, lists) per worker."""
    from risk import calllists

    return per_state("outcomes", state, lists, lambda: calllists.outcomes(lists, state))


def list_feedback(config: Config, lists: int = 6) -> dict:
    """For the dashboard: the outcomes of the latest recorded lists (oldest first) and the clients who left since
    the list before the newest one (the list the managers had while the newest data was gathered): the first
    SHOWN_DEPARTED of them by name, the rest counted in `more_departed`."""
    with reading_ledger(config) as ledger:
        recorded = ledger.call_lists.latest(lists) if ledger else []
    if not recorded:
        return {"outcomes": [], "departed": [], "more_departed": 0, "since": None}
    state = prepared.as_of_committed(config)
    return per_state("feedback", state, recorded, lambda: feedback_of(recorded, state))


def feedback_of(recorded: list[dict], state) -> dict:  # state: prepared.State
    outcomes = list_outcomes(recorded, state)[::-1]
    since = recorded[1] if len(recorded) > 1 else None
    departed, more = [], 0
    if since is not None:  # a scan of the clients a piece at a time (prepared.left_since), once per state and lists
        gone, more = prepared.left_since(state, since["data_rows"], SHOWN_DEPARTED)
        listed = {c["corporation"] for c in since["clients"]}
        departed = [{"corporation": name, "on_list": name in listed} for name in gone]
    return {"outcomes": outcomes, "departed": departed, "more_departed": more, "since": since and since["created_at"]}


def retention_entries(config: Config) -> tuple[list[dict], bool]:
    """The recorded lists (the newest retention.MAX_LISTS, oldest first) with their windows and client rows
    against the prepared state, computed once per (state, lists) per worker, and whether older lists were left
    out; contacts are not in them (they change between ingestions: `contacts_of` reads them per request)."""
    from risk import retention

    with reading_ledger(config) as ledger:
        lists = ledger.call_lists.latest(retention.MAX_LISTS + 1) if ledger else []
    return entries_of(lists, prepared.as_of_committed(config) if lists else None)


def entries_of(lists: list[dict], state) -> tuple[list[dict], bool]:  # state: prepared.State | None
    """retention_entries from lists already read (the newest retention.MAX_LISTS + 1, newest first) and the prepared
    state they are judged against (None with no lists); the report reads both itself."""
    from risk import retention

    cut, lists = len(lists) > retention.MAX_LISTS, lists[:retention.MAX_LISTS]
    if not lists:
        return [], False
    return per_state("retention", state, lists, lambda: retention.judged_lists(lists, state.watches)), cut


def contacts_of(ledger: LedgerReader, entry: dict) -> dict[str, list[dict]]:
    """The contacts of one list's clients in its window (ledger.contacts.of_clients)."""
    ids = [row["corporation"] for row in entry["rows"]]
    return ledger.contacts.of_clients(ids, entry["since"], entry["until"])


def effect_of_calling(config: Config, shown: int) -> dict:
    """GET /risk/effect: the measured effect of calling, pooled over the judged lists and for the newest `shown`;
    one contacts query per list in force whose month has come."""
    entries, cut = retention_entries(config)
    with reading_ledger(config) as ledger:
        return effect_of(ledger, entries, cut, shown)


def effect_of(ledger: LedgerReader | None, entries: list[dict], cut: bool, shown: int) -> dict:
    """The effect of calling from the lists' entries (retention_entries, entries_of) with their contacts read from
    `ledger` (a reader, or the report's writer): what GET /risk/effect, the dashboard and the report show."""
    from risk import retention

    judged = []
    for entry in entries:
        rows = entry["rows"]
        if ledger is not None and retention.judged(entry):
            rows = retention.with_contacts(rows, contacts_of(ledger, entry))
        judged.append({**entry, "rows": rows})
    return retention.effect_answer(judged, shown, cut)


def experiment_stream(config: Config) -> Iterator[str]:
    """GET /risk/experiment.csv as a stream: the lists and the prepared state are checked before the first byte
    (a 503 is still an answer), then each list's rows are written with its contacts as it is read."""
    from risk import retention

    entries, _ = retention_entries(config)

    def chunks() -> Iterator[str]:
        with reading_ledger(config) as ledger:
            yield from retention.experiment_chunks(entries, lambda entry: contacts_of(ledger, entry) if ledger else {})

    return chunks()


# ---- the ledger ---------------------------------------------------------------------------------------
def latest_contacts(config: Config, limit: int) -> dict:
    """GET /risk/contacts: the newest `limit` contacts recorded (newest first) and how many there are."""
    with reading_ledger(config) as ledger:
        if ledger is None:
            return {"contacts": [], "total": 0}
        return {"contacts": ledger.latest_contacts(limit), "total": ledger.contacts.count()}


def latest_decision(config: Config) -> dict | None:
    with reading_ledger(config) as ledger:
        return decisions.latest_decision(ledger) if ledger else None


def decision_list(config: Config, limit: int) -> list[dict]:
    with reading_ledger(config) as ledger:
        return decisions.decisions(ledger, limit) if ledger else []


def ledger_history(config: Config, last_decisions: int) -> tuple[list[dict], list[dict]]:
    """(every deployment oldest first, the last decisions newest first); empty before the first run."""
    with reading_ledger(config) as ledger:
        if ledger is None:
            return [], []
        return ledger.deployments.records(), decisions.decisions(ledger, last_decisions)


# ---- files the pipeline wrote -------------------------------------------------------------------------
def report_file(config: Config, kind: str) -> Path:
    """The model report ("pdf" or "html") of the current version (so that a rollback shows the report of the
    version it went back to), else the newest written; 404 before one."""
    number = registry.current_number(config.prod_folder)
    paths = config.report_paths(str(number))
    path = paths[kind] if number is not None and paths[kind].is_file() else paths[f"latest_{kind}"]
    if not path.is_file():
        raise ApiError(404, "no_report", "no report written yet: run reporting.py or fullprocess.py")
    return path


def report_written(config: Config) -> bool:
    return config.report_paths("latest")["latest_html"].is_file()
