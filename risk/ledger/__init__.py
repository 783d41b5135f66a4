"""The run ledger: one SQLite file (WAL) that records every stage run, file, score, decision and deployment.

It is the source of truth; ingestedfiles.txt and latestscore.txt are views written for the course's readers.
`Ledger` writes (its stores: `ledger.runs`, `.files`, `.decisions`, ...; `ledger.transaction()`), `LedgerReader`
and `read_once` read without writing. Stdlib only: the idle cron tick opens it.
"""
from risk.ledger.base import now
from risk.ledger.reader import LedgerReader, read_once, read_only_connection
from risk.ledger.schema import MIGRATIONS, SCHEMA_VERSION, OldLedger
from risk.ledger.writer import Ledger, recorded

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Ledger", "LedgerReader", "OldLedger", "now", "read_once",
           "read_only_connection", "recorded"]
