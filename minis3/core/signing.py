"""Signing requests as a client does (SigV4: an Authorization header, or a presigned URL),
mirroring botocore's S3SigV4Auth and S3SigV4QueryAuth with ``core/sigv4.py``'s steps:
what ``minis3 bench``, the console (its presigned downloads) and the tests use to talk
S3 without botocore.
"""
from __future__ import annotations

from datetime import datetime
from typing import Mapping
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from .sigv4 import (ALGORITHM, AMZ_DATE_FORMAT, MAX_PRESIGN_EXPIRES, UNSIGNABLE_HEADERS, UNSIGNED_PAYLOAD, as_utc,
                    canonical_headers, canonical_query, canonical_request, canonical_uri, scope, signature,
                    signing_key, string_to_sign, uri_encode)


def _host_from_url(parts) -> str:
    """Host header botocore derives from a URL: lower-case host, default port dropped."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port != default_port:
        host = f"{host}:{parts.port}"
    return host


def _split_query(query: str) -> list[tuple[str, str]]:
    """Decode a raw query string into pairs ('+' stays '+', like botocore)."""
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        k, _, v = item.partition("=")
        pairs.append((unquote(k), unquote(v)))
    return pairs


def _fmt_amz(now: datetime) -> str:
    return as_utc(now).strftime(AMZ_DATE_FORMAT)


def sign_request(method: str, url: str, headers: Mapping[str, str], payload_hash: str,
                 access_key: str, secret: str, region: str, now: datetime) -> dict[str, str]:
    """Sign a request in the Authorization header; return the headers to add
    (X-Amz-Date, X-Amz-Content-SHA256, Authorization), as botocore's
    S3SigV4Auth does. Signs every given header except hop-by-hop ones, plus
    Host (taken from the URL unless given). The URL's path and query must be
    percent-encoded as they will be sent."""
    amz_date = _fmt_amz(now)
    parts = urlsplit(url)
    to_sign: dict[str, str] = {}
    for k, v in headers.items():
        lk = k.lower()
        if lk not in UNSIGNABLE_HEADERS and lk not in ("x-amz-date", "x-amz-content-sha256"):
            to_sign[lk] = v
    to_sign.setdefault("host", _host_from_url(parts))
    to_sign["x-amz-date"] = amz_date
    to_sign["x-amz-content-sha256"] = payload_hash
    names = sorted(to_sign)
    creq = canonical_request(method.upper(), canonical_uri(parts.path),
                             canonical_query(_split_query(parts.query), exclude=()),
                             canonical_headers(to_sign, names), names, payload_hash)
    sc = scope(amz_date[:8], region)
    sig = signature(signing_key(secret, amz_date[:8], region), string_to_sign(amz_date, sc, creq))
    return {
        "X-Amz-Date": amz_date,
        "X-Amz-Content-SHA256": payload_hash,
        "Authorization": (f"{ALGORITHM} Credential={access_key}/{sc}, "
                          f"SignedHeaders={';'.join(names)}, Signature={sig}"),
    }


def presign_url(method: str, url: str, access_key: str, secret: str, region: str,
                now: datetime, expires: int = 3600) -> str:
    """Presign a URL with SigV4 query parameters, byte-for-byte like botocore's
    S3SigV4QueryAuth: existing parameters first (first value of each), then
    X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders (host), and
    X-Amz-Signature last; payload UNSIGNED-PAYLOAD (or the URL's own
    X-Amz-Content-Sha256 parameter, which botocore never adds)."""
    if not 1 <= int(expires) <= MAX_PRESIGN_EXPIRES:
        raise ValueError("expires must be between 1 and 604800 seconds")
    amz_date = _fmt_amz(now)
    parts = urlsplit(url)
    sc = scope(amz_date[:8], region)
    existing = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    auth_params = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key}/{sc}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(int(expires))),
        ("X-Amz-SignedHeaders", "host"),
    ]
    all_params = list(existing.items()) + auth_params
    query = "&".join(f"{uri_encode(k, keep_slash=False)}={uri_encode(v, keep_slash=False)}"
                     for k, v in all_params)
    host = _host_from_url(parts)
    payload_hash = next((v for k, v in all_params if k.lower() == "x-amz-content-sha256"),
                        UNSIGNED_PAYLOAD)
    creq = canonical_request(method.upper(), canonical_uri(parts.path), canonical_query(all_params),
                             canonical_headers({"host": host}, ["host"]), ["host"], payload_hash)
    sig = signature(signing_key(secret, amz_date[:8], region), string_to_sign(amz_date, sc, creq))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment)) + \
        f"&X-Amz-Signature={sig}"
