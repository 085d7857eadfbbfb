"""A fuzzing client against a live cluster, bounded in time: signed
and unsigned requests with mutated methods, paths, subresources, query values,
headers and bodies (invalid UTF-8, Unicode edge characters, control
characters, huge numbers, XML bombs, lying Content-Length); raw requests no
client library would send (oversized, duplicated and malformed headers, bad
request lines, truncated and aborted bodies); slowloris connections and stalled
bodies. Whatever it sends, minis3 answers without a 500, every error is S3's
XML with a request id, and a normal client is served throughout. Afterwards no
process restarted, no file was created outside the data directory, and the
frontend holds no more file descriptors, connections or asyncio tasks than
before.

Deterministic (fixed seeds): a failure names the request that caused it."""
from __future__ import annotations

import datetime as dt
import http.client
import os
import random
import socket
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from minis3.cluster.supervisor import wait_healthy
from minis3.core.signing import sign_request

from .cluster import ACCESS_KEY, SECRET_KEY, TestCluster, rss_kib
from .conftest import make_client

HEADER_TIMEOUT_S = 2              # the head's timeout here (20 s by default)
BODY_IDLE_S = 3
PER_CLIENT = 32                   # requests, or connections sending a head, from one address (256 by default)
REQUESTS = 4000
RAW_REQUESTS = 400
METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD", "GET", "PUT", "OPTIONS", "PATCH", "FOO"]
# Unicode at its edges, and UTF-8 that is not (overlong, a surrogate, past U+10FFFF, a lone continuation byte).
EDGES = ["\ufeff", "\u202e", "\uffff", "\U0010ffff", "e\u0301", "\u00e9", "\u2028", "\U0001f469\u200d\U0001f4bb",
         "\x7f", "\t", "\x01"]
BAD_UTF8 = ["%ff%fe", "%c0%af", "%ed%a0%80", "%f4%90%80%80", "%80", "%e2%82"]
KEYS = ["k", "a/b/c", "%00", "..%2f..%2fetc%2fpasswd", "../../etc/passwd", "%2e%2e/x", "x" * 1100,
        quote("ü/é/😀"), "sp ace", "%", "%zz", "a%0db", "_minis3/trace", "?", "k;v",
        *(quote("k" + e) for e in EDGES), *BAD_UTF8]
SUBRESOURCES = ["", "uploads", "versioning", "tagging", "delete", "acl", "location", "versions", "policy",
                "cors", "lifecycle", "object-lock", "retention", "legal-hold", "encryption", "website", "torrent",
                "list-type=2", "uploadId=x&partNumber=1", "partNumber=0&uploadId=abc", "attributes"]
PARAMS = ["max-keys", "max-uploads", "max-parts", "part-number-marker", "partNumber", "versionId", "prefix",
          "delimiter", "marker", "start-after", "continuation-token", "encoding-type", "list-type",
          "key-marker", "version-id-marker", "upload-id-marker", "uploadId", "fetch-owner", "response-content-type"]
VALUES = ["", "-1", "0", "1", "99999999999999999999999", "1e3", "0x10", "abc", "%ff", "%00", "null", "url",
          "😀", " ", "/", "x" * 2000, "2", "true", "%25", "+", *EDGES, *BAD_UTF8]
HEADERS = ["x-amz-copy-source", "x-amz-copy-source-range", "range", "if-match", "if-none-match",
           "if-modified-since", "content-md5", "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm",
           "x-amz-tagging", "x-amz-meta-a", "x-amz-acl", "x-amz-storage-class", "x-amz-metadata-directive",
           "x-amz-server-side-encryption", "x-amz-object-lock-mode", "x-amz-bucket-object-lock-enabled",
           "x-amz-expected-bucket-owner", "x-amz-mfa", "x-amz-checksum-mode", "x-amz-trailer", "content-encoding"]
HVALUES = ["", "bytes=0-", "bytes=-1", "bytes=5-2", "bytes=0-0,5-9", "bytes=99999999999999999999-",
           "/fuzz/k", "/fuzz/%00", "/nope/nope", "/fuzz/k?versionId=zz", "*", '"x"', "Thu, 01 Jan 1970 00:00:00 GMT",
           "yesterday", "AAAA", "!!!", "a=b&c", "=" * 300, "COPY", "REPLACE", "GOVERNANCE", "aws-chunked",
           "x-amz-checksum-crc32", "STANDARD", "GLACIER", "AES256", "ü", "\x7f", "1" * 200, "/fuzz/k\ufeff",
           "/fuzz/%c0%af"]
