"""Cross-origin resource sharing (CORS): a bucket's ``CORSConfiguration``, and what a browser
is told. Pure: no I/O.

A web page from ``https://app.example`` that calls a bucket with ``fetch()`` is stopped by its
browser unless the bucket says that origin may. For anything beyond a simple GET the browser
first sends a *preflight*: ``OPTIONS`` with ``Origin``, ``Access-Control-Request-Method`` and
``Access-Control-Request-Headers``, unsigned. S3 answers it from the bucket's CORS rules (the
S3 User Guide, "How does Amazon S3 evaluate the CORS configuration on a bucket?"): the
**first** rule whose AllowedOrigin matches the origin, whose AllowedMethod holds the method
and whose AllowedHeader patterns cover every requested header decides; no rule, 403. The
actual request then gets the same ``Access-Control-*`` headers, from the first rule matching
its origin and method, and ``Vary: Origin``.

Patterns: an AllowedOrigin or AllowedHeader may hold one ``*`` (``https://*.example.com``);
headers compare case-insensitively.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

from . import errors as E
from . import xmldoc as X

MAX_BODY = 64 * 1024
MAX_RULES = 100
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
NOT_ALLOWED = ("CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
               "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not "
               "whitelisted by the resource's CORS spec.")


@dataclass(frozen=True)
class Rule:
    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...] = ()
    expose: tuple[str, ...] = ()
    max_age: int | None = None
    id: str | None = None


# ----------------------------------------------------------------------------- the document
def _texts(el, name: str) -> tuple[str, ...]:
    return tuple(X.leaf_text(c).strip() for c in X.children(el, name))


def _one_wildcard(values: tuple[str, ...], what: str) -> None:
    for v in values:
        if v.count("*") > 1:
            raise E.InvalidRequest(f'{what} "{v}" can not have more than one wildcard.')


def parse_cors(body: bytes) -> list[Rule]:
    """A ``CORSConfiguration`` as S3 checks it: 1 to 100 rules, each with an AllowedOrigin and
    an AllowedMethod of GET, PUT, POST, DELETE or HEAD."""
    root = X.parse(body, MAX_BODY, "CORSConfiguration")
    rules = []
    for el in X.children(root, "CORSRule"):
        origins, methods = _texts(el, "AllowedOrigin"), _texts(el, "AllowedMethod")
        if not origins or not methods:
            raise E.MalformedXML()
        for m in methods:
            if m not in METHODS:
                raise E.InvalidRequest(f"Found unsupported HTTP method in CORS config. Unsupported method is {m}")
        headers = _texts(el, "AllowedHeader")
        _one_wildcard(origins, "AllowedOrigin")
        _one_wildcard(headers, "AllowedHeader")
        ages, ids = _texts(el, "MaxAgeSeconds"), _texts(el, "ID")
        if len(ages) > 1 or len(ids) > 1 or (ages and not re.fullmatch(r"-?\d+", ages[0])):
            raise E.MalformedXML()
        rules.append(Rule(origins, methods, headers, _texts(el, "ExposeHeader"), int(ages[0]) if ages else None,
                          ids[0] if ids else None))
    if not rules or len(rules) > MAX_RULES:
        raise E.MalformedXML()
    return rules


def cors_xml(rules: list[Rule]) -> bytes:
    root = X.root("CORSConfiguration")
    for r in rules:
        el = X.sub(root, "CORSRule")
        if r.id is not None:
            X.sub(el, "ID", r.id)
        for tag, values in (("AllowedHeader", r.headers), ("AllowedMethod", r.methods),
                            ("AllowedOrigin", r.origins), ("ExposeHeader", r.expose)):
            for v in values:
                X.sub(el, tag, v)
        if r.max_age is not None:
            X.sub(el, "MaxAgeSeconds", r.max_age)
    return X.serialize(root)


def to_record(rules: list[Rule]) -> list[dict]:
    return [{"origins": list(r.origins), "methods": list(r.methods), "headers": list(r.headers),
             "expose": list(r.expose), "max_age": r.max_age, "id": r.id} for r in rules]


def from_record(raw: list[dict]) -> list[Rule]:
    return [Rule(tuple(r["origins"]), tuple(r["methods"]), tuple(r.get("headers", ())), tuple(r.get("expose", ())),
                 r.get("max_age"), r.get("id")) for r in raw]


# ----------------------------------------------------------------------------- matching
@lru_cache(maxsize=1024)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern:
    rx = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.compile(rx, re.S | (re.I if ignore_case else 0))


def _matches(patterns: tuple[str, ...], value: str, ignore_case: bool = False) -> bool:
    return any(_pattern(p, ignore_case).fullmatch(value) for p in patterns)


def split_headers(raw: str | None) -> list[str]:
    """``Access-Control-Request-Headers``: a comma-separated list, lower-cased."""
    return [h.strip().lower() for h in (raw or "").split(",") if h.strip()]


def find_rule(rules: list[Rule], origin: str, method: str, request_headers: list[str] = ()) -> Rule | None:
    """The first rule that lets ``origin`` send ``method`` with these headers."""
    for r in rules:
        if (_matches(r.origins, origin) and method in r.methods
                and all(_matches(r.headers, h, ignore_case=True) for h in request_headers)):
            return r
    return None


def response_headers(rule: Rule, origin: str, method: str, request_headers: list[str] = (),
                     preflight: bool = False) -> dict[str, str]:
    """What the browser is told. An AllowedOrigin of exactly ``*`` answers ``*`` (and no
    credentials); any other answers the request's origin, with credentials allowed."""
    star = "*" in rule.origins and not any(o != "*" and _matches((o,), origin) for o in rule.origins)
    out = {"Access-Control-Allow-Origin": "*" if star else origin,
           "Access-Control-Allow-Methods": ", ".join(rule.methods),
           "Vary": VARY}
    if not star:
        out["Access-Control-Allow-Credentials"] = "true"
    if preflight and request_headers:
        out["Access-Control-Allow-Headers"] = ", ".join(request_headers)
    if rule.expose:
        out["Access-Control-Expose-Headers"] = ", ".join(rule.expose)
    if rule.max_age is not None:
        out["Access-Control-Max-Age"] = str(rule.max_age)
    return out


