"""S3 Object Lock: a bucket's lock configuration, a version's retention and legal hold,
and the one decision every path that would remove or weaken a version asks. Pure: no I/O.

What AWS documents (S3 User Guide, "Locking objects with Object Lock", and the API
reference of Put/GetObjectLockConfiguration, Put/GetObjectRetention,
Put/GetObjectLegalHold):

* A bucket has Object Lock enabled for good (CreateBucket with
  ``x-amz-bucket-object-lock-enabled: true``, or PutObjectLockConfiguration on a bucket
  whose versioning is Enabled); its versioning can then never be suspended. Its
  configuration may hold a *default retention* (``Mode`` and exactly one of ``Days`` or
  ``Years``), which every new version with no retention of its own gets.
* A **version** may have a *retention* (a mode and a retain-until date) and a *legal hold*
  (on or off), each independent of the other. They are kept in the version's own record,
  so that whatever reads the record (the frontend, the metadata coordinator, a lifecycle
  rule) sees the protection without asking the bucket::

      "lock": {"mode": "GOVERNANCE" | "COMPLIANCE", "until": "2026-12-06T10:00:00.000Z"}
      "hold": true                       (absent: no legal hold)

* Until the retain-until date passes, a version under **COMPLIANCE** cannot be removed
  for good by anyone, nor its retention shortened, removed or its mode changed; under
  **GOVERNANCE** the same, unless the request carries
  ``x-amz-bypass-governance-retention: true`` *and* its caller is allowed
  ``s3:BypassGovernanceRetention`` (the caller of this module decides the second and
  passes ``bypass`` only when both hold). Extending a retention is always allowed.
  A **legal hold** blocks removal whatever the retention says, until it is turned off.
* A DELETE without a version id removes nothing: it adds a delete marker, always allowed.
  A delete marker has no retention or legal hold of its own.

Times are epoch milliseconds (``now_ms``) so that the decision is a pure function the
tests can run at any instant.
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from . import checksums
from . import errors as E
from . import isodate
from . import xmldoc as X

GOVERNANCE, COMPLIANCE = "GOVERNANCE", "COMPLIANCE"
MODES = (GOVERNANCE, COMPLIANCE)

#: CreateBucket's header that enables Object Lock on the new bucket.
BUCKET_ENABLED_HEADER = "x-amz-bucket-object-lock-enabled"
#: The per-version headers of PutObject, CopyObject and CreateMultipartUpload (and of GET/HEAD).
MODE_HEADER = "x-amz-object-lock-mode"
UNTIL_HEADER = "x-amz-object-lock-retain-until-date"
HOLD_HEADER = "x-amz-object-lock-legal-hold"
#: A request's wish to override GOVERNANCE retention (DeleteObject(s), PutObjectRetention).
BYPASS_HEADER = "x-amz-bypass-governance-retention"
BYPASS_ACTION = "s3:BypassGovernanceRetention"

MAX_BODY = 64 * 1024
#: AWS's upper bounds of a default retention (100 years).
MAX_DAYS, MAX_YEARS = 36500, 100

#: AWS's messages.
PROTECTED = "Access Denied because object protected by object lock."
MISSING_CONFIGURATION = "Bucket is missing Object Lock Configuration"
NOT_IN_FUTURE = "The retain until date must be in the future!"
BOTH_HEADERS = "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
INTEGRITY_REQUIRED = ("Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with "
                      "Object Lock parameters")


# ----------------------------------------------------------------------------- the bucket's configuration
@dataclass(frozen=True)
class DefaultRetention:
    """A bucket's default retention: a mode and exactly one of days or years."""
    mode: str
    days: int | None = None
    years: int | None = None

    def until(self, now_ms: int) -> int:
        """The retain-until date it gives a version made at ``now_ms``: days are 24-hour
        days; years are calendar years (the same day of the month, 28 February for a
        29 February that the later year lacks)."""
        if self.days is not None:
            return now_ms + self.days * 86_400_000
        start = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.timezone.utc)
        year = start.year + (self.years or 0)
        day = min(start.day, calendar.monthrange(year, start.month)[1])
        return int(start.replace(year=year, day=day).timestamp() * 1000)


