#!/usr/bin/env python3
"""Lab 2b: eleven nines, computed (docs/course/02-surviving-hardware-failure.md, "Eleven nines, computed").

It writes 24 objects of 1 MiB, then a disk dies: it kills storage node b1
(`minis3 chaos kill-node b1`, kill -9) and empties its fragment directory, as a
replaced disk would be; revives it; runs `minis3 scrub --now` until every object
is back at full redundancy, and reads what that repair measured (fragment bytes
rebuilt and the time it took). Then it feeds the measured repair into the
durability model (`minis3 durability`), checks that the model used exactly that
repair time (the same nines as `--mttr` with that number), and asks what the
same repair rate would mean on a full 4 TB disk. Every object reads back intact
at the end.

Run it against `make run`'s cluster (from the repository's root) or any other
with --topology. It uses the bucket `lab2b-eleven-nines` and takes about 20 s.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labkit import Lab, LabFailed, md5  # noqa: E402

BUCKET = "lab2b-eleven-nines"
OBJECTS, SIZE = 24, 1 << 20
VICTIM = "b1"


def files_and_bytes(d: Path) -> tuple[int, int]:
    n = size = 0
    for root, _, names in os.walk(d):
        for name in names:
            try:
                size += (Path(root) / name).stat().st_size
                n += 1
            except FileNotFoundError:
                pass
    return n, size


def body(L: Lab) -> None:
    topo = L.topo
    if VICTIM not in {n.id for n in topo.nodes}:
        raise LabFailed(f"this lab kills storage node {VICTIM}; the cluster has {[n.id for n in topo.nodes]}")
    node = topo.node(VICTIM)
    frag_dir = node.data_dir / "fragments"
    s3 = L.s3()

    L.step(f"{OBJECTS} objects of 1 MiB, erasure-coded {topo.erasure.k}+{topo.erasure.m} over {len(topo.azs)} AZs")
    L.fresh_bucket(s3, BUCKET)
    sums = {}
    for i in range(OBJECTS):
        data = os.urandom(SIZE)
        s3.put_object(Bucket=BUCKET, Key=f"obj-{i:02d}", Body=data)
        sums[f"obj-{i:02d}"] = md5(data)
    n_before, bytes_before = files_and_bytes(frag_dir)
    L.say(f"Storage node {VICTIM} ({node.az}) now holds {n_before} fragment files, {bytes_before / 1e6:.1f} MB "
          f"(this lab's and whatever the cluster held before).")
    L.check(n_before >= OBJECTS // 2, f"{VICTIM} holds fragments ({n_before} files)")

    from minis3.rpc.sync import signed_get

    def rebuild_totals() -> dict:
        """The scrubber's rebuild counters since it started (GET /status: rebuild)."""
        st = signed_get(topo.cluster_secret, topo.scrub.url, "/status")
        if st is None:
            raise LabFailed("the scrubber did not answer GET /status")
        return st["rebuild"]
    totals_before = rebuild_totals()

    L.step(f"a disk dies: {VICTIM} killed, its fragments gone")
    L.say("A disk that dies takes its fragments with it; the operator puts in an empty one. The lab kills the "
          "node's process (kill -9) and empties its fragment directory, then lets the node start again on "
          "the empty 'disk'. Until the scrubber notices, every object with a fragment there has one spare "
          "fewer: this window is what the durability model calls the repair time.")
    L.minis3("chaos", "kill-node", VICTIM)
    try:
        shutil.rmtree(frag_dir, ignore_errors=True)
    finally:                                   # the node always comes back, even if a step fails
        L.minis3("chaos", "revive-node", VICTIM)
    L.wait_az_healthy(node.az)
    n_empty, _ = files_and_bytes(frag_dir)
    L.check(n_empty == 0, f"{VICTIM} is back, with no fragments")

    L.step("the scrubber rebuilds what the disk held")
    L.say("The scrubber starts a pass by itself when a node answers again; `minis3 scrub --now` joins "
          "or follows it. What the repair took is the scrubber's rebuild counters, before and after.")
    for attempt in range(5):
        rep = L.minis3_json("scrub", "--now", "--no-audit", ok_codes=(0, 1))["pass"]
        print(f"    pass {rep['id']}: {sum((rep.get('rebuilt') or {}).values())} fragments rebuilt "
              f"({rep.get('rebuilt_bytes', 0) / 1e6:.1f} MB) in {rep.get('rebuild_seconds', 0):.2f} s of repairs; "
              f"{rep.get('not_full', 0)} objects not at full redundancy", flush=True)
        if rep.get("complete") and not rep.get("not_full"):
            break
    else:
        raise LabFailed("five scrub passes and some objects are still not at full redundancy")
    n_after, bytes_after = files_and_bytes(frag_dir)
    totals = rebuild_totals()
    rebuilt, repair_s = totals["bytes"] - totals_before["bytes"], totals["seconds"] - totals_before["seconds"]
    L.check(rebuilt > 0 and repair_s > 0,
            f"{rebuilt / 1e6:.1f} MB rebuilt in {repair_s:.2f} s of repairs: "
            f"{rebuilt / max(repair_s, 1e-9) / 1e6:.0f} MB/s (the scrubber's counters)",
            f"the scrubber's rebuild counters did not move: {totals_before} -> {totals}")
    L.say(f"{VICTIM} holds {n_after} fragment files again ({bytes_after / 1e6:.1f} MB). Fewer than before if "
          f"the disk also held fragments of deleted objects: those were waiting for garbage collection "
          f"and nothing needs them back.")
    states = {}
    for key in sorted(sums)[:6]:
        doc = L.minis3_json("inspect", f"s3://{BUCKET}/{key}", "--no-verify")
        for f in doc["sets"][0]["fragments"]:
            if f["node"] == VICTIM:
                states[key, f["index"]] = f["state"]
    L.minis3("inspect", f"s3://{BUCKET}/{sorted(sums)[0]}", "--no-verify", max_lines=14)
    L.check(states and all(v == "ok" for v in states.values()),
            f"{VICTIM}'s fragments of this lab's objects are back in place ({len(states)} checked with "
            f"`minis3 inspect`, all ok)", f"fragments on {VICTIM}: {states}")

    L.step("the measured repair, fed into the model")
    L.say("`minis3 durability` asks the scrubber for its settings and for everything it has rebuilt since it "
          "started (the rebuild rate), and every storage node for its bytes: MTTR = detection + bytes per "
          "node / rebuild rate. The Markov model of one stripe turns that into the chance of losing an object.")
    L.minis3("durability", max_lines=24)
    d = L.minis3_json("durability")
    ri = d["repair_inputs"]
    rate = ri["rebuild_bytes_per_s"]
    L.check(rate["measured"], f"rebuild rate measured on the cluster: {rate['value'] / 1e6:.0f} MB/s ({rate['source']})")
    L.check(ri["node_bytes"]["measured"], f"bytes per node measured: {ri['node_bytes']['value'] / 1e6:.1f} MB")
    rebuild_s = max(ri["node_bytes"]["value"] / rate["value"], ri["last_pass_s"]["value"])
    L.check(abs(ri["rebuild_s"] - rebuild_s) <= 1e-6 * max(1.0, rebuild_s) and d["mttr_s"] >= rebuild_s,
            f"MTTR {d['mttr_s']:.1f} s = detection {d['mttr_s'] - ri['rebuild_s']:.1f} s + rebuild "
            f"{ri['rebuild_s']:.2f} s")
    same = L.minis3_json("durability", "--mttr", f"{d['mttr_s']}s")
    L.check(abs(same["result"]["nines"] - d["result"]["nines"]) < 1e-6,
            f"the model used that repair time: {d['result']['nines']:.2f} nines, as with --mttr {d['mttr_s']:.1f}s")
    L.say(f"Dominant failure mode: {d['result']['dominant']}. With AZ outages in the model, an AZ lost for a "
          f"day leaves exactly k fragments, and a disk failing meanwhile is what loses objects; repair speed "
          f"barely moves that. Without them, the repair time is everything:")

    L.step("the same repair rate on a full 4 TB disk")
    small = L.minis3_json("durability", "--az-outages-per-year", "0")
    big = L.minis3_json("durability", "--az-outages-per-year", "0", "--node-bytes", "4TB")
    hours = big["mttr_s"] / 3600
    print(f"    {ri['node_bytes']['value'] / 1e6:.1f} MB a node: MTTR {small['mttr_s']:.1f} s, "
          f"{small['result']['nines']:.2f} nines", flush=True)
    print(f"    4 TB a node:  MTTR {hours:.1f} h, {big['result']['nines']:.2f} nines", flush=True)
    L.check(big["mttr_s"] > small["mttr_s"] and big["result"]["nines"] < small["result"]["nines"],
            f"a longer repair costs nines: {small['result']['nines']:.2f} -> {big['result']['nines']:.2f}")

    L.step("every object reads back intact")
    bad = [k for k, s in sums.items() if md5(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()) != s]
    L.check(not bad, f"{OBJECTS} of {OBJECTS} objects read back with their MD5", f"objects differ: {bad}")


if __name__ == "__main__":
    sys.exit(Lab("2b", "eleven nines, computed").run(body))
