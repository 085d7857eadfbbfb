"""Who may do what: one request's authorisation decision, from the bucket's policy, its
Block Public Access settings and its ownership controls. Pure: no I/O.

S3 decides a request in this order (the S3 User Guide, "How Amazon S3 authorizes a request"
and "Policy evaluation logic"); :func:`decide` follows it and says which step decided:

1. **An explicit deny wins.** A bucket policy statement with ``Deny`` that applies to the
   request refuses it, whoever asks, the bucket owner too. One exception: the bucket owner
   account's root can always get, put and delete the bucket policy itself, so that a policy
   cannot lock its owner out for ever.
2. **The bucket owner's account** is allowed everything else in its own bucket. (In AWS an
   IAM user of the owner account needs an identity policy too; minis3 has no IAM, so an
   account's users hold all of its account's permissions: the identity side always allows.)
3. **Another account, or nobody (anonymous):** allowed only by a statement of the bucket
   policy that applies with ``Allow``. Cross-account access needs both sides to allow it
   (the bucket's policy, and the caller's identity policies); the second is always yes here,
   as in step 2.
4. **Block Public Access** (``RestrictPublicBuckets``): when the bucket's policy is
   *public* (:func:`is_public`), only the owner's account may use what it grants: another
   account's or an anonymous request is refused even where a statement allows it.
5. **ACLs**, where the bucket's Object Ownership lets them count (not ``BucketOwnerEnforced``,
   AWS's default for new buckets since April 2023): a grant of the bucket's ACL, or of the
   object's (core/acl.py), to the caller, to AuthenticatedUsers (any signed request) or to
   AllUsers; Block Public Access's ``IgnorePublicAcls`` makes the last two count for nothing.
6. Anything else: **implicit deny**.

With ACLs disabled, an ACL can be read (the owner's FULL_CONTROL) and setting one that grants
more is refused with ``AccessControlListNotSupported`` (:func:`acl_headers_allowed`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping

from . import acl
from . import errors as E
from .actions import Need
from .policy import Policy, Principal, Request, Statement, evaluate

#: Policy calls the bucket owner account's root can always make, whatever its policy says.
OWNER_ALWAYS = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})
#: Object Ownership settings (PutBucketOwnershipControls).
OWNERSHIP = ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter")
DEFAULT_OWNERSHIP = "BucketOwnerEnforced"
#: The canned ACLs that grant nothing beyond the bucket owner (core/acl.py has them all).
OWNER_ONLY_ACLS = ("private", "bucket-owner-full-control")
#: Condition keys whose fixed value makes a wildcard principal non-public ("The meaning of
#: 'public'" in the S3 User Guide).
_FIXING_KEYS = frozenset({"aws:sourceip", "aws:sourcearn", "aws:sourcevpc", "aws:sourcevpce", "aws:sourceaccount",
                          "aws:sourceowner", "aws:principalorgid", "aws:principalaccount", "aws:principalarn",
                          "aws:userid", "aws:principalorgpaths", "s3:dataaccesspointarn", "s3:dataaccesspointaccount",
                          "s3:x-amz-server-side-encryption-aws-kms-key-id"})
_POSITIVE_OPERATORS = frozenset({"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike",
                                 "IpAddress"})


@lru_cache(maxsize=4096)
def account_id(name: str) -> str:
    """The 12-digit id of an account named in the topology: the name itself when it is 12
    digits, else one derived from it (stable: the same name always gets the same id)."""
    if re.fullmatch(r"\d{12}", name):
        return name
    return f"{int(hashlib.sha256(b'minis3-account-id:' + name.encode()).hexdigest(), 16) % 10**12:012d}"


@lru_cache(maxsize=4096)
def canonical_id(name: str) -> str:
    """An account's canonical user id (64 hex digits), as listings and ACLs show it."""
    return hashlib.sha256(b"minis3-account:" + name.encode()).hexdigest()


@lru_cache(maxsize=4096)
def principal_of(account: str | None, user: str | None = None) -> Principal:
    """The policy principal of an account name (None: anonymous) and, optionally, one of its
    users (else the account's root)."""
    if account is None:
        return Principal()
    aid = account_id(account)
    arn = f"arn:aws:iam::{aid}:user/{user}" if user else f"arn:aws:iam::{aid}:root"
    return Principal(account=aid, arn=arn, canonical_id=canonical_id(account))


@dataclass(frozen=True)
class PublicAccessBlock:
    """A bucket's Block Public Access settings. A new bucket has all four on (AWS's default
    since April 2023); DeletePublicAccessBlock turns them all off."""
    block_public_acls: bool = True
    ignore_public_acls: bool = True
    block_public_policy: bool = True
    restrict_public_buckets: bool = True


OFF = PublicAccessBlock(False, False, False, False)


