"""scrub/lifecycle.py's rounds over a fake metadata service: pages and the per-round budget
(a key's versions never judged from half of them), where the next round goes on, and what a
refused or locked delete does (counted, skipped, never the end of a round)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from minis3.config.specs import LifecycleSpec
from minis3.core import errors as E
from minis3.core import lifecycle as L
from minis3.core import versions as V
from minis3.meta.client import ACCESS, UPLOADS
from minis3.scrub import lifecycle as runner_mod

NOW = 1_700_000_000.0
OLD_MS = int((NOW - 10 * 86_400) * 1000)


class FakeMeta:
    """The few MetaClient calls the runner makes, over one sorted dict of index entries."""

    def __init__(self, rules_xml: bytes, versioning: str | None = None):
        self.rules = L.to_record(L.parse_lifecycle(rules_xml))
        self.versioning_state = versioning
        self.index: dict[str, dict[str, dict]] = {"bkt": {}, UPLOADS + "bkt": {}}
        self.deleted: list[tuple] = []
        self.refuse: set[str] = set()
        self.reads = 0

    def as_account(self, account):
        return self

    async def list_buckets(self):
        return [{"name": "bkt", "vid": "v1", **({"versioning": self.versioning_state} if self.versioning_state else {})},
                {"name": "elsewhere", "vid": "v1", "region": "eu-west-1"}]        # another region's: not read

    async def list_objects(self, bucket, *, marker="", max_keys=1000, **kw):
        if bucket.startswith(ACCESS):
            return {"entries": [("lifecycle", {"rules": self.rules})], "truncated": False, "next_marker": None}
        self.reads += 1
        keys = sorted(k for k, r in self.index.get(bucket, {}).items() if k > marker and
                      (not r.get("deleted") or r.get("marker")))
        page = keys[:max_keys]
        return {"entries": [(k, self.index[bucket][k]) for k in page], "truncated": len(keys) > max_keys,
                "next_marker": page[-1] if page else None}

    async def versioning(self, bucket):
        return self.versioning_state

    async def compare_and_set(self, bucket, key, judge, raw=False, **kw):
        rec = judge(self.index[bucket].get(key))
        if rec is not None:
            self.index[bucket][key] = dict(rec, ts=1)
            self.deleted.append(("tombstone", key))
        return rec

    async def get_version(self, bucket, key, vid):
        for k, r in self.index[bucket].items():
            if V.head_of_row(k) == key and V.id_of(r) == vid and V.is_version(r):
                return r
        raise E.NoSuchVersion()

    async def delete_version(self, bucket, key, vid):
        if key in self.refuse:
            raise E.AccessDenied("refused by Object Lock")
        for k in [k for k, r in self.index[bucket].items() if V.head_of_row(k) == key and V.id_of(r) == vid]:
            del self.index[bucket][k]
        self.deleted.append(("version", key, vid))

    async def delete_record(self, ikey):
        self.deleted.append(("record", ikey))
        space, _, rest = ikey.partition("bkt/")
        self.index.get(space + "bkt", {}).pop(rest, None)


def runner(meta, **spec):
    topo = SimpleNamespace(lifecycle=LifecycleSpec(**spec), erasure=SimpleNamespace(k=4, m=2), region="us-east-1",
                           azs=[SimpleNamespace(name="az-a", nodes=[SimpleNamespace(id="a1")])])
    return runner_mod.LifecycleRunner(topo, meta, clock=lambda: NOW)


def rules(body: str) -> bytes:
    return (f"<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled"
            f"</Status>{body}</Rule></LifecycleConfiguration>").encode()


def obj(**kw):
    return {"mtime": OLD_MS, "ts": OLD_MS, "etag": "e", "size": 1, **kw}


def test_a_round_stops_at_a_key_boundary_and_the_next_goes_on(monkeypatch):
    monkeypatch.setattr(runner_mod, "PAGE", 2)
    meta = FakeMeta(rules("<Expiration><Days>1</Days></Expiration>"))
    for i in range(7):
        meta.index["bkt"][f"tmp/{i}"] = obj()
    meta.index["bkt"]["keep"] = obj()
    r = runner(meta, keys_per_round=3)
    first = asyncio.run(r.run_round())
    assert first.expired >= 1 and "o:bkt" in first.resumes_at
    for _ in range(5):
        asyncio.run(r.run_round())
    live = {k for k, rec in meta.index["bkt"].items() if not rec.get("deleted")}
    assert live == {"keep"}
    assert sorted(d[1] for d in meta.deleted) == [f"tmp/{i}" for i in range(7)]        # each once


def test_a_keys_versions_are_judged_together_across_pages(monkeypatch):
    """NewerNoncurrentVersions counts a key's noncurrent versions: a page boundary in the
    middle of them must not make the round judge half of them."""
    monkeypatch.setattr(runner_mod, "PAGE", 2)
    meta = FakeMeta(rules("<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
                          "<NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration>"),
                    versioning="Enabled")
    vids = [V.make_id(OLD_MS * 1000 + i, f"{i:012x}") for i in range(5)]        # newest last
    meta.index["bkt"]["tmp/k"] = obj(version_id=vids[4], vts=OLD_MS * 1000 + 4)
    for i in range(4):
        meta.index["bkt"][V.row_key("tmp/k", vids[i])] = obj(version_id=vids[i], vts=OLD_MS * 1000 + i)
    asyncio.run(runner(meta).run_round())
    # Noncurrent: v3, v2 (kept: the 2 newest), v1, v0 (deleted).
    assert sorted(d[2] for d in meta.deleted) == sorted(vids[:2])


def test_a_refused_delete_is_counted_and_the_round_goes_on():
    meta = FakeMeta(rules("<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"),
                    versioning="Enabled")
    for key in ("tmp/a", "tmp/b"):
        meta.index["bkt"][key] = {"mtime": OLD_MS, "ts": OLD_MS, "deleted": True, "marker": True,
                                  "version_id": V.make_id(OLD_MS, "abcdef012345")}
    meta.refuse.add("tmp/a")
    rep = asyncio.run(runner(meta).run_round())
    assert (rep.markers_removed, rep.failures, rep.phase) == (1, 1, "done")
    assert "refused by Object Lock" in rep.errors[0][2]


def test_a_lock_found_just_before_the_delete_keeps_the_version():
    meta = FakeMeta(rules("<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
                          "</NoncurrentVersionExpiration>"), versioning="Enabled")
    old, new = V.make_id(OLD_MS, "000000000001"), V.make_id(OLD_MS + 1, "000000000002")
    meta.index["bkt"]["tmp/k"] = obj(version_id=new, vts=OLD_MS + 1)
    meta.index["bkt"][V.row_key("tmp/k", old)] = obj(version_id=old, vts=OLD_MS)
    real = meta.get_version

    async def locked_meanwhile(bucket, key, vid):
        return dict(await real(bucket, key, vid), hold=True)
    meta.get_version = locked_meanwhile
    rep = asyncio.run(runner(meta).run_round())
    assert (rep.noncurrent_expired, rep.kept_locked, meta.deleted) == (0, 1, [])


def test_old_uploads_are_aborted_with_their_parts():
    meta = FakeMeta(rules("<AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation>"
                          "</AbortIncompleteMultipartUpload>"))
    uid_old, uid_new = "a" * 32, "b" * 32
    meta.index[UPLOADS + "bkt"]["tmp/x\x00" + uid_old] = {"initiated": OLD_MS, "mtime": OLD_MS}
    meta.index[UPLOADS + "bkt"]["tmp/y\x00" + uid_new] = {"initiated": int(NOW * 1000), "mtime": int(NOW * 1000)}
    meta.index[UPLOADS + "bkt"]["other/z\x00" + uid_new] = {"initiated": OLD_MS, "mtime": OLD_MS}
    rep = asyncio.run(runner(meta).run_round())
    assert rep.uploads_aborted == 1
    assert ("record", f"{UPLOADS}bkt/tmp/x\x00{uid_old}") in meta.deleted


@pytest.mark.parametrize("state", [None, "Enabled"])
def test_an_object_written_meanwhile_is_left_to_the_next_round(state):
    meta = FakeMeta(rules("<Expiration><Days>1</Days></Expiration>"), versioning=state)
    meta.index["bkt"]["tmp/a"] = obj(**({"version_id": V.make_id(OLD_MS, "0" * 12)} if state else {}))
    r = runner(meta)

    async def newer(bucket, key, judge, raw=False, **kw):
        judge(obj(ts=OLD_MS + 5))                # another version is current now

    async def precondition_failed(*a, **kw):
        raise E.PreconditionFailed()
    meta.compare_and_set = newer
    meta.put_version = precondition_failed
    rep = asyncio.run(r.run_round())
    assert (rep.expired, rep.raced, rep.failures) == (0, 1, 0)


def test_a_metadata_service_not_answering_is_retried_soon_not_a_failed_round():
    from minis3.meta.replica import ReplicaError
    meta = FakeMeta(rules("<Expiration><Days>1</Days></Expiration>"))

    async def down():
        raise ReplicaError("meta-az-a: connection refused")
    meta.list_buckets = down
    r = runner(meta, interval_s=3600)
    rep = asyncio.run(r.run_round())
    assert rep.phase.startswith("the metadata service did not answer") and r._pause_s == runner_mod.RETRY_S
    meta.list_buckets = FakeMeta.list_buckets.__get__(meta)
    asyncio.run(r.run_round())
    assert r._pause_s == 3600