@dataclass(frozen=True)
class LockConfiguration:
    """A bucket's Object Lock configuration (enabled, since it exists), with its default
    retention or None."""
    rule: DefaultRetention | None = None


def _period(el, name: str, most: int) -> int | None:
    """A default retention's ``Days`` or ``Years`` (None: absent): positive and at most
    ``most`` (AWS's bounds), else InvalidArgument with AWS's messages."""
    n = X.check_positive(X.int_leaf(el, name), name, "Default retention period must be a positive integer value.")
    if n is not None and n > most:
        raise E.InvalidArgument(f"Default retention period must not be more than {most} {name.lower()}.",
                                ArgumentName=name, ArgumentValue=str(n))
    return n


def parse_configuration(body: bytes) -> LockConfiguration:
    """PutObjectLockConfiguration's ``<ObjectLockConfiguration>``. ``ObjectLockEnabled``
    must be ``Enabled`` (the only value S3 has: Object Lock cannot be disabled); a ``Rule``
    must hold a ``DefaultRetention`` with a ``Mode`` and exactly one of ``Days`` or ``Years``
    (else MalformedXML, as S3 answers); a period that is not positive is InvalidArgument."""
    root = X.parse(body, MAX_BODY, "ObjectLockConfiguration")
    enabled = X.only_child(root, "ObjectLockEnabled")
    if enabled is None or X.leaf_text(enabled).strip() != "Enabled":
        raise E.MalformedXML()
    rule_el = X.only_child(root, "Rule")
    if rule_el is None:
        return LockConfiguration()
    default = X.only_child(rule_el, "DefaultRetention")
    if default is None:
        raise E.MalformedXML()
    mode_el = X.only_child(default, "Mode")
    if mode_el is None or X.leaf_text(mode_el).strip() not in MODES:
        raise E.MalformedXML()
    days, years = _period(default, "Days", MAX_DAYS), _period(default, "Years", MAX_YEARS)
    if (days is None) == (years is None):
        raise E.MalformedXML()
    return LockConfiguration(DefaultRetention(X.leaf_text(mode_el).strip(), days=days, years=years))


def configuration_xml(config: LockConfiguration) -> bytes:
    root = X.root("ObjectLockConfiguration")
    X.sub(root, "ObjectLockEnabled", "Enabled")
    if config.rule is not None:
        default = X.sub(X.sub(root, "Rule"), "DefaultRetention")
        X.sub(default, "Mode", config.rule.mode)
        if config.rule.days is not None:
            X.sub(default, "Days", config.rule.days)
        else:
            X.sub(default, "Years", config.rule.years)
    return X.serialize(root)


def to_record(config: LockConfiguration) -> dict:
    """As the bucket's ``lock`` access setting keeps it (JSON)."""
    rule = config.rule
    return {"enabled": True,
            "rule": None if rule is None else {"mode": rule.mode, "days": rule.days, "years": rule.years}}


def from_record(rec: dict | None) -> LockConfiguration | None:
    """The bucket's configuration from its setting (None: Object Lock not enabled)."""
    if not rec or not rec.get("enabled"):
        return None
    rule = rec.get("rule")
    return LockConfiguration(None if not rule else DefaultRetention(rule["mode"], rule.get("days"), rule.get("years")))


# ----------------------------------------------------------------------------- a version's retention and hold
def lock_field(mode: str, until_ms: int) -> dict:
    """A version record's ``lock`` field."""
    return {"mode": mode, "until": isodate.format_ms(until_ms)}


def until_ms(lock: dict) -> int:
    return isodate.parse_ms(lock["until"])


def active_lock(rec: dict | None, now_ms: int) -> dict | None:
    """The record's retention, if it still holds at ``now_ms`` (else None)."""
    lock = (rec or {}).get("lock")
    return lock if lock and until_ms(lock) > now_ms else None


