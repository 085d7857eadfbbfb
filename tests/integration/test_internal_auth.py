"""Internal RPC refuses every request not signed for exactly what it is
(rpc/auth.py), on every endpoint of the real storage, metadata and scrubber
processes: no header, another secret, a stale or future time stamp, a replayed
nonce, a changed body, a signature made for another method or path; and a
fragment body whose seal does not match its blocks is never stored.
Refusals are counted in each process's /metrics."""
from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from minis3.rpc import auth
from minis3.storage import blocks

OPEN = {"/health", "/metrics"}


def _routes(app) -> list[tuple[str, str]]:
    """(method, path) of every signed route of an app, its {variables} filled in."""
    out = set()
    for r in app.router.routes():
        if r.method == "HEAD":
            continue
        path = r.resource.canonical
        if path in OPEN:
            continue
        path = path.replace("{oid}", "ab" * 16).replace("{idx}", "0")
        out.add((r.method, re.sub(r"\{[^}]+\}", "x", path)))
    return sorted(out)


def storage_routes(tmp_path: Path):
    from minis3.storage.server import StorageNode
    return _routes(StorageNode("probe", "az-x", tmp_path / "node").app("k"))


def meta_routes(tmp_path: Path):
    from minis3.meta.server import MetaService
    return _routes(MetaService("probe", "az-x", tmp_path / "meta", ("",)).app("k"))


def scrub_routes(cluster):
    from minis3.scrub.scrubber import app
    return _routes(app(cluster.topo))


def send(url: str, method: str, path: str, headers: dict, body: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url + path, method=method, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw[:1] == b"{" else {})
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw[:200]}


def bad_variants(secret: str, method: str, path: str) -> dict[str, dict]:
    """Headers for one (method, path), each wrong in one way."""
    now = time.time()
    other_method = "DELETE" if method != "DELETE" else "GET"
    return {
        "missing": {},
        "wrong secret": auth.headers("not-the-cluster-secret", method, path),
        "stale": auth.headers(secret, method, path, now=now - auth.WINDOW_S - 60),
        "future": auth.headers(secret, method, path, now=now + auth.WINDOW_S + 60),
        "another method": auth.headers(secret, other_method, path),
        "another path": auth.headers(secret, method, path + "x"),
        "another query": auth.headers(secret, method, path + "?limit=1"),
    }


def refused(status: int, body: dict) -> bool:
    return status == 403 and body.get("code") == "AccessDenied" and "cluster signature" in body.get("message", "")


def _all_processes(cluster, tmp_path):
    node = cluster.topo.nodes[0]
    meta = cluster.topo.metas[0]
    return [("storage", node.url, storage_routes(tmp_path)),
            ("meta", meta.url, meta_routes(tmp_path)),
            ("scrubber", cluster.topo.scrub.url, scrub_routes(cluster))]


def test_every_endpoint_refuses_every_badly_signed_request(cluster, tmp_path):
    secret = cluster.topo.cluster_secret
    checked = 0
    for name, url, routes in _all_processes(cluster, tmp_path):
        assert len(routes) >= (3 if name != "meta" else 10), routes     # the routes were found
        for method, path in routes:
            body = b"{}" if method in ("POST", "PUT") else None
            for why, headers in bad_variants(secret, method, path).items():
                if body is not None and headers:
                    headers[auth.BODY_HEADER] = "0" * 64      # (the MAC fails first anyway)
                status, got = send(url, method, path, headers, body)
                assert refused(status, got), (name, method, path, why, status, got)
                checked += 1
            # Well signed, with another body than the one signed (a GET: a body not
            # signed at all): refused, and the nonce is used up all the same, so the
            # same headers with the right body are a replay. The handler never runs.
            h = auth.headers(secret, method, path, body)
            status, got = send(url, method, path, h, b'{"changed":1}')
            assert refused(status, got) and got["message"].endswith("body"), (name, method, path, got)
            status, got = send(url, method, path, h, body)
            assert refused(status, got) and got["message"].endswith("replayed"), (name, method, path, got)
            checked += 2
    assert checked > 100


def test_a_request_is_accepted_once_and_only_with_the_body_it_was_signed_for(cluster):
    secret = cluster.topo.cluster_secret
    meta = cluster.topo.metas[0]
    # GET: the first use passes, the same headers again are a replay.
    h = auth.headers(secret, "GET", "/v/buckets")
    assert send(meta.url, "GET", "/v/buckets", h)[0] == 200
    assert refused(*send(meta.url, "GET", "/v/buckets", h))
    # A body: signed for one, sent with another; sent with none signed; signed and not sent.
    doc = json.dumps({"calls": [["GET", "/v/buckets", {}, None]]}).encode()
    other = json.dumps({"calls": [["GET", "/v/bucket", {"bucket": "x"}, None]]}).encode()
    h = auth.headers(secret, "POST", "/v/batch", doc)
    assert refused(*send(meta.url, "POST", "/v/batch", h, other))
    assert refused(*send(meta.url, "POST", "/v/batch", auth.headers(secret, "POST", "/v/batch"), doc))
    assert refused(*send(meta.url, "POST", "/v/batch", auth.headers(secret, "POST", "/v/batch", doc)))
    # The right body passes, once.
    h = auth.headers(secret, "POST", "/v/batch", doc)
    status, got = send(meta.url, "POST", "/v/batch", h, doc)
    assert status == 200 and len(got["results"]) == 1          # (the call itself answered, 4xx or not)
    assert refused(*send(meta.url, "POST", "/v/batch", h, doc))
    # A storage node's and the scrubber's GETs likewise.
    for url, path in ((cluster.topo.nodes[0].url, "/status"), (cluster.topo.scrub.url, "/status")):
        h = auth.headers(secret, "GET", path)
        assert send(url, "GET", path, h)[0] == 200
        assert refused(*send(url, "GET", path, h))


