"""Server-side encryption as the S3 API speaks it: the request headers, a
bucket's default encryption, and which encryption a new object gets. Pure: no
I/O, no keys (the cryptography is core/seal.py, the keys frontend/keys.py).

What S3 documents, and minis3 follows:

* Every new object is encrypted. With no header, the bucket's default applies;
  a bucket's default is SSE-S3 (``AES256``) until PutBucketEncryption says
  otherwise, and DeleteBucketEncryption puts it back (S3 since January 2023).
* ``x-amz-server-side-encryption: AES256`` (SSE-S3) or ``aws:kms`` (SSE-KMS,
  with ``-aws-kms-key-id``, ``-context`` and ``-bucket-key-enabled``) on a write.
* SSE-C: ``x-amz-server-side-encryption-customer-algorithm`` (AES256),
  ``-customer-key`` (base64 of 256 bits) and ``-customer-key-MD5`` on every
  request that writes or reads the object (and ``x-amz-copy-source-...`` for a
  copy's source). Since April 2026 S3 blocks SSE-C writes in new buckets
  (the default configuration's ``BlockedEncryptionTypes`` is ``SSE-C``) until
  the owner unblocks it; minis3 does the same.
* ``aws:kms:dsse`` (two layers of encryption) is not implemented: 501, never a
  quiet single layer.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass

from . import errors as E
from . import xmldoc as X

SSE_S3 = "AES256"
SSE_KMS = "aws:kms"
SSE_DSSE = "aws:kms:dsse"
SSE_C = "SSE-C"            # the record's name for it (S3's headers say AES256, with a customer key)

HEADER = "x-amz-server-side-encryption"
KMS_KEY_HEADER = "x-amz-server-side-encryption-aws-kms-key-id"
CONTEXT_HEADER = "x-amz-server-side-encryption-context"
BUCKET_KEY_HEADER = "x-amz-server-side-encryption-bucket-key-enabled"
CUSTOMER = "x-amz-server-side-encryption-customer-"
COPY_SOURCE_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"
MAX_CONFIG_BODY = 64 * 1024


@dataclass(frozen=True)
class CustomerKey:
    """An SSE-C key as a request gives it (never stored)."""
    key: bytes
    md5: str                 # base64 of its MD5, as the client sent it (and S3 answers it)


@dataclass(frozen=True)
class Encryption:
    """What a new object (or multipart upload) is encrypted with."""
    alg: str                                  # SSE_S3, SSE_KMS or SSE_C
    kms_key: str | None = None                # SSE-KMS: the key as named (resolved by the key service)
    context: dict | None = None               # SSE-KMS: the caller's encryption context
    bucket_key: bool | None = None            # SSE-KMS: S3 Bucket Key (None: as the bucket's default says)
    customer: CustomerKey | None = None       # SSE-C


@dataclass(frozen=True)
class BucketDefault:
    """A bucket's default encryption (its ``ServerSideEncryptionConfiguration``)."""
    alg: str = SSE_S3
    kms_key: str | None = None
    bucket_key: bool = False
    blocked: tuple[str, ...] = (SSE_C,)       # S3's default for a new bucket since April 2026

    def to_record(self) -> dict:
        return {"alg": self.alg, "kms_key": self.kms_key, "bucket_key": self.bucket_key,
                "blocked": list(self.blocked)}

    @classmethod
    def from_record(cls, rec: dict | None) -> "BucketDefault":
        if not rec:
            return cls()
        return cls(rec["alg"], rec.get("kms_key"), bool(rec.get("bucket_key")), tuple(rec.get("blocked") or ()))


