"""Lab 3: how S3 finds any object among trillions (docs/course/03-finding-any-object.md).

    .venv/bin/python docs/course/labs/lab3_finding_any_object.py                  # against `make run`
    .venv/bin/python docs/course/labs/lab3_finding_any_object.py --topology FILE  # any cluster

The index is one sorted key space cut into partitions. The lab bulk-loads a
bucket (lab3-index) and watches the partition map: a partition that holds more
than `index.split_keys` keys splits (on `make run`'s cluster that is 100,000
keys, more than this lab loads: use a topology with a small `split_keys` to
see a split, as the test does); finds which partition `minis3 inspect` says a
key is in; traces LIST pages to see that a page costs a page; moves a
partition's replica to the AZ's other metadata process while it serves; and
sends a burst of PUTs at one partition to meet 503 SlowDown if the cluster's
budget is small enough (bucket lab3-burst). Rerunning it moves the replica
back.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from labkit import Lab

BUCKET = "lab3-index"
BURST_BUCKET = "lab3-burst"


def locate(partitions: list[dict], ikey: str) -> dict:
    return next(p for p in partitions if p["lo"] <= ikey and (p["hi"] is None or ikey < p["hi"]))


def bucket_partitions(partitions: list[dict], bucket: str) -> list[dict]:
    lo, hi = bucket + "/", bucket + "0"            # "0" is the character after "/"
    return [p for p in partitions if (p["hi"] is None or p["hi"] > lo) and p["lo"] < hi]


def lab(L: Lab) -> None:
    idx = L.topo.index
    s3 = L.s3()

    # ------------------------------------------------------------------------------------
    L.step("the index: one sorted key space, cut into partitions")
    L.say("Every object's record lives under the index key `bucket/key`. All keys of all buckets form "
          "one sorted space, cut into contiguous ranges (partitions); each partition has a replica "
          "in every AZ. The partition map says which ranges exist and which metadata process holds "
          "each replica:")
    L.minis3("partitions")
    before = L.minis3_json("partitions")
    L.check(before["map"] is not None and before["partitions"][0]["lo"] == ""
            and before["partitions"][-1]["hi"] is None
            and all(a["hi"] == b["lo"] for a, b in zip(before["partitions"], before["partitions"][1:])),
            f"{len(before['partitions'])} partitions tile the whole key space, from \"\" to the end, "
            "without gaps or overlaps")

    # ------------------------------------------------------------------------------------
    keys = int(2.5 * idx.split_keys) if idx.split_keys <= 20_000 else 10_000
    splits = keys > idx.split_keys
    L.step(f"load {keys:,} keys into one bucket")
    L.say("`minis3 bulk-load` commits small objects through the metadata commit path (the same records, "
          "versions and write quorums as PUTs, in batches), far faster than PUTs one by one.")
    L.minis3("bulk-load", BUCKET, "--keys", str(keys), "--size", "100")
    if splits:
        L.say(f"This cluster splits a partition holding more than {idx.split_keys:,} keys. The index "
              f"manager (in the scrubber process) looks every {idx.check_every_s:g} s and cuts such a "
              "partition at its median key (each replica cuts its own copy; no record moves between "
              "processes). Waiting for it to finish:")
    else:
        L.say(f"This cluster splits a partition only past {idx.split_keys:,} keys (or "
              f"{idx.split_bytes >> 20} MiB, or {idx.split_ops_per_s:,.0f} requests/s for "
              f"{idx.hot_seconds:g} s), so {keys:,} keys stay in one partition. To watch splits, start a "
              "cluster whose topology has `[index] split_keys = 2000` (the test does), or load "
              "300,000 keys here (`minis3 bulk-load big --keys 300000 --size 100`, about a minute).")
    deadline = time.monotonic() + 60
    while True:
        now = L.minis3_json("partitions")
        mine = bucket_partitions(now["partitions"], BUCKET)
        # A partition just cut has no key count yet (None): not settled either.
        over = [p for p in now["partitions"] if p["keys"] is None or p["keys"] > idx.split_keys]
        if not over or time.monotonic() > deadline:
            break
        time.sleep(max(0.5, idx.check_every_s))
    L.minis3("partitions")
    L.check(not over, f"no partition holds more than split_keys = {idx.split_keys:,} keys",
            f"partitions still over {idx.split_keys:,} keys (or not yet counted) after 60 s: "
            f"{[p['id'] for p in over]}")
    if splits:
        split_events = [e for e in now["map"]["events"] if e["kind"] == "split"]
        L.check(len(mine) >= 2 and split_events,
                f"the bucket's {keys:,} keys now span {len(mine)} partitions; the map's history says why: "
                + (f"\"{split_events[-1]['reason']}\"" if split_events else ""))
    else:
        L.check(len(mine) >= 1, f"the bucket's keys are in {', '.join(p['id'] for p in mine)}")

    # ------------------------------------------------------------------------------------
    L.step("where is a key? a binary search over the map, then one in the partition")
    L.say("To find a key, the frontend binary-searches its cached copy of the map for the range that "
          "holds `bucket/key` and asks that partition's replicas (two of three); the metadata process "
          "finds the key in its sorted table. Both searches are O(log n): the cost does not grow with "
          "the number of objects. `minis3 inspect` shows the partition of any key:")
    probe = [f"k/{i:07d}" for i in (0, keys // 2, keys - 1)]
    L.minis3("inspect", f"s3://{BUCKET}/{probe[1]}")
    for key in probe:
        d = L.minis3_json("inspect", f"s3://{BUCKET}/{key}")
        p = d["partition"]
        expect = locate(now["partitions"], f"{BUCKET}/{key}")
        hi = json.dumps(p["hi"]) if p["hi"] is not None else "end"
        print(f"  {key}: partition {p['id']} [{json.dumps(p['lo'])}, {hi})")
        L.check(p["id"] == expect["id"] and p["lo"] <= f"{BUCKET}/{key}" and (p["hi"] is None or f"{BUCKET}/{key}" < p["hi"]),
                f"{BUCKET}/{key} lies in {p['id']}'s range, as the partition map says")

    # ------------------------------------------------------------------------------------
    L.step("a LIST page costs a page, wherever it starts")
    L.say("A LIST page starts at its marker with the same search, walks forward in key order and stops "
          "after MaxKeys: each step is a scan of one partition at two replicas, which the frontend "
          "merges (newest version of each key wins). Two pages of 5 keys, one at the start of the "
          "bucket and one deep inside it, crossing a partition boundary if there is one:")
    mine = bucket_partitions(now["partitions"], BUCKET)
    boundary = next((p["hi"] for p in mine if p["hi"] and p["hi"].startswith(BUCKET + "/k/")), None)
    deep = boundary[len(BUCKET) + 1:] if boundary else f"k/{keys - 10:07d}"
    start_after = f"k/{int(deep[2:]) - 2:07d}"
    time.sleep(0.3)
    for label, kwargs in (("first page", {}), (f"StartAfter={start_after!r}", {"StartAfter": start_after})):
        r = s3.list_objects_v2(Bucket=BUCKET, MaxKeys=5, **kwargs)
        rid = r["ResponseMetadata"]["RequestId"]
        got = [o["Key"] for o in r.get("Contents", [])]
        time.sleep(0.3)
        spans = L.minis3_json("trace", rid)
        scans = [s for s in spans if s["service"] == "frontend" and s["attributes"].get("path") == "/v/scan"]
        per = Counter(s["attributes"].get("peer") for s in scans)
        print(f"\n  list_objects_v2(Bucket={BUCKET!r}, MaxKeys=5{', StartAfter=' + repr(start_after) if kwargs else ''})"
              f" → {got}\n  `minis3 trace {rid}`: {len(scans)} scan requests ({', '.join(f'{n} to {p}' for p, n in sorted(per.items()))})")
        L.check(len(got) == 5 and r["IsTruncated"], f"{label}: 5 keys, more to come")
        L.check(1 <= len(scans) <= 6, f"{label}: {len(scans)} scans (a round per partition touched, two replicas "
                                       f"each), not a walk of the bucket's {keys:,} keys")
    L.minis3("trace", rid)

    # ------------------------------------------------------------------------------------
    L.step("move a partition's replica to another metadata process, while it serves")
    az = L.topo.azs[0]
    target_p = locate(now["partitions"], f"{BUCKET}/{probe[2]}")
    holder = target_p["replicas"][az.name]
    others = [m.id for m in az.all_metas if m.id != holder]
    if not others:
        L.say(f"{az.name} runs only one metadata process in this topology (no `extra_metas`), so there "
              "is nowhere to move a replica to: skipped.")
    else:
        to = others[0]
        L.say(f"{target_p['id']} holds the end of the bucket; its replica in {az.name} is on {holder}. The "
              f"index manager moves it to {to} in five steps: copy the range while the old holder serves, "
              "switch the map, fence the old holder (it refuses the range's writes), catch up what "
              "landed there meanwhile, release. Frontends with an old map get 421 WrongPartition with the "
              "new map and retry.")
        L.minis3("partitions", "move", target_p["id"], "--to", to)
        after = L.minis3_json("partitions")
        moved = next(p for p in after["partitions"] if p["id"] == target_p["id"])
        L.check(moved["replicas"][az.name] == to, f"the map now names {to} for {target_p['id']} in {az.name}")
        L.minis3("inspect", f"s3://{BUCKET}/{probe[2]}")
        d = L.minis3_json("inspect", f"s3://{BUCKET}/{probe[2]}")
        L.check(d["partition"]["replicas"][az.name] == to, f"inspect finds {probe[2]}'s replica in {az.name} on {to}")
        body = s3.get_object(Bucket=BUCKET, Key=probe[2])["Body"].read()
        s3.put_object(Bucket=BUCKET, Key=probe[2], Body=body)
        page = s3.list_objects_v2(Bucket=BUCKET, StartAfter=f"k/{keys - 4:07d}")
        L.check(len(body) == 100 and [o["Key"] for o in page.get("Contents", [])] == [f"k/{keys - 3 + i:07d}" for i in range(3)],
                "GET, PUT and LIST of the moved range work as before (no acknowledged write lost)")

    # ------------------------------------------------------------------------------------
    L.step("503 SlowDown: a partition's request budget")
    budget = idx.write_ops_per_s
    L.say(f"Each partition replica takes at most {budget:,.0f} writes and {idx.read_ops_per_s:,.0f} reads a "
          "second (S3 documents 3,500 and 5,500 per partitioned prefix); above that it answers at once "
          "with 503 SlowDown instead of queueing, and SDKs back off and retry. A partition that stays "
          "hot splits, and each half gets its own budget. Now a burst of 400 tiny PUTs from 16 threads "
          "at one prefix, with boto3's retries turned off so that we see every answer:")
    L.fresh_bucket(s3, BURST_BUCKET, empty=False)
    raw = L.s3(attempts=1, max_pool_connections=32)
    n = 400
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            raw.put_object(Bucket=BURST_BUCKET, Key=f"burst/{i:05d}", Body=b"x")
            code = "200 OK"
        except raw.exceptions.ClientError as exc:
            code = f"{exc.response['ResponseMetadata']['HTTPStatusCode']} {exc.response['Error']['Code']}"
        with lock:
            results.append((i, code))
    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(one, range(n)))
    took = time.monotonic() - t0
    codes = Counter(c for _, c in results)
    refused = [i for i, c in results if c == "503 SlowDown"]
    print(f"\n  {n} PUTs in {took:.1f} s ({n / took:,.0f}/s): " + ", ".join(f"{v} × {k}" for k, v in codes.most_common()))
    L.check(set(codes) <= {"200 OK", "503 SlowDown"}, "every answer was 200 or 503 SlowDown")
    allowed = budget * (1 + took)           # a full bucket (one second's worth), then the rate
    accepted = n - len(refused)
    if refused:
        L.check(accepted <= 1.5 * allowed + 5,
                f"the partition held its budget: {accepted} PUTs accepted in {took:.1f} s ({budget:,.0f}/s plus "
                f"a one-second burst is {allowed:,.0f} per replica; a PUT needs two of the three), "
                f"{len(refused)} refused at once with 503 SlowDown")
    if n / took > 2 * budget:
        L.check(bool(refused), f"offered {n / took:,.0f}/s, over twice the budget: some PUTs were refused")
    elif n <= 0.8 * budget:
        L.check(not refused, f"{n} PUTs fit in the budget of {budget:,.0f} writes a second: no SlowDown "
                             "(a topology with `[index] write_ops_per_s = 50` shows one)")
    if refused:
        retrying = L.s3(attempts=10)
        again = refused[:40]
        tries = []
        for i in again:
            r = retrying.put_object(Bucket=BURST_BUCKET, Key=f"burst/{i:05d}", Body=b"x")
            tries.append(r["ResponseMetadata"]["RetryAttempts"])
        print(f"\n  the first {len(again)} refused PUTs again, with boto3's standard retries: all 200 OK, "
              f"{sum(1 for t in tries if t)} after retries ({sum(tries)} retries in all)")
        L.check(len(tries) == len(again), "with retries and back-off, every refused PUT succeeds")


if __name__ == "__main__":
    sys.exit(Lab(3, "How S3 finds any object among trillions").run(lab))
