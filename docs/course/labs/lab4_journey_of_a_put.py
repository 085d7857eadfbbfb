"""Lab 4: the journey of one PUT (docs/course/04-journey-of-a-put.md).

    .venv/bin/minis3 up --regions us-east-1,eu-west-1                                # in another terminal
    .venv/bin/python docs/course/labs/lab4_journey_of_a_put.py --topology data/regions.toml

It needs two regions and minis3's DNS server (`make run` starts one region and
no DNS: the lab then stops at once, exit status 2). DNS first: the lab creates
its bucket in us-east-1 and a second one in eu-west-1, asks minis3's DNS server
for the regions' endpoints and the buckets' names, and makes its first PUT
through the global name, the DNS answer picking the region (its trace begins
with that answer); a client set to the wrong region is answered 400 and
re-signs by itself. Then routing (the same object in path style); SigV4 (a
request signed with a wrong secret, and what `minis3 trace --last` shows the
server computed); then one real boto3 PUT of a few MiB followed through every
process with `minis3 trace REQUEST_ID`: signature, bucket check, segments
encoded, six fragment writes each fsynced on its node, the metadata commit on
the replicas (the moment the object becomes visible), the 200; and a multipart
upload, whose completion writes no data at all. Buckets: lab4-journey
(us-east-1, left in place) and lab4-journey-eu (eu-west-1, deleted at the end).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

from labkit import Lab, LabFailed, md5, mib

BUCKET = "lab4-journey"
EU_BUCKET = "lab4-journey-eu"
NEEDS_REGIONS = """\
Lab 4 starts from the DNS lookup, so it needs two regions and minis3's DNS server.
Its topology has {what}: `make run` starts one region, without DNS.
Start two regions instead (stop `make run` first: both use port 9000), from the repository's root:

    .venv/bin/minis3 up --regions us-east-1,eu-west-1

and run the lab with the topology that command wrote:

    .venv/bin/python docs/course/labs/lab4_journey_of_a_put.py --topology data/regions.toml
