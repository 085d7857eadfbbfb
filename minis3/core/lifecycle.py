"""S3 Lifecycle: a bucket's ``LifecycleConfiguration``, checked as S3 checks it, and what its
rules decide about a key's versions and a bucket's uploads. Pure: no I/O, no clock (``now`` is
always given).

A rule (the S3 User Guide, "Lifecycle configuration elements") names the objects it applies to
by a **filter** -- a key prefix, tags, object sizes, or all of them in an ``And`` -- or by the
legacy rule-level ``Prefix``, and says what happens to them:

* ``Expiration``: the current version expires ``Days`` after it was made, or on a ``Date``. In
  a bucket without versioning it is deleted; in one that keeps versions it gets a delete marker
  (it becomes noncurrent; nothing is lost). ``ExpiredObjectDeleteMarker``: a delete marker that
  is the only version left of its key is removed.
* ``NoncurrentVersionExpiration``: a noncurrent version is deleted for good ``NoncurrentDays``
  after it became noncurrent (when the version after it was made), the ``NewerNoncurrentVersions``
  newest noncurrent versions kept whatever their age.
* ``AbortIncompleteMultipartUpload``: an upload not completed ``DaysAfterInitiation`` days after
  it began is aborted.
* ``Transition`` / ``NoncurrentVersionTransition``: to another storage class, ``Days`` after
  creation (or on a ``Date``) / ``NoncurrentDays`` after becoming noncurrent. Every class S3's
  schema names is accepted (minis3 accepts them all on PutObject too, ec/storage_class.ACCEPTED):
  ONEZONE_IA is placed in one zone, the others like STANDARD (minis3 has no archive tier), and
  all keep STANDARD's erasure code, so a transition relabels the version in place. S3's rules
  hold: at least 30 days before STANDARD_IA or ONEZONE_IA, and a version only ever moves down
  S3's "waterfall" (:data:`WATERFALL`: STANDARD, STANDARD_IA, INTELLIGENT_TIERING, ONEZONE_IA,
  GLACIER_IR, GLACIER, DEEP_ARCHIVE), never back up. Objects under 128 KB are not transitioned
  (S3's default minimum). The scrubber records the new class (and zone); its next pass moves
  the fragments where the class places them (docs/ARCHITECTURE.md, "Lifecycle").

**Numbers and dates.** ``Days``, ``NoncurrentDays``, ``DaysAfterInitiation`` and
``NewerNoncurrentVersions`` are the schema's Integer (32 bits: a larger number is MalformedXML);
``NewerNoncurrentVersions`` is at most 100, as AWS documents. A ``Date`` is ISO 8601 with a time
and a zone (core/isodate.py), at midnight UTC, no later than 9999-12-31. A rule's ``Days`` may
still put a date past year 9999 (2^31 days are millions of years): no HTTP date can say it, so
``x-amz-expiration`` / ``x-amz-abort-date`` are then left out (:func:`header_value`,
:func:`abort_header_values`) rather than failing the request that asked.

**Rule IDs** hold no control characters (an ID is sent back in ``x-amz-expiration`` and
``x-amz-abort-rule-id``, URL-encoded; refusing them when the rule is set keeps every later
answer sendable).

**When.** S3 adds the days to the object's creation time and rounds up to the next midnight
UTC: an object made 2014-01-15 10:30 with ``Days`` 3 expires 2014-01-19 00:00 UTC. minis3 can
run days faster (``[lifecycle] day_seconds``, for tests and labs): a "day" is then that many
seconds and "midnight" each multiple of it since the Unix epoch; a ``Date`` stays a real date.

A version under Object Lock (its record's ``hold``, or ``lock.until`` in the future) is never
deleted for good by a rule (S3: "lifecycle rules respect object lock").
"""
from __future__ import annotations

import math
import re
import uuid
from urllib.parse import quote
from dataclasses import dataclass, field

from . import errors as E
from . import isodate
from . import objectlock as OL
from . import versions as V
from .conditions import http_date
from .hlc import physical_ms
from .numbers import parse_int
from . import xmldoc as X

