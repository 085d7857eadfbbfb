"""Access control lists: S3's oldest way to share, as grants of five permissions to accounts
and groups. Pure: no I/O.

A grant gives one *permission* to one *grantee*: an account (its canonical id) or a group
(``AllUsers``: anybody, anonymous too; ``AuthenticatedUsers``: any signed request;
``LogDelivery``). What each permission lets the grantee do (the S3 User Guide, "Access
control list (ACL) overview", and its mapping of ACL permissions to policy actions):

==============  ===============================================  ================================
permission      on a bucket                                      on an object
==============  ===============================================  ================================
READ            list it (ListBucket, ...Versions, ...Uploads)    read it (GetObject, ...Version)
WRITE           create, overwrite and delete its objects         -
READ_ACP        read the bucket's ACL                            read the object's ACL
WRITE_ACP       write the bucket's ACL                           write the object's ACL
FULL_CONTROL    all four                                         READ, READ_ACP, WRITE_ACP
==============  ===============================================  ================================

ACLs count only when a bucket's Object Ownership lets them (not ``BucketOwnerEnforced``), and a
public grant (AllUsers, AuthenticatedUsers) only when Block Public Access does not ignore it
(``IgnorePublicAcls``). Canned ACLs are shorthands for grant lists (:func:`canned`).
"""
from __future__ import annotations

from typing import Mapping

from . import errors as E
from . import xmldoc as X

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)
PERMISSIONS = ("READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL")
HEADERS = {"x-amz-grant-read": "READ", "x-amz-grant-write": "WRITE", "x-amz-grant-read-acp": "READ_ACP",
           "x-amz-grant-write-acp": "WRITE_ACP", "x-amz-grant-full-control": "FULL_CONTROL"}
#: The canned ACLs S3 knows (:func:`canned` says what each grants).
CANNED = ("private", "public-read", "public-read-write", "aws-exec-read", "authenticated-read",
          "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write")
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_BODY = 64 * 1024

#: A grant: ("id", canonical id, permission) or ("uri", group URI, permission).
Grant = tuple[str, str, str]

#: Which permission a policy action needs in the bucket's ACL, and in the object's.
BUCKET_PERMISSION = {"s3:ListBucket": "READ", "s3:ListBucketVersions": "READ",
                     "s3:ListBucketMultipartUploads": "READ", "s3:PutObject": "WRITE", "s3:DeleteObject": "WRITE",
                     "s3:DeleteObjectVersion": "WRITE", "s3:GetBucketAcl": "READ_ACP", "s3:PutBucketAcl": "WRITE_ACP"}
OBJECT_PERMISSION = {"s3:GetObject": "READ", "s3:GetObjectVersion": "READ", "s3:GetObjectAcl": "READ_ACP",
                     "s3:GetObjectVersionAcl": "READ_ACP", "s3:PutObjectAcl": "WRITE_ACP",
                     "s3:PutObjectVersionAcl": "WRITE_ACP"}


def owner_only(owner_id: str) -> list[Grant]:
    return [("id", owner_id, "FULL_CONTROL")]


def canned(name: str, owner_id: str, bucket_owner_id: str | None = None) -> list[Grant]:
    """The grants a canned ACL stands for (``bucket_owner_id``: the bucket's owner, for the
    two object ACLs that name it)."""
    grants = owner_only(owner_id)
    extra = {"private": [], "aws-exec-read": [],
             "public-read": [("uri", ALL_USERS, "READ")],
             "public-read-write": [("uri", ALL_USERS, "READ"), ("uri", ALL_USERS, "WRITE")],
             "authenticated-read": [("uri", AUTHENTICATED_USERS, "READ")],
             "log-delivery-write": [("uri", LOG_DELIVERY, "WRITE"), ("uri", LOG_DELIVERY, "READ_ACP")],
             "bucket-owner-read": [("id", bucket_owner_id or owner_id, "READ")],
             "bucket-owner-full-control": [("id", bucket_owner_id or owner_id, "FULL_CONTROL")]}
    if name not in CANNED:
        raise E.InvalidArgument(None, ArgumentName="x-amz-acl", ArgumentValue=name)
    return _unique(grants + extra[name])


def _unique(grants: list[Grant]) -> list[Grant]:
    out: list[Grant] = []
    for g in grants:
        if g not in out:
            out.append(g)
    return out


def _grantee(text: str) -> tuple[str, str]:
    """One ``id="..."`` / ``uri="..."`` / ``emailAddress="..."`` of an x-amz-grant-* header."""
    kind, _, value = text.strip().partition("=")
    value = value.strip().strip('"')
    kind = kind.strip()
    if kind == "emailAddress":
        raise E.UnresolvableGrantByEmailAddress()
    if kind not in ("id", "uri") or not value or (kind == "uri" and value not in GROUPS):
        raise E.InvalidArgument("Invalid id", ArgumentName="x-amz-grant", ArgumentValue=text.strip()[:200])
    return kind, value


