"""Listing through boto3 against the real cluster: ListObjectsV2 and ListObjects
(v1) over a bucket of 2,000+ keys — paging, continuation tokens, markers,
prefixes, delimiters, StartAfter, FetchOwner, KeyCount; the paginators;
unicode keys with and without EncodingType=url; MaxKeys=0; invalid arguments;
deleted keys. Every key exactly once, in UTF-8 byte order."""
import hashlib
import string
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from .conftest import make_client
from .s3helpers import raw_query_client


def err(exc_info) -> tuple[str, int]:
    e = exc_info.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]


def utf8_sorted(keys):
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def body_for(key: str) -> bytes:
    return b"x" * (len(key) % 3)        # 0, 1 or 2 bytes


D, S, F = 10, 10, 20
TREE_KEYS = [f"dir{d}/sub{s}/file{i}" for d in range(D) for s in range(S) for i in range(F)]
TOP_KEYS = ["a-top", "dir", "dir5", "m/", "readme.txt", "zzz"]
ALL_KEYS = utf8_sorted(TREE_KEYS + TOP_KEYS)
assert len(TREE_KEYS) == 2000


def expected(keys, prefix="", delimiter="", after=""):
    """S3's answer computed locally: (contents, common prefixes) after ``after``."""
    contents, prefixes = [], []
    for k in utf8_sorted(keys):
        if not k.startswith(prefix) or k.encode() <= after.encode():
            continue
        if delimiter:
            i = k.find(delimiter, len(prefix))
            if i >= 0:
                cp = k[:i + len(delimiter)]
                if cp not in prefixes:
                    prefixes.append(cp)
                continue
        contents.append(k)
    return contents, prefixes


def put_all(cluster, bucket, keys, threads=16):
    local = threading.local()

    def put(key):
        c = getattr(local, "client", None)
        if c is None:
            c = local.client = make_client(cluster.endpoint, max_pool_connections=4)
        c.put_object(Bucket=bucket, Key=key, Body=body_for(key))
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, keys))


@pytest.fixture(scope="module")
def big(cluster, s3):
    name = f"listing-big-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    put_all(cluster, name, ALL_KEYS)
    yield name
    for i in range(0, len(ALL_KEYS), 1000):
        s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": k} for k in ALL_KEYS[i:i + 1000]],
                                               "Quiet": True})
    s3.delete_bucket(Bucket=name)


def pages_v2(s3, bucket, **kw):
    """Every page of a ListObjectsV2 walk, by hand, checking each page's invariants."""
    pages, token = [], None
    while True:
        args = dict(kw, Bucket=bucket)
        if token:
            args["ContinuationToken"] = token
        p = s3.list_objects_v2(**args)
        n = len(p.get("Contents", [])) + len(p.get("CommonPrefixes", []))
        assert p["KeyCount"] == n
        assert n <= kw.get("MaxKeys", 1000)
        assert p["Name"] == bucket
        assert p["Prefix"] == kw.get("Prefix", "")
        if token:
            assert p["ContinuationToken"] == token
        else:
            assert "ContinuationToken" not in p
        pages.append(p)
        assert len(pages) < 5000, "listing does not terminate"
        if not p["IsTruncated"]:
            assert "NextContinuationToken" not in p
            return pages
        assert n > 0, "a truncated page must make progress"
        token = p["NextContinuationToken"]


def pages_v1(s3, bucket, **kw):
    """Every page of a ListObjects (v1) walk, by hand, as a v1 client does it."""
    pages, marker = [], None
    while True:
        args = dict(kw, Bucket=bucket)
        if marker is not None:
            args["Marker"] = marker
        p = s3.list_objects(**args)
        assert p["Marker"] == (marker or "")
        assert p["MaxKeys"] == kw.get("MaxKeys", 1000)
        pages.append(p)
        assert len(pages) < 5000, "listing does not terminate"
        if not p["IsTruncated"]:
            return pages
        if kw.get("Delimiter"):
            # With a delimiter S3 sends NextMarker (the last key or common prefix).
            marker = p["NextMarker"]
            last = max([o["Key"] for o in p.get("Contents", [])] + [c["Prefix"] for c in p.get("CommonPrefixes", [])],
                       key=lambda s: s.encode())
            assert marker == last
        else:
            assert "NextMarker" not in p
            marker = p["Contents"][-1]["Key"]


def flatten(pages):
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    return keys, prefixes