def preflight(rules: list[Rule] | None, headers: Mapping[str, str]) -> dict[str, str]:
    """The answer to an ``OPTIONS`` preflight (``headers``: lower-case names), or the S3 error
    S3 gives: 400 without Origin or Access-Control-Request-Method, 403 AccessForbidden when
    the bucket has no CORS configuration or no rule allows the request."""
    origin, method = headers.get("origin"), headers.get("access-control-request-method")
    if not origin:
        raise E.BadRequest("Insufficient information. Origin request header needed.")
    if not method:
        raise E.BadRequest("Invalid Access-Control-Request-Method: null")
    if method not in METHODS:
        raise E.BadRequest(f"Invalid Access-Control-Request-Method: {method}")
    if not rules:
        raise E.AccessForbidden("CORSResponse: CORS is not enabled for this bucket.")
    wanted = split_headers(headers.get("access-control-request-headers"))
    rule = find_rule(rules, origin, method, wanted)
    if rule is None:
        raise E.AccessForbidden(NOT_ALLOWED)
    return response_headers(rule, origin, method, wanted, preflight=True)


def actual(rules: list[Rule] | None, origin: str | None, method: str) -> dict[str, str]:
    """The ``Access-Control-*`` headers of an actual (not preflight) request: none without an
    Origin or a matching rule (the browser then refuses the page the response)."""
    if not rules or not origin:
        return {}
    rule = find_rule(rules, origin, method)
    return response_headers(rule, origin, method) if rule else {"Vary": VARY}