BODIES = [b"", b"<x/>", b"\xff\xfe\x00", b"<Delete><Object><Key>k</Key></Object></Delete>",
          b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>"
          b"<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;'>]><CreateBucketConfiguration>&c;</CreateBucketConfiguration>",
          b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
          b"<Tagging><TagSet>" + b"<Tag><Key>k</Key><Value>v</Value></Tag>" * 60 + b"</TagSet></Tagging>",
          b"<VersioningConfiguration><Status>Maybe</Status></VersioningConfiguration>", b"x" * 70_000]


@pytest.fixture(scope="module")
def fz(tmp_path_factory):
    """A cluster of its own: short timeouts, a small per-address cap, and every
    process's working directory inside the tree whose files are compared
    afterwards."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "cluster").mkdir()
    (root / "cwd").mkdir()
    settings = {"MINIS3_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S), "MINIS3_BODY_IDLE_S": str(BODY_IDLE_S),
                "MINIS3_MAX_REQUESTS_PER_CLIENT": str(PER_CLIENT)}
    old, cwd = {k: os.environ.get(k) for k in settings}, os.getcwd()
    os.environ.update(settings)                           # the cluster's processes take them from here
    os.chdir(root / "cwd")
    try:
        c = TestCluster(root / "cluster").start()
    finally:
        os.chdir(cwd)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    c.fuzz_root = root
    yield c
    c.discard()


@pytest.fixture(scope="module")
def s3(fz):
    return make_client(fz.endpoint)


@pytest.fixture(scope="module")
def before(fz, s3):
    """The cluster at rest, once warmed up: what the last test compares with."""
    s3.create_bucket(Bucket="fuzz")
    s3.put_object(Bucket="fuzz", Key="k", Body=b"hello")
    for i in range(6):
        s3.put_object(Bucket="fuzz", Key=f"warm/{i}", Body=os.urandom(70_000 if i % 2 else 3 << 20))
        s3.get_object(Bucket="fuzz", Key=f"warm/{i}")["Body"].read()
    s3.list_objects_v2(Bucket="fuzz")
    time.sleep(1)
    time.sleep(3)                                         # idle: the frontend gives its free memory back
    return {"pids": _pids(fz), "files": _files(fz), "frontend": _frontend(fz),
            "rss": rss_kib(fz.cluster.frontend.pid) / 1024}


# -- what is compared afterwards ---------------------------------------------------------
def _pids(c: TestCluster) -> dict[str, int]:
    pids = {"frontend": c.cluster.frontend.pid, "scrubber": c.cluster.scrubber.pid}
    for az in c.topo.azs:
        state = c.az_state(az.name)
        pids[f"az {az.name}"] = state["pid"]
        pids.update(state["children"])
    return pids


def _files(c: TestCluster) -> set[str]:
    """Every file under the fixture's root but outside the data directory, and
    the names at the top of the session's temporary directory."""
    data = c.topo.data_dir
    root: Path = c.fuzz_root
    found = {str(p) for p in root.rglob("*") if data not in p.parents and p != data}
    return found | {str(p) for p in root.parent.iterdir()}


def _frontend(c: TestCluster) -> dict[str, int]:
    """The frontend's file descriptors (sockets apart), the connections it
    accepted, those it keeps to other minis3 processes, and its asyncio tasks."""
    pid, port = c.cluster.frontend.pid, c.topo.frontend.port
    sockets, other = set(), 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            sockets.add(target[8:-1])
        else:
            other += 1
    accepted = outgoing = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                cols = line.split()
                if cols[9] not in sockets or cols[3] == "0A":          # not the frontend's, or listening
                    continue
                if int(cols[1].rsplit(":", 1)[1], 16) == port:
                    accepted += 1
                else:
                    outgoing += 1
    with urllib.request.urlopen(c.endpoint + "/_minis3/metrics?name[]=minis3_frontend_asyncio_tasks", timeout=5) as r:
        tasks = next(float(line.split()[1]) for line in r.read().decode().splitlines()
                     if line.startswith("minis3_frontend_asyncio_tasks "))
    return {"fds (sockets apart)": other, "connections": accepted, "to minis3 processes": outgoing,
            "tasks": int(tasks)}


