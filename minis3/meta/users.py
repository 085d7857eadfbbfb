"""The user table: access keys added to a running cluster (``minis3 user add``), replicated
in the metadata service like any record, beside the topology's fixed ``[[credentials]]``.

One raw record per access key, ``USERS + access_key`` → ``{account, user, secret, created_ms}``
in the registry region's metadata (the global region: an access key works in every region).
Removing a key writes a tombstone. The secret key is kept *wrapped*: XORed with a keystream
derived from the cluster secret and the access key (SHAKE-256), so a copy of a metadata
replica's data directory alone does not give S3 credentials away; SigV4 needs the secret
itself (it is an HMAC key), so it cannot be kept as a one-way hash as a password would be.

The frontend keeps a copy of the table (:class:`UserTable`), refreshed every
``REFRESH_S`` seconds and at once (at most once a second) when a request names an access key
it does not know: a key added is usable at once, a key removed stops working within
``REFRESH_S``.
"""
from __future__ import annotations

import hashlib
import secrets as random
import string
import time
from dataclasses import dataclass

from ..core import errors as E
from .client import MetaClient

#: The key space of the user table (sorts before every bucket, like UPLOADS).
USERS = "\x00i/"
REFRESH_S = 5.0
MIN_REFRESH_GAP_S = 1.0


@dataclass(frozen=True)
class User:
    access_key: str
    account: str
    user: str | None
    secret: str
    created_ms: int = 0


def _keystream(cluster_secret: str, access_key: str, n: int) -> bytes:
    return hashlib.shake_256(f"minis3-user-secret:{cluster_secret}:{access_key}".encode()).digest(n)


def wrap(cluster_secret: str, access_key: str, secret: str) -> str:
    data = secret.encode()
    return bytes(a ^ b for a, b in zip(data, _keystream(cluster_secret, access_key, len(data)))).hex()


def unwrap(cluster_secret: str, access_key: str, wrapped: str) -> str:
    data = bytes.fromhex(wrapped)
    return bytes(a ^ b for a, b in zip(data, _keystream(cluster_secret, access_key, len(data)))).decode()


def new_keys() -> tuple[str, str]:
    """An access key (``AKIA`` and 16 capitals or digits, as AWS's look) and a 40-character
    secret key."""
    alphabet = string.ascii_uppercase + string.digits
    access = "AKIA" + "".join(random.choice(alphabet) for _ in range(16))
    secret = "".join(random.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
    return access, secret


async def read_all(meta: MetaClient, cluster_secret: str) -> dict[str, User]:
    """Every live user of the table, by access key (pages through the table)."""
    out: dict[str, User] = {}
    marker = ""
    while True:
        page = await meta.list_objects(USERS[:-1], marker=marker, max_keys=1000, _checked=True, full=True)
        for ak, rec in page["entries"]:
            out[ak] = User(ak, rec["account"], rec.get("user"), unwrap(cluster_secret, ak, rec["secret"]),
                           rec.get("created_ms", 0))
        if not page["truncated"] or not page["next_marker"]:
            return out
        marker = page["next_marker"]


async def add(meta: MetaClient, cluster_secret: str, account: str, user: str | None, taken: set[str]) -> User:
    """A new access key for ``account`` (and its ``user``, else the account's root)."""
    if not account or "/" in account or (user is not None and not user.replace("-", "").replace("_", "").isalnum()):
        raise E.InvalidArgument("an account is a name without '/', a user letters, digits, '-' and '_'")
    access, secret = new_keys()
    while access in taken:
        access, secret = new_keys()
    rec = {"account": account, "user": user, "secret": wrap(cluster_secret, access, secret),
           "created_ms": int(time.time() * 1000)}
    await meta.put_record(USERS + access, rec)
    return User(access, account, user, secret, rec["created_ms"])


async def remove(meta: MetaClient, access_key: str) -> bool:
    """Remove an access key; False if the table has none such."""
    if await meta.get_record(USERS + access_key) is None:
        return False
    await meta.delete_record(USERS + access_key)
    return True


async def secret_of(topo, session, access_key: str) -> str | None:
    """The secret key of one access key of the table, asked of the registry (None: no such
    key, or the metadata service cannot be asked): for a process with no UserTable of its
    own (the console's login)."""
    meta = MetaClient.for_topology(session, topo.region_topology(topo.registry_region)).as_account(None)
    try:
        rec = await meta.get_record(USERS + access_key)
    except Exception:                     # unreachable: the login fails, as with a wrong key
        return None
    return unwrap(topo.cluster_secret, access_key, rec["secret"]) if rec else None


class UserTable:
    """A frontend's copy of the user table (module doc)."""

    def __init__(self, meta: MetaClient, cluster_secret: str):
        self.meta, self.cluster_secret = meta.as_account(None), cluster_secret
        self.users: dict[str, User] = {}
        self.secrets: dict[str, str] = {}
        self._at = 0.0

    async def refresh(self) -> None:
        self._at = time.monotonic()
        users = await read_all(self.meta, self.cluster_secret)
        self.users, self.secrets = users, {ak: u.secret for ak, u in users.items()}

    async def ensure(self, access_key: str | None) -> None:
        """Know ``access_key`` if the table has it: refresh now when it is unknown here (at most
        once every MIN_REFRESH_GAP_S, so a flood of made-up keys costs one scan a second)."""
        if access_key and access_key not in self.users and time.monotonic() - self._at >= MIN_REFRESH_GAP_S:
            try:
                await self.refresh()
            except Exception as exc:        # the metadata service cannot be asked: no answer is honest
                raise E.ServiceUnavailable("The user table cannot be read now; please try again.") from exc