MAX_BODY = 1 << 20
MAX_RULES = 1000
MAX_ID = 255
DAY = 86_400
MAX_SIZE = 1099511627776000          # S3's bound on ObjectSizeGreaterThan/LessThan (1,000 TiB)
#: The classes S3's lifecycle transitions name (PutBucketLifecycleConfiguration's schema).
TRANSITION_CLASSES = frozenset({"GLACIER", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "DEEP_ARCHIVE",
                                "GLACIER_IR"})
#: S3's "waterfall": a version moves only to a class later in this order (module doc).
#: REDUCED_REDUNDANCY is STANDARD's rank (S3 transitions from it like from STANDARD).
WATERFALL = ("STANDARD", "STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER",
             "DEEP_ARCHIVE")
#: AWS's bound on NewerNoncurrentVersions ("You can specify up to 100 noncurrent versions").
MAX_NEWER_NONCURRENT = 100
#: S3 requires at least 30 days before a transition to these.
THIRTY_DAYS_CLASSES = frozenset({"STANDARD_IA", "ONEZONE_IA"})


#: ``x-amz-transition-default-minimum-object-size``: S3's two settings. minis3 keeps objects under
#: 128 KB where they are under both (``varies_by_storage_class`` would let small ones go to GLACIER
#: and DEEP_ARCHIVE: not done, the setting is only stored and answered).
MINIMUM_SIZES = ("all_storage_classes_128K", "varies_by_storage_class")


def parse_minimum_size(value: str | None) -> str:
    """The setting PutBucketLifecycleConfiguration's header asks for (none: S3's default)."""
    if value is None:
        return MINIMUM_SIZES[0]
    if value not in MINIMUM_SIZES:
        raise E.InvalidRequest("Invalid TransitionDefaultMinimumObjectSize found")
    return value


@dataclass(frozen=True)
class Filter:
    """Which objects a rule applies to. ``prefix`` None: none given; ``conjunction``: written
    in an ``And``; ``legacy``: the rule-level ``Prefix`` of the first lifecycle API."""
    prefix: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    size_gt: int | None = None
    size_lt: int | None = None
    conjunction: bool = False
    legacy: bool = False

    @property
    def uses_tags_or_sizes(self) -> bool:
        return bool(self.tags) or self.size_gt is not None or self.size_lt is not None


@dataclass(frozen=True)
class Transition:
    storage_class: str
    days: int | None = None
    date: int | None = None            # epoch seconds, midnight UTC
    newer: int | None = None           # NoncurrentVersionTransition's NewerNoncurrentVersions


@dataclass(frozen=True)
class Rule:
    id: str
    enabled: bool
    filter: Filter
    expiration_days: int | None = None
    expiration_date: int | None = None         # epoch seconds, midnight UTC
    expired_marker: bool | None = None         # ExpiredObjectDeleteMarker (None: not given)
    noncurrent_days: int | None = None
    newer_noncurrent: int | None = None
    abort_days: int | None = None
    transitions: tuple[Transition, ...] = ()
    noncurrent_transitions: tuple[Transition, ...] = ()


# ----------------------------------------------------------------------------- reading the document
def _text(el, name: str, strip: bool = True) -> str | None:
    """A leaf's text; ``strip=False`` for what may begin or end with a space (prefixes, tags)."""
    c = X.only_child(el, name)
    if c is None:
        return None
    text = X.leaf_text(c)
    return text.strip() if strip else text


def _size(el, name: str) -> int | None:
    """An object size bound (the schema's Long; its range is the caller's check)."""
    raw = _text(el, name)
    if raw is None:
        return None
    n = parse_int(raw)
    if n is None:
        raise E.MalformedXML()
    return n


def _known(el, names: set[str]) -> None:
    """Every child of ``el`` is one the schema has there."""
    for c in el:
        if X.local(c.tag) not in names:
            raise E.MalformedXML()


def _midnight(el, name: str) -> int | None:
    """A ``Date`` (epoch seconds): ISO 8601 with a time and a zone (core/isodate.py, which
    also refuses one past 9999-12-31), at midnight UTC as S3 requires."""
    raw = _text(el, name)
    if raw is None:
        return None
    try:
        ms = isodate.parse_ms(raw)
    except ValueError:
        raise E.MalformedXML() from None
    if ms % (DAY * 1000):
        raise E.InvalidArgument("'Date' must be at midnight GMT", ArgumentName="Date", ArgumentValue=raw)
    return ms // 1000


