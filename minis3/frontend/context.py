"""One S3 request as the handlers see it: :class:`Context`.

Every handler of the resource modules (``bucket``, ``object``, ``multipart``, ...) takes
one: the aiohttp request, its request id, where it was routed (bucket, key), its query,
who signed it, and the frontend serving it.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

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
    started: float = field(default_factory=time.monotonic)
    operation: str | None = None          # S3's name for it, once dispatch.dispatch() has resolved it

    @property
    def resource(self) -> str:
        t = self.target
        return "/" + "/".join(p for p in (t.bucket, t.key) if p)

    @property
    def account(self) -> str:
        return self.fe.topo.accounts.get(self.auth.access_key, self.auth.access_key)

    @property
    def owner(self) -> tuple[str, str]:
        """(canonical id, display name) of the caller's account."""
        return (hashlib.sha256(b"minis3-account:" + self.account.encode()).hexdigest(), self.account)

    @property
    def meta(self) -> MetaClient:
        """The metadata service, acting for this request's account."""
        return self.fe.meta.as_account(self.account)