@dataclass(frozen=True)
class BucketAccess:
    """What decides access to one bucket: its owner (account name), policy, Block Public
    Access settings (None: none set) and Object Ownership."""
    owner: str
    policy: Policy | None = None
    block: PublicAccessBlock | None = field(default_factory=PublicAccessBlock)
    ownership: str = DEFAULT_OWNERSHIP
    acl: tuple[acl.Grant, ...] | None = None      # the bucket's ACL (None: the owner's FULL_CONTROL alone)

    @property
    def public_policy(self) -> bool:
        return self.policy is not None and is_public(self.policy)


@dataclass(frozen=True)
class Verdict:
    """The answer: ``allowed``; ``effect`` "Allow", "Deny" (explicit) or None (implicit);
    ``by``: what decided, in words a learner reads in a trace; ``statement``: the policy
    statement that decided (its Sid, or ``#N``), if one did."""
    allowed: bool
    effect: str | None
    by: str
    statement: str | None = None


def decide(principal: Principal, need: Need, bucket: BucketAccess,
           context: Mapping[str, object] | None = None, object_acl=None) -> Verdict:
    """One need of one request against its bucket (module doc, steps 1 to 6). ``object_acl``:
    the object's grants, when the caller read them (an object need in a bucket whose ACLs
    count, that nothing else allowed)."""
    owner = principal_of(bucket.owner)
    own = principal.account is not None and principal.account == owner.account
    decision = evaluate(bucket.policy, Request(principal, need.action, need.resource, context or {}))
    if decision.effect == "Deny":
        if own and principal.arn == owner.arn and need.action in OWNER_ALWAYS:
            return Verdict(True, "Allow", "bucket owner's root: its own policy calls are never denied")
        return Verdict(False, "Deny", f"explicit deny in the bucket policy (statement {decision.statement})",
                       decision.statement)
    if own:
        return Verdict(True, "Allow", "the bucket owner's account")
    voided = None
    if decision.effect == "Allow":
        if not (bucket.block is not None and bucket.block.restrict_public_buckets and bucket.public_policy):
            return Verdict(True, "Allow", f"the bucket policy (statement {decision.statement})", decision.statement)
        voided = Verdict(False, None, "Block Public Access (RestrictPublicBuckets): the bucket policy is "
                         f"public, so statement {decision.statement} grants nothing outside the owner's account",
                         decision.statement)
    granted = acl_grant(principal, need, bucket, object_acl)
    if granted:
        return Verdict(True, "Allow", granted)
    who = "an anonymous request" if principal.anonymous else "another account"
    return voided or Verdict(False, None, f"implicit deny: no statement of the bucket policy{acl_words(bucket)} "
                                          f"allows {who}")


def acls_count(bucket: BucketAccess) -> bool:
    """Do ACLs grant anything in this bucket? Not under BucketOwnerEnforced (ACLs disabled)."""
    return bucket.ownership != "BucketOwnerEnforced"


def acl_words(bucket: BucketAccess) -> str:
    return " nor ACL" if acls_count(bucket) else ""


def acl_grant(principal: Principal, need: Need, bucket: BucketAccess, object_acl=None) -> str | None:
    """The ACL grant (the bucket's, or the object's) that allows the need, in words, or None."""
    if not acls_count(bucket):
        return None
    ignore = bucket.block is not None and bucket.block.ignore_public_acls
    for where, grants, table in (("bucket", bucket.acl, acl.BUCKET_PERMISSION),
                                 ("object", object_acl, acl.OBJECT_PERMISSION)):
        permission = table.get(need.action)
        if permission and grants:
            got = acl.permits(grants, principal.canonical_id, permission, ignore_public=ignore)
            if got:
                return f"the {where}'s ACL (it grants {got})"
    return None


# ----------------------------------------------------------------------------- "public"

def _fixed_value(key: str, value: str) -> bool:
    """Is one condition value fixed? Not with a wildcard or a policy variable; an IP range
    broader than /8 (IPv4) or /32 (IPv6) is not; an access point ARN may wildcard the
    access point's name as long as its account is fixed."""
    if "${" in value:
        return False
    if key == "aws:sourceip":
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return False
        return net.prefixlen >= (8 if net.version == 4 else 32)
    if key == "s3:dataaccesspointarn":
        parts = value.split(":", 5)             # arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME
        return len(parts) == 6 and parts[5].startswith("accesspoint/") and not any(c in parts[4] for c in "*?")
    return "*" not in value and "?" not in value


def _fixed(st: Statement) -> bool:
    """Does a condition of the statement pin the caller to fixed values (not public)?"""
    return any(c.key in _FIXING_KEYS and c.operator in _POSITIVE_OPERATORS and not c.if_exists
               and all(_fixed_value(c.key, v) for v in c.values) for c in st.conditions)


def is_public(policy: Policy) -> bool:
    """S3's "public" (User Guide, "The meaning of 'public'"): an ``Allow`` statement whose
    principal is a wildcard (``*``, ``{"AWS": "*"}``, or any NotPrincipal), unless a condition
    pins the caller to fixed values (a source IP range, VPC, ARN, account, organisation)."""
    for st in policy.statements:
        if st.effect != "Allow":
            continue
        wildcard = st.not_principals is not None or any("*" in p for p in st.principals or ())
        if wildcard and not _fixed(st):
            return True
    return False


