"""`minis3 inspect s3://BUCKET/KEY`: everything minis3 knows about one object, checked live.

    minis3 inspect s3://photos/cat.jpg               the record, its partition, its fragments
    minis3 inspect s3://photos/cat.jpg --json
    minis3 inspect s3://photos/cat.jpg --segment 0 --bytes   the first bytes of each fragment
    minis3 inspect s3://photos/cat.jpg --version-id V        one version of the key, in full

It shows

* the **metadata record** (a quorum read, as the frontend does): version
  (hybrid-logical-clock timestamp, version id, placement epoch), size, ETag,
  checksum, content type, user metadata and tags; the **storage class**, its
  erasure scheme and where its fragments go (ec/storage_class.py: a
  ONEZONE_IA object's fragments are all in one AZ, lost with it);
* the **index partition** the key falls in: its key range and the metadata
  process holding its replica in each AZ (the partition map);
* how the bytes are stored: **inline** in the record, or **erasure-coded**:
  segments, k data + m parity fragments, and for each fragment its node, AZ
  and size, laid out with one column per AZ (``cluster/where.py``), with a
  live **health check**: each fragment is read back whole from its node and
  every block's checksum verified (``verified``), or found ``corrupt`` (the
  node refuses it and moves it to quarantine; the scrubber rebuilds it),
  ``missing``, on a ``node down``, or on a **handoff** node (written while
  its home node was down);
* how the object is **encrypted** (frontend/keys.py, core/seal.py): SSE-S3,
  SSE-KMS (its key) or SSE-C, and that its data key is kept wrapped;
* with ``--segment N --bytes``, the first bytes of each fragment of segment
  N: a data fragment is a slice of the *sealed* segment (its offset in the
  object is shown): ciphertext, nothing readable. Where inspect runs beside the
  frontend (it can read the master key) it also opens the slice with the
  object's data key, so a learner sees the object's bytes come back; not for
  SSE-C, whose key only the client holds. A parity fragment is computed from
  all the data fragments and is no copy;
* every **version** of the key (core/versions.py), newest first, as
  ListObjectVersions lists them (``MetaClient.list_versions``): its version
  id, time, size, whether it is a delete marker and whether it is the latest,
  and where its fragments are (each node and AZ, from the nodes' inventories,
  not read back; for the newest 100 versions). The object shown in full is the current version (a delete
  marker, when one is current: it has no data), or the one ``--version-id``
  names. A key of a bucket that never kept versions has one, ``null``.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import sys
from dataclasses import dataclass, field

import aiohttp

from ..core import versions as V
from ..core.hlc import physical_ms
from ..ec import storage_class as SC
from . import where
from ..config import Topology

VERIFIED, CORRUPT = "verified", "corrupt"
LOCATE_VERSIONS = 100          # the newest versions whose fragments are looked up (the rest: listed only)
PYECLIB_HEADER = 80            # bytes of liberasurecode's header at the start of every fragment


# ----------------------------------------------------------------------------- pure
def parse_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError("give the object as s3://BUCKET/KEY")
    bucket, _, key = url[5:].partition("/")
    if not bucket or not key:
        raise ValueError("give the object as s3://BUCKET/KEY")
    return bucket, key


def wall(ms: int) -> str:
    """Milliseconds since the epoch, for a person: 2023-11-14 22:13:20.123 UTC."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def version_of(record: dict) -> dict:
    """The record's version, spelled out: the HLC timestamp's wall-clock part and counter."""
    ts = int(record["ts"])
    ms = physical_ms(ts)
    return {"ts": ts, "wall_ms": ms, "wall": wall(ms), "counter": ts & 0xFFFF, "vid": record.get("vid"),
            "placement_epoch": int(record.get("pe", 0))}


def stored_as(record: dict) -> str:
    """How a version's bytes are kept: a delete marker has none."""
    if V.is_marker(record):
        return "delete marker"
    if not (record.get("ec") or any(p.get("ec") for p in record.get("parts") or [])):
        return "inline"
    return "multipart" if "parts" in record else "erasure-coded"


def key_entries(entries: list, key: str) -> tuple[list[tuple[dict, bool]], bool]:
    """The versions of ``key`` in one ListObjectVersions page asked with
    ``prefix=key`` (which also lists the keys ``key`` is a prefix of: they sort
    after all of its versions), as (record, is latest); and whether the page
    went past them (so no later page holds any)."""
    mine = [(rec, latest) for k, rec, latest in entries if k == key]
    return mine, len(mine) < len(entries)