# -- requests ----------------------------------------------------------------------------
def _request(rng: random.Random, bucket: str) -> tuple[str, str, dict, bytes, bool]:
    method = rng.choice(METHODS)
    b = rng.choice([bucket, bucket, "", "no-such-bucket-fuzz", "A_B", "xn--", "a" * 70, "%ff"])
    # Percent-encoded as a client must (a raw space cannot go on the wire), but
    # literal "%" escapes pass as they are: %ff, %00 and %zz reach the server.
    path = "/" + b + (("/" + quote(rng.choice(KEYS), safe="/%")) if b and rng.random() < 0.7 else "")
    query = [rng.choice(SUBRESOURCES)] + [f"{rng.choice(PARAMS)}={quote(rng.choice(VALUES), safe='%/+')}"
                                          for _ in range(rng.randrange(3))]
    qs = "&".join(q for q in query if q)
    headers = {h: rng.choice(HVALUES) for h in rng.sample(HEADERS, rng.randrange(4))}
    body = rng.choice(BODIES) if method in ("PUT", "POST") or rng.random() < 0.1 else b""
    return method, path + ("?" + qs if qs else ""), headers, body, rng.random() < 0.85


def _signed(endpoint: str, method: str, target: str, headers: dict, signed: bool) -> dict:
    hdrs = dict(headers)
    if signed:
        try:
            hdrs.update(sign_request(method, endpoint + target, hdrs, "UNSIGNED-PAYLOAD", ACCESS_KEY, SECRET_KEY,
                                     "us-east-1", dt.datetime.now(dt.timezone.utc)))
        except Exception:
            pass                                    # a target our own signer cannot take: send it unsigned
    return hdrs


def _send(endpoint: str, method: str, target: str, headers: dict, body: bytes, signed: bool):
    u = urlsplit(endpoint)
    hdrs = dict(headers)
    if body or method in ("PUT", "POST"):
        hdrs["Content-Length"] = str(len(body))
    hdrs = _signed(endpoint, method, target, hdrs, signed)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", u.netloc)
        for k, v in hdrs.items():
            conn.putheader(k, v.encode("utf-8") if isinstance(v, str) else v)
        conn.endheaders(body or None)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _raw_request(rng: random.Random, endpoint: str) -> tuple[str, bytes, bool]:
    """(what, the bytes, whether to wait for an answer): a signed request, then
    mutated the way only a raw socket can send it."""
    u = urlsplit(endpoint)
    method = rng.choice(["GET", "PUT", "HEAD", "DELETE", "POST"])
    target = "/fuzz/" + rng.choice(["k", "raw", quote("e" + rng.choice(EDGES)), rng.choice(BAD_UTF8)])
    target += rng.choice(["", "?tagging", "?list-type=2&prefix=" + rng.choice(BAD_UTF8 + ["%e2%80%ae"]),
                          "?marker=" + rng.choice(BAD_UTF8), "?continuation-token=" + rng.choice(BAD_UTF8)])
    body = b"raw body" if method in ("PUT", "POST") else b""
    headers = [("Host", u.netloc)] + list(_signed(endpoint, method, target, {"Content-Length": str(len(body))}
                                                  if body else {}, rng.random() < 0.8).items())
    mutation = rng.choice(["oversized", "many", "section", "duplicate", "latin1", "utf8", "obs-fold", "no-colon",
                           "bare-lf", "method", "raw-path", "truncated", "aborted", "lying-length", "te", "none"])
    line = f"{method} {target} HTTP/1.1".encode()
    wait = True
    if mutation == "oversized":
        headers.insert(rng.randrange(len(headers) + 1), ("X-Big", "v" * rng.choice([8200, 9000, 20000, 70000])))
    elif mutation == "many":
        headers += [(f"X-N{i}", "1") for i in range(rng.choice([127, 129, 300]))]
    elif mutation == "section":
        headers += [(f"X-S{i}", "s" * 200) for i in range(rng.choice([30, 41, 60]))]
    elif mutation == "duplicate":
        name, value = rng.choice(headers + [("Content-Length", "3"), ("Authorization", "AWS4-HMAC-SHA256 x"),
                                            ("Range", "bytes=0-1"), ("x-amz-date", "20000101T000000Z")])
        headers.insert(rng.randrange(len(headers) + 1), (name, rng.choice([value, value + "0", ""])))
    elif mutation == "latin1":
        headers.append(("x-amz-meta-" + rng.choice(["a", "\xe9"]), "\xff\xfe\xe9"))
    elif mutation == "utf8":
        headers.append((rng.choice(["x-amz-meta-b", "x-amz-tagging", "x-amz-copy-source"]),
                        rng.choice(EDGES) + "é😀"))
    raw = line + b"\r\n" + b"".join(k.encode("latin-1") + b": " + v.encode("utf-8" if mutation == "utf8" else "latin-1")
                                    + b"\r\n" for k, v in headers) + b"\r\n" + body
    if mutation == "obs-fold":
        raw = raw.replace(b"\r\n\r\n", b"\r\nX-Fold: a\r\n b\r\n\r\n", 1)
    elif mutation == "no-colon":
        raw = raw.replace(b"\r\n\r\n", b"\r\nX-No-Colon\r\n\r\n", 1)
    elif mutation == "bare-lf":
        raw = raw.replace(b"\r\n", b"\n", rng.randrange(1, 4))
    elif mutation == "method":
        raw = rng.choice([b"FOO", b"get", b"GET\x00", b"\x16\x03\x01", b"M" * 40, b"PRI"]) + raw[len(method):]
    elif mutation == "raw-path":
        raw = raw.replace(target.encode(), rng.choice([b"/fuzz/\xff\xfe", b"/fuzz/\xc0\xaf", b"/fuzz/a b",
                                                       b"fuzz/k", b"/fuzz/" + b"u" * 17000, b"*",
                                                       b"http://evil/fuzz/k", b"/fuzz/k#frag"]), 1)
    elif mutation == "truncated":
        raw, wait = raw[:rng.randrange(1, len(raw))], False          # then the connection is closed
    elif mutation == "aborted":
        raw = raw.replace(b"\r\n\r\n", b"\r\nContent-Length: 100000\r\n\r\n", 1) + b"x" * 1000
        wait = False
    elif mutation == "lying-length":
        raw = raw.replace(b"\r\n\r\n", b"\r\nContent-Length: " + rng.choice([b"1e3", b"-1", b"1, 2", b" ", b"0x10",
                                                                              b"99999999999999999999"]) + b"\r\n\r\n", 1)
    elif mutation == "te":
        raw = raw.replace(b"\r\n\r\n", b"\r\nTransfer-Encoding: " + rng.choice([b"chunked", b"gzip, chunked",
                                                                                b"identity", b"chunked, chunked"])
                          + b"\r\n\r\n", 1) + rng.choice([b"zz\r\n", b"3\r\nabc\r\n0\r\n\r\n", b""])
    return f"{mutation}: {raw[:300]!r}", raw, wait