# ----------------------------------------------------------------------------- SSE-C keys
def customer_key(headers: dict[str, str], prefix: str = CUSTOMER) -> CustomerKey | None:
    """The SSE-C key a request gives (``headers`` lower-cased), checked as S3
    checks it; None when it gives none of the three headers."""
    alg, key, md5 = (headers.get(prefix + n) for n in ("algorithm", "key", "key-md5"))
    if alg is None and key is None and md5 is None:
        return None
    if alg is None:
        raise E.InvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must "
                                "provide a valid encryption algorithm.", ArgumentName=prefix + "algorithm",
                                ArgumentValue="null")
    if alg != SSE_S3:
        raise E.InvalidEncryptionAlgorithmError(ArgumentName=prefix + "algorithm", ArgumentValue=alg)
    if key is None:
        raise E.InvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must "
                                "provide an appropriate secret key.", ArgumentName=prefix + "key",
                                ArgumentValue="null")
    if md5 is None:
        raise E.InvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must "
                                "provide the client calculated MD5 of the secret key.",
                                ArgumentName=prefix + "key-MD5", ArgumentValue="null")
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise E.InvalidArgument("The secret key was invalid for the specified algorithm.",
                                ArgumentName=prefix + "key", ArgumentValue="null")
    if base64.b64encode(hashlib.md5(raw).digest()).decode() != md5:
        raise E.InvalidArgument("The calculated MD5 hash of the key did not match the hash that was provided.",
                                ArgumentName=prefix + "key-MD5", ArgumentValue="null")
    return CustomerKey(raw, md5)


# ----------------------------------------------------------------------------- a write's headers
def _bool_header(headers: dict[str, str], name: str) -> bool | None:
    raw = headers.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise E.InvalidArgument(f"Invalid value for {name}", ArgumentName=name, ArgumentValue=raw)
    return raw.lower() == "true"


def _context(raw: str) -> dict:
    try:
        doc = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):   # "[[[[..." nests too deep
        doc = None
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
        raise E.InvalidArgument("The header 'x-amz-server-side-encryption-context' shall be Base64-encoded "
                                "UTF-8 JSON of string keys and values.", ArgumentName=CONTEXT_HEADER)
    return doc


def requested(headers: dict[str, str]) -> Encryption | None:
    """The encryption a write request asks for (``headers`` lower-cased; a
    form upload's fields do as well), or None to take the bucket's default."""
    alg = headers.get(HEADER)
    customer = customer_key(headers)
    kms_key, ctx_raw = headers.get(KMS_KEY_HEADER), headers.get(CONTEXT_HEADER)
    bucket_key = _bool_header(headers, BUCKET_KEY_HEADER)
    if customer is not None:
        if alg is not None:
            raise E.InvalidArgument("Server Side Encryption with Customer provided key is incompatible with the "
                                    "encryption method specified", ArgumentName=HEADER, ArgumentValue=alg)
        if kms_key is not None or ctx_raw is not None:
            raise E.InvalidArgument("Server Side Encryption with AWS KMS managed key requires HTTP header "
                                    "x-amz-server-side-encryption : aws:kms", ArgumentName=KMS_KEY_HEADER)
        return Encryption(SSE_C, customer=customer)
    if alg is None:
        if kms_key is not None or ctx_raw is not None:
            raise E.InvalidArgument("Server Side Encryption with AWS KMS managed key requires HTTP header "
                                    "x-amz-server-side-encryption : aws:kms",
                                    ArgumentName=KMS_KEY_HEADER if kms_key is not None else CONTEXT_HEADER)
        return None                # (a Bucket Key header alone changes nothing: the default decides)
    if alg == SSE_DSSE:
        raise E.NotImplemented_("Dual-layer server-side encryption (aws:kms:dsse) is not implemented by minis3")
    if alg not in (SSE_S3, SSE_KMS):
        raise E.InvalidArgument("The encryption method specified is not supported", ArgumentName=HEADER,
                                ArgumentValue=alg)
    if alg == SSE_S3:
        if kms_key is not None or ctx_raw is not None:
            raise E.InvalidArgument("Server Side Encryption with AWS KMS managed key requires HTTP header "
                                    "x-amz-server-side-encryption : aws:kms", ArgumentName=HEADER,
                                    ArgumentValue=alg)
        return Encryption(SSE_S3)
    if kms_key is not None:
        parse_kms_ref(kms_key)
    return Encryption(SSE_KMS, kms_key=kms_key, context=_context(ctx_raw) if ctx_raw is not None else None,
                      bucket_key=bucket_key)