def version_doc(record: dict, latest: bool, sets: list[where.FragmentSet] | None = None,
                placements: list[where.Placement] | None = None) -> dict:
    """One version of a key, as inspect lists it: id, time, size, delete
    marker or not, latest or not, and where its bytes are (``sets``: each
    fragment set inline, or its fragments' nodes and AZs; None: not looked up)."""
    marker = V.is_marker(record)
    ms = int(record.get("mtime") or physical_ms(int(record["ts"])))
    out = {"version_id": V.id_of(record), "latest": latest, "delete_marker": marker, "mtime_ms": ms,
           "time": wall(ms), "size": None if marker else int(record.get("size", 0)), "etag": record.get("etag"),
           "stored": stored_as(record), "sets": [] if marker else None}
    if sets is not None and not marker:
        pl = iter(placements or [])
        out["sets"] = []
        for fs in sets:
            if fs.ec is None:
                out["sets"].append({"label": fs.label, "size": fs.size, "inline": True})
                continue
            p = next(pl)
            out["sets"].append({"label": fs.label, "size": fs.size, "object_id": p.object_id, "readable": p.readable,
                                "full": p.full, "fragments": [
                                    {"index": f.index, "kind": f.kind, "node": f.node, "az": f.az,
                                     "state": f.state, "handoff": f.handoff} for f in p.fragments]})
    return out


def where_text(v: dict) -> str:
    """Where one version's bytes are, on one line: its fragments' nodes by AZ."""
    if v["delete_marker"]:
        return "delete marker: no data"
    if v["sets"] is None:
        return f"({v.get('note') or 'not looked up'})"
    out = []
    for s in v["sets"]:
        label = "" if s["label"] == "object" else s["label"] + ": "
        if s.get("inline"):
            out.append(label + "inline in the record")
            continue
        per_az: dict[str, list[str]] = {}
        for f in sorted(s["fragments"], key=lambda f: (f["az"], f["index"])):
            cell = f"{f['node']} #{f['index']}"
            if f["state"] != where.OK:
                cell += f" ({'node down' if f['state'] == where.UNREACHABLE else f['state']})"
            per_az.setdefault(f["az"], []).append(cell)
        out.append(label + "; ".join(f"{az}: {', '.join(cells)}" for az, cells in per_az.items()))
    return " | ".join(out)


def health_cell(f: where.Fragment, check: str | None) -> str:
    """One fragment's table cell with its live check."""
    text = f"{f.node} #{f.index} {f.kind}"
    if f.state == where.OK:
        text += f" {where.human(f.size)}"
        text += {VERIFIED: " verified", CORRUPT: " CORRUPT", None: " present"}.get(check, f" {check}")
    elif f.state == where.UNREACHABLE:
        text += " (node down)"
    elif f.state == where.MISSING:
        text += f" CORRUPT ({check})" if check and check.startswith("quarantined") else " MISSING"
    else:
        text += f" WRONG SIZE ({f.size} B, not {f.expected_size})"
    if f.handoff:
        text += f" [handoff; home {f.home}]"
    return text


def health_table(p: where.Placement, checks: dict[int, str], indent: str = "  ") -> str:
    """:func:`where.table`, each fragment with its live check."""
    return where.table(p, indent, cell=lambda f: health_cell(f, checks.get(f.index)))


def verdict(p: where.Placement, checks: dict[int, str], verified: bool = True) -> str:
    good = [f for f in p.fragments if f.state == where.OK and checks.get(f.index, VERIFIED) == VERIFIED]
    checked = "verified" if verified else "present"
    text = f"{len(good)} of {len(p.fragments)} fragments {checked}; "
    if len(good) >= p.k:
        text += "readable (any k = %d decode every segment)" % p.k
    else:
        text += f"NOT READABLE: fewer than k = {p.k}"
    full = len(good) == len(p.fragments) and not any(f.handoff for f in p.fragments)
    text += "; full redundancy" if full else "; NOT at full redundancy (the scrubber repairs it)"
    return text


def hexdump(data: bytes, width: int = 16) -> str:
    hx = " ".join(f"{b:02x}" for b in data[:width])
    asc = "".join(chr(b) if 32 <= b < 127 else "." for b in data[:width])
    return f"{hx.ljust(width * 3 - 1)}  |{asc}|"


