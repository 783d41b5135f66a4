"""The expected failures of the pipeline: each message names the file, key or field and what was expected."""


class RiskError(Exception):
    """An expected failure; `main()` turns it into one log line and exit 1."""


class ConfigError(RiskError):
    """config.json is missing, unreadable or has a bad key."""


class ContractError(RiskError):
    """Data does not match the data contract (columns, types, ranges)."""


class MissingInputError(RiskError):
    """An input that a stage needs (a file, a folder, a model) is not there."""


class BusyError(RiskError):
    """Another process holds the lock this run needs; the work is left to a later run."""


class CorruptFileError(RiskError):
    """A file the project wrote itself cannot be read back (truncated or corrupt)."""


class IntegrityError(RiskError):
    """A deployed file does not match its manifest (tampered or truncated)."""


class ApiError(Exception):
    """An error answer of the API: HTTP status, a short kind and what was expected (JSON, never a stack trace)."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail
