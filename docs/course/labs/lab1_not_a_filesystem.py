"""Lab 1: S3 is not a filesystem (docs/course/01-not-a-filesystem.md).

    .venv/bin/python docs/course/labs/lab1_not_a_filesystem.py                  # against `make run`
    .venv/bin/python docs/course/labs/lab1_not_a_filesystem.py --topology FILE  # any cluster

Keys `a/b` and `a/b/c` both exist (folders are prefixes, computed by LIST);
there is no rename and no append (a PUT replaces the whole object, the last
writer wins); a reader during an overwrite gets the old or the new bytes,
never a mix; a write is visible to the very next read. Uses bucket
lab1-not-a-filesystem (emptied at the start, its objects left at the end).
"""
from __future__ import annotations

import os
import sys
import threading
import time

from labkit import Lab, md5, mib

BUCKET = "lab1-not-a-filesystem"


def lab(L: Lab) -> None:
    s3 = L.s3()
    L.fresh_bucket(s3, BUCKET)

    # ------------------------------------------------------------------------------------
    L.step("a key is a name, not a path: `a/b` and `a/b/c` are both objects")
    L.say("In a filesystem `a/b` cannot be a file and a directory at once. In S3 both keys are "
          "just strings in one sorted key space:")
    print(f"\n  s3.put_object(Bucket={BUCKET!r}, Key='a/b',   Body=b'I am a/b')")
    print(f"  s3.put_object(Bucket={BUCKET!r}, Key='a/b/c', Body=b'I am a/b/c')")
    s3.put_object(Bucket=BUCKET, Key="a/b", Body=b"I am a/b")
    s3.put_object(Bucket=BUCKET, Key="a/b/c", Body=b"I am a/b/c")
    s3.put_object(Bucket=BUCKET, Key="a/notes.txt", Body=b"notes")
    s3.put_object(Bucket=BUCKET, Key="top.txt", Body=b"top")
    got_b = s3.get_object(Bucket=BUCKET, Key="a/b")["Body"].read()
    got_c = s3.get_object(Bucket=BUCKET, Key="a/b/c")["Body"].read()
    print(f"  GET a/b   → {got_b!r}\n  GET a/b/c → {got_c!r}")
    L.check(got_b == b"I am a/b" and got_c == b"I am a/b/c", "both keys exist, each with its own bytes")
    try:
        s3.head_object(Bucket=BUCKET, Key="a/")
        folder = True
    except s3.exceptions.ClientError as exc:
        folder = exc.response["Error"]["Code"] not in ("404", "NoSuchKey")
    print("  HEAD a/   → 404 Not Found" if not folder else "  HEAD a/   → found")
    L.check(not folder, "there is no folder object `a/`: nobody created one")

    # ------------------------------------------------------------------------------------
    L.step("folders are computed: LIST with Delimiter='/' groups keys into CommonPrefixes")
    L.say("A LIST walks the sorted keys from a prefix; with a delimiter, every key that has the "
          "delimiter after the prefix is folded into one CommonPrefix (a 'folder').")
    r = s3.list_objects_v2(Bucket=BUCKET, Delimiter="/")
    top_keys = [o["Key"] for o in r.get("Contents", [])]
    top_prefixes = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    print(f"\n  list_objects_v2(Delimiter='/')            → Contents {top_keys}, CommonPrefixes {top_prefixes}")
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="a/", Delimiter="/")
    a_keys = [o["Key"] for o in r.get("Contents", [])]
    a_prefixes = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    print(f"  list_objects_v2(Prefix='a/', Delimiter='/') → Contents {a_keys}, CommonPrefixes {a_prefixes}")
    r = s3.list_objects_v2(Bucket=BUCKET)
    flat = [o["Key"] for o in r.get("Contents", [])]
    print(f"  list_objects_v2()                         → Contents {flat}")
    L.check(top_keys == ["top.txt"] and top_prefixes == ["a/"], "at the top: the key top.txt and the prefix a/")
    L.check(a_keys == ["a/b", "a/notes.txt"] and a_prefixes == ["a/b/"],
            "under a/: the object a/b AND the prefix a/b/ (a 'file' and a 'folder' of one name)")
    L.check(flat == sorted(flat) == ["a/b", "a/b/c", "a/notes.txt", "top.txt"],
            "without a delimiter: every key, flat, in sorted (UTF-8 byte) order")
    out = L.aws("s3", "ls", f"s3://{BUCKET}/a/").stdout
    L.check("PRE b/" in out and " b\n" in out + "\n", "the aws CLI shows the same: `PRE b/` beside the object `b`")

    # ------------------------------------------------------------------------------------
    L.step("no rename: a 'move' is a copy and a delete, two requests")
    L.say("S3 has no rename: `aws s3 mv` copies the object to the new key (the frontend reads the "
          "bytes and stores them again, as new fragments under a new record, without sending them "
          "to the client) and then deletes the old key. Between the two, both keys exist; a "
          "crash between them leaves both.")
    print(f"\n  s3.copy_object(Bucket={BUCKET!r}, Key='b/moved.txt', CopySource={{'Bucket': {BUCKET!r}, "
          "'Key': 'a/notes.txt'})")
    s3.copy_object(Bucket=BUCKET, Key="b/moved.txt", CopySource={"Bucket": BUCKET, "Key": "a/notes.txt"})
    both = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="").get("Contents", [])
                  if o["Key"] in ("a/notes.txt", "b/moved.txt"))
    print(f"  between the two requests, LIST shows {both}")
    L.check(both == ["a/notes.txt", "b/moved.txt"], "after the copy, before the delete: both keys exist")
    print(f"  s3.delete_object(Bucket={BUCKET!r}, Key='a/notes.txt')")
    s3.delete_object(Bucket=BUCKET, Key="a/notes.txt")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    L.check("a/notes.txt" not in keys and s3.get_object(Bucket=BUCKET, Key="b/moved.txt")["Body"].read() == b"notes",
            "after the delete: only b/moved.txt, with the same bytes")

    # ------------------------------------------------------------------------------------
    L.step("no append: a PUT replaces the whole object, with new fragments")
    big1, big2 = os.urandom(2 << 20), os.urandom(2 << 20)
    s3.put_object(Bucket=BUCKET, Key="log.bin", Body=big1)
    before = L.minis3_json("inspect", f"s3://{BUCKET}/log.bin", "--no-verify")
    L.say("To 'append' 2 MiB to a 2 MiB object, a client must PUT all 4 MiB again: there is no "
          "append call, and a PUT of the 2 new MiB alone simply replaces the object.")
    print("\n  s3.put_object(Key='log.bin', Body=<2 MiB, first>)    # then")
    print("  s3.put_object(Key='log.bin', Body=<2 MiB, second>)")
    s3.put_object(Bucket=BUCKET, Key="log.bin", Body=big2)
    L.minis3("inspect", f"s3://{BUCKET}/log.bin", "--no-verify")
    after_doc = L.minis3_json("inspect", f"s3://{BUCKET}/log.bin", "--no-verify")
    got = s3.get_object(Bucket=BUCKET, Key="log.bin")["Body"].read()
    print(f"\n  GET log.bin → {mib(len(got))}, MD5 {md5(got)} (second body's MD5 {md5(big2)})")
    L.check(got == big2, "the object is exactly the second body: 2 MiB, not 4")
    old_id, new_id = before["sets"][0]["object_id"], after_doc["sets"][0]["object_id"]
    print(f"  object id before the overwrite {old_id}, after {new_id}")
    L.check(old_id != new_id and before["version"]["vid"] != after_doc["version"]["vid"],
            "the overwrite wrote new fragments under a new object id and a new version: "
            "the old fragments were never touched (the scrubber collects them later)")

    # ------------------------------------------------------------------------------------
    L.step("concurrent writers: the last writer wins, whole")
    L.say("Two clients PUT the same key at the same moment. Each PUT is stamped with a version "
          "(a hybrid logical clock timestamp) when it commits; every replica keeps the newest. "
          "The key ends up with one of the two bodies, entirely.")
    x, y = b"X" * (1 << 20), b"Y" * (1 << 20)
    go = threading.Barrier(2)

    def put(body):
        c = L.s3()
        go.wait()
        c.put_object(Bucket=BUCKET, Key="contested", Body=body)
    ts = [threading.Thread(target=put, args=(b,)) for b in (x, y)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    final = s3.get_object(Bucket=BUCKET, Key="contested")["Body"].read()
    winner = "X" if final == x else "Y" if final == y else "a mix"
    print(f"\n  two PUTs of 1 MiB (all X, all Y) at once → GET returns all {winner}")
    L.check(final in (x, y), "one writer's body, whole: never a mix of the two")

    # ------------------------------------------------------------------------------------
    L.step("a reader during overwrites sees the old bytes or the new, never a mix")
    size = 4 << 20
    bodies = {"A": os.urandom(size), "B": os.urandom(size)}
    by_md5 = {md5(b): name for name, b in bodies.items()}
    L.say(f"One thread overwrites `flipflop` with two bodies of {mib(size)} (A, B, A, B, ...) as fast as it "
          "can; another GETs it in a loop and checks that every body it gets is entirely A or "
          "entirely B. A GET reads one committed record, which names one set of fragments; an "
          "overwrite writes new fragments under a new object id and only then commits, so a "
          "reader can never stitch two versions together.")
    s3.put_object(Bucket=BUCKET, Key="flipflop", Body=bodies["A"])
    stop = threading.Event()
    writes: list[tuple[float, float]] = []
    errors: list[str] = []

    def writer():
        c = L.s3()
        i = 1
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                c.put_object(Bucket=BUCKET, Key="flipflop", Body=bodies["AB"[i % 2]])
            except Exception as exc:          # reported below as a failed check
                errors.append(f"PUT: {exc}")
            writes.append((t0, time.monotonic()))
            i += 1
    reads = {"A": 0, "B": 0, "mixed": 0}
    overlapped = 0
    w = threading.Thread(target=writer)
    w.start()
    reader = L.s3()
    deadline = time.monotonic() + 6
    try:
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            body = reader.get_object(Bucket=BUCKET, Key="flipflop")["Body"].read()
            t1 = time.monotonic()
            name = by_md5.get(md5(body))
            if name is None:
                reads["mixed"] += 1
                a_at = sum(1 for i in range(0, len(body), 4096) if body[i:i + 4096] == bodies["A"][i:i + 4096])
                errors.append(f"GET returned {len(body)} bytes that are neither A nor B "
                              f"({a_at} of {len(body) // 4096} 4 KiB blocks match A)")
            else:
                reads[name] += 1
            if any(s < t1 and e > t0 for s, e in list(writes)) or not writes:
                overlapped += 1
    finally:
        stop.set()
        w.join()
    total = reads["A"] + reads["B"] + reads["mixed"]
    print(f"\n  {len(writes)} overwrites and {total} reads in 6 s: {reads['A']} reads were all A, "
          f"{reads['B']} all B, {reads['mixed']} mixed; at least {overlapped} reads overlapped an overwrite")
    L.check(not errors, "no request failed and no read returned a mix", "\n".join(errors[:5]))
    L.check(total >= 5 and len(writes) >= 5, f"enough traffic to mean something ({total} reads, {len(writes)} writes)")
    L.check(reads["A"] > 0 and reads["B"] > 0 and overlapped > 0,
            "readers saw both versions, each whole, while overwrites were in flight")

    # ------------------------------------------------------------------------------------
    L.step("strong read-after-write: the next request sees the write")
    L.say("A PUT is acknowledged once two of the three metadata replicas hold its record; every "
          "read asks two replicas, and two of three always overlap. So the very next GET, HEAD or "
          "LIST, from any client, sees the new object, and the next GET after a DELETE gets 404. "
          "(S3 has promised this since December 2020.)")
    other = L.s3()
    stale = []
    rounds = 20
    for i in range(rounds):
        key = f"raw/{time.time_ns()}-{i}"
        body = os.urandom(64 + i * 1000)
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        if other.get_object(Bucket=BUCKET, Key=key)["Body"].read() != body:
            stale.append(f"GET after PUT of {key}")
        if other.head_object(Bucket=BUCKET, Key=key)["ContentLength"] != len(body):
            stale.append(f"HEAD after PUT of {key}")
        if key not in [o["Key"] for o in other.list_objects_v2(Bucket=BUCKET, Prefix=key).get("Contents", [])]:
            stale.append(f"LIST after PUT of {key}")
        s3.delete_object(Bucket=BUCKET, Key=key)
        try:
            other.head_object(Bucket=BUCKET, Key=key)
            stale.append(f"HEAD after DELETE of {key} found it")
        except other.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchKey"):
                raise
    print(f"\n  {rounds} rounds of PUT → GET, HEAD, LIST (another client) → DELETE → HEAD: {len(stale)} stale answers")
    L.check(not stale, f"every read after a write saw it, every read after a delete got 404 ({rounds * 4} reads)",
            "stale reads: " + ", ".join(stale))


if __name__ == "__main__":
    sys.exit(Lab(1, "S3 is not a filesystem").run(lab))