def _send_raw(endpoint: str, raw: bytes, wait: bool, head: bool):
    u = urlsplit(endpoint)
    s = socket.create_connection((u.hostname, u.port), timeout=HEADER_TIMEOUT_S + BODY_IDLE_S + 5)
    try:
        try:
            s.sendall(raw)
        except OSError:
            pass                                    # refused while still sending: its answer is read below
        if not wait:
            return None
        r = http.client.HTTPResponse(s, method="HEAD" if head else "GET")
        r.begin()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        s.close()


def _code(body: bytes) -> str:
    return body.split(b"<Code>", 1)[-1].split(b"</Code>", 1)[0].decode("utf-8", "replace")


def _check_answer(status: int, rh: dict, rbody: bytes, head: bool, what: str) -> None:
    """No 500; 501 only as S3's NotImplemented, 503 only as SlowDown; every
    answer carries a request id, every error is S3's XML with it."""
    assert status < 500 or (status, _code(rbody)) in ((501, "NotImplemented"), (503, "SlowDown")), \
        f"{status} for {what}: {rbody[:300]}"
    assert "x-amz-request-id" in rh, f"{status} without a request id for {what}: {rh} {rbody[:200]}"
    if status >= 400 and not head:
        assert rbody.startswith(b"<?xml") and b"<Error>" in rbody and \
            f"<RequestId>{rh['x-amz-request-id']}</RequestId>".encode() in rbody, f"{status} for {what}: {rbody[:300]}"