def _tag(el) -> tuple[str, str]:
    _known(el, {"Key", "Value"})
    key, value = _text(el, "Key", False), _text(el, "Value", False)
    if not key or value is None:
        raise E.MalformedXML()
    return key, value


def _filter(el) -> Filter:
    _known(el, {"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And"})
    given = [X.local(c.tag) for c in el]
    if len(given) > 1:
        raise E.MalformedXML()            # more than one condition: they go in an And
    conj = X.only_child(el, "And")
    src = conj if conj is not None else el
    if conj is not None:
        _known(conj, {"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"})
    tags = tuple(_tag(t) for t in X.children(src, "Tag"))
    if len({k for k, _ in tags}) != len(tags):
        raise E.InvalidRequest("Duplicate Tag Keys are not allowed.")
    gt, lt = _size(src, "ObjectSizeGreaterThan"), _size(src, "ObjectSizeLessThan")
    if gt is not None and not 0 <= gt <= MAX_SIZE:
        raise E.InvalidRequest(f"'ObjectSizeGreaterThan' should be between 0 and {MAX_SIZE}.")
    if lt is not None and not 1 <= lt <= MAX_SIZE:
        raise E.InvalidRequest(f"'ObjectSizeLessThan' should be between 1 and {MAX_SIZE}.")
    if gt is not None and lt is not None and lt <= gt:
        raise E.InvalidRequest("'ObjectSizeLessThan' has to be a value greater than 'ObjectSizeGreaterThan'.")
    return Filter(_text(src, "Prefix", False), tags, gt, lt, conjunction=conj is not None)


def _transition(el, noncurrent: bool, v2: bool) -> Transition:
    days_name = "NoncurrentDays" if noncurrent else "Days"
    _known(el, {days_name, "StorageClass"} | ({"NewerNoncurrentVersions"} if noncurrent else {"Date"}))
    sc = _text(el, "StorageClass")
    days = X.int_leaf(el, days_name)
    date = None if noncurrent else _midnight(el, "Date")
    if sc not in TRANSITION_CLASSES or (days is None) == (date is None):
        raise E.MalformedXML()
    if days is not None and days < 0:
        raise E.InvalidArgument(f"'{days_name}' in {'NoncurrentVersion' if noncurrent else ''}Transition action "
                                "must be nonnegative", ArgumentName=days_name, ArgumentValue=str(days))
    if days is not None and days < 30 and sc in THIRTY_DAYS_CLASSES:
        raise E.InvalidArgument(f"'{days_name}' in {'NoncurrentVersion' if noncurrent else ''}Transition action "
                                f"must be greater than or equal to 30 for storageClass '{sc}'",
                                ArgumentName=days_name, ArgumentValue=str(days))
    newer = _newer(el, v2) if noncurrent else None
    return Transition(sc, days, date, newer)


def _newer(el, v2: bool) -> int | None:
    newer = X.int_leaf(el, "NewerNoncurrentVersions")
    if newer is not None and not v2:
        raise E.InvalidRequest("NewerNoncurrentVersions element can only be used in Lifecycle V2.")
    X.check_positive(newer, "NewerNoncurrentVersions", "'NewerNoncurrentVersions' must be a positive integer")
    if newer is not None and newer > MAX_NEWER_NONCURRENT:
        raise E.InvalidArgument(f"'NewerNoncurrentVersions' must not be more than {MAX_NEWER_NONCURRENT}",
                                ArgumentName="NewerNoncurrentVersions", ArgumentValue=str(newer))
    return newer


RULE_ELEMENTS = {"ID", "Prefix", "Filter", "Status", "Expiration", "Transition", "NoncurrentVersionTransition",
                 "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"}


