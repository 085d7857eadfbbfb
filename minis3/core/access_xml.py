"""The XML documents of access control: ``PublicAccessBlockConfiguration``,
``OwnershipControls`` and ``PolicyStatus`` (``AccessControlPolicy``, an ACL, is core/acl.py's).
Pure: no I/O.
"""
from __future__ import annotations

from . import errors as E
from . import xmldoc as X
from .access import OWNERSHIP, PublicAccessBlock

MAX_BODY = 64 * 1024
_BPA_FIELDS = (("BlockPublicAcls", "block_public_acls"), ("IgnorePublicAcls", "ignore_public_acls"),
               ("BlockPublicPolicy", "block_public_policy"), ("RestrictPublicBuckets", "restrict_public_buckets"))


def _bool(el) -> bool:
    text = X.leaf_text(el).strip().lower()
    if text not in ("true", "false"):
        raise E.MalformedXML()
    return text == "true"


def parse_public_access_block(body: bytes) -> PublicAccessBlock:
    """A ``PublicAccessBlockConfiguration``: a setting left out is false (as S3 reads it)."""
    root = X.parse(body, MAX_BODY, "PublicAccessBlockConfiguration")
    values = {}
    for element, attr in _BPA_FIELDS:
        found = X.children(root, element)
        if len(found) > 1:
            raise E.MalformedXML()
        values[attr] = _bool(found[0]) if found else False
    return PublicAccessBlock(**values)


def public_access_block_xml(block: PublicAccessBlock) -> bytes:
    root = X.root("PublicAccessBlockConfiguration")
    X.leaves(root, *((element, X.xml_bool(getattr(block, attr))) for element, attr in _BPA_FIELDS))
    return X.serialize(root)


def parse_ownership_controls(body: bytes) -> str:
    """``<OwnershipControls><Rule><ObjectOwnership>…</ObjectOwnership></Rule></OwnershipControls>``:
    exactly one rule, naming one of the three settings."""
    root = X.parse(body, MAX_BODY, "OwnershipControls")
    rules = X.children(root, "Rule")
    if len(rules) != 1:
        raise E.MalformedXML()
    found = X.children(rules[0], "ObjectOwnership")
    if len(found) != 1 or X.leaf_text(found[0]) not in OWNERSHIP:
        raise E.MalformedXML()
    return X.leaf_text(found[0])


def ownership_controls_xml(setting: str) -> bytes:
    root = X.root("OwnershipControls")
    X.sub(X.sub(root, "Rule"), "ObjectOwnership", setting)
    return X.serialize(root)


def policy_status_xml(public: bool) -> bytes:
    root = X.root("PolicyStatus")
    X.sub(root, "IsPublic", X.xml_bool(public))
    return X.serialize(root)
