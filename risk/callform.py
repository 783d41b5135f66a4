"""The dashboard's "called" form: one contact posted by a browser, recorded through the same code path as
`POST /risk/contacts` (the contacts contract, then contactlog.record_request: every client known, all or nothing).

A browser's form cannot send the API's `Authorization: Bearer` header, so the form posts to the dashboard's own
route, which the token guards like every route but /health (a proxy that lets a browser see `/` lets it post
here too). What the token cannot stop is another site's page making that browser post: the route takes a post
only when the browser says it comes from this site (Sec-Fetch-Site, and the Origin, else the Referer, naming this
host). Pure functions on the request's headers and form; the route is in risk/dashboard.py.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlsplit

from risk import contacts
from risk.config import Config

SOURCE = "dashboard"  # recorded with each contact from the form (the API's are "api")
RESULTS = {"reached": "reached", "not_reached": "not reached", "offer_accepted": "offer accepted",
           "offer_declined": "offer declined"}  # contacts.RESULTS in words, in that order
OUTCOMES = {"recorded": "Contact recorded.", "repeated": "That contact was recorded before: nothing added."}
CROSS_SITE = ("the form must be posted from this dashboard's own page (the browser's Origin or Referer header must"
              " name this host)")


def same_origin(headers: Mapping[str, str], host: str) -> bool:
    """True when the browser says the post comes from a page of this host: Sec-Fetch-Site, when sent, is
    "same-origin", and the Origin header (else the Referer) is an http(s) URL of `host` (the request's Host).
    Without either header, or with Origin "null" (a sandboxed or privacy-stripped page), the post is refused."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return False
    source = headers.get("Origin") or headers.get("Referer")
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host.lower()


def record_of(form: Mapping[str, str]) -> dict:
    """The contact the form describes, in the API's fields (an empty note is none)."""
    return {"corporation": form.get("corporation", ""), "contacted_at": form.get("contacted_at", ""),
            "result": form.get("result", ""), "note": form.get("note") or None}


def record(config: Config, form: Mapping[str, str], now: datetime) -> dict[str, int]:
    """Check the form's contact against the contacts contract and record it as POST /risk/contacts does;
    {"added": n, "repeated": m}. ContractError (a bad field, an unknown client) or MissingInputError (no data
    yet) say why, and nothing is written."""
    from risk import contactlog

    return contactlog.record_request(config, [contacts.contact_of(record_of(form), now)], None, SOURCE)


def message(problem: Exception, root: str) -> str:
    """Why the contact was not recorded, as the page says it: the contract's words without the request's
    prefix ("request: contact 0: "), and without the server's folder."""
    return str(problem).removeprefix("request: contact 0: ").replace(root, "")