# -- the tests ---------------------------------------------------------------------------
def test_no_input_gets_a_500_and_every_error_is_s3s(fz, s3, before):
    rng = random.Random(20)
    seen: dict[int, int] = {}
    t0 = time.monotonic()
    for i in range(REQUESTS):
        method, target, headers, body, signed = _request(rng, "fuzz")
        what = f"request {i}: {method} {target[:200]} headers={headers} body={body[:60]!r} signed={signed}"
        status, rh, rbody = _send(fz.endpoint, method, target, headers, body, signed)
        seen[status] = seen.get(status, 0) + 1
        _check_answer(status, rh, rbody, method == "HEAD", what)
    t1 = time.monotonic()
    rng = random.Random(21)
    raw_seen: dict[str, int] = {}
    for i in range(RAW_REQUESTS):
        what, raw, wait = _raw_request(rng, fz.endpoint)
        got = _send_raw(fz.endpoint, raw, wait, head=raw.startswith(b"HEAD "))
        if got is None:
            continue
        status, rh, rbody = got
        answer = f"{status} {_code(rbody)}" if status >= 400 and rbody else str(status)
        raw_seen[answer] = raw_seen.get(answer, 0) + 1
        _check_answer(status, rh, rbody, raw.startswith(b"HEAD "), f"raw request {i}: {what}")
    print(f"\n{REQUESTS} fuzzed requests in {t1 - t0:.1f} s: statuses {dict(sorted(seen.items()))}; "
          f"{RAW_REQUESTS} raw ones in {time.monotonic() - t1:.1f} s: {dict(sorted(raw_seen.items()))}")
    # The parser's refusals are among them, each as S3 answers it.
    assert {"400 RequestHeaderSectionTooLarge", "400 BadRequest", "405 MethodNotAllowed"} <= set(raw_seen)
    wait_healthy(fz.topo, 10)
    s3.put_object(Bucket="fuzz", Key="after", Body=b"still here")
    assert s3.get_object(Bucket="fuzz", Key="after")["Body"].read() == b"still here"


def test_unicode_edge_keys_round_trip_and_list_in_utf8_order(fz, s3, before):
    """Keys, prefixes and markers at Unicode's edges: stored as sent (NFC and
    NFD are two keys), listed in the order of their UTF-8 bytes, found again by
    prefix and after a marker. (botocore asks for encoding-type=url and
    decodes the listing: XML 1.0 cannot carry some of these characters.)"""
    keys = [f"u/{e}" for e in EDGES] + ["u/\u00e9x", "u/e\u0301x"]
    for k in keys:
        s3.put_object(Bucket="fuzz", Key=k, Body=k.encode())
    order = sorted(keys, key=lambda k: k.encode())
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="fuzz", Prefix="u/")["Contents"]]
    assert listed == order
    for i, k in enumerate(order):
        assert s3.get_object(Bucket="fuzz", Key=k)["Body"].read() == k.encode()
        after = s3.list_objects_v2(Bucket="fuzz", Prefix="u/", StartAfter=k).get("Contents", [])
        assert [o["Key"] for o in after] == order[i + 1:]
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="fuzz", Prefix=k)["Contents"]][0] == k


def _connect(port: int, src: str) -> socket.socket:
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(HEADER_TIMEOUT_S + BODY_IDLE_S + 5)
    s.connect(("127.0.0.1", port))
    return s


def _read_all(s: socket.socket) -> bytes:
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except OSError:
        pass
    s.close()
    return got