def held(rec: dict | None) -> bool:
    return bool((rec or {}).get("hold"))


def new_version_fields(headers: dict[str, str], config: LockConfiguration | None, now_ms: int) -> dict:
    """The ``lock`` and ``hold`` fields a new version gets (PutObject, CopyObject,
    CreateMultipartUpload's completed object): from the request's headers, else the
    bucket's default retention. ``headers``: lower-cased names. Refusals are S3's: the
    headers on a bucket without Object Lock (InvalidRequest), a mode without a date or a
    date without a mode, an unknown mode or hold status, a date that is not in the future
    (InvalidArgument)."""
    mode, until, hold = headers.get(MODE_HEADER), headers.get(UNTIL_HEADER), headers.get(HOLD_HEADER)
    if config is None:
        if mode is not None or until is not None or hold is not None:
            raise E.InvalidRequest(MISSING_CONFIGURATION)
        return {}
    out: dict = {}
    if (mode is None) != (until is None):
        raise E.InvalidArgument(BOTH_HEADERS)
    if mode is not None:
        if mode not in MODES:
            raise E.InvalidArgument("Unknown wormMode directive.", ArgumentName=MODE_HEADER, ArgumentValue=mode)
        try:
            when = isodate.parse_ms(until)
        except ValueError:
            raise E.InvalidArgument("The retain until date must be provided in ISO 8601 format",
                                    ArgumentName=UNTIL_HEADER, ArgumentValue=until)
        if when <= now_ms:
            raise E.InvalidArgument(NOT_IN_FUTURE, ArgumentName=UNTIL_HEADER, ArgumentValue=until)
        out["lock"] = lock_field(mode, when)
    elif config.rule is not None:
        out["lock"] = lock_field(config.rule.mode, config.rule.until(now_ms))
    if hold is not None:
        if hold not in ("ON", "OFF"):
            raise E.InvalidArgument("Legal Hold must be either of 'ON' or 'OFF'", ArgumentName=HOLD_HEADER,
                                    ArgumentValue=hold)
        if hold == "ON":
            out["hold"] = True
    return out


def check_integrity_header(headers: dict[str, str], fields: dict) -> None:
    """PutObject of a version that gets a retention or a legal hold (``fields``, from its
    headers or the bucket's default retention) must say what its body's digest is, so
    that what is locked for years is what the client meant: AWS refuses it (400
    InvalidRequest, :data:`INTEGRITY_REQUIRED`) without ``Content-MD5``, an
    ``x-amz-checksum-<algorithm>`` header, or the SDKs' ``x-amz-sdk-checksum-algorithm``
    with that checksum in a trailer. ``headers``: lower-cased names."""
    if not fields:
        return
    given = ("content-md5" in headers or "x-amz-sdk-checksum-algorithm" in headers
             or any(f"{checksums.HEADER_PREFIX}{alg}" in headers for alg in checksums.ALGORITHMS)
             or headers.get("x-amz-trailer", "").strip().lower().startswith(checksums.HEADER_PREFIX))
    if not given:
        raise E.InvalidRequest(INTEGRITY_REQUIRED)


def response_headers(rec: dict) -> dict[str, str]:
    """What GET and HEAD answer about a version's retention and legal hold."""
    out = {}
    lock = rec.get("lock")
    if lock:
        out[MODE_HEADER] = lock["mode"]
        out[UNTIL_HEADER] = lock["until"]
    if rec.get("hold"):
        out[HOLD_HEADER] = "ON"
    return out


def wants_bypass(headers: dict[str, str]) -> bool:
    """Does the request ask to override GOVERNANCE retention? (Whether its caller may is
    the authoriser's question: s3:BypassGovernanceRetention.)"""
    return headers.get(BYPASS_HEADER, "").strip().lower() == "true"


