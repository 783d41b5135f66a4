"""Load and check config.json into a frozen Config of absolute paths.

Folder paths resolve relative to the config file's folder, never the current directory, so cron and
tests work from anywhere. Stdlib only: the idle cron tick imports this.
"""
from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path

from risk import catalog
from risk.errors import ConfigError
from risk.methods import METHODS as DRIFT_METHODS

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.json"

PATH_KEYS = (
    "input_folder_path",
    "output_folder_path",
    "test_data_path",
    "output_model_path",
    "prod_deployment_path",
)
# The course's folder names: config.json's values, and the layout of the miniature projects tests build.
COURSE_FOLDERS = dict(zip(PATH_KEYS, ("sourcedata", "ingesteddata", "testdata", "practicemodels",
                                      "production_deployment"), strict=True))
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_KEEP_VERSIONS = 10
# The drift decision (risk/drift.py): method and thresholds.
DEFAULT_DRIFT = {"drift_method": "statistical", "drift_alpha": 0.05, "drift_min_rows": 30,
                 "drift_min_f1_drop": 0.05, "drift_min_feature_effect": 0.1}
DEFAULT_ALERT_REPEAT_HOURS = 4.0
DEFAULT_CALL_CAPACITY, MAX_CALL_CAPACITY = 20, 10_000
# The retention loop: the share of each recorded list held out as a random control (docs/operations.md says why
# 0.2), and the economics of a call (Verbraken et al. 2013's defaults: risk/economics.py).
DEFAULT_HOLDOUT_SHARE, MAX_HOLDOUT_SHARE = 0.2, 0.9
DEFAULT_ECONOMICS = {"client_value": 200.0, "offer_cost": 10.0, "contact_cost": 1.0, "accept_alpha": 6.0,
                     "accept_beta": 14.0}
# Where client managers drop contacts CSVs (risk/contactlog.py), relative to the config's folder; read only.
DEFAULT_CONTACTS_FOLDER = "contacts"
# Every optional key with its default: the one table docs/operations.md's "Configuration keys" must match
# (tests/test_config.py checks each key and default appears there). None: unset unless config.json sets it.
DEFAULTS = {"max_request_bytes": DEFAULT_MAX_REQUEST_BYTES, "api_url": DEFAULT_API_URL,
            "keep_versions": DEFAULT_KEEP_VERSIONS, **DEFAULT_DRIFT, "api_token_file": None,
            "alert_webhook_url": None, "alert_repeat_hours": DEFAULT_ALERT_REPEAT_HOURS, "heartbeat_url": None,
            "call_capacity": DEFAULT_CALL_CAPACITY, "holdout_share": DEFAULT_HOLDOUT_SHARE, **DEFAULT_ECONOMICS,
            "contacts_folder_path": DEFAULT_CONTACTS_FOLDER}
# Every key config.json may hold; any other is a typo, refused.
KNOWN_KEYS = (*PATH_KEYS, *DEFAULTS)
# Folders the pipeline writes: none may be the input folder, or inside it, or hold it (it would ingest itself).
WRITTEN_FOLDER_KEYS = ("output_folder_path", "output_model_path", "prod_deployment_path")


_Fields = namedtuple(
    "_Fields",
    "config_path input_folder output_folder test_data model_folder prod_folder max_request_bytes api_url"
    " keep_versions drift_method drift_alpha drift_min_rows drift_min_f1_drop drift_min_feature_effect"
    " api_token_file alert_webhook_url alert_repeat_hours heartbeat_url call_capacity holdout_share client_value"
    " offer_cost contact_cost accept_alpha accept_beta contacts_folder_path",
    defaults=(DEFAULT_MAX_REQUEST_BYTES, DEFAULT_API_URL, DEFAULT_KEEP_VERSIONS, *DEFAULT_DRIFT.values(), None, None,
              DEFAULT_ALERT_REPEAT_HOURS, None, DEFAULT_CALL_CAPACITY, DEFAULT_HOLDOUT_SHARE,
              *DEFAULT_ECONOMICS.values(), DEFAULT_CONTACTS_FOLDER),
)


