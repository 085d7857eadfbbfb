"""AWS Signature Version 2, as S3 still accepts it from older clients: the
``Authorization: AWS AKID:signature`` header and the query-string form (AWSAccessKeyId,
Expires, Signature) that boto3's generate_presigned_url makes for a custom us-east-1
endpoint ("Signing and Authenticating REST Requests"). Neither signs the body.

Pure logic, as ``core/sigv4.py``, whose request model (SigningInput, AuthResult) and
checks (clock skew, the secret of an access key) it shares; ``sigv4.verify`` hands it a
request signed this way.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from typing import Collection, Iterable, Mapping, Sequence

from minis3.core import errors as E
from minis3.core import sigv4 as v4

# Query parameters that are part of the SigV2 CanonicalizedResource: the list in
# "Signing and Authenticating REST Requests" joined with botocore's
# HmacV1Auth.QSAOfInterest (a superset of it), so botocore-signed URLs verify.
SIGV2_SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory",
    "lifecycle", "location", "logging", "metrics", "notification", "object-lock",
    "partNumber", "policy", "replication", "requestPayment", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "response-content-language",
    "response-content-type", "response-expires", "restore", "select", "select-type",
    "storageClass", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
    "versions", "website",
})

def is_sigv2_authorization(value: str) -> bool:
    """``Authorization: AWS AKID:signature`` (SigV2) rather than AWS4-HMAC-SHA256."""
    value = value.strip()
    return value == "AWS" or value.startswith("AWS ")


def parse_sigv2_authorization(value: str) -> tuple[str, str]:
    """``AWS <AccessKeyId>:<Signature>`` -> (access key, signature)."""
    _, _, rest = value.strip().partition(" ")
    access_key, sep, sig = rest.strip().partition(":")
    if not sep or not access_key or not sig:
        raise E.InvalidArgument("AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
                                ArgumentName="Authorization", ArgumentValue=value[:200])
    return access_key, sig


def sigv2_canonical_amz_headers(pairs: Iterable[tuple[str, str]]) -> str:
    """CanonicalizedAmzHeaders: every x-amz-* name lower-cased, values trimmed,
    repeats joined with "," (no spaces), sorted by name, one "name:value\\n" each."""
    amz: dict[str, str] = {}
    for k, v in pairs:
        lk = k.lower()
        if lk.startswith("x-amz-"):
            amz[lk] = f"{amz[lk]},{v.strip()}" if lk in amz else v.strip()
    return "".join(f"{k}:{amz[k]}\n" for k in sorted(amz))


def _is_bucket_path(raw_path: str) -> bool:
    """A path-style request for a bucket itself ("/bucket", no trailing slash)."""
    return raw_path.count("/") == 1 and len(raw_path) > 1


def sigv2_canonical_resource(req: v4.SigningInput, *, bare_empty: bool = True,
                             bucket_slash: bool = False) -> str:
    """CanonicalizedResource: the path as sent (with "/bucket" in front for
    virtual-hosted requests) plus the S3 sub-resources in the query, sorted by
    name, values decoded. Clients differ in two details, hence the options: a
    sub-resource with an empty value is written bare ("?acl") or, with
    ``bare_empty=False``, as "acl="; a path-style bucket request "/bucket" is
    signed as sent or, with ``bucket_slash`` (botocore), as "/bucket/"."""
    path = req.raw_path or "/"
    if req.virtual_host_bucket:
        path = "/" + req.virtual_host_bucket + path
    elif bucket_slash and _is_bucket_path(path):
        path += "/"
    subs = sorted(((k, v) for k, v in req.query if k in SIGV2_SUBRESOURCES), key=lambda kv: kv[0])
    if subs:
        path += "?" + "&".join(k if (v == "" and bare_empty) else f"{k}={v}" for k, v in subs)
    return path


def sigv2_string_to_sign(req: v4.SigningInput, when: str, *, query_auth: bool = True,
                         bare_empty: bool = True, bucket_slash: bool = False,
                         omit_amz: Collection[str] = ()) -> str:
    """SigV2 StringToSign ("Signing and Authenticating REST Requests"):

    METHOD \\n Content-MD5 \\n Content-Type \\n Date \\n CanonicalizedAmzHeaders
    CanonicalizedResource

    ``when`` is the Date line: the Date header (empty when x-amz-date is
    present, which then signs as an amz header) for the Authorization-header
    form, the Expires parameter for the query form. With ``query_auth``,
    Content-MD5 / Content-Type / x-amz-* may also come from the query, where
    botocore's HmacV1QueryAuth moves them. ``omit_amz``: amz headers left out
    of the block (see :func:`_verify_sigv2_header`).
    """
    headers = {k.lower(): v for k, v in req.headers.items()}

    def standard(name: str) -> str:
        value = headers.get(name)
        if value is None and query_auth:
            value = v4.lookup_ci(req.query, name)
        return (value or "").strip()

    amz_pairs = [(k, v) for k, v in req.query if query_auth and k.lower().startswith("x-amz-")]
    # A header overrides the same name from the query (botocore sends one or the other).
    amz_pairs = [(k, v) for k, v in amz_pairs if k.lower() not in headers]
    amz_pairs += [(k, v) for k, v in headers.items() if k.startswith("x-amz-") and k not in omit_amz]
    return (f"{req.method.upper()}\n{standard('content-md5')}\n{standard('content-type')}\n"
            f"{when}\n{sigv2_canonical_amz_headers(amz_pairs)}"
            f"{sigv2_canonical_resource(req, bare_empty=bare_empty, bucket_slash=bucket_slash)}")


def sigv2_signature(secret: str, string_to_sign: str) -> str:
    """Base64(HMAC-SHA1(secret, UTF-8(StringToSign)))."""
    mac = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def verify_presigned(req: v4.SigningInput, secrets: Mapping[str, str], now: datetime,
                            max_skew: timedelta) -> v4.AuthResult:
    """Query-string SigV2 (AWSAccessKeyId, Expires, Signature), the form boto3's
    generate_presigned_url produces by default for a custom us-east-1 endpoint."""
    q = v4.first_values(req.query)
    if any(p not in q for p in ("AWSAccessKeyId", "Signature", "Expires")):
        raise E.AccessDenied(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
    access_key = q["AWSAccessKeyId"]
    raw_expires = q["Expires"]
    expires = v4.parse_int(raw_expires)
    if expires is None or expires < 0:
        raise E.AccessDenied("Invalid date (should be seconds since epoch): " + raw_expires[:64])
    secret = v4.secret_for(secrets, access_key)
    if expires < now.timestamp():
        expires_at = datetime.fromtimestamp(expires, tz=timezone.utc)
        raise E.AccessDenied("Request has expired", Expires=v4.iso(expires_at), ServerTime=v4.iso(now))
    # Cap SigV2 URLs at a week, like SigV4's X-Amz-Expires (a leaked URL must
    # not stay valid until 2038), allowing the usual clock skew for the signer.
    if expires > now.timestamp() + v4.MAX_PRESIGN_EXPIRES + max_skew.total_seconds():
        raise E.AccessDenied(
            f"Expires must be at most {v4.MAX_PRESIGN_EXPIRES} seconds (7 days) after the current time",
            Expires=raw_expires[:64], ServerTime=v4.iso(now))

    # A '+' in base64 arrives as ' ' if the client left it unescaped.
    provided = q["Signature"].replace(" ", "+")
    _check_signature(req, secret, access_key, provided, [(raw_expires, ())], query_auth=True)
    return v4.AuthResult(access_key=access_key, mode="sigv2-presigned", payload_hash=v4.UNSIGNED_PAYLOAD)


def verify_header(req: v4.SigningInput, headers: Mapping[str, str], auth: str,
                         secrets: Mapping[str, str], now: datetime, max_skew: timedelta) -> v4.AuthResult:
    """``Authorization: AWS AKID:signature`` ("Signing and Authenticating REST
    Requests"), still sent by older tools. SigV2 does not sign the body: the
    result's payload hash is UNSIGNED-PAYLOAD, so the body is checked only
    against Content-MD5 / x-amz-checksum-* (frontend/body.py)."""
    access_key, provided = parse_sigv2_authorization(auth)
    if "x-amz-date" in headers:
        # "Time stamp requirement": x-amz-date wins over Date and is signed as an
        # amz header, with an empty Date line. The guide's own DELETE example
        # instead puts the x-amz-date value on the Date line (and no amz line);
        # accept that shape second.
        raw_date = headers["x-amz-date"]
        date_lines = [("", ()), (raw_date.strip(), ("x-amz-date",))]
    else:
        raw_date = headers.get("date", "")
        date_lines = [(raw_date.strip(), ())]
    request_time = v4.parse_http_date(raw_date) if raw_date.strip() else None
    if request_time is None:
        raise E.AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    secret = v4.secret_for(secrets, access_key)
    v4.check_skew(request_time, raw_date, now, max_skew)
    _check_signature(req, secret, access_key, provided, date_lines, query_auth=False)
    return v4.AuthResult(access_key=access_key, mode="sigv2-header", payload_hash=v4.UNSIGNED_PAYLOAD)


def _check_signature(req: v4.SigningInput, secret: str, access_key: str, provided: str,
                           date_lines: Sequence[tuple[str, Collection[str]]], *, query_auth: bool) -> None:
    """Accept the signature if it matches one of the StringToSign shapes
    clients produce (each Date line; the resource shapes of
    :func:`sigv2_canonical_resource`); otherwise SignatureDoesNotMatch with
    the first, documented, StringToSign (never the secret)."""
    has_bare = any(k in SIGV2_SUBRESOURCES and v == "" for k, v in req.query)
    bucket_only = not req.virtual_host_bucket and _is_bucket_path(req.raw_path)
    first_sts = ""
    for when, omit in date_lines:
        for bare in ([True, False] if has_bare else [True]):
            for slash in ([False, True] if bucket_only else [False]):
                sts = sigv2_string_to_sign(req, when, query_auth=query_auth, bare_empty=bare,
                                           bucket_slash=slash, omit_amz=omit)
                first_sts = first_sts or sts
                if hmac.compare_digest(sigv2_signature(secret, sts).encode("ascii"),
                                       provided.encode("utf-8", "replace")):
                    return
    raise E.SignatureDoesNotMatch(AWSAccessKeyId=access_key, StringToSign=first_sts,
                                  SignatureProvided=provided,
                                  StringToSignBytes=" ".join(f"{b:02x}" for b in first_sts.encode("utf-8")))