# ----------------------------------------------------------------------------- I/O
@dataclass
class Inspection:
    bucket: str
    key: str
    location: where.Location
    partition: dict
    checks: list[dict[int, str]] = field(default_factory=list)     # per placement: index → check
    segment_bytes: list[dict] = field(default_factory=list)
    verified: bool = True                   # the fragments were read back (not only listed)
    latest: bool = True                     # the record is the key's current version
    versioning: str | None = None           # the bucket's: None (never enabled), Enabled, Suspended
    versions: list[dict] = field(default_factory=list)     # every version of the key (version_doc), newest first

    def doc(self) -> dict:
        rec = self.location.record
        out = {"bucket": self.bucket, "key": self.key, "version": version_of(rec), "version_id": V.id_of(rec),
               "is_latest": self.latest, "delete_marker": V.is_marker(rec), "versioning": self.versioning,
               "size": int(rec.get("size", 0)),
               "etag": rec.get("etag"), "checksum": rec.get("checksum"),
               "content_type": (rec.get("headers") or {}).get("content-type", "binary/octet-stream"),
               "headers": rec.get("headers") or {}, "user_metadata": rec.get("meta") or {},
               "tags": [list(t) for t in rec.get("tags") or []],
               "partition": self.partition,
               "stored": stored_as(rec), "storage_class": SC.of(rec), "placement": SC.describe(rec),
               "encryption": encryption_doc(rec),
               "sets": [], "versions": self.versions}
        pl = iter(zip(self.location.placements, self.checks))
        for fs in self.location.sets:
            if fs.ec is None:
                out["sets"].append({"label": fs.label, "size": fs.size, "inline": True})
                continue
            p, checks = next(pl)
            out["sets"].append({
                "label": fs.label, "size": fs.size, "object_id": p.object_id, "k": p.k, "m": p.m,
                "zone": fs.ec.get("zone"),
                "segment_size": p.segment_size, "segments": p.segments, "readable": p.readable, "full": p.full,
                "fragments": [{"index": f.index, "kind": f.kind, "node": f.node, "az": f.az, "home": f.home,
                               "handoff": f.handoff, "size": f.size, "expected_size": f.expected_size,
                               "state": f.state, "check": checks.get(f.index)} for f in p.fragments]})
        if self.segment_bytes:
            out["segment_bytes"] = self.segment_bytes
        return out


async def _verify(storage, p: where.Placement) -> dict[int, str]:
    """Read every present fragment back whole; each block's checksum is checked
    by the node and again here (StorageClient.get)."""
    from ..storage.client import FragmentError

    async def one(f: where.Fragment) -> tuple[int, str | None]:
        if f.state != where.OK:
            return f.index, None
        try:
            async for _ in storage.get(f.node, p.object_id, f.index, 0, p.segments - 1):
                pass
            return f.index, VERIFIED
        except FragmentError as exc:
            return f.index, "unreachable" if exc.unreachable else CORRUPT
    got = {i: c for i, c in await asyncio.gather(*(one(f) for f in p.fragments)) if c is not None}
    return got | await _quarantined(storage, p)


async def _quarantined(storage, p: where.Placement) -> dict[int, str]:
    """Missing fragments their node found corrupt and moved to quarantine
    (by its background audit, or on a read): index → "quarantined by …"."""
    out = {}
    for node in sorted({f.node for f in p.fragments if f.state == where.MISSING}):
        try:
            items = await storage.quarantine(node)
        except Exception:              # a node that cannot say: the fragment stays "missing"
            continue
        for it in items:
            if it.get("object_id") == p.object_id:
                f = next((f for f in p.fragments if f.index == int(it["index"]) and f.node == node), None)
                if f is not None:
                    out[f.index] = f"quarantined by {it.get('detected_by', 'the node')}: {it.get('problem', '')}"
    return out


def encryption_doc(rec: dict) -> dict:
    """How an object is encrypted at rest, as inspect shows it."""
    info = rec.get("sse")
    if not info:
        return {"alg": None, "text": "none: stored in the clear (written before minis3 encrypted objects)"}
    alg = info["alg"]
    text = {"AES256": "SSE-S3 (AES-256-GCM): its data key wrapped by the cluster's master key",
            "aws:kms": f"SSE-KMS (AES-256-GCM): its data key wrapped by the KMS key {info.get('kms')}"
                       + (" (S3 Bucket Key)" if info.get("bk") else ""),
            "SSE-C": "SSE-C (AES-256-GCM): its data key wrapped by the customer's key, which minis3 never "
                     "stores (a salted HMAC of it checks the next request's)"}.get(alg, alg)
    return {"alg": alg, "kms_key": info.get("kms"), "text": text}