"""


def by_name(spans: list[dict], prefix: str, service: str | None = None) -> list[dict]:
    return [s for s in spans if s["name"].startswith(prefix) and (service is None or s["service"].startswith(service))]


def client_calls(spans: list[dict], path: str) -> list[dict]:
    return [s for s in spans if s["service"] == "frontend" and s["attributes"].get("path") == path]


def root_of(spans: list[dict]) -> dict:
    return next(s for s in spans if s["parent_span_id"] is None and s["service"] == "frontend")


def canonical_request(req) -> tuple[str, str, str, str]:
    """SigV4 by hand, from the request botocore sent (its method, URL and headers):
    (canonical request, string to sign, the signature it carried, its access key)."""
    from urllib.parse import urlsplit
    u = urlsplit(req.url)
    headers = {k.lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in req.headers.items()}
    headers.setdefault("host", u.netloc)
    m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/([^,]+), SignedHeaders=([^,]+), Signature=(\w+)",
                 headers["authorization"])
    access_key, scope, signed, signature = m.groups()
    query = "&".join(sorted(q if "=" in q else q + "=" for q in u.query.split("&") if q))
    creq = "\n".join([req.method, u.path or "/", query]
                     + [f"{h}:{' '.join(headers[h].split())}" for h in signed.split(";")]
                     + ["", signed, headers["x-amz-content-sha256"]])
    sts = "\n".join(["AWS4-HMAC-SHA256", headers["x-amz-date"], scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    return creq, sts, signature, access_key


def sigv4_signature(secret: str, string_to_sign: str) -> str:
    """SigV4's signing key, derived from the secret and the scope, then HMAC of the string to sign."""
    _, _, scope, _ = string_to_sign.split("\n")
    date, region, service, term = scope.split("/")
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, term):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def lab(L: Lab) -> None:
    from minis3.dns.resolve import query_a, using_dns
    topo = L.topo
    world, dns = topo.world, topo.world.dns
    eu = next(r for r in world.regions if r.region != topo.region)      # eu-west-1
    s3 = L.s3()
    s3_eu = L.s3(endpoint=eu.frontend.url, region=eu.region)
    L.fresh_bucket(s3, BUCKET)

    # ------------------------------------------------------------------------------------
    L.step("before any byte: DNS")
    L.say(f"S3 is one namespace of bucket names over many regions, each a fleet of its own. Here: "
          f"{topo.region} (frontend {topo.frontend.host}:{topo.frontend.port}) and {eu.region} (frontend "
          f"{eu.frontend.host}:{eu.frontend.port}), and minis3's DNS server on {dns.host}:{dns.port} (UDP), "
          f"authoritative for the zone {dns.domain}. The lab's bucket lives in {topo.region}; a second one is "
          f"created in {eu.region}, through the {topo.region} endpoint (a LocationConstraint).")
    try:
        s3.create_bucket(Bucket=EU_BUCKET, CreateBucketConfiguration={"LocationConstraint": eu.region})
    except s3.exceptions.BucketAlreadyOwnedByYou:       # left by an earlier run: empty it
        for o in s3_eu.list_objects_v2(Bucket=EU_BUCKET).get("Contents", []):
            s3_eu.delete_object(Bucket=EU_BUCKET, Key=o["Key"])
    print(f"\n  s3.create_bucket(Bucket={EU_BUCKET!r}, CreateBucketConfiguration={{'LocationConstraint': "
          f"{eu.region!r}}})   # sent to {topo.frontend.url}")
    loc = s3.get_bucket_location(Bucket=EU_BUCKET)["LocationConstraint"]
    L.check(loc == eu.region, f"{EU_BUCKET} lives in {loc}, though it was created through {topo.region}'s endpoint")

    L.say("Before a client sends a byte it turns a host name into an address. Ask the DNS server what "
          "dig would (dig is not needed by the lab; these are the commands to type):")
    expect = {f"s3.{topo.region}.{dns.domain}": (topo.frontend.host, f"{topo.region}'s endpoint"),
              f"s3.{eu.region}.{dns.domain}": (eu.frontend.host, f"{eu.region}'s endpoint"),
              f"{BUCKET}.s3.{dns.domain}": (topo.frontend.host, f"bucket {BUCKET}: {topo.region}'s frontend"),
              f"{EU_BUCKET}.s3.{dns.domain}": (eu.frontend.host, f"bucket {EU_BUCKET}: {eu.region}'s frontend")}
    answers = {}
    for name in expect:
        try:
            answers[name], rcode = query_a(name, dns.host, dns.port)
        except OSError as exc:
            raise LabFailed(f"minis3's DNS server at {dns.host}:{dns.port} did not answer ({exc}): is "
                            "`.venv/bin/minis3 up --regions us-east-1,eu-west-1` running?") from None
        print(f"\n  $ dig @{dns.host} -p {dns.port} +short {name}")
        L.show("\n".join(answers[name]) or f"(no address: {rcode})")
    for name, (ip, what) in expect.items():
        L.check(answers[name] == [ip], f"{name} → {ip}  ({what})")
    L.say(f"The two bucket names differ only in the bucket, and DNS sends them to different regions: "
          f"the server looks each bucket up in the bucket registry (in {world.global_region}). So a client "
          f"that only knows the global name s3.{dns.domain} still reaches the bucket's region.")

    L.say(f"Now the lab's first PUT goes exactly that way: boto3 with endpoint http://s3.{dns.domain}:"
          f"{topo.frontend.port}, virtual-hosted style (the bucket in the host name), this Python process "
          f"resolving names under {dns.domain} with minis3's DNS server (minis3.dns.resolve.using_dns):")
    hello = b"hello from the journey lab\n"
    glob = L.s3(endpoint=f"http://s3.{dns.domain}:{topo.frontend.port}", s3={"addressing_style": "virtual"})
    with using_dns(dns.host, dns.port, dns.domain) as lookups:
        r = glob.put_object(Bucket=BUCKET, Key="hello.txt", Body=hello)
    put_rid = r["ResponseMetadata"]["RequestId"]
    print(f"\n  s3.put_object(Bucket={BUCKET!r}, Key='hello.txt', ...)   # PUT http://{BUCKET}.s3.{dns.domain}:"
          f"{topo.frontend.port}/hello.txt  → request {put_rid}")
    for lk in lookups.seen:
        print(f"    DNS lookup: {lk['name']} → {', '.join(lk['addresses']) or lk['rcode']}  ({lk['ms']:.1f} ms)")
    L.check([lk["addresses"] for lk in lookups.seen] == [[topo.frontend.host]],
            f"one DNS query, for {BUCKET}.s3.{dns.domain}; the answer, {topo.frontend.host}, is where the PUT went")
    time.sleep(0.5)
    out = L.minis3("trace", put_rid).stdout
    first = out.strip().splitlines()[0] if out.strip() else ""
    spans = L.minis3_json("trace", put_rid)
    L.check(first.startswith("DNS") and f"{BUCKET}.s3.{dns.domain} → {topo.frontend.host}" in first
            and spans[0]["service"] == "dns" and spans[0]["attributes"].get("answer") == topo.frontend.host,
            "the trace begins with the DNS answer the client used: the first step of the request's journey")

    L.say(f"A client configured for the wrong region: the same boto3 client signs for {topo.region}, and "
          f"PUTs into {EU_BUCKET}. DNS sends it to {eu.region}, which refuses a request signed for another "
          "region: 400 AuthorizationHeaderMalformed, naming the right region. boto3 signs again for it and "
          "resends, by itself, as S3's own clients do:")
    answered: list[tuple[int, str | None]] = []

    def seen(response, **_):
        if response:
            answered.append((response[0].status_code, response[1].get("Error", {}).get("Code")))
    glob.meta.events.register("needs-retry.s3.PutObject", seen)
    with using_dns(dns.host, dns.port, dns.domain) as lookups:
        r = glob.put_object(Bucket=EU_BUCKET, Key="hello.txt", Body=hello)
    eu_rid = r["ResponseMetadata"]["RequestId"]
    print(f"\n  s3.put_object(Bucket={EU_BUCKET!r}, Key='hello.txt', ...)   # client region {topo.region}")
    for lk in lookups.seen:
        print(f"    DNS lookup: {lk['name']} → {', '.join(lk['addresses']) or lk['rcode']}")
    for status, code in answered:
        print(f"    answered {status}{' ' + code if code else ''}")
    L.check([a[0] for a in answered] == [400, 200] and answered[0][1] == "AuthorizationHeaderMalformed",
            f"400 AuthorizationHeaderMalformed, then 200 once boto3 re-signed for {eu.region}")
    time.sleep(0.5)
    eu_spans = L.minis3_json("trace", eu_rid, "--region", eu.region)
    L.check(eu_spans[0]["service"] == "dns" and eu_spans[0]["attributes"].get("answer") == eu.frontend.host
            and s3_eu.get_object(Bucket=EU_BUCKET, Key="hello.txt")["Body"].read() == hello,
            f"the object is in {eu.region} (its trace, `minis3 trace {eu_rid} --region {eu.region}`, begins "
            f"with DNS → {eu.frontend.host})")

    # ------------------------------------------------------------------------------------
    L.step("routing: path style and virtual-hosted style name the same object")
    L.say(f"Step 1's PUT named its bucket in the host name ({BUCKET}.s3.{dns.domain}, virtual-hosted style: "
          "what AWS prefers, and what lets DNS pick the region). The bucket can also be in the path "
          f"(http://{topo.frontend.host}:{topo.frontend.port}/{BUCKET}/hello.txt, path style: the client must "
          "then know the region's address itself). The frontend's router (minis3/frontend/routing.py) takes "
          f"the bucket from the Host header when it ends with one of {list(topo.frontend.virtual_host_domains)}, "
          "else from the first path segment. Here curl GETs the object in path style:")
    body, rid = path_style_get(L, "hello.txt")
    L.check(body == hello, "the path-style GET returns the object the virtual-hosted PUT stored")
    time.sleep(0.5)
    for label, req in (("virtual-hosted PUT", put_rid), ("path-style GET", rid)):
        root = root_of(L.minis3_json("trace", req))
        a = root["attributes"]
        print(f"  {label}: root span {root['name']!r}, host={a.get('host')!r} bucket={a.get('bucket')!r} "
              f"key={a.get('key')!r}")
        L.check(a.get("bucket") == BUCKET and a.get("key") == "hello.txt",
                f"{label}: the router found bucket {BUCKET!r} and key 'hello.txt'")
    # ------------------------------------------------------------------------------------
    L.step("SigV4: a request signed with the wrong secret")
    L.say("Every request is signed: the client builds a canonical request (method, path, query, the signed "
          "headers, the payload's SHA-256), hashes it into a string to sign with the date and scope, and "
          "signs that with a key derived from its secret by four HMACs. The frontend rebuilds the same "
          "canonical request from what it received, derives the key from its copy of the secret and "
          "compares. The secret never travels. Here boto3 signs with a wrong secret:")
    bad = L.s3(secret="not-the-secret", attempts=1)
    sent = []
    bad.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(request))
    try:
        bad.put_object(Bucket=BUCKET, Key="signed-wrong.txt", Body=b"never stored")
        raise LabFailed("a PUT signed with a wrong secret was accepted")
    except bad.exceptions.ClientError as exc:
        code, status = exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
        bad_rid = exc.response["ResponseMetadata"]["RequestId"]
    print(f"\n  boto3 (secret 'not-the-secret') put_object → {status} {code}, request {bad_rid}")
    L.check(status == 403 and code == "SignatureDoesNotMatch", "403 SignatureDoesNotMatch; nothing stored")
    time.sleep(0.3)
    out = L.minis3("trace", "--last").stdout
    if bad_rid not in out:                   # someone else's request came in between: ask for ours
        out = L.minis3("trace", bad_rid).stdout
    root = root_of(L.minis3_json("trace", bad_rid))
    server_creq = root["attributes"].get("CanonicalRequest")
    server_sts = root["attributes"].get("StringToSign")
    client_creq, client_sts, client_sig, _ = canonical_request(sent[-1])
    L.check("code=SignatureDoesNotMatch" in out and server_creq and server_sts,
            "the trace keeps the canonical request and string to sign the server computed (never a secret)")
    L.say("Rebuilt by hand from the request boto3 sent (method, path, query, the headers named in "
          "SignedHeaders, the payload hash; then the date, the scope and the canonical request's SHA-256):")
    L.check(server_creq == client_creq and server_sts == client_sts,
            "they are exactly the server's canonical request and string to sign: same request, same bytes")
    with_wrong = sigv4_signature("not-the-secret", client_sts)
    with_right = sigv4_signature(L.secret_key, client_sts)
    print(f"  {'signature boto3 sent':34}{client_sig}\n  {'HMAC chain with the wrong secret':34}{with_wrong}\n"
          f"  {'HMAC chain with the right secret':34}{with_right}  (what the server expected)")
    L.check(with_wrong == client_sig and with_right != client_sig,
            "so the only difference is the key: the wrong secret gives boto3's signature, the right one another")

    # ------------------------------------------------------------------------------------
    L.step("one real PUT of a few MiB, traced through every process")
    size = 3 * (1 << 20) + 1000
    data = os.urandom(size)
    r = s3.put_object(Bucket=BUCKET, Key="journey.bin", Body=data)
    rid = r["ResponseMetadata"]["RequestId"]
    print(f"\n  r = s3.put_object(Bucket={BUCKET!r}, Key='journey.bin', Body=<{size:,} bytes>)")
    print(f"  r['ResponseMetadata']['RequestId'] → {rid!r}   (the x-amz-request-id header)")
    time.sleep(0.5)                          # the third replica's commit is still landing after the 200
    L.minis3("trace", rid)
    spans = L.minis3_json("trace", rid)
    root = root_of(spans)
    t0 = root["start_ns"]

    def ms(ns: int) -> float:
        return (ns - t0) / 1e6
    sig = by_name(spans, "verify signature")
    bucket_checks = client_calls(spans, "/v/bucket")
    encodes = by_name(spans, "encode segment", "frontend")
    writes = by_name(spans, "write fragment", "frontend")
    lands = by_name(spans, "land", "node-")
    wal = by_name(spans, "WAL append", "meta-")
    commits = sorted(client_calls(spans, "/v/object"), key=lambda s: s["end_ns"])
    segments = -(-size // topo.erasure.segment_size)
    k, m = topo.erasure.k, topo.erasure.m
    if not (sig and writes and commits):
        raise LabFailed(f"the trace of {rid} lacks the expected spans: {[s['name'] for s in spans]}")
    visible = commits[1]["end_ns"] if len(commits) >= 2 else commits[0]["end_ns"]
    print("\n  reading the waterfall (ms after the request arrived):")
    rows = [
        (ms(sig[0]["end_ns"]), f"SigV4 verified ({sig[0]['attributes'].get('mode')} auth, key "
                               f"{sig[0]['attributes'].get('access_key')})"),
        (ms(max(s["end_ns"] for s in bucket_checks)) if bucket_checks else 0.0,
         f"bucket checked: exists, owned by the caller ({len(bucket_checks)} replicas asked)"),
        (ms(max(s["end_ns"] for s in encodes)), f"{len(encodes)} segments encoded into {k}+{m} fragments each "
                                                "(in worker threads, while the body streams in)"),
        (ms(max(s["end_ns"] for s in lands)), f"the last of {len(lands)} nodes fsynced its fragment file "
                                              "(write, fsync, rename, fsync the directory)"),
        (ms(max(s["end_ns"] for s in writes)), f"all {len(writes)} fragment writes answered 200: durable"),
        (ms(commits[0]["start_ns"]), f"record sent to {len(commits)} metadata replicas (WAL + fdatasync each)"),
        (ms(visible), "the second replica has it durable: THE OBJECT IS VISIBLE (W = 2 of 3)"),
        (ms(root["end_ns"]), f"200 OK to the client (status {root['attributes'].get('status')})"),
    ]
    for t, what in rows:
        print(f"    +{t:7.1f}  {what}")
    nodes = {s["attributes"].get("node") for s in writes}
    per_az: dict[str, int] = {}
    for s in writes:
        per_az[s["attributes"].get("az")] = per_az.get(s["attributes"].get("az"), 0) + 1
    L.check(len(encodes) == segments, f"{size:,} bytes = {segments} segments, each encoded once")
    L.check(len(writes) == k + m and len(nodes) == k + m and max(per_az.values()) <= m,
            f"{k + m} fragment writes to {k + m} different nodes, at most {m} per AZ {per_az}")
    L.check(len(lands) == k + m, f"every node fsynced before answering ({len(lands)} 'land' spans on the nodes)")
    L.check(len(wal) == len({s['service'] for s in wal}) >= 2,
            f"{len(wal)} metadata replicas appended the record to their WAL and fdatasynced")
    L.check(min(s["start_ns"] for s in commits) >= max(s["end_ns"] for s in writes),
            "the metadata commit starts only after every fragment is durable (a record never points at "
            "bytes a crash could take back)")
    L.check(root["end_ns"] >= visible and root["attributes"].get("status") == 200,
            "the 200 comes after the second replica's commit")
    L.check(s3.get_object(Bucket=BUCKET, Key="journey.bin")["Body"].read() == data, "GET returns the bytes")

    # ------------------------------------------------------------------------------------
    L.step("multipart: parts are stored as they arrive; completion only commits a manifest")
    part1, part2 = os.urandom(5 << 20), os.urandom(1 << 20)
    up = s3.create_multipart_upload(Bucket=BUCKET, Key="multipart.bin")["UploadId"]
    p1 = s3.upload_part(Bucket=BUCKET, Key="multipart.bin", UploadId=up, PartNumber=1, Body=part1)
    p2 = s3.upload_part(Bucket=BUCKET, Key="multipart.bin", UploadId=up, PartNumber=2, Body=part2)
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key="multipart.bin", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})
    print(f"\n  create_multipart_upload → upload id {up}\n  upload_part 1 ({mib(len(part1))}) → request "
          f"{p1['ResponseMetadata']['RequestId']}\n  upload_part 2 ({mib(len(part2))}) → request "
          f"{p2['ResponseMetadata']['RequestId']}\n  complete_multipart_upload → ETag {done['ETag']}, request "
          f"{done['ResponseMetadata']['RequestId']}")
    time.sleep(0.5)
    part_spans = L.minis3_json("trace", p1["ResponseMetadata"]["RequestId"])
    L.check(len(by_name(part_spans, "write fragment", "frontend")) == k + m,
            f"UploadPart is a PUT of its own: part 1 was erasure-coded and written to {k + m} nodes as it arrived")
    L.minis3("trace", done["ResponseMetadata"]["RequestId"])
    cspans = L.minis3_json("trace", done["ResponseMetadata"]["RequestId"])
    L.check(not by_name(cspans, "write fragment") and not by_name(cspans, "land") and client_calls(cspans, "/v/scan"),
            "CompleteMultipartUpload reads the part records (a scan) and commits one record: no data byte "
            "is read, copied or written")
    expect_etag = hashlib.md5(bytes.fromhex(md5(part1)) + bytes.fromhex(md5(part2))).hexdigest() + "-2"
    L.check(done["ETag"].strip('"') == expect_etag, f"the ETag is MD5(MD5(part 1) ‖ MD5(part 2))-2 = {expect_etag}")
    L.minis3("inspect", "s3://" + BUCKET + "/multipart.bin", "--no-verify")
    d = L.minis3_json("inspect", "s3://" + BUCKET + "/multipart.bin", "--no-verify")
    L.check(d["stored"] == "multipart" and [x["label"] for x in d["sets"]] == ["part 1", "part 2"],
            "the object's record is a manifest: each part keeps its own fragments")
    L.check(s3.get_object(Bucket=BUCKET, Key="multipart.bin")["Body"].read() == part1 + part2,
            "GET walks the manifest and returns part 1 then part 2")

    # ------------------------------------------------------------------------------------
    L.step(f"cleaning up: {EU_BUCKET} is deleted, and its name resolves to the global region again")
    for o in s3_eu.list_objects_v2(Bucket=EU_BUCKET).get("Contents", []):
        s3_eu.delete_object(Bucket=EU_BUCKET, Key=o["Key"])
    s3_eu.delete_bucket(Bucket=EU_BUCKET)
    name = f"{EU_BUCKET}.s3.{dns.domain}"
    ips, _ = query_a(name, dns.host, dns.port)
    print(f"\n  s3.delete_bucket(Bucket={EU_BUCKET!r})   # sent to {eu.frontend.url}\n"
          f"\n  $ dig @{dns.host} -p {dns.port} +short {name}")
    L.show("\n".join(ips))
    L.check(ips == [topo.frontend.host], f"{name} → {topo.frontend.host}: no such bucket, so the global "
            f"region's frontend, as S3 answers (DNS never tells which buckets exist)")


