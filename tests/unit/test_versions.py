"""Versions in the index, pure: ids and their order, where rows live, a key's
versions listed, ListObjectVersions pages over a scan, split keys."""
from __future__ import annotations

import pytest
from sortedcontainers import SortedDict

from minis3.core import errors as E
from minis3.core import versions as V
from minis3.meta.listing import list_page, versions_page
from minis3.meta.pmap import choose_split_key


def _rec(ts: int, *, vid: str | None = "x", marker: bool = False, deleted: bool = False) -> dict:
    r = {"ts": ts, "vts": ts, "mtime": ts, "etag": f"e{ts}", "size": ts}
    if vid is not None:
        r["version_id"] = V.make_id(ts, f"{ts:012x}") if vid == "x" else vid
    if marker:
        r.update(deleted=True, marker=True)
    if deleted:
        r["deleted"] = True
    return r


class Index:
    """A bucket's rows as the merged scan sees them."""
    def __init__(self):
        self.t = SortedDict()

    def key(self, key: str, *recs: dict, current: dict | None = None, bucket: str = "b"):
        """``recs``: the key's versions (newest last); the newest is the head
        unless ``current`` says otherwise; the others go to their rows."""
        head = current or recs[-1]
        self.t[f"{bucket}/{key}"] = head
        for r in recs:
            if r is not head:
                self.t[f"{bucket}/" + V.row_key(key, V.id_of(r))] = r

    def scan(self, start: str, inclusive: bool):
        for k in self.t.irange(minimum=start, inclusive=(inclusive, True)):
            yield k, self.t[k]


def test_version_ids_sort_newest_first_and_parse():
    a, b = V.make_id(100, "aaaaaaaaaaaa"), V.make_id(200, "bbbbbbbbbbbb")
    assert b < a and V.stamp_of(a) == 100 and V.parse_id(a) == a and V.parse_id("null") == "null"
    for bad in ("", "NULL", a.upper(), a + "0", "3/L4kqtJl40Nr8X8gdRQBpUMLUo"):
        with pytest.raises(E.InvalidArgument):
            V.parse_id(bad)


def test_rows_sort_with_their_head_and_before_any_longer_key():
    k = "dir/key"
    rows = [V.row_key(k, V.NULL), V.row_key(k, V.make_id(5, "0" * 12))]
    for other in ("dir/key0", "dir/key\x01", "dir/key/x", "dir/keyz"):
        assert all(k < r < other for r in rows)


def test_a_keys_versions_newest_first_with_the_null_version_in_its_place():
    idx = Index()
    null, v2, v3, v4 = _rec(10, vid=None), _rec(20), _rec(30), _rec(40)
    idx.key("k", null, v2, v3, v4)
    rows = [(k, r) for k, r in idx.t.items() if V.is_row(k)]
    got = [(V.id_of(r), latest) for r, latest in V.key_versions(v4, rows)]
    assert got == [(v4["version_id"], True), (v3["version_id"], False), (v2["version_id"], False), ("null", False)]


def test_a_version_in_both_head_and_row_is_listed_once_and_removed_ones_not_at_all():
    v1, v2 = _rec(10), _rec(20)
    tomb = dict(_rec(30), deleted=True)                 # a removed version's tombstone
    rows = sorted([("k\0" + v1["version_id"], v1), ("k\0" + v2["version_id"], v2),
                   ("k\0" + tomb["version_id"], tomb)])
    got = [V.id_of(r) for r, _ in V.key_versions(v2, rows)]
    assert got == [v2["version_id"], v1["version_id"]]