def _opener(topo: Topology, rec: dict, ec: dict):
    """A LayoutCipher for ``ec``'s sealed segments, when this process can open
    the object's data key (its master key at hand, not SSE-C), else None."""
    from ..core.seal import LayoutCipher
    from ..frontend.keys import KeyService, key_dir
    info = rec.get("sse")
    if not info or "enc" not in ec or info["alg"] == "SSE-C":
        return None
    keys = KeyService.if_present(key_dir(topo.data_dir, topo.world is not None), topo.region)
    if keys is None:
        return None
    try:
        return LayoutCipher.of(keys.open(info), ec["enc"])
    except Exception:        # a key it cannot reach (a KMS key's file gone...): show the ciphertext only
        return None


async def _segment_bytes(storage, p: where.Placement, seg: int, count: int, cipher=None) -> list[dict]:
    """The first ``count`` bytes of each fragment of segment ``seg`` (after
    pyeclib's header), and for a data fragment its offset in the object (and,
    with ``cipher``, those bytes opened: ``plain_bytes``)."""
    from ..storage.client import FragmentError
    if not 0 <= seg < p.segments:
        raise ValueError(f"segment {seg} does not exist: {p.label} has segments 0..{p.segments - 1}")
    out = []
    for f in sorted(p.fragments, key=lambda f: f.index):
        row = {"index": f.index, "kind": f.kind, "node": f.node}
        try:
            async for block in storage.get(f.node, p.object_id, f.index, seg, seg):
                payload = block[PYECLIB_HEADER:]
                row["fragment_bytes"] = len(payload)
                row["first_bytes"] = base64.b64encode(payload[:count]).decode()
                if f.kind == "data":
                    row["object_offset"] = seg * p.segment_size + f.index * len(payload)
                    if cipher is not None:
                        row["plain_bytes"] = base64.b64encode(
                            cipher.peek(seg, f.index * len(payload), payload[:count])).decode()
        except FragmentError as exc:
            row["error"] = str(exc)
        out.append(row)
    return out


async def key_versions(meta, bucket: str, key: str, page_size: int = 1000) -> list[tuple[dict, bool]]:
    """Every version of one key, newest first, as (listed record, is latest):
    ListObjectVersions pages (``MetaClient.list_versions``) with ``prefix=key``,
    kept to ``key`` itself. The records hold only what a listing shows."""
    out: list[tuple[dict, bool]] = []
    key_marker = version_marker = ""
    while True:
        page = await meta.list_versions(bucket, prefix=key, key_marker=key_marker, version_marker=version_marker,
                                        max_keys=page_size)
        mine, past = key_entries(page["entries"], key)
        out += mine
        if past or not page["truncated"]:
            return out
        key_marker, version_marker = page["next_key_marker"], page["next_version_marker"]


async def versions_of(topo: Topology, session: aiohttp.ClientSession, bucket: str, key: str) -> list[tuple[dict, bool]]:
    """:func:`key_versions`, from a topology (the console asks it after removing one)."""
    from ..meta.client import MetaClient
    return await key_versions(MetaClient.for_topology(session, topo), bucket, key)


async def _version_docs(topo: Topology, session, meta, bucket: str, key: str, listed: list[tuple[dict, bool]],
                        shown: where.Location) -> list[dict]:
    """:func:`version_doc` for each listed version, with where its fragments
    are (each version's full record, and the nodes' inventories) for the
    newest :data:`LOCATE_VERSIONS`."""
    from ..core import errors as E
    sem = asyncio.Semaphore(8)

    async def one(i: int, rec: dict, latest: bool) -> dict:
        if V.is_marker(rec):
            return version_doc(rec, latest)
        if V.id_of(rec) == V.id_of(shown.record):
            return version_doc(shown.record, latest, shown.sets, shown.placements)
        if i >= LOCATE_VERSIONS:
            return dict(version_doc(rec, latest), note=f"not looked up: only the newest {LOCATE_VERSIONS} are")
        async with sem:
            try:
                full = await meta.get_version(bucket, key, V.id_of(rec))
            except E.NoSuchVersion:
                return dict(version_doc(rec, latest), note="removed since it was listed")
            loc = await where.locate_record(topo, session, bucket, key, full)
        return version_doc(full, latest, loc.sets, loc.placements)
    return list(await asyncio.gather(*(one(i, r, latest) for i, (r, latest) in enumerate(listed))))


