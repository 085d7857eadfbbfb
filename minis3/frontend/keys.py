"""The keys of encryption at rest: the cluster's master key (SSE-S3) and a
local key service standing in for AWS KMS (SSE-KMS). The frontend is the only
process that holds either: storage nodes and metadata replicas see ciphertext
and wrapped keys only, so a stolen disk of theirs reveals nothing.

**Where the master key lives.** ``$MINIS3_MASTER_KEY`` (base64 of 32 bytes), or
the file ``$MINIS3_MASTER_KEY_FILE`` names (a Docker secret mounted into the
frontend's container alone), else ``DATA_DIR/keys/master-key``, made on first
use (mode 0600): beside the storage nodes' and replicas' directories, never in
one of them. Lose it and every SSE-S3 and SSE-KMS object is lost; in a real
deployment it would live in a hardware security module.

**The local key service.** A KMS key is 32 random bytes of material, kept in
``DATA_DIR/keys/kms/KEY-ID.json`` wrapped by the master key, with its ARN.
S3's default, the AWS managed key ``alias/aws/s3``, is made for an account the
first time it is needed, as AWS makes it. So that SDK code which names its own
production key runs unchanged against minis3, a key id, key ARN or alias
this service has not seen is made on first use too (AWS KMS would answer
``KMS.NotFoundException``); a name that is not a key id, ARN or alias at all is
refused as AWS refuses it. Several frontends on one data directory share the
files: a key is created with ``link`` (the first one made wins, atomically).
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from pathlib import Path

from ..config.credentials import from_env
from ..config.specs import TopologyError
from ..core import errors as E
from ..core import seal, sse
from ..fsutil import create_once, fsync_dir

MASTER_KEY_ENV = "MINIS3_MASTER_KEY"
MANAGED_ALIAS = "aws/s3"
#: The additional authenticated data that binds each kind of wrapped data key to its kind.
AAD_SSE_S3 = b"minis3 sse-s3 data key"
AAD_SSE_C = b"minis3 sse-c data key"


def key_dir(data_dir: Path, in_world: bool) -> Path:
    """``DATA_DIR/keys``; with several regions, the world's one (a copy between
    regions must open the source's key)."""
    return (data_dir.parent if in_world else data_dir) / "keys"


def _make_dirs(path: Path) -> None:
    """``path`` and its missing parents (mode 0700), each new one fsynced into its parent."""
    if path.is_dir():
        return
    _make_dirs(path.parent)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    fsync_dir(path.parent)


def _create_exclusive(path: Path, data: bytes) -> bool:
    """``fsutil.create_once`` in a directory made (0700) if missing: durable before it
    returns, since a key that wraps an acknowledged object's data key must survive a power cut."""
    _make_dirs(path.parent)
    return create_once(path, data)


def load_master_key(keys: Path, create: bool = True) -> bytes | None:
    """The master key (module docstring), made on first use when no variable names one
    (``create=False``: None instead, for a tool that only reads)."""
    given = from_env(MASTER_KEY_ENV)
    if given is not None:
        value, where = given
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raw = b""
        if len(raw) != seal.KEY_BYTES:
            raise TopologyError(f"{where}: the master key must be base64 of {seal.KEY_BYTES} bytes")
        return raw
    path = keys / "master-key"
    if not path.exists():
        if not create:
            return None
        _create_exclusive(path, base64.b64encode(seal.new_key()) + b"\n")
    try:
        raw = base64.b64decode(path.read_bytes().strip(), validate=True)
    except ValueError:                                   # binascii.Error is one
        raw = b""
    if len(raw) != seal.KEY_BYTES:
        raise TopologyError(f"{path}: not a master key (base64 of {seal.KEY_BYTES} bytes)")
    return raw


