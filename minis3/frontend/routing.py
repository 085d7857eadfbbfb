"""Where a request is going: bucket and key from the Host header and the path.

Path style:            Host: localhost:9000        /bucket/key
Virtual-hosted style:  Host: bucket.localhost:9000 /key

A Host is virtual-hosted when it ends with one of the configured domains
(``localhost``, ``s3.localhost`` by default) and has a label before it.
Pure: no aiohttp here.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True)
class Target:
    bucket: str | None
    key: str | None
    virtual_host: bool


def split_host(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):                    # [::1]:9000
        return host[:host.find("]") + 1]
    return host.rsplit(":", 1)[0] if ":" in host else host


def route(host: str, raw_path: str, domains: tuple[str, ...]) -> Target:
    name = split_host(host)
    path = unquote(raw_path, errors="strict")
    for d in sorted(domains, key=len, reverse=True):
        if name.endswith("." + d):
            bucket = name[:-len(d) - 1]
            key = path[1:] if path.startswith("/") else path
            return Target(bucket=bucket, key=key or None, virtual_host=True)
    parts = path.lstrip("/").split("/", 1) if path.startswith("/") else [path]
    bucket = parts[0] or None
    key = parts[1] if len(parts) > 1 and parts[1] else None
    return Target(bucket=bucket, key=key, virtual_host=False)