# ----------------------------------------------------------------------------- the decision
def removal_refusal(rec: dict | None, now_ms: int, bypass: bool) -> str | None:
    """Why the version ``rec`` may not be removed for good now (None: it may). ``bypass``:
    the request asks to override GOVERNANCE retention and its caller is allowed to."""
    if rec is None or rec.get("marker") or rec.get("deleted"):
        return None
    if held(rec):
        return "legal hold"
    lock = active_lock(rec, now_ms)
    if lock is None:
        return None
    if lock["mode"] == COMPLIANCE:
        return "COMPLIANCE retention"
    return None if bypass else "GOVERNANCE retention"


def may_remove(rec: dict | None, now_ms: int, bypass: bool = False) -> bool:
    return removal_refusal(rec, now_ms, bypass) is None


def check_removal(rec: dict | None, now_ms: int, bypass: bool = False) -> None:
    """AccessDenied, with AWS's message, unless the version may be removed for good now."""
    if not may_remove(rec, now_ms, bypass):
        raise E.AccessDenied(PROTECTED)


def retention_change_refusal(current: dict | None, new: dict | None, now_ms: int, bypass: bool) -> str | None:
    """Why a version's retention ``current`` may not become ``new`` (a ``lock`` field, or
    None to remove it) now; None: it may. A retention that has expired no longer
    protects: anything may replace it. One that holds may always be extended in the same
    mode; anything else (shortened, removed, its mode changed) is refused under
    COMPLIANCE, and under GOVERNANCE unless ``bypass``."""
    if current is None or until_ms(current) <= now_ms:
        return None
    if new is not None and new["mode"] == current["mode"] and until_ms(new) >= until_ms(current):
        return None
    if current["mode"] == COMPLIANCE:
        return "COMPLIANCE retention"
    return None if bypass else "GOVERNANCE retention"


def check_retention_change(current: dict | None, new: dict | None, now_ms: int, bypass: bool = False) -> None:
    if retention_change_refusal(current, new, now_ms, bypass) is not None:
        raise E.AccessDenied(PROTECTED)


# ----------------------------------------------------------------------------- Retention and LegalHold documents
def parse_retention(body: bytes, now_ms: int) -> dict | None:
    """PutObjectRetention's ``<Retention>``: the ``lock`` field it sets, or None for an
    empty one (no Mode, no RetainUntilDate: remove the retention, where allowed). A mode
    without a date (or the reverse) or an unknown mode is MalformedXML; a date that is not
    in the future is InvalidArgument."""
    root = X.parse(body, MAX_BODY, "Retention")
    mode_el, until_el = X.only_child(root, "Mode"), X.only_child(root, "RetainUntilDate")
    if mode_el is None and until_el is None:
        return None
    if mode_el is None or until_el is None:
        raise E.MalformedXML()
    mode = X.leaf_text(mode_el).strip()
    if mode not in MODES:
        raise E.MalformedXML()
    try:
        when = isodate.parse_ms(X.leaf_text(until_el))
    except ValueError:
        raise E.MalformedXML()
    if when <= now_ms:
        raise E.InvalidArgument(NOT_IN_FUTURE)
    return lock_field(mode, when)


def retention_xml(lock: dict) -> bytes:
    root = X.root("Retention")
    X.sub(root, "Mode", lock["mode"])
    X.sub(root, "RetainUntilDate", lock["until"])
    return X.serialize(root)


def parse_legal_hold(body: bytes) -> bool:
    """PutObjectLegalHold's ``<LegalHold><Status>ON|OFF</Status></LegalHold>``."""
    root = X.parse(body, MAX_BODY, "LegalHold")
    status = X.only_child(root, "Status")
    if status is None or X.leaf_text(status).strip() not in ("ON", "OFF"):
        raise E.MalformedXML()
    return X.leaf_text(status).strip() == "ON"


def legal_hold_xml(on: bool) -> bytes:
    root = X.root("LegalHold")
    X.sub(root, "Status", "ON" if on else "OFF")
    return X.serialize(root)