def choose(asked: Encryption | None, default: BucketDefault) -> Encryption:
    """What a new object gets: what the request asks for, else the bucket's
    default. SSE-C in a bucket that blocks it is 403 AccessDenied (S3's answer)."""
    if asked is None:
        return Encryption(default.alg, kms_key=default.kms_key, bucket_key=default.bucket_key) \
            if default.alg == SSE_KMS else Encryption(SSE_S3)
    if asked.alg == SSE_C and SSE_C in default.blocked:
        raise E.AccessDenied("Requests specifying Server Side Encryption with Customer provided keys are blocked "
                             "for this bucket (its default encryption's BlockedEncryptionTypes)")
    if asked.alg != SSE_KMS:
        return asked
    kms_default = default.alg == SSE_KMS
    # aws:kms with no key id: the bucket's KMS key if it names one, else the AWS managed key.
    # The Bucket Key: the request's header if it sends one, else the bucket's setting.
    return Encryption(SSE_KMS, kms_key=asked.kms_key or (default.kms_key if kms_default else None),
                      context=asked.context,
                      bucket_key=asked.bucket_key if asked.bucket_key is not None else kms_default and default.bucket_key)


def refuse_on_read(headers: dict[str, str]) -> None:
    """GET and HEAD take no SSE-S3/KMS headers (the object's record says how it is encrypted)."""
    for name in (HEADER, KMS_KEY_HEADER, CONTEXT_HEADER):
        if name in headers:
            raise E.InvalidArgument(f"{name} header is not supported for this operation.", ArgumentName=name,
                                    ArgumentValue=headers[name])


# ----------------------------------------------------------------------------- KMS key names
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_KEY_ARN = re.compile(rf"arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{{12}}):key/({_UUID}|mrk-[0-9a-f]{{32}})")
# An alias name: letters, digits, "/", "_" and "-" (AWS KMS's rule), none of them "." or "..".
_ALIAS_NAME = r"([A-Za-z0-9/_-]{1,250})"
_ALIAS_ARN = re.compile(rf"arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{{12}}):alias/{_ALIAS_NAME}")
_ALIAS = re.compile(rf"alias/{_ALIAS_NAME}")
_KEY_ID = re.compile(rf"{_UUID}|mrk-[0-9a-f]{{32}}")


@dataclass(frozen=True)
class KmsRef:
    kind: str                    # "key" or "alias"
    name: str                    # the key id, or the alias's name (without "alias/")
    region: str | None = None    # when the reference is an ARN
    account: str | None = None


def parse_kms_ref(ref: str) -> KmsRef:
    """A KMS key as S3 accepts it: key id, key ARN, ``alias/name`` or alias ARN."""
    for pattern, kind in ((_KEY_ARN, "key"), (_ALIAS_ARN, "alias")):
        m = pattern.fullmatch(ref)
        if m:
            return KmsRef(kind, m.group(3), m.group(1), m.group(2))
    m = _ALIAS.fullmatch(ref)
    if m:
        return KmsRef("alias", m.group(1))
    if _KEY_ID.fullmatch(ref):
        return KmsRef("key", ref)
    raise E.KMSNotFound(f"Invalid keyId {ref}")


