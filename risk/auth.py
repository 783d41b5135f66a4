"""API token auth: when a token is configured every route but /health needs `Authorization: Bearer <token>`
(compared in constant time); without a token the server may bind loopback only.
"""
from __future__ import annotations

import hmac
import ipaddress
import os

from risk.config import Config
from risk.errors import ConfigError

TOKEN_ENV = "RISK_API_TOKEN"  # noqa: S105 (the variable's name, not a secret)
OPEN_ROUTES = ("/health",)


def load_token(config: Config) -> str | None:
    """The token from $RISK_API_TOKEN, else from the file named by `api_token_file`; None when neither."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token and config.api_token_file is not None:
        try:
            token = config.api_token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{config.api_token_file}: cannot read the API token file ({exc.strerror})") from None
        if not token:
            raise ConfigError(f"{config.api_token_file}: the API token file is empty")
    return token or None


def authorized(header: str | None, token: str) -> bool:
    """True when `header` is `Bearer <token>`; the comparison takes the same time wherever it differs.

    WSGI hands over header bytes decoded as Latin-1: encoding them back gives the bytes the client sent (UTF-8
    from curl), to compare with the token's UTF-8 bytes, so a token with non-ASCII characters works."""
    scheme, _, given = (header or "").partition(" ")
    sent = given.strip().encode("latin-1", "replace")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent, token.encode("utf-8"))


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host in ("localhost", "") or host.startswith("unix:"):
        return host != ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token, saying why."""
    if token is None and not is_loopback(host):
        raise ConfigError(f"refusing to bind {host}: no API token is configured (set ${TOKEN_ENV} or "
                          "api_token_file in config.json); without one the API binds loopback only")
