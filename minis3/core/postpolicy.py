"""Browser uploads (S3's POST Object): the form's POST policy and its signature. Pure: no I/O.

An HTML form (or ``fetch()`` with a ``FormData``) uploads straight to a bucket with
``multipart/form-data``. Instead of signing the request, the application's server signs a
**policy**: a base64 JSON document saying until when the form is good and what its fields may
hold (the S3 API reference, "Creating a POST policy", and "Authenticating requests in
browser-based uploads using POST"):

* ``expiration``: after it, the form is refused (AccessDenied "Policy expired.");
* ``conditions``, every one of which must hold:
  ``{"field": "value"}`` or ``["eq", "$field", "value"]`` (exact), ``["starts-with", "$field",
  "prefix"]`` (``""``: anything), ``["content-length-range", min, max]`` (the file's size);
  ``{"bucket": ...}`` is matched against the bucket;
* every form field must be named by a condition, except the signature's own (``policy``,
  ``x-amz-signature``, ``AWSAccessKeyId``, ``signature``), ``file`` and ``x-ignore-*``.

SigV4: ``x-amz-algorithm`` = AWS4-HMAC-SHA256, ``x-amz-credential`` (key/date/region/s3/
aws4_request), ``x-amz-date``, and ``x-amz-signature`` = HMAC-SHA256 of the base64 policy
with the date's signing key (core/sigv4.signing_key). SigV2: ``AWSAccessKeyId`` and
``signature`` = base64 HMAC-SHA1 of the base64 policy. A form with neither is anonymous.
Field names are compared case-insensitively (``Content-Type`` = ``content-type``).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

from . import errors as E
from .sigv4 import parse_amz_date, signing_key

ALGORITHM = "AWS4-HMAC-SHA256"
#: Fields no condition needs to name.
UNCHECKED = frozenset({"policy", "x-amz-signature", "awsaccesskeyid", "signature", "file"})


@dataclass(frozen=True)
class PostPolicy:
    expiration: datetime
    conditions: tuple


def _condition_text(c) -> str:
    return json.dumps(c, separators=(", ", ": "))


def parse(b64: str) -> PostPolicy:
    """The base64 policy document (InvalidPolicyDocument when it is not one)."""
    try:
        doc = json.loads(base64.b64decode(b64, validate=True))
    except (binascii.Error, ValueError):
        raise E.InvalidPolicyDocument() from None
    if not isinstance(doc, dict) or not isinstance(doc.get("expiration"), str):
        raise E.InvalidPolicyDocument("Invalid Policy: Policy missing expiration.")
    try:
        exp = datetime.fromisoformat(doc["expiration"].replace("Z", "+00:00"))
    except ValueError:
        raise E.InvalidPolicyDocument("Invalid Policy: Invalid 'expiration' value: "
                                    f"'{doc['expiration']}'") from None
    conditions = doc.get("conditions")
    if not isinstance(conditions, list):
        raise E.InvalidPolicyDocument("Invalid Policy: Policy missing conditions.")
    for c in conditions:
        ok = (isinstance(c, dict) and len(c) == 1) or (
            isinstance(c, list) and len(c) == 3 and (
                (c[0] in ("eq", "starts-with") and isinstance(c[1], str) and c[1].startswith("$")
                 and isinstance(c[2], str))
                or (c[0] == "content-length-range" and all(isinstance(v, int) for v in c[1:]))))
        if not ok:
            raise E.InvalidPolicyDocument(f"Invalid Policy: Invalid Condition: {_condition_text(c)}")
    return PostPolicy(exp if exp.tzinfo else exp.replace(tzinfo=timezone.utc), tuple(conditions))


def check(policy: PostPolicy, fields: Mapping[str, str], bucket: str, now: datetime) -> tuple[int, int] | None:
    """Every condition against the form's fields (lower-case names); the file's allowed size
    range (``content-length-range``) is returned, to be checked as the file arrives."""
    if now >= policy.expiration:
        raise E.AccessDenied("Invalid according to Policy: Policy expired.")
    values = dict(fields, bucket=bucket)
    named: set[str] = set()
    size = None
    for c in policy.conditions:
        if isinstance(c, dict):
            (name, wanted), = c.items()
            c, op = ["eq", "$" + name, wanted], "eq"
        op = c[0]
        if op == "content-length-range":
            size = (c[1], c[2])
            continue
        name = c[1][1:].lower()
        named.add(name)
        got = values.get(name)
        holds = (got == c[2]) if op == "eq" else (c[2] == "" or (got is not None and got.startswith(c[2])))
        if not holds:
            raise E.AccessDenied(f"Invalid according to Policy: Policy Condition failed: {_condition_text(c)}")
    extra = sorted(f for f in fields if f not in named and f not in UNCHECKED and not f.startswith("x-ignore-"))
    if extra:
        raise E.AccessDenied(f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")
    return size


def signer(fields: Mapping[str, str], secrets: Mapping[str, str]) -> str | None:
    """The access key that signed the form's policy (None: an anonymous form, no policy).
    InvalidAccessKeyId, SignatureDoesNotMatch or InvalidArgument as S3 answers them."""
    if "policy" not in fields:
        if any(f in fields for f in ("x-amz-signature", "signature", "x-amz-credential", "awsaccesskeyid")):
            raise E.InvalidArgument("Bucket POST must contain a field named 'policy'.  If it is specified, please "
                                    "check the order of the fields.", ArgumentName="policy", ArgumentValue="")
        return None
    policy = fields["policy"]
    if "x-amz-signature" in fields or "x-amz-credential" in fields:
        for f in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"):
            if f not in fields:
                raise E.InvalidArgument(f"Bucket POST must contain a field named '{f}'.  If it is specified, "
                                        "please check the order of the fields.", ArgumentName=f, ArgumentValue="")
        if fields["x-amz-algorithm"] != ALGORITHM:
            raise E.InvalidArgument("Unsupported algorithm", ArgumentName="x-amz-algorithm",
                                    ArgumentValue=fields["x-amz-algorithm"])
        parts = fields["x-amz-credential"].split("/")
        if len(parts) != 5 or parts[3:] != ["s3", "aws4_request"] or parse_amz_date(fields["x-amz-date"]) is None:
            raise E.InvalidArgument("Invalid credential or date", ArgumentName="x-amz-credential",
                                    ArgumentValue=fields["x-amz-credential"])
        access_key, date, region = parts[0], parts[1], parts[2]
        secret = _secret(secrets, access_key)
        computed = hmac.new(signing_key(secret, date, region), policy.encode(), hashlib.sha256).hexdigest()
        provided = fields["x-amz-signature"]
    else:
        for f in ("awsaccesskeyid", "signature"):
            if f not in fields:
                raise E.InvalidArgument(f"Bucket POST must contain a field named '{f}'.  If it is specified, "
                                        "please check the order of the fields.", ArgumentName=f, ArgumentValue="")
        access_key = fields["awsaccesskeyid"]
        secret = _secret(secrets, access_key)
        computed = base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
        provided = fields["signature"]
    if not hmac.compare_digest(computed, provided):
        raise E.SignatureDoesNotMatch(AWSAccessKeyId=access_key, StringToSign=policy)
    return access_key


def _secret(secrets: Mapping[str, str], access_key: str) -> str:
    if access_key not in secrets:
        raise E.InvalidAccessKeyId(AWSAccessKeyId=access_key)
    return secrets[access_key]
