"""One connection to the ledger with a store per concern: the base of Ledger (the writer) and LedgerReader.

`ledger.runs`, `.files`, `.scores`, `.decisions`, `.intents`, `.deployments`, `.call_lists`, `.diagnostics`,
`.contacts`, `.contact_files`.
Stdlib only.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from risk.ledger.base import Transaction
from risk.ledger.calllists import CallLists
from risk.ledger.contacts import ContactFiles, Contacts
from risk.ledger.decisions import Decisions, Intents
from risk.ledger.deployments import Deployments
from risk.ledger.diagnostics import Diagnostics
from risk.ledger.files import Files
from risk.ledger.runs import Runs
from risk.ledger.scores import Scores


class Stores:
    """The ledger file at `path`, open on `db`, with one store per concern; closed on leaving `with`."""

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path = path
        self.db = db
        self._transaction = Transaction(db)
        self.runs = Runs(db, self._transaction)
        self.files = Files(db, self._transaction)
        self.scores = Scores(db, self._transaction)
        self.intents = Intents(db, self._transaction)
        self.decisions = Decisions(db, self._transaction, self.intents)
        self.deployments = Deployments(db, self._transaction)
        self.call_lists = CallLists(db, self._transaction)
        self.diagnostics = Diagnostics(db, self._transaction)
        self.contacts = Contacts(db, self._transaction)
        self.contact_files = ContactFiles(db, self._transaction)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