def _fragment_put(node_url: str, secret: str, oid: str, wire: bytes, *, nonce: str | None = None,
                  sealed: bool = True) -> tuple[int, dict]:
    path = f"/fragment/{oid}/0"
    nonce = nonce or auth.new_nonce()
    digest = auth.SEALED if sealed else hashlib.sha256(wire).hexdigest()
    h = {auth.NONCE_HEADER: nonce, auth.BODY_HEADER: digest,
         auth.HEADER: auth.sign(secret, "PUT", path, nonce, body_sha256=digest)}
    return send(node_url, "PUT", path, h, wire)


def _sealed_wire(secret: str, nonce: str, pieces: list[bytes]) -> bytes:
    seal = auth.Seal(secret, nonce)
    out = b""
    for p in pieces:
        f = blocks.frame(p)
        seal.add(f[:blocks.BLOCK_HEAD.size])
        out += f
    return out + seal.frame()


def test_a_fragment_is_stored_only_if_its_seal_matches_its_blocks(cluster):
    secret = cluster.topo.cluster_secret
    node = cluster.topo.nodes[0]
    sizes = lambda: {p.name for p in Path(node.data_dir, "fragments").rglob("*") if p.is_file()}
    before = sizes()
    a, b = b"a" * 1000, b"b" * 500

    def oid(tag: str) -> str:
        return hashlib.md5(tag.encode() + str(time.time()).encode()).hexdigest()

    nonce = auth.new_nonce()
    good = _sealed_wire(secret, nonce, [a, b])
    cases = {
        "not sealed (a plain digest: only sealed bodies reach the handler)":
            dict(wire=blocks.frame(a), sealed=False),
        "seal cut off": dict(wire=good[:-auth.SEAL.size], nonce=nonce),
        "a block swapped (with its own good xxh3)":
            dict(wire=blocks.frame(a) + blocks.frame(b"B" * 500) + good[-auth.SEAL.size:], nonce=nonce),
        "the seal of another request": dict(wire=good),
        "sealed with another secret": dict(wire=_sealed_wire("other", nonce, [a, b]), nonce=nonce),
        "a block after the seal": dict(wire=good + blocks.frame(b"x"), nonce=nonce),
    }
    for why, kw in cases.items():
        status, got = _fragment_put(node.url, secret, oid(why), **kw)
        assert status in (400, 403), (why, status, got)
    assert sizes() == before                     # nothing landed
    # Its nonce is used up now (the cases above were refused after the
    # headers were accepted): a body sealed with a fresh one is stored.
    assert refused(*_fragment_put(node.url, secret, oid("again"), good, nonce=nonce))
    fresh = auth.new_nonce()
    o = oid("good")
    status, got = _fragment_put(node.url, secret, o, _sealed_wire(secret, fresh, [a, b]), nonce=fresh)
    assert (status, got["blocks"], got["bytes"]) == (200, 2, 1500)
    assert sizes() - before == {f"{o}.0"}


def _refused_counts(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^minis3_rpc_refused_total\{reason="(\w+)"\} (\S+)$', text, re.M)}


def test_refusals_are_counted_in_metrics(cluster):
    secret = cluster.topo.cluster_secret
    meta = cluster.topo.metas[1]
    before = _refused_counts(meta.url)
    assert set(before) == set(auth.REASONS)
    send(meta.url, "GET", "/v/buckets", {})
    send(meta.url, "GET", "/v/buckets", auth.headers(secret, "GET", "/v/buckets", now=time.time() - 600))
    h = auth.headers(secret, "GET", "/v/buckets")
    send(meta.url, "GET", "/v/buckets", h)
    send(meta.url, "GET", "/v/buckets", h)
    after = _refused_counts(meta.url)
    for reason in ("missing", "stale", "replayed"):
        assert after[reason] == before[reason] + 1, reason
    node = cluster.topo.nodes[1]
    before = _refused_counts(node.url)
    _fragment_put(node.url, secret, "cd" * 16, blocks.frame(b"x") + b"\xff" * 4 + b"\0" * 40)
    assert _refused_counts(node.url)["body"] == before["body"] + 1


def test_the_frontends_internal_endpoint_refuses_badly_signed_requests(cluster):
    """GET /_minis3/trace is the frontend's one internal call (for `minis3 trace`)."""
    from minis3.frontend.app import TRACE_PATH
    path = TRACE_PATH + "?recent=1"
    for why, headers in bad_variants(cluster.topo.cluster_secret, "GET", path).items():
        if why == "missing":
            continue          # no X-Minis3-Auth: an S3 request (for a key named _minis3/trace)
        status, got = send(cluster.endpoint, "GET", path, headers)
        assert refused(status, got), (why, status, got)
    h = auth.headers(cluster.topo.cluster_secret, "GET", path)
    assert send(cluster.endpoint, "GET", path, h)[0] == 200
    assert refused(*send(cluster.endpoint, "GET", path, h))