def from_headers(headers: Mapping[str, str], owner_id: str, bucket_owner_id: str | None = None) -> list[Grant] | None:
    """The ACL a request's headers give (``x-amz-acl`` or ``x-amz-grant-*``: not both), or None
    when they give none. ``headers``: lower-case names."""
    canned_name = headers.get("x-amz-acl")
    grants = [(h, headers[h]) for h in HEADERS if h in headers]
    if canned_name is not None and grants:
        raise E.InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
    if canned_name is not None:
        return canned(canned_name, owner_id, bucket_owner_id)
    if not grants:
        return None
    return _unique([(*_grantee(g), HEADERS[h]) for h, value in grants for g in value.split(",") if g.strip()])


def parse_xml(body: bytes) -> tuple[str | None, list[Grant]]:
    """An ``AccessControlPolicy`` document: (its Owner ID, its grants)."""
    root = X.parse(body, MAX_BODY, "AccessControlPolicy")
    owners = X.children(root, "Owner")
    owner = X.leaf_text(X.children(owners[0], "ID")[0]) if owners and X.children(owners[0], "ID") else None
    lists = X.children(root, "AccessControlList")
    if len(lists) != 1:
        raise E.MalformedACLError()
    grants: list[Grant] = []
    for grant in X.children(lists[0], "Grant"):
        grantee, perm = X.children(grant, "Grantee"), X.children(grant, "Permission")
        if len(grantee) != 1 or len(perm) != 1 or X.leaf_text(perm[0]) not in PERMISSIONS:
            raise E.MalformedACLError()
        ids, uris, emails = (X.children(grantee[0], n) for n in ("ID", "URI", "EmailAddress"))
        if emails:
            raise E.UnresolvableGrantByEmailAddress()
        if ids:
            grants.append(("id", X.leaf_text(ids[0]), X.leaf_text(perm[0])))
        elif uris and X.leaf_text(uris[0]) in GROUPS:
            grants.append(("uri", X.leaf_text(uris[0]), X.leaf_text(perm[0])))
        else:
            raise E.MalformedACLError()
    return owner, _unique(grants)


def to_xml(owner: tuple[str, str], grants: list[Grant], names: Mapping[str, str] | None = None) -> bytes:
    """An ``AccessControlPolicy``: the owner and the grants (``names``: canonical id → display name)."""
    root = X.root("AccessControlPolicy")
    X.owner(root, owner)
    acl = X.sub(root, "AccessControlList")
    names = {owner[0]: owner[1], **(names or {})}
    for kind, value, perm in grants:
        grant = X.sub(acl, "Grant")
        if kind == "id":
            inner = f"<ID>{X.escape_text(value)}</ID>" + (
                f"<DisplayName>{X.escape_text(names[value])}</DisplayName>" if names.get(value) else "")
            xsi_type = "CanonicalUser"
        else:
            inner, xsi_type = f"<URI>{X.escape_text(value)}</URI>", "Group"
        grant.children.append(X.Raw(f'<Grantee xmlns:xsi="{XSI}" xsi:type="{xsi_type}">{inner}</Grantee>'))
        X.sub(grant, "Permission", perm)
    return X.serialize(root)


def is_public(grants: list[Grant] | None) -> bool:
    """Does the ACL grant anything to everybody (AllUsers) or every AWS account
    (AuthenticatedUsers)? What Block Public Access's BlockPublicAcls refuses."""
    return any(kind == "uri" and value in (ALL_USERS, AUTHENTICATED_USERS) for kind, value, _ in grants or ())


def only_owner(grants: list[Grant] | None, owner_id: str) -> bool:
    return not grants or all(g[0] == "id" and g[1] == owner_id for g in grants)


def permits(grants: list[Grant] | None, canonical_id: str | None, permission: str, *,
            ignore_public: bool = False) -> str | None:
    """The grant that gives ``permission`` to the caller (``canonical_id`` None: anonymous), as
    text for a trace, or None. ``ignore_public``: Block Public Access's IgnorePublicAcls."""
    for kind, value, perm in grants or ():
        if perm not in (permission, "FULL_CONTROL"):
            continue
        if kind == "id" and canonical_id is not None and value == canonical_id:
            return f"{perm} to the caller"
        if kind == "uri" and not ignore_public:
            if value == ALL_USERS or (value == AUTHENTICATED_USERS and canonical_id is not None):
                return f"{perm} to {value.rsplit('/', 1)[-1]}"
    return None