def _rule(el, v2: bool) -> Rule:
    _known(el, RULE_ELEMENTS)
    status = _text(el, "Status")
    if status not in ("Enabled", "Disabled"):
        raise E.MalformedXML()
    scope = _scope(el, v2)
    days, date, marker = _expiration(X.only_child(el, "Expiration"))
    nc_days, newer = _noncurrent_expiration(X.only_child(el, "NoncurrentVersionExpiration"), v2)
    abort_days = _abort_days(X.only_child(el, "AbortIncompleteMultipartUpload"))
    transitions = tuple(_transition(t, False, v2) for t in X.children(el, "Transition"))
    nc_transitions = tuple(_transition(t, True, v2) for t in X.children(el, "NoncurrentVersionTransition"))
    if (days, date, marker, nc_days, abort_days) == (None,) * 5 and not transitions and not nc_transitions:
        raise E.InvalidRequest("At least one action needs to be specified in a rule")
    _check_combinations(scope, marker, abort_days, date, days, transitions, nc_transitions)
    return Rule(_text(el, "ID") or "", status == "Enabled", scope, days, date, marker, nc_days, newer, abort_days,
                transitions, nc_transitions)


def _scope(el, v2: bool) -> Filter:
    """A rule's Filter, or (the older form) its rule-level Prefix: exactly one of them."""
    legacy, filt = _text(el, "Prefix", False), X.only_child(el, "Filter")
    if (legacy is None) == (filt is None):
        raise E.MalformedXML()
    if legacy is not None and v2:
        raise E.InvalidRequest("Base level prefix cannot be used in Lifecycle V2, prefixes are only supported "
                               "in the Filter.")
    if filt is not None and not v2:
        raise E.InvalidRequest("Filter element can only be used in Lifecycle V2.")
    return Filter(legacy, legacy=True) if filt is None else _filter(filt)


def _expiration(exp) -> tuple[int | None, int | None, bool | None]:
    """Expiration's Days, Date and ExpiredObjectDeleteMarker: exactly one of them."""
    if exp is None:
        return None, None, None
    _known(exp, {"Days", "Date", "ExpiredObjectDeleteMarker"})
    days, date = X.int_leaf(exp, "Days"), _midnight(exp, "Date")
    raw_marker = _text(exp, "ExpiredObjectDeleteMarker")
    if raw_marker not in (None, "true", "false"):
        raise E.MalformedXML()
    marker = None if raw_marker is None else raw_marker == "true"
    if sum(x is not None for x in (days, date, marker)) != 1:
        raise E.MalformedXML()
    X.check_positive(days, "Days", "'Days' for Expiration action must be a positive integer")
    return days, date, marker


def _noncurrent_expiration(nce, v2: bool) -> tuple[int | None, int | None]:
    """NoncurrentVersionExpiration's NoncurrentDays and NewerNoncurrentVersions."""
    if nce is None:
        return None, None
    _known(nce, {"NoncurrentDays", "NewerNoncurrentVersions"})
    nc_days = X.int_leaf(nce, "NoncurrentDays")
    if nc_days is None:
        raise E.MalformedXML()
    X.check_positive(nc_days, "NoncurrentDays",
                     "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer")
    return nc_days, _newer(nce, v2)


def _abort_days(ab) -> int | None:
    """AbortIncompleteMultipartUpload's DaysAfterInitiation."""
    if ab is None:
        return None
    _known(ab, {"DaysAfterInitiation"})
    abort_days = X.int_leaf(ab, "DaysAfterInitiation")
    if abort_days is None:
        raise E.MalformedXML()
    X.check_positive(abort_days, "DaysAfterInitiation", "'DaysAfterInitiation' for "
                     "AbortIncompleteMultipartUpload action must be a positive integer")
    return abort_days


def _check_combinations(scope: Filter, marker, abort_days, date, days, transitions, nc_transitions) -> None:
    """What S3 refuses to see together in one rule."""
    for what, given in (("ExpiredObjectDeleteMarker", marker is not None), ("AbortIncompleteMultipartUpload",
                                                                            abort_days is not None)):
        if given and scope.tags:
            raise E.InvalidRequest(f"{what} cannot be specified with Tags.")
        if given and (scope.size_gt is not None or scope.size_lt is not None):
            raise E.InvalidRequest(f"{what} cannot be specified with Object Size.")
    for group in (transitions, nc_transitions):
        classes = [t.storage_class for t in group]
        if len(set(classes)) != len(classes):
            raise E.InvalidRequest("'StorageClass' must be different for 'Transition' actions in same 'Rule'")
    dated = date is not None or any(t.date is not None for t in transitions)
    counted = days is not None or any(t.days is not None for t in transitions)
    if dated and counted:
        raise E.InvalidRequest("Found mixed 'Date' and 'Days' based Expiration and Transition actions in "
                               "lifecycle rule")