async def inspect(topo: Topology, session: aiohttp.ClientSession, bucket: str, key: str, *, verify: bool = True,
                  segment: int | None = None, count: int = 32, version_id: str | None = None) -> Inspection | None:
    """The key's current version (a delete marker, if one is current), or
    the version ``version_id`` names (NoSuchVersion if none), and every
    version of the key; None if the key has no version at all."""
    from ..meta.client import MetaClient
    from ..storage.client import StorageClient
    meta = MetaClient.for_topology(session, topo)
    listed = await key_versions(meta, bucket, key)
    want = version_id
    if want is None:
        current = next((rec for rec, latest in listed if latest), None)
        if current is None:
            return None
        want = V.id_of(current)
    rec = await meta.get_version(bucket, key, want)
    if V.is_marker(rec):
        loc = where.Location(bucket, key, rec, [], [])
    else:
        loc = await where.locate_record(topo, session, bucket, key, rec)
    latest = next((lt for r, lt in listed if V.id_of(r) == V.id_of(rec)), version_id is None)
    versioning = (await meta.get_bucket(bucket)).get("versioning")
    await meta.router.ensure()
    e = meta.router.entry(f"{bucket}/{key}")
    part = {"id": e.id, "lo": e.lo, "hi": e.hi, "replicas": dict(e.replicas),
            "map_version": meta.router.version} if e else {}
    storage = StorageClient(session, {n.id: n.url for n in topo.nodes})
    checks = [await _verify(storage, p) if verify else await _quarantined(storage, p) for p in loc.placements]
    ins = Inspection(bucket, key, loc, part, checks, verified=verify, latest=latest, versioning=versioning,
                     versions=await _version_docs(topo, session, meta, bucket, key, listed, loc))
    if segment is not None:
        if V.is_marker(rec):
            raise ValueError("a delete marker has no data: it has no fragments")
        if not loc.placements:
            raise ValueError("the object is stored inline: it has no fragments")
        first = next(fs for fs in loc.sets if fs.ec is not None)
        ins.segment_bytes = await _segment_bytes(storage, loc.placements[0], segment, count,
                                                 _opener(topo, rec, first.ec))
    return ins


def versions_lines(d: dict) -> list[str]:
    """The key's versions, one line each, newest first (``*``: the one shown in full)."""
    vs = d.get("versions") or []
    state = d.get("versioning") or "never enabled"
    lines = [f"  versions    {len(vs)}, newest first (bucket versioning: {state}; * the one shown above):"]
    for v in vs:
        size = "-" if v["size"] is None else where.human(v["size"])
        lines.append(f"    {'*' if v['version_id'] == d['version_id'] else ' '} {v['version_id']:<28}  "
                     f"{'latest' if v['latest'] else '':<6}  {v['time']}  {size:>9}  {where_text(v)}")
    return lines


def render(ins: Inspection) -> str:
    d = ins.doc()
    lines = _render_record(ins, d)
    return "\n".join(lines + [""] + versions_lines(d))


def _partition_line(d: dict) -> list[str]:
    p = d["partition"]
    if not p:
        return []
    hi = json.dumps(p["hi"]) if p["hi"] is not None else "end"
    return [f"  partition   {p['id']} [{json.dumps(p['lo'])}, {hi}) of map version {p['map_version']}; "
            "replicas " + ", ".join(f"{az}:{m}" for az, m in p["replicas"].items())]


