"""One S3 request as the handlers see it: :class:`Context`.

Every handler of the resource modules (``bucket``, ``object``, ``multipart``, ...) takes
one: the aiohttp request, its request id, where it was routed (bucket, key), its query,
who signed it, and the frontend serving it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from ..core import access
from ..core.policy import Principal
from ..core.sigv4 import AuthResult
from ..meta.client import MetaClient
from .routing import Target

if TYPE_CHECKING:
    from .app import Frontend


@dataclass
class Context:
    """One S3 request as the handlers see it."""
    request: web.Request
    request_id: str
    target: Target
    query: dict[str, str]
    auth: AuthResult
    fe: "Frontend"
    root: object = None                   # the request's root trace span (core/trace.Span), always recorded
    started: float = field(default_factory=time.monotonic)
    operation: str | None = None          # S3's name for it, once dispatch.dispatch() has resolved it
    # bucket → the account the metadata service is asked as, for this request: the bucket's
    # owner, once the authoriser (frontend/authorize.py) has allowed the request there.
    acting: dict[str, str] = field(default_factory=dict)
    # bucket → what the authoriser read of it (its record and access settings: BucketState)
    buckets_seen: dict[str, object] = field(default_factory=dict)
    # the ACL a PUT's headers give its new object (x-amz-acl, x-amz-grant-*), when ACLs count
    # in its bucket (frontend/permissions.check_acl_headers); None: the default (the owner's)
    acl: list | None = None

    def lowered_headers(self) -> dict[str, str]:
        """The request's headers by lower-cased name (the core's functions take headers so,
        to stay free of aiohttp's case-insensitive dict)."""
        return {k.lower(): v for k, v in self.request.headers.items()}

    @property
    def resource(self) -> str:
        t = self.target
        return "/" + "/".join(p for p in (t.bucket, t.key) if p)

    @property
    def account(self) -> str | None:
        """The caller's account (None: an anonymous request)."""
        ak = self.auth.access_key
        return None if ak is None else self.fe.identity(ak)[0]

    @property
    def user(self) -> str | None:
        """The caller's user within its account (None: the account's root, or anonymous)."""
        ak = self.auth.access_key
        return None if ak is None else self.fe.identity(ak)[1]

    @property
    def principal(self) -> Principal:
        """Who asks, as a bucket policy names it (core/access.py)."""
        return access.principal_of(self.account, self.user)

    @property
    def owner(self) -> tuple[str, str]:
        """(canonical id, display name) of the account this request acts as in its bucket
        (the bucket's owner: listings show it as every object's owner), else the caller's."""
        account = self.acting.get(self.target.bucket or "", self.account)
        if account is None:
            return ANONYMOUS
        return (access.canonical_id(account), account)

    def meta_for(self, bucket: str) -> MetaClient:
        """The metadata service, acting for the account the authoriser chose for ``bucket``
        (its owner, when the request was allowed there), else for the caller's."""
        return self.fe.meta.as_account(self.acting.get(bucket, self.account))

    @property
    def meta(self) -> MetaClient:
        """The metadata service, acting for this request in its bucket (:meth:`meta_for`)."""
        return self.meta_for(self.target.bucket or "")


#: How S3 names an anonymous caller (an upload's Initiator, for one): its canonical id.
ANONYMOUS = ("65a011a29cdf8ec533ec3d1ccaae921c", "anonymous")