# ----------------------------------------------------------------------------- an object's answers
def response_headers(sse: dict | None, *, context: bool = False, customer_md5: str | None = None) -> dict[str, str]:
    """The headers S3 answers a write, GET or HEAD of an object with (the
    record's ``sse``); ``context``: also the KMS encryption context (a write's answer).
    SSE-C: ``customer_md5`` is the MD5 of the key the request gave (and that was
    checked against the record's salted HMAC): the record keeps no MD5 of it, since an
    unsalted hash would let anyone holding a replica's disk test guesses of the key."""
    if not sse:
        return {}
    alg = sse["alg"]
    if alg == SSE_C:
        out = {CUSTOMER + "algorithm": SSE_S3}
        if customer_md5:
            out[CUSTOMER + "key-MD5"] = customer_md5
        return out
    out = {HEADER: alg}
    if alg == SSE_KMS:
        out[KMS_KEY_HEADER] = sse["kms"]
        if sse.get("bk"):
            out[BUCKET_KEY_HEADER] = "true"
        if context and sse.get("ctx"):
            out[CONTEXT_HEADER] = sse["ctx"]
    return out


# ----------------------------------------------------------------------------- the bucket's configuration
def parse_config(body: bytes) -> BucketDefault:
    """A ``ServerSideEncryptionConfiguration``: one rule, its default algorithm,
    KMS key, Bucket Key and blocked encryption types."""
    root = X.parse(body, MAX_CONFIG_BODY, "ServerSideEncryptionConfiguration")
    rules = X.children(root, "Rule")
    if len(rules) != 1:
        raise E.MalformedXML()
    rule = rules[0]
    by_default = X.children(rule, "ApplyServerSideEncryptionByDefault")
    if len(by_default) > 1:
        raise E.MalformedXML()
    alg, kms_key = SSE_S3, None
    if by_default:
        algs = [el.text or "" for el in X.children(by_default[0], "SSEAlgorithm")]
        keys = [el.text or "" for el in X.children(by_default[0], "KMSMasterKeyID")]
        if len(algs) != 1 or len(keys) > 1:
            raise E.MalformedXML()
        alg = algs[0]
        if alg == SSE_DSSE:
            raise E.NotImplemented_("Dual-layer server-side encryption (aws:kms:dsse) is not implemented by minis3")
        if alg not in (SSE_S3, SSE_KMS):
            raise E.MalformedXML()
        if keys:
            if alg != SSE_KMS:
                raise E.InvalidArgument("a KMSMasterKeyID is not applicable if the default sse algorithm is not "
                                        "aws:kms or aws:kms:dsse", ArgumentName="ApplyServerSideEncryptionByDefault")
            parse_kms_ref(keys[0])
            kms_key = keys[0]
    bucket_key = False
    bk = X.children(rule, "BucketKeyEnabled")
    if len(bk) > 1 or (bk and (bk[0].text or "").strip().lower() not in ("true", "false")):
        raise E.MalformedXML()
    if bk:
        bucket_key = bk[0].text.strip().lower() == "true"
    blocked: tuple[str, ...] = BucketDefault.blocked       # not given: left as S3 leaves it
    blocks = X.children(rule, "BlockedEncryptionTypes")
    if len(blocks) > 1:
        raise E.MalformedXML()
    if blocks:
        types = [(el.text or "").strip() for el in X.children(blocks[0], "EncryptionType")]
        if not types or any(t not in ("NONE", SSE_C) for t in types) or ("NONE" in types and len(types) > 1):
            raise E.MalformedXML()
        blocked = () if types == ["NONE"] else (SSE_C,)
    return BucketDefault(alg, kms_key, bucket_key, blocked)


def config_xml(d: BucketDefault) -> bytes:
    root = X.root("ServerSideEncryptionConfiguration")
    rule = X.sub(root, "Rule")
    by_default = X.sub(rule, "ApplyServerSideEncryptionByDefault")
    X.sub(by_default, "SSEAlgorithm", d.alg)
    if d.kms_key:
        X.sub(by_default, "KMSMasterKeyID", d.kms_key)
    X.sub(rule, "BucketKeyEnabled", X.xml_bool(d.bucket_key))
    blocks = X.sub(rule, "BlockedEncryptionTypes")
    X.sub(blocks, "EncryptionType", SSE_C if SSE_C in d.blocked else "NONE")
    return X.serialize(root)