#: Control characters (C0 and DEL): an ID holding one could not be sent back in a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_lifecycle(body: bytes, new_id=lambda: uuid.uuid4().hex) -> list[Rule]:
    """A ``LifecycleConfiguration`` as S3 checks it (module doc); a rule given no ID gets one
    (``new_id``), as S3 gives one."""
    root = X.parse(body, MAX_BODY, "LifecycleConfiguration")
    _known(root, {"Rule"})
    els = X.children(root, "Rule")
    if not els:
        raise E.MalformedXML()
    if len(els) > MAX_RULES:
        raise E.InvalidRequest(f"The number of lifecycle rules must not exceed the allowed limit of "
                               f"{MAX_RULES} rules.")
    ids = [_text(el, "ID") or "" for el in els]
    for i in ids:
        if len(i) > MAX_ID:
            raise E.InvalidArgument(f"ID length should not exceed allowed limit of {MAX_ID}",
                                    ArgumentName="ID", ArgumentValue=i)
        if _CONTROL.search(i):
            raise E.InvalidArgument("ID must not contain control characters", ArgumentName="ID",
                                    ArgumentValue=i.encode("unicode_escape").decode("ascii"))
    named = [i for i in ids if i]
    if len(set(named)) != len(named):
        raise E.InvalidArgument("Rule ID must be unique. Found same ID for more than one rule",
                                ArgumentName="ID", ArgumentValue=next(i for i in named if named.count(i) > 1))
    # "Lifecycle V2" (filters) if the first rule has a Filter; else the first API's rule-level Prefix.
    v2 = X.only_child(els[0], "Filter") is not None
    rules = [_rule(el, v2) for el in els]
    if not v2:
        _no_overlap(rules)
    return [r if r.id else Rule(**{**r.__dict__, "id": new_id()}) for r in rules]


def _no_overlap(rules: list[Rule]) -> None:
    """The first lifecycle API refused two rules whose prefixes overlap (one starts the other)
    taking the same kind of action."""
    kinds = (("Expiration", lambda r: r.expiration_days is not None or r.expiration_date is not None
              or r.expired_marker is not None),
             ("NoncurrentVersionExpiration", lambda r: r.noncurrent_days is not None),
             ("AbortIncompleteMultipartUpload", lambda r: r.abort_days is not None),
             ("Transition", lambda r: bool(r.transitions)),
             ("NoncurrentVersionTransition", lambda r: bool(r.noncurrent_transitions)))
    for kind, takes in kinds:
        prefixes = sorted(r.filter.prefix or "" for r in rules if takes(r))
        for a, b in zip(prefixes, prefixes[1:]):
            if b.startswith(a):
                raise E.InvalidRequest(f"Found overlapping prefixes '{a}' and '{b}' for same action type '{kind}'")


# ----------------------------------------------------------------------------- writing it back
def _date_text(secs: int) -> str:
    return isodate.format_ms(secs * 1000)


def _filter_xml(parent, f: Filter) -> None:
    if f.legacy:
        X.sub(parent, "Prefix", f.prefix or "")
        return
    el = X.sub(parent, "Filter")
    if f.conjunction:
        el = X.sub(el, "And")
    if f.prefix is not None:
        X.sub(el, "Prefix", f.prefix)
    for k, v in f.tags:
        t = X.sub(el, "Tag")
        X.sub(t, "Key", k)
        X.sub(t, "Value", v)
    if f.size_gt is not None:
        X.sub(el, "ObjectSizeGreaterThan", f.size_gt)
    if f.size_lt is not None:
        X.sub(el, "ObjectSizeLessThan", f.size_lt)