def test_slowloris_and_stalled_bodies_are_let_go_while_a_client_is_served(fz, s3, before):
    """From one address, as many connections as its cap sending heads a byte at
    a time, half a head, or nothing: each is let go after the head's timeout
    (400 RequestTimeout, or closed when it sent nothing), and past the cap the
    address gets 503 SlowDown at once. From another, uploads that stall or
    abort mid-body. A normal client, meanwhile, is served at once."""
    port, host = fz.topo.frontend.port, urlsplit(fz.endpoint).netloc
    head = f"GET /fuzz/k HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode() + b"s" * 200
    t0 = time.monotonic()
    trickle = [_connect(port, "127.0.0.2") for _ in range(PER_CLIENT // 4)]
    silent = [_connect(port, "127.0.0.2") for _ in range(PER_CLIENT // 4)]
    partial = [_connect(port, "127.0.0.2") for _ in range(PER_CLIENT // 2)]
    for s in partial:
        s.sendall(b"PUT /fuzz/k HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Le")
    time.sleep(0.3)
    over = [_connect(port, "127.0.0.2") for _ in range(4)]
    stalled = []
    for i in range(8):                          # half stall, half abort, mid-body
        url = f"{fz.endpoint}/fuzz/stalled-{i}"
        headers = {"Content-Length": str(1 << 20)}
        headers.update(sign_request("PUT", url, headers, "UNSIGNED-PAYLOAD", ACCESS_KEY, SECRET_KEY, "us-east-1",
                                    dt.datetime.now(dt.timezone.utc)))
        s = _connect(port, "127.0.0.3")
        s.sendall(f"PUT /fuzz/stalled-{i} HTTP/1.1\r\nHost: {host}\r\n".encode() +
                  "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n" + os.urandom(100_000))
        if i % 2:
            s.close()
        else:
            stalled.append(s)
    slowest, n = 0.0, 0
    while time.monotonic() - t0 < HEADER_TIMEOUT_S + 1.5:
        for s in trickle:
            try:
                s.send(head[n:n + 1])
            except OSError:
                pass                                # already let go
        n += 1
        t = time.monotonic()
        s3.put_object(Bucket="fuzz", Key="served", Body=b"x" * 1000)
        assert s3.get_object(Bucket="fuzz", Key="served")["Body"].read() == b"x" * 1000
        slowest = max(slowest, time.monotonic() - t)
        time.sleep(0.25)
    answers, let_go = {}, {}
    for name, socks in (("trickle", trickle), ("partial", partial), ("silent", silent), ("over", over),
                        ("stalled", stalled)):
        answers[name] = [_read_all(s) for s in socks]
        let_go[name] = round(time.monotonic() - t0, 1)
    took = time.monotonic() - t0
    print(f"\nslowloris: {len(trickle)} trickling, {len(partial)} half a head, {len(silent)} silent, {len(over)} "
          f"past the cap; 4 stalled and 4 aborted bodies; all let go in {took:.1f} s {let_go}; a client's PUT+GET took "
          f"at most {slowest * 1000:.0f} ms meanwhile")
    for a in answers["trickle"] + answers["partial"]:
        assert a.startswith(b"HTTP/1.0 400") and b"<Code>RequestTimeout</Code>" in a and b"x-amz-request-id" in a.lower(), a
    assert answers["silent"] == [b""] * len(silent)
    for a in answers["over"]:
        assert a.startswith(b"HTTP/1.0 503") and b"<Code>SlowDown</Code>" in a and b"x-amz-request-id" in a.lower(), a
    for a in answers["stalled"]:
        assert a.startswith(b"HTTP/1.1 400") and b"<Code>RequestTimeout</Code>" in a, a
    assert took < HEADER_TIMEOUT_S + BODY_IDLE_S + 3 and slowest < 1.0
    assert "Contents" not in s3.list_objects_v2(Bucket="fuzz", Prefix="stalled-")


def test_afterwards_nothing_restarted_leaked_or_written_outside_the_data_directory(fz, s3, before):
    """After the tests above (run first, in this file's order)."""
    # Settled: back where the fuzz began, but for the keep-alive connections to
    # the other processes (closed after 30 s idle): a few per peer at most; and
    # a channel to each metadata replica (rpc/channel.py), with its reader task,
    # which the warm-up's requests (all traced, so none on a channel) did not open.
    was, peers = before["frontend"], len(fz.topo.nodes) + len(fz.topo.all_metas)
    channels = len(fz.topo.all_metas)
    deadline = time.monotonic() + 20
    while True:
        now = _frontend(fz)
        settled = (now["fds (sockets apart)"] <= was["fds (sockets apart)"] and
                   now["connections"] <= was["connections"] and now["tasks"] <= was["tasks"] + channels and
                   now["to minis3 processes"] <= 4 * peers)
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    rss = rss_kib(fz.cluster.frontend.pid) / 1024
    while rss > before["rss"] + 20 and time.monotonic() < deadline + 10:
        time.sleep(0.5)
        rss = rss_kib(fz.cluster.frontend.pid) / 1024
    print(f"\nfrontend before the fuzz: {was}, RSS {before['rss']:.0f} MiB; after it settled: {now}, RSS {rss:.0f} MiB")
    assert settled, (was, now)
    # Memory: back to where it was but for Python's small-object arenas (test_abuse measures it).
    assert rss <= before["rss"] + 20, (before["rss"], rss)
    assert _pids(fz) == before["pids"]
    assert _files(fz) == before["files"], sorted(_files(fz) ^ before["files"])
    wait_healthy(fz.topo, 10)
    s3.put_object(Bucket="fuzz", Key="last", Body=b"served")
    assert s3.get_object(Bucket="fuzz", Key="last")["Body"].read() == b"served"