# ----------------------------------------------------------------------------- ACL headers

def acl_headers_allowed(headers: Mapping[str, str], owner_canonical_id: str) -> bool:
    """May a PUT carrying these ACL headers go on in a bucket whose ACLs are disabled
    (``BucketOwnerEnforced``)? Only with no ACL, or one granting the bucket owner alone:
    ``private``, ``bucket-owner-full-control``, or ``x-amz-grant-full-control`` to the
    owner's id. Raises InvalidArgument for a canned ACL S3 does not know."""
    canned = headers.get("x-amz-acl")
    if canned is not None and canned not in acl.CANNED:
        raise E.InvalidArgument(None, ArgumentName="x-amz-acl", ArgumentValue=canned)
    grants = {h: headers[h] for h in acl.HEADERS if h in headers}
    if canned is not None and grants:
        raise E.InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
    if canned is not None:
        return canned in OWNER_ONLY_ACLS
    if not grants:
        return True
    return set(grants) == {"x-amz-grant-full-control"} and \
        [g.strip() for g in grants["x-amz-grant-full-control"].split(",")] == [f'id="{owner_canonical_id}"']


# ----------------------------------------------------------------------------- the request context

_HEADER_KEYS = ("x-amz-acl", "x-amz-storage-class", "x-amz-server-side-encryption",
                "x-amz-server-side-encryption-aws-kms-key-id", "x-amz-copy-source", "x-amz-metadata-directive",
                "x-amz-content-sha256", "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date",
                *acl.HEADERS)
_AUTH_TYPES = {"header": "REST-HEADER", "sigv2-header": "REST-HEADER", "presigned": "REST-QUERY-STRING",
               "sigv2-presigned": "REST-QUERY-STRING", "post": "POST"}


def request_context(*, principal: Principal, user: str | None, source_ip: str | None, secure: bool,
                    headers: Mapping[str, str], query: Mapping[str, str], auth_mode: str, now_epoch: float,
                    signature_age_ms: int | None = None, tags: list[tuple[str, str]] | None = None,
                    existing_tags: list[tuple[str, str]] | None = None) -> dict[str, object]:
    """The condition keys a policy can test, as AWS names them (IAM's "global condition
    context keys" and S3's "condition keys" pages): who asks, from where, over what, and
    what the request asks for. ``headers``: lower-case names; ``tags``: those the request
    gives the new object (``x-amz-tagging``); ``existing_tags``: the object's own (for
    ``s3:ExistingObjectTag/<key>``, when the caller looked them up)."""
    ctx: dict[str, object] = {
        "aws:SecureTransport": "true" if secure else "false",
        "aws:CurrentTime": dt.datetime.fromtimestamp(now_epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now_epoch)),
        "aws:PrincipalType": "Anonymous" if principal.anonymous else ("User" if user else "Account"),
    }
    if source_ip:
        ctx["aws:SourceIp"] = source_ip
    for name, header in (("aws:Referer", "referer"), ("aws:UserAgent", "user-agent")):
        if header in headers:
            ctx[name] = headers[header]
    if not principal.anonymous:
        ctx.update({"aws:PrincipalAccount": principal.account, "aws:PrincipalArn": principal.arn,
                    "aws:userid": principal.account if not user else f"{principal.account}:{user}"})
        if user:
            ctx["aws:username"] = user
        ctx["s3:signatureversion"] = "AWS" if auth_mode.startswith("sigv2") else "AWS4-HMAC-SHA256"
        ctx["s3:authType"] = _AUTH_TYPES.get(auth_mode, "REST-HEADER")
        if signature_age_ms is not None:
            ctx["s3:signatureAge"] = str(signature_age_ms)
    for name in ("prefix", "delimiter", "max-keys"):
        if name in query:
            ctx["s3:" + name] = query[name]
    if "versionId" in query:
        ctx["s3:VersionId"] = query["versionId"]
    for header in _HEADER_KEYS:
        if header in headers:
            ctx["s3:" + header] = headers[header]
    if tags is not None:
        ctx["s3:RequestObjectTagKeys"] = [k for k, _ in tags]
        ctx.update({f"s3:RequestObjectTag/{k}": v for k, v in tags})
    for k, v in existing_tags or ():
        ctx[f"s3:ExistingObjectTag/{k}"] = v
    return ctx


def tests_existing_tags(policy: Policy | None) -> bool:
    """Does a statement test ``s3:ExistingObjectTag/…``? (Then the caller looks the object's
    tags up before deciding: that costs a metadata read, so only then.)"""
    return policy is not None and any(c.key.startswith("s3:existingobjecttag/")
                                      for st in policy.statements for c in st.conditions)
