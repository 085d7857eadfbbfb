"""Signed internal requests without an event loop, for the command-line tools and the tests.

The processes talk to each other through ``rpc/http.py``'s pooled aiohttp session. A CLI
command (``minis3 status``, ``minis3 partitions``) or a test that asks one process one
question does not need a loop: it signs the request with the cluster secret
(``rpc/auth.py``) and sends it with urllib, through :func:`call`.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from . import auth


def call(secret: str, method: str, url: str, path: str, doc=None, *,
         timeout: float = 5.0, context=None) -> tuple[int, bytes]:
    """Send ``METHOD url+path`` (``doc``, if given, as its JSON body), signed with ``secret``:
    the answer's status and body. An error status is returned like any other; a process
    that does not answer raises OSError. ``context``: the SSL context an https url's
    certificate is checked with (a frontend's, with --tls: config/tls.client_context)."""
    body = json.dumps(doc).encode() if doc is not None else None
    headers = auth.headers(secret, method, path, body)
    if body is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def call_json(secret: str, method: str, url: str, path: str, doc=None, *, timeout: float = 5.0) -> dict:
    """:func:`call` for an endpoint that must succeed: its JSON answer; an error status raises
    ``urllib.error.HTTPError``."""
    status, body = call(secret, method, url, path, doc, timeout=timeout)
    if status >= 300:
        raise urllib.error.HTTPError(url + path, status, body.decode(errors="replace")[:200], None, None)
    return json.loads(body)


def signed_get(secret: str, url: str, path: str, timeout: float = 2.0) -> dict | None:
    """GET an internal endpoint: its JSON, or None if it does not answer (down, frozen,
    an error status or not JSON), as a status display wants it."""
    try:
        status, body = call(secret, "GET", url, path, timeout=timeout)
        return json.loads(body) if status < 300 else None
    except (OSError, ValueError):
        return None
