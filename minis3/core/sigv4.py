"""Request authentication for S3: AWS Signature Version 4 (and :func:`verify`, which also
hands SigV2 requests to ``core/sigv2.py``). Signing as a client does is ``core/signing.py``.

Pure logic: no HTTP library, no I/O. The frontend turns one HTTP request into a
:class:`SigningInput` and calls :func:`verify`; the answer says who signed it
(or that nobody did) and carries what the body decoder needs for aws-chunked
uploads (signing key, seed signature, date, scope).

The step functions are named after botocore's ``auth.py`` and follow the S3 API
reference:

* "Signature Calculations for the Authorization Header: Transferring Payload
  in a Single Chunk" (canonical request -> string to sign -> signing key ->
  signature),
* "Authenticating Requests: Using Query Parameters" (presigned URLs),
* "... Transferring Payload in Multiple Chunks" and "... Including Trailing
  Headers" (chunk and trailer strings to sign, used by ``chunked.py``),
* "Signing and Authenticating REST Requests" (SigV2: the ``Authorization: AWS
  AKID:signature`` header and the query-string form; neither signs the body).

S3 specifics worth knowing: the canonical URI is *not* normalised (no ``..``
removal, no merging of ``//``) and each byte is encoded once; the canonical
query encodes ``/`` too; the payload hash in the canonical request is the
``x-amz-content-sha256`` header verbatim.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Mapping, Sequence
from urllib.parse import quote, unquote_to_bytes

from minis3.core import errors as E

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
_PAYLOAD_KEYWORDS = frozenset(
    {UNSIGNED_PAYLOAD, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER})

MAX_PRESIGN_EXPIRES = 604800          # one week, in seconds (SigV4 X-Amz-Expires; SigV2 Expires - now)
DEFAULT_MAX_SKEW = timedelta(minutes=15)

# Headers botocore never signs (botocore.auth.SIGNED_HEADERS_BLACKLIST), plus
# the Authorization header itself.
UNSIGNABLE_HEADERS = frozenset({
    "authorization", "baggage", "connection", "expect", "keep-alive", "proxy-authenticate",
    "proxy-authorization", "te", "traceparent", "tracestate", "trailer", "transfer-encoding",
    "upgrade", "user-agent", "x-amzn-trace-id",
})
# x-amz-* headers that may travel unsigned: both are bound into the string to
# sign anyway (payload-hash line, timestamp line).
_AMZ_HEADERS_EXEMPT = frozenset({"x-amz-content-sha256", "x-amz-date"})

_AMZ_DATE_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")
_DATE_RE = re.compile(r"^\d{8}$")


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

@dataclass
class SigningInput:
    """What the verifier needs from one HTTP request."""
    method: str
    raw_path: str                       # path exactly as sent on the wire (percent-encoded), no query
    query: list[tuple[str, str]]        # decoded query pairs, in order (keep_blank_values)
    headers: Mapping[str, str]          # keys lower-case; values as received (repeats joined by ",")
    virtual_host_bucket: str | None = None   # bucket taken from the Host header (SigV2 needs it)


@dataclass
class AuthResult:
    access_key: str | None              # None = anonymous (no auth at all)
    mode: str                           # "header" | "presigned" | "sigv2-header" | "sigv2-presigned" | "anonymous"
    payload_hash: str                   # what the body must match (hex / UNSIGNED-PAYLOAD / STREAMING-...)
    signing_key: bytes | None = None    # derived key (needed for aws-chunked chunk signatures)
    seed_signature: str | None = None
    amz_date: str | None = None         # e.g. 20130524T000000Z
    scope: str | None = None            # e.g. 20130524/us-east-1/s3/aws4_request
    region: str | None = None


@dataclass
class AuthHeader:
    """The parts of an ``Authorization: AWS4-HMAC-SHA256 ...`` header."""
    access_key: str
    date: str                           # YYYYMMDD from the credential scope
    region: str
    service: str
    signed_headers: list[str]
    signature: str

    @property
    def scope(self) -> str:
        return scope(self.date, self.region, self.service)


# --------------------------------------------------------------------------
# Step functions (SigV4)
# --------------------------------------------------------------------------

def uri_encode(value: str | bytes, *, keep_slash: bool) -> str:
    """UriEncode() of the SigV4 spec: every byte except A-Za-z0-9-_.~ (and
    optionally '/') becomes %XX with upper-case hex."""
    return quote(value, safe="/" if keep_slash else "")


def parse_authorization(value: str) -> AuthHeader:
    """Split an Authorization header into credential scope, SignedHeaders and
    Signature ("Authenticating Requests: Using the Authorization Header")."""
    value = value.strip()
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise E.InvalidArgument("Unsupported Authorization Type", ArgumentName="Authorization",
                                ArgumentValue=value[:200])
    malformed = "The authorization header is malformed; "
    parts: dict[str, str] = {}
    for item in rest.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, val = item.partition("=")
        name = name.strip()
        if not sep or name in parts:
            raise E.AuthorizationHeaderMalformed(
                malformed + f"the authorization component \"{item}\" is malformed.")
        parts[name] = val.strip()
    if not {"Credential", "SignedHeaders", "Signature"} <= parts.keys():
        raise E.AuthorizationHeaderMalformed(
            malformed + "the authorization header requires three components: "
            "Credential, SignedHeaders, and Signature.")
    access_key, date, region, service = _parse_credential(
        parts["Credential"], E.AuthorizationHeaderMalformed, malformed)
    signed = _parse_signed_headers(parts["SignedHeaders"], E.AuthorizationHeaderMalformed, malformed)
    return AuthHeader(access_key, date, region, service, signed, parts["Signature"])


def _parse_credential(value: str, error: type[E.S3Error], prefix: str) -> tuple[str, str, str, str]:
    """<AKID>/<YYYYMMDD>/<region>/<service>/aws4_request -> (akid, date, region, service)."""
    pieces = value.rsplit("/", 4)
    if (len(pieces) != 5 or not pieces[0] or not _DATE_RE.match(pieces[1]) or not pieces[2]
            or pieces[4] != TERMINATOR):
        raise error(prefix + "the Credential is mal-formed; expecting "
                    "\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    access_key, date, region, service, _ = pieces
    if service != SERVICE:
        raise error(prefix + f"incorrect service \"{service}\". This endpoint belongs to \"{SERVICE}\".")
    return access_key, date, region, service


def _parse_signed_headers(value: str, error: type[E.S3Error], prefix: str) -> list[str]:
    names = value.split(";")
    if not value or any(not n or n != n.strip() for n in names):
        raise error(prefix + "the SignedHeaders component is malformed.")
    return names


def lookup_ci(pairs: Sequence[tuple[str, str]], name: str) -> str | None:
    """The first value of a query parameter, its name compared case-insensitively."""
    lname = name.lower()
    for k, v in pairs:
        if k.lower() == lname:
            return v
    return None


def canonical_uri(raw_path: str) -> str:
    """CanonicalURI for S3: decode the path as sent, then UriEncode every byte
    except unreserved characters and '/' -- no normalisation, encoded once."""
    if not raw_path:
        return "/"
    return uri_encode(unquote_to_bytes(raw_path), keep_slash=True)


def canonical_query(pairs: Sequence[tuple[str, str]],
                    exclude: Sequence[str] = ("X-Amz-Signature",)) -> str:
    """CanonicalQueryString: UriEncode each name and value ('/' included),
    sort by encoded name then value, join name=value with '&'."""
    encoded = sorted((uri_encode(k, keep_slash=False), uri_encode(v, keep_slash=False))
                     for k, v in pairs if k not in exclude)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _trimall(value: str) -> str:
    """Trimall(): strip, and collapse runs of whitespace to one space."""
    return " ".join(value.split())


def canonical_headers(headers: Mapping[str, str], signed_headers: Sequence[str]) -> str:
    """CanonicalHeaders: one ``lowercase-name:trimmed-value\\n`` line per signed
    header, in SignedHeaders order. ``headers`` must have lower-case keys; Host
    is used exactly as sent (port included). A signed header that is absent is
    signed with an empty value (so the signature will not match)."""
    return "".join(f"{name.lower()}:{_trimall(headers.get(name.lower(), ''))}\n"
                   for name in signed_headers)


def canonical_request(method: str, uri: str, query: str, headers_block: str,
                      signed_headers: Sequence[str], payload_hash: str) -> str:
    """CanonicalRequest = Method \\n CanonicalURI \\n CanonicalQueryString \\n
    CanonicalHeaders \\n SignedHeaders \\n HashedPayload (``headers_block`` is
    the output of :func:`canonical_headers`, already newline-terminated)."""
    return "\n".join([method, uri, query, headers_block, ";".join(signed_headers), payload_hash])


def scope(date: str, region: str, service: str = SERVICE) -> str:
    """Credential scope: <YYYYMMDD>/<region>/<service>/aws4_request."""
    return f"{date}/{region}/{service}/{TERMINATOR}"


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    """StringToSign = "AWS4-HMAC-SHA256" \\n timestamp \\n scope \\n Hex(SHA256(CanonicalRequest))."""
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """SigningKey = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").

    Kept for the day it is made for (as AWS's SDKs keep it): four HMACs per
    request otherwise, for a key that changes once a day per access key."""
    k_date = _hmac(("AWS4" + secret).encode("utf-8"), date)
    return _hmac(_hmac(_hmac(k_date, region), service), TERMINATOR)


def signature(signing_key: bytes, string_to_sign: str) -> str:
    """Signature = Hex(HMAC-SHA256(SigningKey, StringToSign))."""
    return hmac.new(signing_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def chunk_string_to_sign(amz_date: str, scope: str, previous_signature: str,
                         chunk_sha256_hex: str) -> str:
    """Chunked upload: "AWS4-HMAC-SHA256-PAYLOAD" \\n timestamp \\n scope \\n
    previous-signature \\n Hex(SHA256("")) \\n Hex(SHA256(chunk-data))."""
    return (f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous_signature}\n"
            f"{EMPTY_SHA256}\n{chunk_sha256_hex}")


def trailer_string_to_sign(amz_date: str, scope: str, previous_signature: str,
                           trailer_bytes: bytes) -> str:
    """Trailing headers: "AWS4-HMAC-SHA256-TRAILER" \\n timestamp \\n scope \\n
    previous-signature (the final 0-size chunk's) \\n Hex(SHA256(trailers)),
    where ``trailer_bytes`` are the trailer lines as sent, each ending in "\\n"
    (e.g. b"x-amz-checksum-crc32:AAAAAA==\\n")."""
    digest = hashlib.sha256(trailer_bytes).hexdigest()
    return f"AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous_signature}\n{digest}"


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------

def as_utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def iso(dt: datetime) -> str:
    return as_utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_amz_date(value: str) -> datetime | None:
    if not _AMZ_DATE_RE.match(value):
        return None
    try:        # the fields by position (strptime, the same check, cost ~1% of a frontend's CPU)
        return datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]),
                        int(value[11:13]), int(value[13:15]), tzinfo=timezone.utc)
    except ValueError:
        return None


_INT_RE = re.compile(r"(-?)([0-9]+)", re.ASCII)


def parse_int(value: str) -> int | None:
    """A decimal integer in ASCII digits only (``str.isdigit()`` and ``\\d``
    also accept '²' or '١'), or None. Absurdly long numbers are clamped to
    +-10**18, which is past every limit checked here (and int() of a string
    of thousands of digits would raise)."""
    m = _INT_RE.fullmatch(value)
    if m is None:
        return None
    sign = -1 if m.group(1) else 1
    digits = m.group(2).lstrip("0") or "0"
    return sign * (10 ** 18 if len(digits) > 18 else int(digits))


def parse_http_date(value: str) -> datetime | None:
    """An RFC 1123 date (``Tue, 27 Mar 2007 19:36:42 +0000``), as SigV2
    clients send in Date / x-amz-date, or the ISO 8601 basic form."""
    value = value.strip()
    parsed = parse_amz_date(value)
    if parsed is not None:
        return parsed
    try:
        return as_utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def first_values(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def check_skew(request_time: datetime, raw: str, now: datetime, max_skew: timedelta) -> None:
    if abs(request_time - now) > max_skew:
        raise E.RequestTimeTooSkewed(
            RequestTime=raw, ServerTime=iso(now),
            MaxAllowedSkewMilliseconds=str(int(max_skew.total_seconds() * 1000)))


def _check_amz_headers_signed(headers: Mapping[str, str], signed_headers: Sequence[str]) -> None:
    """S3 refuses x-amz-* headers that are present but not signed (otherwise a
    presigned PUT could be turned into e.g. a copy with x-amz-copy-source), and
    a Host that is not signed (otherwise one signature would replay against any
    bucket in virtual-hosted style): 403 AccessDenied naming them, as AWS answers."""
    signed = {h.lower() for h in signed_headers}
    unsigned = sorted(k for k in headers
                      if (k == "host" or k.startswith("x-amz-")) and k not in signed
                      and k not in _AMZ_HEADERS_EXEMPT)
    if unsigned:
        raise E.AccessDenied("There were headers present in the request which were not signed",
                             HeadersNotSigned=", ".join(unsigned))


def _check_signature(computed: str, provided: str, access_key: str, sts: str, creq: str) -> None:
    if not hmac.compare_digest(computed.encode("ascii"), provided.encode("utf-8", "replace")):
        raise E.SignatureDoesNotMatch(AWSAccessKeyId=access_key, StringToSign=sts,
                                      SignatureProvided=provided, CanonicalRequest=creq)


def secret_for(secrets: Mapping[str, str], access_key: str) -> str:
    secret = secrets.get(access_key)
    if secret is None:
        raise E.InvalidAccessKeyId(AWSAccessKeyId=access_key)
    return secret


def claimed_access_key(headers: Mapping[str, str], query: Sequence[tuple[str, str]]) -> str | None:
    """The access key a request says it is signed with (not checked: :func:`verify` does
    that), for a caller that must look the key up before verifying. ``headers``: lower-case."""
    auth = headers.get("authorization", "")
    m = re.search(r"Credential=([^/,\s]+)", auth) or re.match(r"AWS ([^:\s]+):", auth)
    if m:
        return m.group(1)
    q = first_values(query)
    if "X-Amz-Credential" in q:
        return q["X-Amz-Credential"].split("/", 1)[0]
    return q.get("AWSAccessKeyId")


def verify(req: SigningInput, secrets: Mapping[str, str], now: datetime, *,
           max_skew: timedelta = DEFAULT_MAX_SKEW) -> AuthResult:
    """Authenticate one request. Picks the mechanism (Authorization header,
    SigV4 query, SigV2 query, or none), checks it, and raises the S3 error S3
    would. A request with no authentication at all is returned as anonymous;
    the caller decides whether that is allowed."""
    now = as_utc(now)
    headers = {k.lower(): v for k, v in req.headers.items()}
    auth = headers.get("authorization")
    names = {k for k, _ in req.query}
    v4_query = "X-Amz-Algorithm" in names
    v2_query = "AWSAccessKeyId" in names or "Signature" in names
    if (auth is not None) + v4_query + v2_query > 1:
        raise E.InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            ArgumentName="Authorization", ArgumentValue=(auth or "")[:200])
    from . import sigv2          # here, not at the top: sigv2 builds on this module's request model
    if auth is not None:
        if sigv2.is_sigv2_authorization(auth):
            return sigv2.verify_header(req, headers, auth, secrets, now, max_skew)
        return _verify_header(req, headers, auth, secrets, now, max_skew)
    if v4_query:
        return _verify_presigned(req, headers, secrets, now, max_skew)
    if v2_query:
        return sigv2.verify_presigned(req, secrets, now, max_skew)
    return AuthResult(access_key=None, mode="anonymous", payload_hash=UNSIGNED_PAYLOAD)


def _verify_header(req: SigningInput, headers: Mapping[str, str], auth: str,
                   secrets: Mapping[str, str], now: datetime, max_skew: timedelta) -> AuthResult:
    """Authorization-header SigV4 ("Transferring Payload in a Single Chunk" and
    the streaming variants, whose seed signature is checked the same way)."""
    ah = parse_authorization(auth)
    payload_hash = headers.get("x-amz-content-sha256")
    if payload_hash is None:
        raise E.InvalidRequest("Missing required header for this request: x-amz-content-sha256")
    if payload_hash not in _PAYLOAD_KEYWORDS and not re.fullmatch(r"[0-9a-fA-F]{64}", payload_hash):
        raise E.InvalidArgument(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER "
            "or a valid sha256 value.",
            ArgumentName="x-amz-content-sha256", ArgumentValue=payload_hash)

    raw_date = headers.get("x-amz-date")
    request_time: datetime | None = None
    if raw_date is not None:
        request_time = parse_amz_date(raw_date.strip())
    elif headers.get("date"):
        raw_date = headers["date"]
        try:
            request_time = as_utc(parsedate_to_datetime(raw_date))
        except (TypeError, ValueError, IndexError):
            request_time = None
    if request_time is None or raw_date is None:
        raise E.AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    amz_date = request_time.strftime(AMZ_DATE_FORMAT)
    if ah.date != amz_date[:8]:
        raise E.AuthorizationHeaderMalformed(
            "The authorization header is malformed; Invalid credential date. "
            "Date is not the same as X-Amz-Date.")

    secret = secret_for(secrets, ah.access_key)
    check_skew(request_time, raw_date, now, max_skew)
    _check_amz_headers_signed(headers, ah.signed_headers)

    creq = canonical_request(req.method, canonical_uri(req.raw_path),
                             canonical_query(req.query, exclude=()),
                             canonical_headers(headers, ah.signed_headers),
                             ah.signed_headers, payload_hash)
    sc = ah.scope
    sts = string_to_sign(amz_date, sc, creq)
    key = signing_key(secret, ah.date, ah.region, ah.service)
    computed = signature(key, sts)
    _check_signature(computed, ah.signature, ah.access_key, sts, creq)
    return AuthResult(access_key=ah.access_key, mode="header", payload_hash=payload_hash,
                      signing_key=key, seed_signature=computed, amz_date=amz_date, scope=sc,
                      region=ah.region)


_V4_QUERY_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                    "X-Amz-SignedHeaders", "X-Amz-Expires")


def _verify_presigned(req: SigningInput, headers: Mapping[str, str], secrets: Mapping[str, str],
                      now: datetime, max_skew: timedelta) -> AuthResult:
    """Query-string SigV4 ("Authenticating Requests: Using Query Parameters")."""
    err = E.AuthorizationQueryParametersError
    q = first_values(req.query)
    if any(p not in q for p in _V4_QUERY_PARAMS):
        raise err("Query-string authentication version 4 requires the X-Amz-Algorithm, "
                  "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
                  "and X-Amz-Expires parameters.")
    if q["X-Amz-Algorithm"] != ALGORITHM:
        raise err(f"X-Amz-Algorithm only supports \"{ALGORITHM}\"")
    access_key, date, region, service = _parse_credential(
        q["X-Amz-Credential"], err, "Error parsing the X-Amz-Credential parameter; ")
    amz_date = q["X-Amz-Date"]
    request_time = parse_amz_date(amz_date)
    if request_time is None:
        raise err("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    if date != amz_date[:8]:
        raise err("Invalid credential date. Date is not the same as X-Amz-Date.")
    expires = parse_int(q["X-Amz-Expires"])
    # S3's own answers: 400 for a value that is no number, negative or over a
    # week; 0 is well-formed and simply expired (403, below).
    if expires is None:
        raise err("X-Amz-Expires should be a number")
    if expires < 0:
        raise err("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES:
        raise err("X-Amz-Expires must be less than a week (in seconds); that is, the given "
                  f"X-Amz-Expires must be less than {MAX_PRESIGN_EXPIRES} seconds")
    signed_headers = _parse_signed_headers(q["X-Amz-SignedHeaders"], err,
                                           "Error parsing the X-Amz-SignedHeaders parameter; ")

    secret = secret_for(secrets, access_key)
    if request_time - now > max_skew:
        check_skew(request_time, amz_date, now, max_skew)
    if expires == 0 or now > request_time + timedelta(seconds=expires):
        raise E.AccessDenied("Request has expired", **{
            "X-Amz-Expires": str(expires),
            "Expires": iso(request_time + timedelta(seconds=expires)),
            "ServerTime": iso(now)})
    _check_amz_headers_signed(headers, signed_headers)

    payload_hash = lookup_ci(req.query, "X-Amz-Content-Sha256") or UNSIGNED_PAYLOAD
    creq = canonical_request(req.method, canonical_uri(req.raw_path), canonical_query(req.query),
                             canonical_headers(headers, signed_headers), signed_headers, payload_hash)
    sc = scope(date, region, service)
    sts = string_to_sign(amz_date, sc, creq)
    key = signing_key(secret, date, region, service)
    computed = signature(key, sts)
    _check_signature(computed, q["X-Amz-Signature"], access_key, sts, creq)
    return AuthResult(access_key=access_key, mode="presigned", payload_hash=payload_hash,
                      signing_key=key, seed_signature=computed, amz_date=amz_date, scope=sc,
                      region=region)