class LocalKMS:
    """KMS keys: their ARNs and material (module docstring)."""

    def __init__(self, keys: Path, master: bytes, region: str):
        self.dir, self.master, self.region = keys / "kms", master, region
        self._material: dict[str, bytes] = {}           # key ARN → material
        self._aliases: dict[tuple[str, str, str], str] = {}   # (region, account, alias) → key ARN
        self._lock = threading.Lock()

    def resolve(self, ref: str, account: str) -> str:
        """The key ARN that ``ref`` (key id, key ARN, alias, alias ARN) names in ``account``."""
        r = sse.parse_kms_ref(ref)
        region, acct = r.region or self.region, r.account or account
        if r.kind == "key":
            arn = f"arn:aws:kms:{region}:{acct}:key/{r.name}"
            self._ensure(arn)
            return arn
        cached = self._aliases.get((region, acct, r.name))
        if cached is not None:                           # (an alias never changes key here)
            return cached
        # Named by a hash: an alias may be 250 characters of letters, digits, "/", "_", "-".
        alias = self.dir / "alias" / hashlib.sha256(f"{region}\0{acct}\0{r.name}".encode()).hexdigest()
        if not alias.exists():
            _create_exclusive(alias, json.dumps({"alias": f"alias/{r.name}", "region": region, "account": acct,
                                                 "arn": f"arn:aws:kms:{region}:{acct}:key/{uuid.uuid4()}"}).encode())
        arn = json.loads(alias.read_text())["arn"]
        self._ensure(arn)
        self._aliases[(region, acct, r.name)] = arn
        return arn

    def material(self, arn: str) -> bytes:
        got = self._material.get(arn)
        if got is None:
            path = self._path(arn)
            try:
                doc = json.loads(path.read_text())
            except FileNotFoundError:
                raise E.KMSNotFound(f"Key '{arn}' does not exist") from None
            got = self._material[arn] = seal.unwrap(self.master, doc["material"], arn.encode())
        return got

    def keys(self) -> list[dict]:
        """Every key this service holds (``minis3 inspect`` and the docs show them)."""
        out = []
        for p in sorted(self.dir.glob("*.json")):
            doc = json.loads(p.read_text())
            out.append({"arn": doc["arn"], "created": doc.get("created")})
        return out

    def _path(self, arn: str) -> Path:
        """``kms/REGION_ACCOUNT_key_ID.json`` for ``arn:aws:kms:REGION:ACCOUNT:key/ID``."""
        _, region, account, resource = arn.rsplit(":", 3)
        return self.dir / f"{region}_{account}_{resource.replace('/', '_')}.json"

    def _ensure(self, arn: str) -> None:
        if arn in self._material or self._path(arn).exists():
            return
        with self._lock:
            doc = {"arn": arn, "material": seal.wrap(self.master, seal.new_key(), arn.encode()),
                   "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            _create_exclusive(self._path(arn), json.dumps(doc).encode())


class KeyService:
    """Makes a new object's data key and wraps it; opens a stored object's (core/seal.py)."""

    def __init__(self, keys: Path, region: str, master: bytes | None = None):
        self.dir = keys
        self.master = master if master is not None else load_master_key(keys)
        self.kms = LocalKMS(keys, self.master, region)

    @classmethod
    def if_present(cls, keys: Path, region: str) -> "KeyService | None":
        """The key service of a data directory whose master key exists, else None
        (``minis3 inspect`` opens what it shows when it runs where the frontend does)."""
        try:
            master = load_master_key(keys, create=False)
        except (TopologyError, OSError):
            return None
        return cls(keys, region, master) if master is not None else None

    def new_data_key(self, enc: sse.Encryption, bucket: str, key: str, account: str) -> tuple[bytes, dict]:
        """A fresh data key and what the record keeps of it (``sse``)."""
        dk = seal.new_key()
        if enc.alg == sse.SSE_S3:
            return dk, {"alg": sse.SSE_S3, "wrap": seal.wrap(self.master, dk, AAD_SSE_S3)}
        if enc.alg == sse.SSE_C:
            salt, check = seal.key_check(enc.customer.key)
            return dk, {"alg": sse.SSE_C, "wrap": seal.wrap(enc.customer.key, dk, AAD_SSE_C),
                        "salt": salt, "hmac": check}
        arn = self.kms.resolve(enc.kms_key or f"alias/{MANAGED_ALIAS}", account)
        # S3's encryption context: the object's ARN (the bucket's, with a Bucket Key), with the caller's pairs.
        context = {**(enc.context or {}),
                   "aws:s3:arn": f"arn:aws:s3:::{bucket}" + ("" if enc.bucket_key else f"/{key}")}
        ctx = base64.b64encode(json.dumps(context, sort_keys=True, separators=(",", ":")).encode()).decode()
        rec = {"alg": sse.SSE_KMS, "wrap": seal.wrap(self.kms.material(arn), dk, ctx.encode()), "kms": arn,
               "ctx": ctx}
        if enc.bucket_key:
            rec["bk"] = True
        return dk, rec

    def open(self, rec: dict, customer: bytes | None = None) -> bytes:
        """A stored object's data key (``rec``: its record's ``sse``); raises
        seal.Unsealable when ``customer`` (SSE-C) is not the key it was stored with."""
        alg = rec["alg"]
        if alg == sse.SSE_S3:
            return seal.unwrap(self.master, rec["wrap"], AAD_SSE_S3)
        if alg == sse.SSE_C:
            return seal.unwrap(customer or b"\0" * seal.KEY_BYTES, rec["wrap"], AAD_SSE_C)
        return seal.unwrap(self.kms.material(rec["kms"]), rec["wrap"], rec["ctx"].encode())