def lifecycle_xml(rules: list[Rule]) -> bytes:
    """GetBucketLifecycleConfiguration's answer: the rules as they were set."""
    root = X.root("LifecycleConfiguration")
    for r in rules:
        el = X.sub(root, "Rule")
        X.sub(el, "ID", r.id)
        _filter_xml(el, r.filter)
        X.sub(el, "Status", "Enabled" if r.enabled else "Disabled")
        for t in r.transitions:
            tel = X.sub(el, "Transition")
            if t.date is not None:
                X.sub(tel, "Date", _date_text(t.date))
            else:
                X.sub(tel, "Days", t.days)
            X.sub(tel, "StorageClass", t.storage_class)
        if r.expiration_days is not None or r.expiration_date is not None or r.expired_marker is not None:
            exp = X.sub(el, "Expiration")
            if r.expiration_days is not None:
                X.sub(exp, "Days", r.expiration_days)
            elif r.expiration_date is not None:
                X.sub(exp, "Date", _date_text(r.expiration_date))
            else:
                X.sub(exp, "ExpiredObjectDeleteMarker", X.xml_bool(bool(r.expired_marker)))
        for t in r.noncurrent_transitions:
            tel = X.sub(el, "NoncurrentVersionTransition")
            X.sub(tel, "NoncurrentDays", t.days)
            X.sub(tel, "StorageClass", t.storage_class)
            if t.newer is not None:
                X.sub(tel, "NewerNoncurrentVersions", t.newer)
        if r.noncurrent_days is not None:
            nce = X.sub(el, "NoncurrentVersionExpiration")
            X.sub(nce, "NoncurrentDays", r.noncurrent_days)
            if r.newer_noncurrent is not None:
                X.sub(nce, "NewerNoncurrentVersions", r.newer_noncurrent)
        if r.abort_days is not None:
            X.sub(X.sub(el, "AbortIncompleteMultipartUpload"), "DaysAfterInitiation", r.abort_days)
    return X.serialize(root)


def to_record(rules: list[Rule]) -> list[dict]:
    """The rules as the bucket's ``lifecycle`` access setting stores them (JSON)."""
    out = []
    for r in rules:
        d = dict(r.__dict__)
        d["filter"] = dict(r.filter.__dict__, tags=[list(t) for t in r.filter.tags])
        d["transitions"] = [dict(t.__dict__) for t in r.transitions]
        d["noncurrent_transitions"] = [dict(t.__dict__) for t in r.noncurrent_transitions]
        out.append(d)
    return out


def from_record(raw: list[dict]) -> list[Rule]:
    out = []
    for d in raw:
        f = dict(d["filter"])
        f["tags"] = tuple(tuple(t) for t in f.get("tags", ()))
        out.append(Rule(**{**d, "filter": Filter(**f),
                           "transitions": tuple(Transition(**t) for t in d.get("transitions", ())),
                           "noncurrent_transitions": tuple(Transition(**t)
                                                           for t in d.get("noncurrent_transitions", ()))}))
    return out


# ----------------------------------------------------------------------------- when
def next_midnight(t: float, day_seconds: float = DAY) -> float:
    """The first "midnight" after ``t`` (epoch seconds): the next multiple of a day."""
    return (math.floor(t / day_seconds) + 1) * day_seconds


def due_after(start_s: float, days: int, day_seconds: float = DAY) -> float:
    """S3's rule: ``days`` added to ``start_s``, rounded up to the next midnight (UTC)."""
    return next_midnight(start_s + days * day_seconds, day_seconds)


def created_s(rec: dict) -> float:
    """When a version was made, epoch seconds (its Last-Modified)."""
    return (rec.get("mtime") or physical_ms(V.vts(rec))) / 1000


def matches(f: Filter, key: str, tags=(), size: int = 0) -> bool:
    """Does an object (its key, tags, size) fall under the filter? Every condition must hold;
    sizes are strict bounds."""
    if f.prefix and not key.startswith(f.prefix):
        return False
    if f.tags:
        have = {tuple(t) for t in tags or ()}
        if not all(t in have for t in f.tags):
            return False
    if f.size_gt is not None and not size > f.size_gt:
        return False
    if f.size_lt is not None and not size < f.size_lt:
        return False
    return True