class Config(_Fields):
    """Absolute paths (Path) and settings of one project; immutable.

    A namedtuple rather than a frozen dataclass: `dataclasses` costs the idle cron tick ~5 ms of imports.
    Fields: config_path, input_folder, output_folder, test_data, model_folder, prod_folder (Paths),
    max_request_bytes (int), api_url (str), keep_versions (int), drift_method (str), drift_alpha,
    drift_min_rows, drift_min_f1_drop, drift_min_feature_effect (numbers), api_token_file (Path or None),
    alert_webhook_url and heartbeat_url (str or None), alert_repeat_hours (number), call_capacity (int: how many
    clients the managers can call, the call list's length), holdout_share (the random control's share of each
    list), client_value, offer_cost, contact_cost, accept_alpha, accept_beta (the economics of a call),
    contacts_folder_path (the contacts folder as configured, relative to the config's folder: `contacts_folder`).
    `config._replace(...)` gives a changed copy.
    """

    __slots__ = ()

    @property
    def root(self) -> Path:
        return self.config_path.parent

    @property
    def contacts_folder(self) -> Path:
        """The folder where contacts CSVs are dropped, resolved beside the config file."""
        return (self.root / self.contacts_folder_path).resolve()

    @property
    def ledger_path(self) -> Path:
        return self.output_folder / catalog.LEDGER

    @property
    def lock_path(self) -> Path:
        return self.output_folder / catalog.PIPELINE_LOCK

    @property
    def finaldata_path(self) -> Path:
        return self.output_folder / catalog.FINALDATA

    @property
    def testdata_path(self) -> Path:
        return self.test_data / catalog.TESTDATA

    @property
    def model_path(self) -> Path:
        """The trained model (the course's pickle) in the model folder."""
        return self.model_folder / catalog.MODEL

    @property
    def card_path(self) -> Path:
        return self.model_folder / catalog.CARD

    def report_paths(self, label: str) -> dict[str, Path]:
        """Version `label`'s report files and the latest ones."""
        folder = self.model_folder / catalog.REPORTS
        return {"pdf": folder / label / "report.pdf", "html": folder / label / "report.html",
                "latest_pdf": folder / catalog.LATEST_PDF, "latest_html": folder / catalog.LATEST_HTML}

    def data_folders(self) -> tuple[Path, ...]:
        """Folders a client may name a dataset in (the API's dataset_path is confined to these)."""
        return (self.input_folder, self.output_folder, self.test_data)


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{_text_byte(exc)} at offset {exc.start});"
                          " save the config as UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of settings, got {type(data).__name__}")
    return data


def _text_byte(exc: UnicodeDecodeError) -> str:
    return exc.object[exc.start:exc.start + 1].hex()


def _check_keys(data: dict, path: Path) -> None:
    """Refuse a key that is not a setting (a typo would silently leave its default in force)."""
    for key in data:
        if key not in KNOWN_KEYS:
            import difflib  # here: only a misspelt key needs it

            close = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(KNOWN_KEYS)}"
            raise ConfigError(f"{path}: unknown key {key!r}{hint}")


def _check_separate(folders: dict, path: Path) -> None:
    """The input folder must not be, hold or lie inside a folder the pipeline writes."""
    source = folders["input_folder_path"]
    for key in WRITTEN_FOLDER_KEYS:
        written = folders[key]
        if source == written or source.is_relative_to(written) or written.is_relative_to(source):
            raise ConfigError(f"{path}: keys 'input_folder_path' ({source}) and {key!r} ({written}) must name"
                              " separate folders, neither inside the other (the pipeline would read its own output"
                              " as input)")


def _folder(data: dict, key: str, root: Path, path: Path) -> Path:
    value = data.get(key)
    if value is None:
        raise ConfigError(f"{path}: missing key {key!r} (a folder path, relative to the config's folder)")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: key {key!r} must be a non-empty string path, got {value!r}")
    folder = (root / value).resolve()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{path}: key {key!r} must name a folder, but {folder} is a file")
    return folder


def _positive_int(data: dict, key: str, default: int, path: Path) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{path}: key {key!r} must be a positive integer, got {value!r}")
    return value


def _url(data: dict, key: str, default: str, path: Path) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: key {key!r} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _drift_settings(data: dict, path: Path) -> dict:
    """The drift keys, checked: a known method, 0 < alpha < 1, a positive row count, effects >= 0."""
    method = data.get("drift_method", DEFAULT_DRIFT["drift_method"])
    if method not in DRIFT_METHODS:
        raise ConfigError(f"{path}: key 'drift_method' must be one of {list(DRIFT_METHODS)}, got {method!r}")
    settings = {"drift_method": method,
                "drift_min_rows": _positive_int(data, "drift_min_rows", DEFAULT_DRIFT["drift_min_rows"], path)}
    for key, low, high in (("drift_alpha", 0.0, 1.0), ("drift_min_f1_drop", 0.0, 1.0),
                           ("drift_min_feature_effect", 0.0, float("inf"))):
        value = data.get(key, DEFAULT_DRIFT[key])
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value < high:
            raise ConfigError(f"{path}: key {key!r} must be a number in [{low}, {high}), got {value!r}")
        settings[key] = float(value)
    if settings["drift_alpha"] == 0:
        raise ConfigError(f"{path}: key 'drift_alpha' must be above 0, got 0")
    return settings


