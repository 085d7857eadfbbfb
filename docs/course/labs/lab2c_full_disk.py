#!/usr/bin/env python3
"""Lab 2c: a disk fills up (docs/course/02-surviving-hardware-failure.md, "Lab 2c").

It fills storage node b1's disk (`minis3 chaos disk-full b1`: every write
there fails with ENOSPC, through the same injection layer as the failpoints),
watches b1 say so on its health page and the frontend stop sending it
fragments, writes 12 objects of 300 KiB (each would have had a fragment on
b1: they land on handoff nodes instead, and `minis3 inspect` shows them so),
reads an object b1 already held (a full disk still reads), then heals the disk
(`minis3 chaos heal b1`) and runs `minis3 scrub --now`, which moves the
handed-off fragments home. The disk is healed even if a step fails.

Run it against `make run`'s cluster (from the repository's root) or any other
with --topology. It uses the bucket `lab2c-full-disk` and takes about 15 s.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labkit import Lab, LabFailed, md5  # noqa: E402

BUCKET = "lab2c-full-disk"
OBJECTS, SIZE = 12, 300 * 1024
VICTIM = "b1"


def body(L: Lab) -> None:
    topo = L.topo
    if VICTIM not in {n.id for n in topo.nodes}:
        raise LabFailed(f"this lab fills storage node {VICTIM}'s disk; the cluster has {[n.id for n in topo.nodes]}")
    node = topo.node(VICTIM)
    from minis3.rpc.sync import call_json

    def health() -> dict:
        return call_json(topo.cluster_secret, "GET", node.url, "/health")

    s3 = L.s3()
    L.fresh_bucket(s3, BUCKET)
    before = os.urandom(SIZE)
    s3.put_object(Bucket=BUCKET, Key="before", Body=before)

    L.step(f"{VICTIM}'s disk fills up")
    L.say("A full disk is the most common disk fault in a fleet. `minis3 chaos disk-full` makes every write "
          f"in {VICTIM}'s data directory fail with ENOSPC, as a real full disk would; reads, fsyncs and deletes "
          "still work.")
    L.minis3("chaos", "disk-full", VICTIM)
    try:
        full(L, s3, health, before)
    finally:
        L.minis3("chaos", "heal", VICTIM)

    L.step("healed: the fragments come home")
    deadline = time.monotonic() + 10
    while health()["full"] and time.monotonic() < deadline:
        time.sleep(0.2)
    L.check(not health()["full"], f"{VICTIM}'s probe write succeeded: its /health says full: false again")
    L.say("The scrubber's pass finds fragments on handoff nodes whose home node takes writes again, copies "
          "each home, and commits the record with its new place (`rebuilt: handoff` in its report).")
    moved = 0
    for _ in range(3):
        rep = L.minis3_json("scrub", "--now", "--no-audit", ok_codes=(0, 1))["pass"]
        moved += (rep.get("rebuilt") or {}).get("handoff", 0)
        if rep.get("complete") and not rep.get("not_full"):
            break
    L.check(moved >= OBJECTS, f"the scrubber moved {moved} fragments home from handoff nodes")
    homes = [L.minis3_json("inspect", f"s3://{BUCKET}/obj-{i:02d}", "--no-verify")["sets"][0]["fragments"]
             for i in range(OBJECTS)]
    L.minis3("inspect", f"s3://{BUCKET}/obj-00", "--no-verify", max_lines=24)
    L.check(all(any(f["node"] == VICTIM and not f["handoff"] for f in frags) for frags in homes),
            f"every object written while the disk was full has its fragment on {VICTIM} again, at home")


def full(L: Lab, s3, health, before: bytes) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            s3.put_object(Bucket=BUCKET, Key="probe", Body=os.urandom(SIZE))   # a write that meets the full disk
        except Exception:
            pass
        if health()["full"]:
            break
        time.sleep(0.2)
    h = health()
    print(f"\n    GET {VICTIM}/health -> {h}", flush=True)
    L.check(h["full"], f"{VICTIM} refused a write with ENOSPC and says so on /health (full: true); it answers "
                       "507 InsufficientStorage to a fragment PUT and probes its disk once a second")
    time.sleep(1.0)                     # every frontend's health prober has asked it since

    L.step(f"writes go to handoff nodes while {VICTIM} is full")
    L.say("The frontend's health prober reads full: true, and new fragments go to handoff nodes instead (a "
          "PUT already under way hands off the fragment b1 refused, from the bytes still in memory). With two "
          "nodes per AZ and 4+2, every object has a fragment on every node, so each of these would have "
          f"had one on {VICTIM}.")
    sums = {}
    t0 = time.monotonic()
    for i in range(OBJECTS):
        data = os.urandom(SIZE)
        s3.put_object(Bucket=BUCKET, Key=f"obj-{i:02d}", Body=data)
        sums[f"obj-{i:02d}"] = md5(data)
    L.check(True, f"{OBJECTS} PUTs of {SIZE // 1024} KiB acknowledged in {time.monotonic() - t0:.1f} s")
    L.minis3("inspect", f"s3://{BUCKET}/obj-00", "--no-verify", max_lines=24)
    sets = [L.minis3_json("inspect", f"s3://{BUCKET}/{k}", "--no-verify")["sets"][0]["fragments"] for k in sums]
    L.check(all(VICTIM not in {f["node"] for f in frags} and any(f["handoff"] for f in frags) for frags in sets),
            f"none of them has a fragment on {VICTIM}; each has one on a handoff node ([handoff; home {VICTIM}])")
    got = s3.get_object(Bucket=BUCKET, Key="before")["Body"].read()
    L.check(md5(got) == md5(before), f"an object stored before reads back intact: a full disk still reads")
    bad = [k for k, s in sums.items() if md5(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()) != s]
    L.check(not bad, f"{OBJECTS} of {OBJECTS} new objects read back with their MD5", f"objects differ: {bad}")


if __name__ == "__main__":
    sys.exit(Lab("2c", "a disk fills up").run(body))