def merged_order(pages):
    """Keys and prefixes of all pages in the order the pages return them
    (within a page, both lists are sorted and interleave by key order)."""
    out = []
    for p in pages:
        out += utf8_sorted([o["Key"] for o in p.get("Contents", [])] + [c["Prefix"] for c in p.get("CommonPrefixes", [])])
    return out


# ---------------------------------------------------------------- ListObjectsV2 over 2,000 keys

def test_v2_full_listing_default_page(s3, big):
    pages = pages_v2(s3, big)
    assert [len(p["Contents"]) for p in pages] == [1000, 1000, len(ALL_KEYS) - 2000]
    keys, prefixes = flatten(pages)
    assert keys == ALL_KEYS and prefixes == []
    assert pages[0]["MaxKeys"] == 1000


@pytest.mark.parametrize("version, max_keys", [(2, 100), (2, 1000), (2, 37), (1, 1000), (1, 100), (1, 333)])
def test_paging_gives_every_key_once_in_order(s3, big, version, max_keys):
    """V2 by continuation token, v1 by marker: full pages, then the rest."""
    pages = (pages_v2 if version == 2 else pages_v1)(s3, big, MaxKeys=max_keys)
    keys, _ = flatten(pages)
    assert keys == ALL_KEYS
    assert len(pages) == -(-len(ALL_KEYS) // max_keys)
    if version == 2:
        assert all(p["KeyCount"] == max_keys for p in pages[:-1])


def test_v2_max_keys_above_1000_is_capped(s3, big):
    p = s3.list_objects_v2(Bucket=big, MaxKeys=5000)
    assert len(p["Contents"]) == 1000 and p["IsTruncated"]


def test_v2_contents_fields(s3, big):
    p = s3.list_objects_v2(Bucket=big, Prefix="dir0/sub0/", MaxKeys=5)
    for o in p["Contents"]:
        data = body_for(o["Key"])
        assert o["Size"] == len(data)
        assert o["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        assert o["StorageClass"] == "STANDARD"
        assert o["LastModified"].tzinfo is not None
        assert "Owner" not in o


def test_v2_paginator(s3, big):
    pag = s3.get_paginator("list_objects_v2")
    pages = list(pag.paginate(Bucket=big, PaginationConfig={"PageSize": 250}))
    assert len(pages) == 9
    keys, _ = flatten(pages)
    assert keys == ALL_KEYS
    # build_full_result merges the pages.
    full = pag.paginate(Bucket=big, PaginationConfig={"PageSize": 500}).build_full_result()
    assert [o["Key"] for o in full["Contents"]] == ALL_KEYS
    # MaxItems stops early and hands back a resumable token.
    first = pag.paginate(Bucket=big, PaginationConfig={"PageSize": 100, "MaxItems": 150}).build_full_result()
    assert [o["Key"] for o in first["Contents"]] == ALL_KEYS[:150]
    rest = pag.paginate(Bucket=big, PaginationConfig={"PageSize": 100, "StartingToken": first["NextToken"]}
                        ).build_full_result()
    assert [o["Key"] for o in rest["Contents"]] == ALL_KEYS[150:]


@pytest.mark.parametrize("prefix", ["dir3/", "dir3/sub4/", "dir3/sub4/file1", "dir", "d", "m/", "zzz", "nope",
                                    "dir3/sub4/file19", "dir3/sub4/file190"])
def test_v2_prefix(s3, big, prefix):
    want, _ = expected(ALL_KEYS, prefix)
    keys, prefixes = flatten(pages_v2(s3, big, Prefix=prefix, MaxKeys=150))
    assert keys == want and prefixes == []


@pytest.mark.parametrize("prefix,delimiter,max_keys", [
    ("", "/", 1000), ("", "/", 3), ("", "/", 1),
    ("dir3/", "/", 1000), ("dir3/", "/", 3), ("dir3/", "/", 5), ("dir3/", "/", 10),
    ("dir3/sub4/", "/", 6), ("dir", "/", 4), ("d", "/", 2), ("m/", "/", 1), ("m", "/", 1),
    ("", "/sub", 3), ("dir7/", "file", 4), ("", "1", 7), ("dir2", "sub", 2),
])
def test_v2_delimiter_common_prefixes(s3, big, prefix, delimiter, max_keys):
    want_keys, want_prefixes = expected(ALL_KEYS, prefix, delimiter)
    pages = pages_v2(s3, big, Prefix=prefix, Delimiter=delimiter, MaxKeys=max_keys)
    keys, prefixes = flatten(pages)
    assert keys == want_keys
    assert prefixes == want_prefixes                     # correct, in order, no duplicates across pages
    order = merged_order(pages)
    assert order == utf8_sorted(want_keys + want_prefixes)
    for p in pages:
        assert p["Delimiter"] == delimiter
    # No trailing empty page: the walk takes exactly as many pages as needed.
    assert len(pages) == max(1, -(-len(order) // max_keys))


def test_v2_delimiter_top_level(s3, big):
    p = s3.list_objects_v2(Bucket=big, Delimiter="/")
    assert [c["Prefix"] for c in p["CommonPrefixes"]] == [f"dir{d}/" for d in range(D)] + ["m/"]
    assert [o["Key"] for o in p["Contents"]] == ["a-top", "dir", "dir5", "readme.txt", "zzz"]
    assert p["KeyCount"] == 16 and not p["IsTruncated"]


def test_v2_page_ending_on_common_prefix(s3, big):
    # Keys: a-top, dir, dir0/ ... — a page of 3 ends on the common prefix dir0/;
    # the next page must not repeat it nor list anything inside it.
    p1 = s3.list_objects_v2(Bucket=big, Delimiter="/", MaxKeys=3)
    assert [o["Key"] for o in p1["Contents"]] == ["a-top", "dir"]
    assert [c["Prefix"] for c in p1["CommonPrefixes"]] == ["dir0/"]
    assert p1["IsTruncated"]
    p2 = s3.list_objects_v2(Bucket=big, Delimiter="/", MaxKeys=3, ContinuationToken=p1["NextContinuationToken"])
    assert [c["Prefix"] for c in p2["CommonPrefixes"]] == ["dir1/", "dir2/", "dir3/"]
    assert "Contents" not in p2


@pytest.mark.parametrize("start_after,prefix", [
    ("dir4/sub9/file9", ""), ("dir4/zzz", ""), ("", ""), ("a", ""), ("zzz", ""), ("zzzz", ""),
    ("dir2/sub3/file15", "dir2/sub3/"), ("a", "dir6/"), ("dir6/sub9/file9", "dir6/"), ("e", "dir6/"),
])
def test_v2_start_after(s3, big, start_after, prefix):
    want, _ = expected(ALL_KEYS, prefix, after=start_after)
    kw = {"StartAfter": start_after} if start_after else {}
    pages = pages_v2(s3, big, Prefix=prefix, MaxKeys=400, **kw)
    keys, _ = flatten(pages)
    assert keys == want
    if start_after:
        assert pages[0]["StartAfter"] == start_after


def test_v2_start_after_with_delimiter(s3, big):
    # StartAfter equal to a common prefix resumes after it.
    p = s3.list_objects_v2(Bucket=big, Delimiter="/", StartAfter="dir7/")
    assert [c["Prefix"] for c in p["CommonPrefixes"]] == ["dir8/", "dir9/", "m/"]
    assert [o["Key"] for o in p["Contents"]] == ["readme.txt", "zzz"]


def test_v2_continuation_token_wins_over_start_after(s3, big):
    p1 = s3.list_objects_v2(Bucket=big, Prefix="dir1/", MaxKeys=5)
    p2 = s3.list_objects_v2(Bucket=big, Prefix="dir1/", MaxKeys=5, StartAfter="dir1/sub5/",
                            ContinuationToken=p1["NextContinuationToken"])
    want, _ = expected(ALL_KEYS, "dir1/")
    assert [o["Key"] for o in p1["Contents"] + p2["Contents"]] == want[:10]
    assert p2["StartAfter"] == "dir1/sub5/"


def test_empty_bucket_listing(s3, bucket):
    p = s3.list_objects_v2(Bucket=bucket)
    assert p["KeyCount"] == 0 and p["IsTruncated"] is False and "Contents" not in p
    assert p["Name"] == bucket and p["Prefix"] == "" and p["MaxKeys"] == 1000
    p = s3.list_objects(Bucket=bucket, Delimiter="/")
    assert p["IsTruncated"] is False and "Contents" not in p and "CommonPrefixes" not in p


def test_v2_fetch_owner(s3, big):
    p = s3.list_objects_v2(Bucket=big, Prefix="dir1/", MaxKeys=10, FetchOwner=True)
    assert len(p["Contents"]) == 10
    owner = s3.list_buckets()["Owner"]
    for o in p["Contents"]:
        assert o["Owner"]["ID"] == owner["ID"]
    p = s3.list_objects_v2(Bucket=big, Prefix="dir1/", MaxKeys=10, FetchOwner=False)
    assert all("Owner" not in o for o in p["Contents"])


def test_v2_bad_continuation_token(cluster, big):
    c = make_client(cluster.endpoint)
    with pytest.raises(ClientError) as e:
        c.list_objects_v2(Bucket=big, ContinuationToken="!!!not-a-token!!!")
    assert err(e) == ("InvalidArgument", 400)


# ---------------------------------------------------------------- ListObjects (v1)

@pytest.mark.parametrize("prefix,delimiter,max_keys", [
    ("", "/", 3), ("", "/", 1000), ("dir3/", "/", 3), ("dir3/", "/", 10), ("dir", "/", 2), ("", "/sub", 4),
])
def test_v1_delimiter_next_marker(s3, big, prefix, delimiter, max_keys):
    want_keys, want_prefixes = expected(ALL_KEYS, prefix, delimiter)
    pages = pages_v1(s3, big, Prefix=prefix, Delimiter=delimiter, MaxKeys=max_keys)
    keys, prefixes = flatten(pages)
    assert keys == want_keys and prefixes == want_prefixes
    assert merged_order(pages) == utf8_sorted(want_keys + want_prefixes)
    assert len(pages) == max(1, -(-(len(want_keys) + len(want_prefixes)) // max_keys))


@pytest.mark.parametrize("marker,prefix", [("dir8/sub8/file8", ""), ("a", "dir6/sub1/"), ("dir9", ""),
                                           ("zzzz", ""), ("dir6/sub1/file2", "dir6/sub1/")])
def test_v1_marker(s3, big, marker, prefix):
    want, _ = expected(ALL_KEYS, prefix, after=marker)
    p = s3.list_objects(Bucket=big, Prefix=prefix, Marker=marker)
    assert p["Marker"] == marker and p["IsTruncated"] is False
    assert [o["Key"] for o in p.get("Contents", [])] == want


def test_v1_contents_have_owner(s3, big):
    p = s3.list_objects(Bucket=big, Prefix="dir2/sub2/", MaxKeys=3)
    assert len(p["Contents"]) == 3 and p["IsTruncated"]
    for o in p["Contents"]:
        assert o["Owner"]["ID"]
        assert o["Size"] == len(body_for(o["Key"]))


def test_v1_paginator(s3, big):
    pag = s3.get_paginator("list_objects")
    pages = list(pag.paginate(Bucket=big, PaginationConfig={"PageSize": 300}))
    assert len(pages) == 7
    assert flatten(pages)[0] == ALL_KEYS
    pages = list(pag.paginate(Bucket=big, Delimiter="/", Prefix="dir4/", PaginationConfig={"PageSize": 3}))
    keys, prefixes = flatten(pages)
    assert keys == [] and prefixes == [f"dir4/sub{s}/" for s in range(S)]
    full = pag.paginate(Bucket=big, Delimiter="/", PaginationConfig={"PageSize": 4}).build_full_result()
    want_keys, want_prefixes = expected(ALL_KEYS, "", "/")
    assert [o["Key"] for o in full["Contents"]] == want_keys
    assert [c["Prefix"] for c in full["CommonPrefixes"]] == want_prefixes


# ---------------------------------------------------------------- MaxKeys=0 and invalid arguments

def test_max_keys_zero(s3, big):
    p = s3.list_objects_v2(Bucket=big, MaxKeys=0)
    assert p["KeyCount"] == 0 and p["MaxKeys"] == 0
    assert "Contents" not in p and "CommonPrefixes" not in p
    assert p["IsTruncated"] is False and "NextContinuationToken" not in p
    p = s3.list_objects(Bucket=big, MaxKeys=0)
    assert p["MaxKeys"] == 0 and "Contents" not in p and p["IsTruncated"] is False


@pytest.mark.parametrize("op,method", [("ListObjectsV2", "list_objects_v2"), ("ListObjects", "list_objects")])
@pytest.mark.parametrize("query", [{"max-keys": "abc"}, {"max-keys": "-1"}, {"max-keys": "1.5"},
                                   {"encoding-type": "base64"}, {"encoding-type": "URL2"}],
                         ids=["max-keys-abc", "max-keys-negative", "max-keys-float", "enc-base64", "enc-other"])
def test_invalid_list_arguments(cluster, big, op, method, query):
    c = raw_query_client(cluster, op, **query)
    with pytest.raises(ClientError) as e:
        getattr(c, method)(Bucket=big)
    assert err(e) == ("InvalidArgument", 400)


def test_list_missing_bucket(s3):
    for call in (s3.list_objects_v2, s3.list_objects):
        with pytest.raises(ClientError) as e:
            call(Bucket=f"missing-{uuid.uuid4().hex[:8]}")
        assert err(e) == ("NoSuchBucket", 404)


# ---------------------------------------------------------------- unicode and special keys

KEY_1024 = "long/" + "日" * 339 + "ab"          # 5 + 1017 + 2 = 1024 UTF-8 bytes
assert len(KEY_1024.encode()) == 1024
SPECIAL_KEYS = ["ü", "über/straße", "日本語/ファイル.txt", "emoji-😀", "😀/x", "with space", "a+b", "100%",
                "percent%20not-space", "&<>\"'", "a&b=c?d#e", "tilde~", "back\\slash", "semi;colon",
                "dir/./dot", "dir/../up", "  leading-spaces", "trailing-space ", "ascii", "ÿ", "\u00a0nbsp",
                "z\u0301combining", "\ufffd", "𝄞-astral", KEY_1024]


@pytest.fixture
def special(cluster, bucket):
    put_all(cluster, bucket, SPECIAL_KEYS, threads=8)
    return bucket


def test_unicode_keys_round_trip_default_encoding(s3, special):
    # boto3 asks for encoding-type=url on its own and decodes the answer.
    keys, _ = flatten(pages_v2(s3, special, MaxKeys=4))
    assert keys == utf8_sorted(SPECIAL_KEYS)
    keys, _ = flatten(pages_v1(s3, special, MaxKeys=4))
    assert keys == utf8_sorted(SPECIAL_KEYS)
    for k in keys:
        assert s3.get_object(Bucket=special, Key=k)["Body"].read() == body_for(k)


def test_unicode_keys_explicit_url_encoding(s3, special):
    # Asked for explicitly, boto3 hands back what the server sent: check the encoding itself.
    for call in (s3.list_objects_v2, s3.list_objects):
        p = call(Bucket=special, EncodingType="url")
        assert p["EncodingType"] == "url"
        raw = [o["Key"] for o in p["Contents"]]
        assert [unquote_plus(k) for k in raw] == utf8_sorted(SPECIAL_KEYS)
        safe = set(string.ascii_letters + string.digits + "-_.~/*%+")
        for k in raw:
            assert set(k) <= safe, k           # percent-encoded: no raw space, &<>, non-ASCII
        enc = dict(zip(utf8_sorted(SPECIAL_KEYS), raw))
        assert enc["ascii"] == "ascii"
        assert enc["with space"] in ("with+space", "with%20space")
        assert enc["a+b"] == "a%2Bb"
        assert enc["100%"] == "100%25"
        assert enc["ü"] == "%C3%BC"
        assert enc["über/straße"].split("/")[1] == "stra%C3%9Fe"


def test_unicode_keys_without_encoding(cluster, special):
    # No encoding-type at all: keys travel as XML text (entities for &<>).
    c = raw_query_client(cluster, "ListObjectsV2", **{"encoding-type": None})
    pages = []
    token = None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        p = c.list_objects_v2(Bucket=special, MaxKeys=5, **kw)
        assert "EncodingType" not in p
        pages.append(p)
        if not p["IsTruncated"]:
            break
        token = p["NextContinuationToken"]
    assert flatten(pages)[0] == utf8_sorted(SPECIAL_KEYS)
    c1 = raw_query_client(cluster, "ListObjects", **{"encoding-type": None})
    p = c1.list_objects(Bucket=special)
    assert "EncodingType" not in p
    assert [o["Key"] for o in p["Contents"]] == utf8_sorted(SPECIAL_KEYS)


def test_unicode_prefix_delimiter_and_start_after(cluster, s3, special):
    keys = SPECIAL_KEYS
    for prefix, delim in [("日本語/", ""), ("ü", "/"), ("", "/"), ("😀", "/"), ("", "語"), ("", "😀")]:
        want_keys, want_prefixes = expected(keys, prefix, delim)
        got_keys, got_prefixes = flatten(pages_v2(s3, special, Prefix=prefix, Delimiter=delim, MaxKeys=2))
        assert (got_keys, got_prefixes) == (want_keys, want_prefixes), (prefix, delim)
        got_keys, got_prefixes = flatten(pages_v1(s3, special, Prefix=prefix, Delimiter=delim, MaxKeys=2))
        assert (got_keys, got_prefixes) == (want_keys, want_prefixes), (prefix, delim)
    # Echoed prefix / delimiter / start-after come back decoded and intact.
    p = s3.list_objects_v2(Bucket=special, Prefix="ü", Delimiter="/", StartAfter="ü")
    assert (p["Prefix"], p["Delimiter"], p["StartAfter"]) == ("ü", "/", "ü")
    assert [c["Prefix"] for c in p["CommonPrefixes"]] == ["über/"]
    # Raw (no encoding): the same, as XML text.
    c = raw_query_client(cluster, "ListObjectsV2", **{"encoding-type": None})
    p = c.list_objects_v2(Bucket=special, Prefix="😀", Delimiter="/")
    assert p["Prefix"] == "😀" and [c["Prefix"] for c in p["CommonPrefixes"]] == ["😀/"]
    assert [o["Key"] for o in p.get("Contents", [])] == []
    # StartAfter with a 1024-byte key and a token that encodes it.
    after = utf8_sorted(keys).index(KEY_1024)
    want = utf8_sorted(keys)[after + 1:]
    assert flatten(pages_v2(s3, special, StartAfter=KEY_1024, MaxKeys=1))[0] == want


def test_key_of_1024_bytes(s3, special):
    p = s3.list_objects_v2(Bucket=special, Prefix="long/")
    assert [o["Key"] for o in p["Contents"]] == [KEY_1024]
    assert s3.head_object(Bucket=special, Key=KEY_1024)["ContentLength"] == len(body_for(KEY_1024))
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=special, Key=KEY_1024 + "x", Body=b"")
    assert err(e) == ("KeyTooLongError", 400)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=special, Prefix="long/")["Contents"]] == [KEY_1024]


# ---------------------------------------------------------------- deleted keys

def test_deleted_keys_are_not_listed(cluster, s3, bucket):
    keys = [f"k{i:03d}" for i in range(60)] + [f"gone/{i}" for i in range(10)] + [f"half/{i}" for i in range(10)]
    put_all(cluster, bucket, keys, threads=8)
    deleted = {k for k in keys if k.startswith("gone/")} | {f"k{i:03d}" for i in range(0, 60, 2)} | {"half/3"}
    for k in ["k000", "k001", "k002", "k003", "k004", "k005"]:
        deleted.add(k)
    deleted = sorted(deleted)
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in deleted[:20]], "Quiet": True})
    for k in deleted[20:]:
        s3.delete_object(Bucket=bucket, Key=k)
    live = utf8_sorted(set(keys) - set(deleted))
    for mk in (1, 7, 1000):
        assert flatten(pages_v2(s3, bucket, MaxKeys=mk))[0] == live
        assert flatten(pages_v1(s3, bucket, MaxKeys=mk))[0] == live
        # A common prefix whose keys are all deleted is gone too.
        want = expected(live, "", "/")
        assert flatten(pages_v2(s3, bucket, Delimiter="/", MaxKeys=mk)) == want
        assert flatten(pages_v1(s3, bucket, Delimiter="/", MaxKeys=mk)) == want
    assert "gone/" not in [c["Prefix"] for c in s3.list_objects_v2(Bucket=bucket, Delimiter="/")["CommonPrefixes"]]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="gone/")["KeyCount"] == 0
    # Re-created after delete: listed again, with the new size.
    s3.put_object(Bucket=bucket, Key="gone/3", Body=b"back!")
    p = s3.list_objects_v2(Bucket=bucket, Prefix="gone/")
    assert [(o["Key"], o["Size"]) for o in p["Contents"]] == [("gone/3", 5)]


def test_overwritten_key_listed_once_with_latest_size(s3, bucket):
    for body in (b"1", b"22", b"333"):
        s3.put_object(Bucket=bucket, Key="same", Body=body)
    p = s3.list_objects_v2(Bucket=bucket)
    assert [(o["Key"], o["Size"]) for o in p["Contents"]] == [("same", 3)]
    assert p["Contents"][0]["ETag"] == f'"{hashlib.md5(b"333").hexdigest()}"'
