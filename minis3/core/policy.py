"""Bucket policies: the JSON policy language S3 reads, parsed and evaluated. Pure: no I/O.

A policy is a list of statements. A statement applies to a request when its principal, its
action and its resource match (each element or its ``Not`` form) and every condition holds.
:func:`evaluate` answers for one policy as AWS's evaluation logic does: any statement that
applies with ``Deny`` denies (an explicit deny wins); otherwise any that applies with
``Allow`` allows; otherwise the answer is an implicit deny. Which statement decided is part
of the answer, for the caller to show.

Wildcards: ``*`` (any run of characters) and ``?`` (one) in actions (case-insensitive, as
AWS compares action names), resources and string conditions (case-sensitive).

Conditions follow IAM's "condition operators" reference:
- operators in a block, and keys under one operator, must all hold (AND);
- several values for one key: any may match (OR); for a negated operator (``StringNotEquals``,
  ``NotIpAddress``...) none may (NOR);
- a key absent from the request: a positive operator is false, a negated one true;
  ``...IfExists`` is true when the key is absent; ``Null`` tests presence itself;
- ``ForAnyValue:`` / ``ForAllValues:`` compare a key that holds several values.

Not here yet: how a bucket policy combines with ACLs, Block Public Access and another
account's own permissions (the request evaluator that will call this).
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Mapping, Sequence

from minis3.core import errors as E

VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_FIELDS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                     "NotResource", "Condition"}
MAX_POLICY_BYTES = 20 * 1024            # S3's limit on a bucket policy's size


@dataclass(frozen=True)
class Principal:
    """Who is asking: an account (12 digits), the user's ARN within it, and the account's
    canonical id; all None for an anonymous request."""
    account: str | None = None
    arn: str | None = None
    canonical_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.account is None and self.arn is None


@dataclass(frozen=True)
class Request:
    """What a policy is asked about: ``action`` (``s3:GetObject``), ``resource``
    (``arn:aws:s3:::bucket/key``) and the request context's condition keys
    (``aws:SourceIp``, ``aws:SecureTransport``, ``s3:prefix``...: a string or a list)."""
    principal: Principal
    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Condition:
    operator: str          # e.g. StringLike (without IfExists and set qualifier)
    qualifier: str | None  # ForAnyValue, ForAllValues or None
    if_exists: bool
    key: str               # lower-cased: condition keys are case-insensitive
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str                                 # Allow | Deny
    principals: tuple[str, ...] | None          # patterns ("*", account, ARN, canonical id); None: NotPrincipal
    not_principals: tuple[str, ...] | None
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Decision:
    """``effect``: "Allow", "Deny" (explicit), or None (implicit deny); ``statement``: the
    Sid (or position, ``#N``) of the statement that decided."""
    effect: str | None
    statement: str | None = None

    @property
    def allowed(self) -> bool:
        return self.effect == "Allow"


# ----------------------------------------------------------------------------- parsing

def _list(value, what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise E.MalformedPolicy(f"Policy has invalid {what}")
    return tuple(items)


def _principals(value) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    if not isinstance(value, dict) or not value:
        raise E.MalformedPolicy("Invalid principal in policy")
    out: list[str] = []
    for kind, who in value.items():
        if kind not in ("AWS", "CanonicalUser"):
            raise E.MalformedPolicy("Invalid principal in policy")
        for w in _list(who, "principal"):
            if kind == "AWS" and not (w == "*" or re.fullmatch(r"\d{12}", w)
                                      or re.fullmatch(r"arn:aws:iam::\d{12}:(root|user/[\w+=,.@/-]+)", w)):
                raise E.MalformedPolicy("Invalid principal in policy")
            out.append(w)
    return tuple(out)


def _conditions(block) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        raise E.MalformedPolicy("Policy has an invalid condition block")
    out = []
    for op_name, keys in block.items():
        qualifier, _, op = op_name.rpartition(":")
        if qualifier not in ("", "ForAnyValue", "ForAllValues"):
            raise E.MalformedPolicy(f"Invalid Condition type : {op_name}")
        if_exists = op.endswith("IfExists") and op != "IfExists"
        base = op[:-len("IfExists")] if if_exists else op
        if base not in _OPERATORS or not isinstance(keys, dict) or not keys:
            raise E.MalformedPolicy(f"Invalid Condition type : {op_name}")
        for key, values in keys.items():
            vals = values if isinstance(values, list) else [values]
            if not vals or not all(isinstance(v, (str, bool, int)) and not isinstance(v, float) for v in vals):
                raise E.MalformedPolicy("Policy has an invalid condition key")
            out.append(Condition(base, qualifier or None, if_exists, key.lower(),
                                 tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in vals)))
    return tuple(out)


def _statement(raw, index: int, bucket: str) -> Statement:
    if not isinstance(raw, dict):
        raise E.MalformedPolicy("Policy has an invalid statement")
    unknown = set(raw) - _STATEMENT_FIELDS
    if unknown:
        raise E.MalformedPolicy(f"Unknown field {sorted(unknown)[0]}")
    if raw.get("Effect") not in ("Allow", "Deny"):
        raise E.MalformedPolicy("Invalid effect: " + str(raw.get("Effect")))
    if ("Principal" in raw) == ("NotPrincipal" in raw):
        raise E.MalformedPolicy("Missing required field Principal" if "Principal" not in raw
                                else "Policy has both Principal and NotPrincipal")
    if ("Action" in raw) == ("NotAction" in raw):
        raise E.MalformedPolicy("Missing required field Action")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise E.MalformedPolicy("Missing required field Resource")
    get = lambda name, parse: parse(raw[name]) if name in raw else None  # noqa: E731
    actions = get("Action", lambda v: _list(v, "action"))
    not_actions = get("NotAction", lambda v: _list(v, "action"))
    for a in (actions or ()) + (not_actions or ()):
        if a != "*" and not re.fullmatch(r"s3:[A-Za-z*?]+", a, re.I):
            raise E.MalformedPolicy("Policy has invalid action")
    resources = get("Resource", lambda v: _list(v, "resource"))
    not_resources = get("NotResource", lambda v: _list(v, "resource"))
    for r in (resources or ()) + (not_resources or ()):
        if r != "*" and not _match(r.split("/", 1)[0], f"arn:aws:s3:::{bucket}"):
            raise E.MalformedPolicy("Policy has invalid resource")
    return Statement(sid=str(raw.get("Sid") or f"#{index}"), effect=raw["Effect"],
                     principals=get("Principal", _principals), not_principals=get("NotPrincipal", _principals),
                     actions=actions, not_actions=not_actions, resources=resources, not_resources=not_resources,
                     conditions=get("Condition", _conditions) or ())


def parse_policy(body: bytes | str, bucket: str) -> Policy:
    """A bucket policy document, checked as S3 checks one (MalformedPolicy with AWS's
    messages): JSON whose first byte is ``{``, a known Version, one or more statements,
    each with an Effect, a principal, actions and resources of this bucket."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise E.MalformedPolicy("Policy exceeds the maximum allowed document size.")
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise E.MalformedPolicy()
    if doc.get("Version", VERSIONS[1]) not in VERSIONS:
        raise E.MalformedPolicy("The policy must contain a valid version string")
    raw = doc.get("Statement")
    raw = [raw] if isinstance(raw, dict) else raw
    if not isinstance(raw, list) or not raw:
        raise E.MalformedPolicy("Missing required field Statement")
    return Policy(tuple(_statement(s, i, bucket) for i, s in enumerate(raw)))


# ----------------------------------------------------------------------------- evaluation

@lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(rx, re.S | (re.I if ignore_case else 0))


def _match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _principal_matches(patterns: tuple[str, ...], who: Principal, whole_account: bool = True) -> bool:
    """Does one of ``patterns`` name ``who``? An account (its id, or its root's ARN) names every
    principal of the account in ``Principal``; in ``NotPrincipal`` (``whole_account`` False)
    it names the account's root alone, so listing a user and its account's root spares that
    user only (the IAM guide's "all principals except the user named Bob")."""
    for p in patterns:
        if p == "*":
            return True
        if who.anonymous:
            continue
        root = f"arn:aws:iam::{who.account}:root"
        if p in (who.arn, who.canonical_id) or (p in (who.account, root) and (whole_account or who.arn == root)):
            return True
    return False


def _applies(st: Statement, req: Request) -> bool:
    if st.principals is not None and not _principal_matches(st.principals, req.principal):
        return False
    if st.not_principals is not None and _principal_matches(st.not_principals, req.principal, False):
        return False
    if st.actions is not None and not any(_match(a, req.action, True) for a in st.actions):
        return False
    if st.not_actions is not None and any(_match(a, req.action, True) for a in st.not_actions):
        return False
    if st.resources is not None and not any(_match(r, req.resource) for r in st.resources):
        return False
    if st.not_resources is not None and any(_match(r, req.resource) for r in st.not_resources):
        return False
    context = {k.lower(): v for k, v in req.context.items()}
    return all(_holds(c, context) for c in st.conditions)


def evaluate(policy: Policy | None, req: Request) -> Decision:
    """Explicit deny, allow, or implicit deny (module doc)."""
    if policy is None:
        return Decision(None)
    applying = [st for st in policy.statements if _applies(st, req)]
    for effect in ("Deny", "Allow"):
        for st in applying:
            if st.effect == effect:
                return Decision(effect, st.sid)
    return Decision(None)


# ----------------------------------------------------------------------------- conditions

def _date(v: str) -> datetime | None:
    try:
        if re.fullmatch(r"\d+", v):
            return datetime.fromtimestamp(int(v), tz=timezone.utc)
        d = datetime.fromisoformat(v.replace("Z", "+00:00"))
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        return None


def _number(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def _ip(value: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _ordered(convert, compare):
    def test(value: str, wanted: str) -> bool:
        a, b = convert(value), convert(wanted)
        return a is not None and b is not None and compare(a, b)
    return test


_COMPARE = {"Equals": lambda a, b: a == b, "LessThan": lambda a, b: a < b, "LessThanEquals": lambda a, b: a <= b,
            "GreaterThan": lambda a, b: a > b, "GreaterThanEquals": lambda a, b: a >= b}

#: operator -> (test of one request value against one policy value, negated?)
_OPERATORS: dict[str, tuple] = {
    "StringEquals": (lambda v, w: v == w, False),
    "StringNotEquals": (lambda v, w: v == w, True),
    "StringEqualsIgnoreCase": (lambda v, w: v.lower() == w.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda v, w: v.lower() == w.lower(), True),
    "StringLike": (lambda v, w: _match(w, v), False),
    "StringNotLike": (lambda v, w: _match(w, v), True),
    "Bool": (lambda v, w: v.lower() == w.lower(), False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    "ArnEquals": (lambda v, w: v == w, False),
    "ArnLike": (lambda v, w: _match(w, v), False),
    "ArnNotEquals": (lambda v, w: v == w, True),
    "ArnNotLike": (lambda v, w: _match(w, v), True),
    "Null": (None, False),
}
for _kind, _convert in (("Numeric", _number), ("Date", _date)):
    for _name, _cmp in _COMPARE.items():
        _OPERATORS[_kind + _name] = (_ordered(_convert, _cmp), False)
    _OPERATORS[_kind + "NotEquals"] = (_ordered(_convert, _COMPARE["Equals"]), True)


def _holds(c: Condition, context: Mapping[str, str | Sequence[str]]) -> bool:
    present = c.key in context and context[c.key] is not None
    if c.operator == "Null":                    # "true": the key must be absent
        return any((w == "true") != present for w in c.values)
    test, negated = _OPERATORS[c.operator]
    if not present:
        return c.if_exists or negated or c.qualifier == "ForAllValues"
    raw = context[c.key]
    values = [raw] if isinstance(raw, str) else list(raw)

    def one(v: str) -> bool:
        hit = any(test(v, w) for w in c.values)
        return not hit if negated else hit
    if c.qualifier == "ForAllValues":
        return all(one(v) for v in values)
    return any(one(v) for v in values)