def path_style_get(L: Lab, key: str) -> tuple[bytes, str]:
    """GET http://FRONTEND/BUCKET/KEY, signed: curl when it can sign (7.75+), else botocore's signer."""
    fe = L.topo.frontend
    url = f"{fe.url}/{BUCKET}/{key}"
    curl = shutil.which("curl")
    if curl:
        argv = [curl, "-sS", "-i", "--aws-sigv4", f"aws:amz:{L.region}:s3", "--user",
                f"{L.access_key}:{L.secret_key}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", url]
        print(f"\n  $ {shlex.join(['curl', *argv[2:]])}")
        r = subprocess.run(argv, capture_output=True, timeout=30)
        if r.returncode == 0 or b"aws-sigv4" not in r.stderr:
            head, _, body = r.stdout.partition(b"\r\n\r\n")
            L.show(head.decode(errors="replace") + "\n\n" + body.decode(errors="replace"))
            rid = re.search(rb"x-amz-request-id: (\w+)", head, re.I)
            if r.returncode != 0 or rid is None:
                raise LabFailed(f"curl failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
            return body, rid.group(1).decode()
    import http.client
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    S3SigV4Auth(Credentials(L.access_key, L.secret_key), "s3", L.region).add_auth(req)
    print(f"\n  GET {url}   (signed by botocore)")
    conn = http.client.HTTPConnection(fe.host, fe.port, timeout=30)
    conn.request("GET", f"/{BUCKET}/{key}", headers=dict(req.headers))
    resp = conn.getresponse()
    body = resp.read()
    print(f"    {resp.status} {resp.reason}, x-amz-request-id {resp.getheader('x-amz-request-id')}: {body!r}")
    return body, resp.getheader("x-amz-request-id")


if __name__ == "__main__":
    lab4 = Lab(4, "The journey of a PUT")
    world = lab4.topo.world
    if world is None or world.dns is None or len(world.regions) < 2:
        print(NEEDS_REGIONS.format(what="one region and no DNS server" if world is None else
                                   "no DNS server" if world.dns is None else "one region"), file=sys.stderr)
        sys.exit(2)
    sys.exit(lab4.run(lab))
