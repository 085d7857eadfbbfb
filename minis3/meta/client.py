"""The frontend's client of the metadata service (pooled keep-alive HTTP)."""
from __future__ import annotations

from urllib.parse import urlencode

import aiohttp

from ..core import errors as E


class MetaClient:
    def __init__(self, session: aiohttp.ClientSession, url: str, account: str | None = None):
        self.session, self.url, self.account = session, url, account

    def as_account(self, account: str) -> "MetaClient":
        """A view of the same client that acts for one account: the metadata
        service checks that account owns the bucket of every call."""
        return MetaClient(self.session, self.url, account)

    async def _call(self, method: str, path: str, *, params: dict | None = None, json: dict | None = None):
        if self.account is not None:
            if json is not None:
                json = dict(json, owner=self.account)
            else:
                params = dict(params or {}, owner=self.account)
        url = self.url + path + ("?" + urlencode(params) if params else "")
        try:
            async with self.session.request(method, url, json=json) as r:
                if r.status == 204:
                    return None
                body = await r.json(content_type=None)
                if r.status >= 400:
                    cls = getattr(E, str(body.get("code")), None)
                    if isinstance(cls, type) and issubclass(cls, E.S3Error) and r.status < 500:
                        raise cls()
                    raise E.InternalError(f"metadata service: {body.get('message')}")
                return body
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise E.ServiceUnavailable(f"metadata service unreachable: {exc.__class__.__name__}") from exc

    async def list_buckets(self) -> list[dict]:
        return (await self._call("GET", "/buckets"))["buckets"]

    async def get_bucket(self, name: str) -> dict:
        return await self._call("GET", "/bucket", params={"name": name})

    async def create_bucket(self, name: str, region: str) -> dict:
        return await self._call("POST", "/bucket/create", json={"name": name, "region": region})

    async def delete_bucket(self, name: str) -> None:
        await self._call("POST", "/bucket/delete", json={"name": name})

    async def get_object(self, bucket: str, key: str) -> dict:
        return await self._call("GET", "/object", params={"bucket": bucket, "key": key})

    async def put_object(self, bucket: str, key: str, record: dict, conditions: dict | None = None) -> dict:
        body = await self._call("POST", "/object/put", json={"bucket": bucket, "key": key, "record": record,
                                                              "conditions": conditions or {}})
        return body["record"]

    async def delete_object(self, bucket: str, key: str) -> bool:
        return (await self._call("POST", "/object/delete", json={"bucket": bucket, "key": key}))["deleted"]

    async def list_objects(self, bucket: str, *, prefix: str = "", delimiter: str = "", marker: str = "",
                           max_keys: int = 1000) -> dict:
        return await self._call("GET", "/list", params={"bucket": bucket, "prefix": prefix, "delimiter": delimiter,
                                                         "marker": marker, "max_keys": max_keys})

    async def gc_add(self, ec: dict, reason: str) -> None:
        await self._call("POST", "/gc/add", json={"ec": ec, "reason": reason})

    async def status(self) -> dict:
        return await self._call("GET", "/status")