def _applies(rule: Rule, key: str, rec: dict) -> bool:
    if not rule.enabled:
        return False
    if V.is_marker(rec):              # a delete marker has no tags and no size
        return not rule.filter.uses_tags_or_sizes and matches(rule.filter, key)
    return matches(rule.filter, key, rec.get("tags"), int(rec.get("size") or 0))


def expiration(rules: list[Rule], key: str, rec: dict, day_seconds: float = DAY) -> tuple[float, str] | None:
    """(when, rule id) the current version ``rec`` expires by the earliest rule that expires it
    (``x-amz-expiration``); None if none does."""
    best = None
    for r in rules:
        if (r.expiration_days is None and r.expiration_date is None) or not _applies(r, key, rec):
            continue
        when = (float(r.expiration_date) if r.expiration_date is not None
                else due_after(created_s(rec), r.expiration_days, day_seconds))
        if best is None or when < best[0]:
            best = (when, r.id)
    return best


def abort_date(rules: list[Rule], key: str, initiated_s: float, day_seconds: float = DAY) -> tuple[float, str] | None:
    """(when, rule id) an upload of ``key`` begun at ``initiated_s`` is aborted, by the earliest
    rule (``x-amz-abort-date``); None if no rule aborts it."""
    best = None
    for r in rules:
        if r.abort_days is None or not r.enabled or not matches(r.filter, key):
            continue
        when = due_after(initiated_s, r.abort_days, day_seconds)
        if best is None or when < best[0]:
            best = (when, r.id)
    return best


def _http_date(when: float) -> str | None:
    """``when`` (epoch seconds) as an HTTP date; None past 9999-12-31, where none can say it
    (module doc, "Numbers and dates")."""
    ms = int(when * 1000)
    return http_date(ms) if isodate.EARLIEST_MS <= ms <= isodate.LATEST_MS else None


def header_value(when: float, rule_id: str) -> str | None:
    """``expiry-date="Fri, 23 Dec 2012 00:00:00 GMT", rule-id="..."`` (the rule id URL-encoded,
    as S3 says); None when the date is past what an HTTP date can hold: no header then."""
    date = _http_date(when)
    return None if date is None else f'expiry-date="{date}", rule-id="{quote(rule_id, safe="")}"'


def abort_header_values(when: float, rule_id: str) -> dict[str, str]:
    """``x-amz-abort-date`` and ``x-amz-abort-rule-id`` (the id URL-encoded, as in
    ``x-amz-expiration``); {} when the date is past what an HTTP date can hold."""
    date = _http_date(when)
    return {} if date is None else {"x-amz-abort-date": date, "x-amz-abort-rule-id": quote(rule_id, safe="")}


def is_locked(rec: dict, now_s: float) -> bool:
    """Held by Object Lock (core/objectlock.py): a legal hold, or a retention date still
    ahead, which no rule gets past, GOVERNANCE included (a rule never bypasses)."""
    return not OL.may_remove(rec, int(now_s * 1000))


# ----------------------------------------------------------------------------- the runner's decisions
EXPIRE = "expire"                          # the current version: deleted, or a delete marker on top
REMOVE_MARKER = "remove_marker"            # an expired object delete marker, removed
EXPIRE_NONCURRENT = "expire_noncurrent"    # a noncurrent version, deleted for good
ABORT = "abort"                            # an incomplete multipart upload, aborted
TRANSITION = "transition"                  # a version moved to another storage class
#: S3's default minimum size for a transition (``x-amz-transition-default-minimum-object-size``:
#: ``all_storage_classes_128K``): a smaller object is not transitioned.
MIN_TRANSITION_SIZE = 128 * 1024


@dataclass(frozen=True)
class Action:
    kind: str
    key: str
    rule_id: str
    version_id: str | None = None
    upload_id: str | None = None
    storage_class: str | None = None           # a transition's target


@dataclass
class Decisions:
    """What the rules decide about one key: the actions, and what they held back."""
    actions: list[Action] = field(default_factory=list)
    locked: int = 0                    # versions a rule would have deleted, kept by Object Lock