def _render_record(ins: Inspection, d: dict) -> list[str]:
    v = d["version"]
    ck = d["checksum"] or {}
    head = [f"s3://{ins.bucket}/{ins.key}",
            f"  version     {v['wall']} (HLC {v['ts']}: wall clock ms + counter {v['counter']}), "
            f"version id {v['vid']}, placement epoch {v['placement_epoch']}",
            f"  versionId   {d['version_id']} ({'the latest' if d['is_latest'] else 'not the latest'})"]
    if d["delete_marker"]:
        head.append("  DELETE MARKER " + ("(the current version: GET and HEAD of the key answer 404 NoSuchKey); "
                                          if d["is_latest"] else "(not current); ") + "it has no data, no fragments")
        return head + _partition_line(d)
    lines = head + [
             f"  size        {d['size']:,} bytes ({where.human(d['size'])})",
             f"  ETag        \"{d['etag']}\"",
             f"  checksum    {ck.get('alg', '-')} {ck.get('value', '')} ({ck.get('type', 'FULL_OBJECT')})",
             f"  content     {d['content_type']}" + (f"; user metadata {json.dumps(d['user_metadata'])}"
                                                     if d["user_metadata"] else ""),
             "  tags        " + (", ".join(f"{k}={v}" for k, v in d["tags"]) + " (in the record: a tagging "
                                 "change writes a new version of it, never the fragments)" if d["tags"] else "none")]
    one_zone = (f"; unreadable while {d['sets'][0]['zone']} is down" if d["sets"] and d["sets"][0].get("zone")
                else "")
    lines.append(f"  class       {d['placement']}{one_zone}")
    lines.append(f"  encrypted   {d['encryption']['text']}")
    lines += _partition_line(d)
    if ins.location.inline:
        lines.append(f"  stored      inline in the metadata record ({d['size']:,} bytes: at most the "
                     f"inline threshold), on every metadata replica; no fragments")
        return lines
    lines.append(f"  stored      {d['stored']}" + (f", {len(ins.location.sets)} parts" if d["stored"] == "multipart"
                                                   else ""))
    pl = iter(zip(ins.location.placements, ins.checks))
    for fs in ins.location.sets:
        if fs.ec is None:
            lines += ["", f"  {fs.label}: {where.human(fs.size)} inline in the record"]
            continue
        pp, checks = next(pl)
        lines += ["", f"  {where.describe(pp)}; object id {pp.object_id}", health_table(pp, checks, "    "),
                  "    " + verdict(pp, checks, ins.verified)]
        if any(c == CORRUPT or c.startswith("quarantined") for c in checks.values()):
            lines.append("    a corrupt fragment was refused by its node and moved to its quarantine; "
                         "the scrubber's next pass rebuilds it from k others")
    if ins.segment_bytes:
        sealed = d["encryption"]["alg"] is not None
        lines += ["", "  first bytes of each fragment of the segment (after pyeclib's 80-byte header)"
                  + (": ciphertext, the segment was sealed before erasure coding" if sealed else "") + ":"]
        for row in ins.segment_bytes:
            if "error" in row:
                lines.append(f"    #{row['index']} {row['kind']:<6} {row['node']}: {row['error']}")
                continue
            data = base64.b64decode(row["first_bytes"])
            where_from = ((f"= sealed object bytes {row['object_offset']:,}.." if sealed
                           else f"= object bytes {row['object_offset']:,}..") if row["kind"] == "data"
                          else "computed from all data fragments")
            lines.append(f"    #{row['index']} {row['kind']:<6} {row['node']:<4} {hexdump(data)}  {where_from}")
            if "plain_bytes" in row:
                lines.append(f"    {'':<2} {'opened':<6} {'':<4} {hexdump(base64.b64decode(row['plain_bytes']))}  "
                             f"with the object's data key: the object's own bytes")
    return lines


def main(topo: Topology, url: str, *, as_json: bool, verify: bool, segment: int | None, show_bytes: bool,
         count: int = 32, version_id: str | None = None) -> int:
    from ..rpc.http import client_session
    try:
        bucket, key = parse_s3_url(url)
        if version_id is not None:
            V.parse_id(version_id)
    except Exception as exc:        # a bad URL, or a version id minis3 never makes
        print(f"minis3 inspect: {exc}", file=sys.stderr)
        return 2
    if show_bytes and segment is None:
        segment = 0

    async def run():
        async with client_session(topo.cluster_secret, timeout_s=30) as session:
            return await inspect(topo, session, bucket, key, verify=verify,
                                 segment=segment if show_bytes else None, count=count, version_id=version_id)
    try:
        ins = asyncio.run(run())
    except ValueError as exc:
        print(f"minis3 inspect: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:        # an S3 error from the quorum read (NoSuchBucket, ServiceUnavailable)
        print(f"minis3 inspect: {getattr(exc, 'code', exc.__class__.__name__)}: {exc}", file=sys.stderr)
        return 1
    if ins is None:
        print(f"minis3 inspect: no object s3://{bucket}/{key}", file=sys.stderr)
        return 1
    print(json.dumps(ins.doc(), indent=1) if as_json else render(ins))
    return 0
