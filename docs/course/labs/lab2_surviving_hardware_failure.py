"""Lab 2: how stored bytes survive hardware failure (docs/course/02-surviving-hardware-failure.md).

    .venv/bin/python docs/course/labs/lab2_surviving_hardware_failure.py                  # against `make run`
    .venv/bin/python docs/course/labs/lab2_surviving_hardware_failure.py --topology FILE  # any cluster

Run it from the directory where the cluster keeps its data (the repository's
root for `make run`, whose data is ./data): the lab flips a byte in a fragment
file on disk, as a failing disk would.

It puts one object of 5 MiB and looks at its fragments (4 data + 2 parity per
segment, 2 per AZ); reads a fragment file's checksums on disk; flips a byte in
one, reads the object back intact, sees the fragment quarantined and rebuilt by
`minis3 scrub --now`; then kills a whole AZ, reads the object back intact,
writes another one (to handoff nodes), revives the AZ (also if the lab fails)
and sees everything return to full redundancy. Bucket: lab2-hardware-failure.
"""
from __future__ import annotations

import base64
import json
import os
import struct
import sys
import time

from labkit import Lab, LabFailed, md5, mib

BUCKET = "lab2-hardware-failure"
KEY = "photo.bin"


def fragments_by_az(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in doc["sets"][0]["fragments"]:
        out.setdefault(f["az"], []).append(f)
    return out


def read_fragment_file(path) -> dict:
    """A fragment file's header and first block, parsed by hand (docs/ARCHITECTURE.md, "On-disk formats")."""
    import xxhash
    raw = path.read_bytes()
    magic, version, index, _, n = struct.unpack_from(">4sBBHI", raw)
    header_json = raw[12:12 + n]
    (header_sum,) = struct.unpack_from(">Q", raw, 12 + n)
    at = 12 + n + 8
    length, block_sum = struct.unpack_from(">IQ", raw, at)
    data = raw[at + 12:at + 12 + length]
    return {"magic": magic, "version": version, "index": index, "header": json.loads(header_json),
            "header_ok": xxhash.xxh3_64_intdigest(header_json) == header_sum, "block0_at": at,
            "block0_len": length, "block0_sum": block_sum, "block0_actual": xxhash.xxh3_64_intdigest(data),
            "file_size": len(raw)}


def lab(L: Lab) -> None:
    topo = L.topo
    k, m = topo.erasure.k, topo.erasure.m
    victim_az = topo.azs[1].name if len(topo.azs) > 1 else topo.azs[0].name
    s3 = L.s3()
    L.fresh_bucket(s3, BUCKET)
    run_dir = topo.data_dir / "run"
    if not run_dir.exists():
        raise LabFailed(f"no cluster data in {topo.data_dir}: run this lab from the directory where the cluster "
                        "was started (the repository's root for `make run`), or give --data-dir")

    # ------------------------------------------------------------------------------------
    L.step(f"one object, {k} data + {m} parity fragments per segment, {(k + m) // len(topo.azs)} per AZ")
    body = os.urandom((5 << 20) + 12345)
    etag = s3.put_object(Bucket=BUCKET, Key=KEY, Body=body)["ETag"].strip('"')
    print(f"\n  s3.put_object(Bucket={BUCKET!r}, Key={KEY!r}, Body=<{len(body):,} random bytes>)")
    print(f"  ETag {etag}, MD5 of what we sent {md5(body)}")
    L.check(etag == md5(body), "the ETag of a single PUT is the MD5 of its bytes: the client can check the upload")
    L.say(f"The frontend cut the object into segments of {mib(topo.erasure.segment_size)} and erasure-coded "
          f"each into {k} data fragments (slices of the segment) and {m} parity fragments (computed from "
          f"all {k}); any {k} of the {k + m} rebuild the segment. Fragment i of every segment goes to the "
          "same node, in one file. `minis3 inspect` reads the record from the metadata replicas, asks the "
          "nodes, and reads every fragment back, checksums and all:")
    L.minis3("inspect", f"s3://{BUCKET}/{KEY}")
    doc = L.minis3_json("inspect", f"s3://{BUCKET}/{KEY}")
    s = doc["sets"][0]
    per_az = {az: len(fs) for az, fs in fragments_by_az(doc).items()}
    L.check(doc["stored"] == "erasure-coded" and s["k"] == k and s["m"] == m and len(s["fragments"]) == k + m,
            f"{k + m} fragments: {k} data, {m} parity, over {s['segments']} segments")
    L.check(len({f["node"] for f in s["fragments"]}) == k + m and max(per_az.values()) <= m,
            f"each on its own node, at most m = {m} per AZ ({per_az}): losing any one AZ leaves at least k = {k}")
    L.check([f["check"] for f in s["fragments"]] == ["verified"] * (k + m) and s["full"],
            "every fragment read back and verified; full redundancy")

    # ------------------------------------------------------------------------------------
    L.step("data fragments are slices of the sealed object; parity fragments are not")
    L.minis3("inspect", f"s3://{BUCKET}/{KEY}", "--segment", "0", "--bytes")
    rows = L.minis3_json("inspect", f"s3://{BUCKET}/{KEY}", "--segment", "0", "--bytes")["segment_bytes"]
    data_rows = [r for r in rows if r["kind"] == "data"]
    parity_rows = [r for r in rows if r["kind"] == "parity"]
    n = len(base64.b64decode(rows[0]["first_bytes"]))
    L.check(len(data_rows) == k and all(base64.b64decode(r["first_bytes"]) != body[r["object_offset"]:r["object_offset"] + n]
                                        for r in data_rows),
            f"on disk, no data fragment holds the object's bytes: every segment is sealed (AES-256-GCM, SSE-S3, "
            "as S3 encrypts every new object) before it is erasure-coded")
    L.check(all(base64.b64decode(r["plain_bytes"]) == body[r["object_offset"]:r["object_offset"] + n] for r in data_rows),
            f"opened with the object's data key, each data fragment's first {n} bytes are the object's bytes at its "
            f"offset (0, 1/{k}, 2/{k}... of the segment): a data fragment is a slice of the sealed segment")
    slices = {base64.b64decode(r["first_bytes"]) for r in data_rows}
    L.check(len(parity_rows) == m and all(base64.b64decode(r["first_bytes"]) not in slices for r in parity_rows),
            "each parity fragment's bytes appear nowhere in the data: they are computed (Reed-Solomon)")

    # ------------------------------------------------------------------------------------
    L.step("checksums at every layer: a fragment file on disk")
    frag = next(f for f in s["fragments"] if f["kind"] == "data" and f["index"] == 1)
    oid = s["object_id"]
    path = topo.node(frag["node"]).data_dir / "fragments" / oid[:2] / f"{oid}.{frag['index']}"
    L.say(f"Fragment #{frag['index']} lives on node {frag['node']} ({frag['az']}) in one file named after the object "
          "id and the index (never after the key). It is a header and one block per segment, each block with "
          "its own xxh3-64 checksum, which the node checks when the block arrives, on every read and in its "
          "background audit:")
    if not path.exists():
        raise LabFailed(f"{path} does not exist: is this the cluster's data directory? (run from the repository's "
                        "root for `make run`, or give --data-dir)")
    info = read_fragment_file(path)
    print(f"\n  $ ls -l {path}\n    {info['file_size']:,} bytes")
    print(f"    magic {info['magic']!r}, format version {info['version']}, fragment index {info['index']}, "
          f"header {json.dumps(info['header'])} (its own xxh3 {'matches' if info['header_ok'] else 'DOES NOT match'})")
    print(f"    block 0 at byte {info['block0_at']}: {info['block0_len']:,} bytes, stored xxh3 "
          f"{info['block0_sum']:016x}, recomputed {info['block0_actual']:016x}")
    L.check(info["magic"] == b"MS3F" and info["header_ok"] and info["block0_sum"] == info["block0_actual"],
            "the block's stored checksum matches its bytes")
    L.say("Above the blocks: the metadata record keeps an xxh3 of every segment, which the frontend checks "
          "after decoding; the ETag (MD5) and the CRC checksum cover the whole object for the client; "
          "every WAL and snapshot line of the metadata has a CRC32. No byte is served unverified.")

    # ------------------------------------------------------------------------------------
    L.step("a silently flipped byte: the read is still correct, the fragment is quarantined")
    at = info["block0_at"] + 12 + 80 + 1000           # inside block 0's data, past pyeclib's 80-byte header
    with open(path, "r+b") as f:
        f.seek(at)
        old = f.read(1)[0]
        f.seek(at)
        f.write(bytes([old ^ 0xFF]))
    print(f"\n  flipped byte {at:,} of {path.name} on {frag['node']}: {old:#04x} → {old ^ 0xFF:#04x} "
          "(same name, same size, as a failing disk might do)")
    flipped = read_fragment_file(path) if path.exists() else None
    if flipped is not None:
        print(f"    block 0 stored xxh3 {flipped['block0_sum']:016x}, recomputed now {flipped['block0_actual']:016x}")
    got = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    print(f"\n  s3.get_object(...) → {len(got):,} bytes, MD5 {md5(got)}")
    L.check(got == body, "GET returns the exact bytes: the node refused the bad block and the frontend decoded "
                         "that segment from a parity fragment instead")
    L.minis3("inspect", f"s3://{BUCKET}/{KEY}")
    doc = L.minis3_json("inspect", f"s3://{BUCKET}/{KEY}")
    f1 = next(f for f in doc["sets"][0]["fragments"] if f["index"] == frag["index"])
    qdir = topo.node(frag["node"]).data_dir / "quarantine"
    evidence = sorted(p.name for p in qdir.glob(f"{oid}.{frag['index']}.*")) if qdir.exists() else []
    print(f"\n  $ ls {qdir}\n" + "".join(f"    {name}\n" for name in evidence))
    for name in evidence:
        if name.endswith(".json"):
            print(f"  $ cat {name}\n    {(qdir / name).read_text().strip()}")
    L.check(bool(evidence), "the node moved the corrupt file to its quarantine, with a JSON note of why")
    if (f1["check"] or "") == "corrupt" or (f1["check"] or "").startswith("quarantined"):
        L.check(not doc["sets"][0]["full"] and doc["sets"][0]["readable"],
                f"inspect shows fragment #{frag['index']} CORRUPT ({f1['check']}): readable, NOT at full redundancy")
    else:
        print("  (the scrubber's periodic pass rebuilt it already: it runs every minute)")
        L.check(f1["check"] == "verified", f"fragment #{frag['index']} was rebuilt")

    # ------------------------------------------------------------------------------------
    L.step("the scrubber rebuilds it from k others")
    L.say(f"A scrub pass audits every fragment file, compares what the metadata says with what the nodes "
          f"hold, and rebuilds each lost fragment from {k} others (decode, check the segment's xxh3, "
          "re-encode the missing one) onto its home node.")
    L.minis3("scrub", "--now", ok_codes=(0, 1))
    L.minis3("inspect", f"s3://{BUCKET}/{KEY}", max_lines=16)
    doc = L.minis3_json("inspect", f"s3://{BUCKET}/{KEY}")
    s = doc["sets"][0]
    L.check([f["check"] for f in s["fragments"]] == ["verified"] * (k + m) and s["full"],
            f"{k + m} of {k + m} fragments verified again: full redundancy")

    # ------------------------------------------------------------------------------------
    L.step(f"a whole AZ dies: kill -9 of {victim_az} (its metadata replica and both its nodes)")
    killed = False
    try:
        L.minis3("chaos", "kill-az", victim_az)
        killed = True
        time.sleep(1.0)                                 # the frontend's health probe (every 0.5 s) notices
        st = L.minis3("status", ok_codes=(0, 1))      # exits 1 when a process is down
        down = [ln.split()[0] for ln in st.stdout.splitlines() if f" {victim_az} " in ln and " DOWN " in ln]
        L.check(len(down) >= 3, f"{victim_az}'s processes are DOWN: {', '.join(down)}")
        L.minis3("inspect", f"s3://{BUCKET}/{KEY}")
        doc = L.minis3_json("inspect", f"s3://{BUCKET}/{KEY}")
        s = doc["sets"][0]
        left = [f for f in s["fragments"] if f["check"] == "verified"]
        L.check(len(left) == k + m - per_az.get(victim_az, 0) >= k and s["readable"],
                f"{len(left)} fragments left, at least k = {k}: readable (the record came from the two replicas left)")
        got = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
        print(f"\n  s3.get_object(...) → MD5 {md5(got)} (put: {md5(body)})")
        L.check(got == body, "GET returns identical bytes with an AZ gone")
        later = os.urandom(3 << 20)
        s3.put_object(Bucket=BUCKET, Key="written-during-outage.bin", Body=later)
        print("\n  s3.put_object(Key='written-during-outage.bin', Body=<3 MiB>)   # succeeds")
        L.minis3("inspect", f"s3://{BUCKET}/written-during-outage.bin", "--no-verify")
        d2 = L.minis3_json("inspect", f"s3://{BUCKET}/written-during-outage.bin", "--no-verify")
        hand = [f for f in d2["sets"][0]["fragments"] if f["handoff"]]
        L.check(len(hand) == per_az.get(victim_az, 0) and all(f["az"] != victim_az for f in hand),
                f"writes go on: the {len(hand)} fragments meant for {victim_az} went to handoff nodes "
                "in the other AZs (still at most m per node), each remembering its home")
        L.say("While the AZ is down, the first object lives on exactly k fragments: one more lost fragment "
              "and it could not be read. That is why the scrubber acts as soon as the AZ returns.")
    finally:
        if killed:
            L.step(f"{victim_az} comes back")
            L.minis3("chaos", "revive-az", victim_az)
            waited = L.wait_az_healthy(victim_az)
            print(f"  (every process of {victim_az} answered its health check after {waited:.1f} s: its metadata "
                  "replica caught up with the writes it missed before serving reads)")
    L.minis3("scrub", "--now", ok_codes=(0, 1))
    for key, data in ((KEY, body), ("written-during-outage.bin", later)):
        d = L.minis3_json("inspect", f"s3://{BUCKET}/{key}")
        s = d["sets"][0]
        L.check([f["check"] for f in s["fragments"]] == ["verified"] * (k + m) and s["full"]
                and not any(f["handoff"] for f in s["fragments"]),
                f"{key}: {k + m} fragments verified, each on its home node: full redundancy")
        L.check(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data, f"{key}: identical bytes")
    L.minis3("inspect", f"s3://{BUCKET}/written-during-outage.bin", max_lines=16)


if __name__ == "__main__":
    sys.exit(Lab(2, "How stored bytes survive hardware failure").run(lab))