def test_versions_page_lists_every_version_and_pages_through_them():
    idx = Index()
    made = {}
    for i, key in enumerate(["a/1", "a/2", "b", "c"]):
        recs = [_rec(100 * i + j) for j in range(1, 6)]
        if key == "b":
            recs.append(_rec(100 * i + 50, marker=True))
        idx.key(key, *recs)
        made[key] = [V.id_of(r) for r in reversed(recs)]
    whole = versions_page(idx.scan, "b", max_keys=1000)
    assert [(k, V.id_of(r)) for k, r, _ in whole.entries] == [(k, v) for k in made for v in made[k]]
    assert [latest for _, _, latest in whole.entries].count(True) == 4
    for size in (1, 2, 3, 7):
        out, km, vm = [], "", ""
        while True:
            p = versions_page(idx.scan, "b", key_marker=km, version_marker=vm, max_keys=size)
            out += [(k, V.id_of(r)) for k, r, _ in p.entries]
            assert len(p.entries) <= size
            if not p.truncated:
                break
            km, vm = p.next_key_marker, p.next_version_marker
        assert out == [(k, v) for k in made for v in made[k]]
    p = versions_page(idx.scan, "b", delimiter="/")
    assert p.prefixes == ["a/"] and {k for k, _, _ in p.entries} == {"b", "c"}
    assert {k for k, _, _ in versions_page(idx.scan, "b", key_marker="b").entries} == {"c"}


def test_versions_page_resumes_after_the_null_version():
    idx = Index()
    v1, null, v3 = _rec(10), _rec(20, vid="null"), _rec(30)
    idx.key("k", v1, null, v3)
    p = versions_page(idx.scan, "b", key_marker="k", version_marker="null")
    assert [V.id_of(r) for _, r, _ in p.entries] == [v1["version_id"]]
    p = versions_page(idx.scan, "b", key_marker="k", version_marker=v3["version_id"])
    assert [V.id_of(r) for _, r, _ in p.entries] == ["null", v1["version_id"]]


def test_versions_page_resumes_by_seeking_not_walking():
    """Resuming after a version of a key with many versions reads the head,
    the null row and the rows after the marker: not the rows before it."""
    idx = Index()
    recs = [_rec(i) for i in range(1, 2001)]
    idx.key("many", *recs)
    read = []

    def counting_scan(start, inclusive):
        for item in idx.scan(start, inclusive):
            read.append(item[0])
            yield item
    marker = V.id_of(recs[100])                         # near the end (oldest first in `recs`)
    p = versions_page(counting_scan, "b", key_marker="many", version_marker=marker, max_keys=10)
    assert [V.id_of(r) for _, r, _ in p.entries] == [V.id_of(r) for r in reversed(recs[90:100])]
    assert len(read) < 30


def test_list_page_skips_markers_unless_asked():
    idx = Index()
    idx.key("gone", _rec(1), _rec(2, marker=True))
    idx.key("here", _rec(3))
    heads = Index()
    heads.t = SortedDict({k: v for k, v in idx.t.items() if not V.is_row(k)})
    assert [k for k, _ in list_page(heads.scan, "b").entries] == ["here"]
    assert [k for k, _ in list_page(heads.scan, "b", markers=True).entries] == ["gone", "here"]


def test_a_split_never_falls_inside_a_keys_versions():
    keys = []
    for i in range(50):
        k = f"b/k{i:03d}"
        keys.append(k)
        keys += [k + "\0" + V.make_id(j, "0" * 12) for j in range(20)]
    keys.sort()
    cut = choose_split_key(keys, "", None)
    assert cut is not None and "\0" not in cut
    for k in keys:
        head = V.head_of_row(k)
        assert (k < cut) == (head < cut)


def test_the_current_version_is_listed_first_when_another_has_its_stamp():
    head = {"ts": 9, "vts": 7, "vid": "aaaa", "version_id": V.make_id(7, "aaaa")}
    row = {"ts": 8, "vts": 7, "vid": "ffff", "version_id": V.make_id(7, "ffff")}
    older = {"ts": 5, "vts": 5, "vid": "bbbb", "version_id": V.make_id(5, "bbbb")}
    rows = sorted([(V.row_key("k", r["version_id"]), r) for r in (row, older)])
    assert [(r["vid"], latest) for r, latest in V.key_versions(head, rows)] == \
        [("aaaa", True), ("ffff", False), ("bbbb", False)]