def _optional_file(data: dict, key: str, root: Path, path: Path) -> Path | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: key {key!r} must be a file path (relative to the config's folder), got {value!r}")
    return (root / value).resolve()


def load_config(path: str | Path | None = None) -> Config:
    """Read config.json at `path` (default: the one beside the scripts) and resolve its folders."""
    config_path = Path(path if path is not None else DEFAULT_CONFIG).resolve()
    data = _read_json(config_path)
    _check_keys(data, config_path)
    root = config_path.parent
    folders = {key: _folder(data, key, root, config_path) for key in PATH_KEYS}
    _check_separate(folders, config_path)
    contacts = _contacts_folder(data, folders, root, config_path)
    return Config(
        config_path,
        *folders.values(),
        max_request_bytes=_positive_int(data, "max_request_bytes", DEFAULT_MAX_REQUEST_BYTES, config_path),
        api_url=_url(data, "api_url", DEFAULT_API_URL, config_path),
        keep_versions=_positive_int(data, "keep_versions", DEFAULT_KEEP_VERSIONS, config_path),
        **_drift_settings(data, config_path),
        api_token_file=_optional_file(data, "api_token_file", root, config_path),
        alert_webhook_url=_optional_url(data, "alert_webhook_url", config_path),
        alert_repeat_hours=_positive_number(data, "alert_repeat_hours", DEFAULT_ALERT_REPEAT_HOURS, config_path),
        heartbeat_url=_optional_url(data, "heartbeat_url", config_path),
        call_capacity=_call_capacity(data, config_path),
        **_retention_settings(data, config_path),
        contacts_folder_path=contacts,
    )


def _contacts_folder(data: dict, folders: dict, root: Path, path: Path) -> str:
    """The contacts folder as configured: a folder path apart from the input folder (ingestion would take contacts
    for client data, or the contacts folder client data for contacts) and from every folder the pipeline writes
    (it would read its own contacts_rejects.csv as contacts)."""
    value = data.get("contacts_folder_path", DEFAULT_CONTACTS_FOLDER)
    folder = _folder({"contacts_folder_path": value}, "contacts_folder_path", root, path)
    for key in ("input_folder_path", *WRITTEN_FOLDER_KEYS):
        other = folders[key]
        if folder == other or folder.is_relative_to(other) or other.is_relative_to(folder):
            raise ConfigError(f"{path}: keys 'contacts_folder_path' ({folder}) and {key!r} ({other}) must name"
                              " separate folders, neither inside the other (contacts files and data files must not"
                              " be read for one another)")
    return value


def _retention_settings(data: dict, path: Path) -> dict:
    """holdout_share in [0, 0.9]; costs >= 0; a kept client's value and the Beta parameters above 0."""
    share = data.get("holdout_share", DEFAULT_HOLDOUT_SHARE)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= MAX_HOLDOUT_SHARE:
        raise ConfigError(f"{path}: key 'holdout_share' must be a number from 0 (no holdout) to {MAX_HOLDOUT_SHARE}"
                          f" (the share of each list held out as a control), got {share!r}")
    settings = {"holdout_share": float(share)}
    for key in ("offer_cost", "contact_cost"):
        settings[key] = _number_at_least(data, key, 0.0, path)
    for key in ("client_value", "accept_alpha", "accept_beta"):
        settings[key] = _positive_number(data, key, DEFAULT_ECONOMICS[key], path)
    return settings


def _number_at_least(data: dict, key: str, low: float, path: Path) -> float:
    value = data.get(key, DEFAULT_ECONOMICS[key])
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value < float("inf"):
        raise ConfigError(f"{path}: key {key!r} must be a number of at least {low:g}, got {value!r}")
    return float(value)


def _call_capacity(data: dict, path: Path) -> int:
    value = data.get("call_capacity", DEFAULT_CALL_CAPACITY)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CALL_CAPACITY:
        raise ConfigError(f"{path}: key 'call_capacity' must be a whole number from 1 to {MAX_CALL_CAPACITY} (how"
                          f" many clients the managers can call), got {value!r}")
    return value


def _optional_url(data: dict, key: str, path: Path) -> str | None:
    """An http(s) URL, or None when the key is absent or null. Its value is not quoted in the error: such a
    URL often holds a token."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: key {key!r} must be an http(s) URL (value not shown: it may hold a token)")
    return value.rstrip("/")


def _positive_number(data: dict, key: str, default: float, path: Path) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        raise ConfigError(f"{path}: key {key!r} must be a number above 0, got {value!r}")
    return float(value)


def require_folder(folder: Path, key: str) -> Path:
    """The folder must exist; otherwise a ConfigError naming the key."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: folder named by {key!r} does not exist")
    return folder
