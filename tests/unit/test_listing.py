"""The LIST page walker against a plain sorted dict, with no processes."""
from hypothesis import given, settings
from hypothesis import strategies as st
from sortedcontainers import SortedDict

from minis3.meta.listing import after_prefix, list_page


def make(keys, deleted=()):
    d = SortedDict({f"bkt/{k}": ({"deleted": True, "ts": 1} if k in deleted else {"ts": 1}) for k in keys})
    d["bkt0/other"] = {"ts": 1}
    d["bk/other"] = {"ts": 1}

    def scan(start, inclusive):
        for k in d.irange(minimum=start, inclusive=(inclusive, True)):
            yield k, d[k]
    return scan


def reference(keys, prefix, delimiter):
    out, prefixes = [], []
    for k in sorted(keys):
        if not k.startswith(prefix):
            continue
        i = k.find(delimiter, len(prefix)) if delimiter else -1
        if i >= 0:
            cp = k[:i + len(delimiter)]
            if cp not in prefixes:
                prefixes.append(cp)
                out.append(("P", cp))
        else:
            out.append(("K", k))
    return out


def walk(scan, prefix, delimiter, max_keys):
    got, marker = [], ""
    for _ in range(10_000):
        page = list_page(scan, "bkt", prefix, delimiter, marker, max_keys)
        items = [("K", k) for k, _ in page.entries] + [("P", p) for p in page.prefixes]
        got += sorted(items, key=lambda x: x[1])
        assert len(items) <= max_keys
        if not page.truncated:
            return got
        marker = page.next_marker
    raise AssertionError("did not finish")


keys_st = st.lists(st.text(alphabet="ab/c\u00e9\U0001F600", min_size=1, max_size=6), max_size=40, unique=True)


@settings(max_examples=300)
@given(keys=keys_st, prefix=st.sampled_from(["", "a", "a/", "b", "\u00e9"]),
       delimiter=st.sampled_from(["", "/", "b"]), max_keys=st.integers(1, 7))
def test_pages_concatenate_to_the_reference_listing(keys, prefix, delimiter, max_keys):
    assert walk(make(keys), prefix, delimiter, max_keys) == reference(keys, prefix, delimiter)


@given(keys=keys_st, data=st.data())
def test_tombstones_are_skipped(keys, data):
    deleted = set(data.draw(st.lists(st.sampled_from(keys), unique=True))) if keys else set()
    live = [k for k in keys if k not in deleted]
    assert walk(make(keys, deleted), "", "/", 3) == reference(live, "", "/")


class CountingScan:
    """A scan over ``d`` that counts the records it visits."""

    def __init__(self, d: SortedDict):
        self.d, self.visited = d, 0

    def __call__(self, start, inclusive):
        for k in self.d.irange(minimum=start, inclusive=(inclusive, True)):
            self.visited += 1
            yield k, self.d[k]


def test_page_cost_does_not_depend_on_bucket_size():
    scan = CountingScan(SortedDict({f"bkt/{i:07d}": {"ts": 1} for i in range(100_000)}))
    page = list_page(scan, "bkt", "", "", "0050000", 1000)
    assert len(page.entries) == 1000 and page.truncated
    assert scan.visited <= 1001


def test_common_prefix_skips_with_one_seek():
    scan = CountingScan(SortedDict({f"bkt/dir{j}/{i:05d}": {"ts": 1} for j in range(3) for i in range(10_000)}))
    page = list_page(scan, "bkt", "", "/", "", 1000)
    assert page.prefixes == ["dir0/", "dir1/", "dir2/"] and not page.truncated
    assert scan.visited <= 4


def test_max_scan_bounds_a_page_of_tombstones():
    keys = [f"{i:05d}" for i in range(50)]
    page = list_page(make(keys, set(keys)), "bkt", max_keys=10, max_scan=20)
    assert page.truncated and page.entries == [] and page.next_marker == "00019"


def test_after_prefix():
    assert after_prefix("a/") == "a0"
    assert all(not ("a/" + s < "a/" or "a/" + s >= after_prefix("a/")) for s in ["", "zz", "\U0010FFFF"])


def test_after_prefix_at_the_ends_of_unicode():
    # U+10FFFF has no successor: the last character before it is incremented.
    assert after_prefix("a\U0010ffff") == "b"
    assert after_prefix("a\U0010ffff\U0010ffff") == "b"
    # U+D7FF's successor would be a surrogate, which no key holds (nor a scan can send).
    assert after_prefix("a\ud7ff") == "a\ue000"
    # Only U+10FFFF: past every key (at most 1024 UTF-8 bytes, 256 of these).
    end = after_prefix("\U0010ffff")
    assert end.encode("utf-8") and len(end.encode("utf-8")) <= 1100
    for p in ("a\U0010ffff", "a\ud7ff", "\U0010ffff", "\U0010ffff\U0010ffff", "x\U0010ffff\U0010ffffy"):
        end = after_prefix(p)
        end.encode("utf-8")                                   # no surrogate
        for s in ("", "z", "\U0010ffff" * 3, "\U0010ffff" * 250):
            assert p + s < end
        assert not any("\ud800" <= c <= "\udfff" for c in end)


def test_list_page_with_prefix_ending_in_the_last_code_point():
    keys = ["a\U0010ffff", "a\U0010ffffz", "b", "\U0010ffff\U0010ffff"]
    data = {"bkt/" + k: {"etag": "e"} for k in keys}

    def scan(start, inclusive):
        for k in sorted(data):
            if k > start or (inclusive and k == start):
                yield k, data[k]
    assert [k for k, _ in list_page(scan, "bkt", prefix="a\U0010ffff").entries] == ["a\U0010ffff", "a\U0010ffffz"]
    assert [k for k, _ in list_page(scan, "bkt", prefix="\U0010ffff").entries] == ["\U0010ffff\U0010ffff"]
    page = list_page(scan, "bkt", delimiter="\U0010ffff")
    assert page.prefixes == ["a\U0010ffff", "\U0010ffff"] and [k for k, _ in page.entries] == ["b"]