def decide_key(rules: list[Rule], key: str, versions: list[tuple[dict, bool]], *, versioned: bool, now_s: float,
               day_seconds: float = DAY) -> Decisions:
    """The actions due now for one key, given its versions newest first as (record, is latest)
    (core/versions.key_versions). ``versioned``: the bucket has had versioning on (an expiry
    then makes a delete marker rather than deleting)."""
    out = Decisions()
    if not versions:
        return out
    latest, is_latest = versions[0]
    if is_latest and not V.is_marker(latest):
        exp = expiration(rules, key, latest, day_seconds)
        if exp is not None and exp[0] <= now_s:
            if not versioned and is_locked(latest, now_s):
                out.locked += 1
            else:
                out.actions.append(Action(EXPIRE, key, exp[1], V.id_of(latest) if versioned else None))
        else:
            move = _transition_due(rules, key, latest, created_s(latest), now_s, day_seconds)
            if move is not None:
                out.actions.append(Action(TRANSITION, key, move[0], V.id_of(latest), storage_class=move[1]))
    elif is_latest and V.is_marker(latest) and len(versions) == 1:
        for r in rules:
            if r.expired_marker and _applies(r, key, latest):
                out.actions.append(Action(REMOVE_MARKER, key, r.id, V.id_of(latest)))
                break
    # Noncurrent versions: each became noncurrent when the one after it (newer) was made.
    for rank, ((rec, _), (successor, _)) in enumerate(zip(versions[1:], versions)):
        for r in rules:
            if r.noncurrent_days is None or not _applies(r, key, rec):
                continue
            if r.newer_noncurrent is not None and rank < r.newer_noncurrent:
                continue
            if due_after(created_s(successor), r.noncurrent_days, day_seconds) > now_s:
                continue
            if is_locked(rec, now_s):
                out.locked += 1
            else:
                out.actions.append(Action(EXPIRE_NONCURRENT, key, r.id, V.id_of(rec)))
            break
        else:
            move = _transition_due(rules, key, rec, created_s(successor), now_s, day_seconds, rank)
            if move is not None:
                out.actions.append(Action(TRANSITION, key, move[0], V.id_of(rec), storage_class=move[1]))
    return out


def storage_class_of(rec: dict) -> str:
    """A record's storage class (records keep it only when not STANDARD: ec/storage_class.of)."""
    return rec.get("storage_class") or "STANDARD"


def _transition_due(rules: list[Rule], key: str, rec: dict, since_s: float, now_s: float, day_seconds: float,
                    noncurrent_rank: int | None = None) -> tuple[str, str] | None:
    """(rule id, class) of a transition due now for ``rec`` (a current version when
    ``noncurrent_rank`` is None; else the rank-th newest noncurrent one, noncurrent since
    ``since_s``), the latest-due of those due; None if none is, or it is too small (S3's
    128 KB default minimum) or already of that class."""
    if V.is_marker(rec) or int(rec.get("size") or 0) < MIN_TRANSITION_SIZE:
        return None
    best = None
    for r in rules:
        if not _applies(r, key, rec):
            continue
        for t in (r.transitions if noncurrent_rank is None else r.noncurrent_transitions):
            if noncurrent_rank is not None and t.newer is not None and noncurrent_rank < t.newer:
                continue
            when = float(t.date) if t.date is not None else due_after(since_s, t.days, day_seconds)
            if when <= now_s and (best is None or when > best[0]):
                best = (when, r.id, t.storage_class)
    if best is None or not _down_the_waterfall(storage_class_of(rec), best[2]):
        return None
    return best[1:]


def _down_the_waterfall(current: str, target: str) -> bool:
    """May a version of class ``current`` move to ``target``? Only to a later class of
    :data:`WATERFALL` (REDUCED_REDUNDANCY ranks as STANDARD)."""
    rank = {c: i for i, c in enumerate(WATERFALL)}
    return rank[target] > rank.get(current, 0)


def decide_upload(rules: list[Rule], key: str, upload_id: str, initiated_s: float, *, now_s: float,
                  day_seconds: float = DAY) -> Action | None:
    """Abort an upload begun at ``initiated_s``, if a rule says it is time."""
    due = abort_date(rules, key, initiated_s, day_seconds)
    if due is not None and due[0] <= now_s:
        return Action(ABORT, key, due[1], upload_id=upload_id)
    return None
