"""Multipart-upload XML documents of minis3.core.multipart_xml: each document read
back with ElementTree (names, order, text) and with botocore's own response
parser; the CompleteMultipartUpload parser fed what boto3 really sends, hand-
written bodies, every malformed shape, and a property round trip."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import unquote_plus

import botocore.parsers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minis3.core import errors as E
from minis3.core import multipart_xml as X
from minis3.core import xmldoc

from .fake_s3 import TRICKY_KEYS, FakeS3

S3NS = "http://s3.amazonaws.com/doc/2006-03-01/"
NS = "{" + S3NS + "}"
T0 = 1255369830000  # 2009-10-12T17:50:30.000Z
OWNER = ("75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a", "webfile")
UPLOAD_ID = "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"

ALGS = [("crc32", "ChecksumCRC32"), ("crc32c", "ChecksumCRC32C"),
        ("crc64nvme", "ChecksumCRC64NVME"), ("sha1", "ChecksumSHA1"),
        ("sha256", "ChecksumSHA256")]


@pytest.fixture(scope="module")
def s3() -> FakeS3:
    return FakeS3()


_CLIENT = FakeS3().client


def raw_parse(op: str, xml: bytes) -> dict:
    """botocore's RestXMLParser alone (no handlers)."""
    om = _CLIENT.meta.service_model.operation_model(op)
    return botocore.parsers.RestXMLParser().parse(
        {"body": xml, "headers": {}, "status_code": 200}, om.output_shape)


def tags(el: ET.Element) -> list[str]:
    return [c.tag.removeprefix(NS) for c in el]


def texts(el: ET.Element) -> list[tuple[str, str | None]]:
    """(name, text) of the leaf children of ``el``."""
    return [(c.tag.removeprefix(NS), c.text) for c in el if len(c) == 0]


def parse_doc(body: bytes, root: str) -> ET.Element:
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    el = ET.fromstring(body)
    assert el.tag == NS + root
    return el


# ------------------------------------------------------------------ CreateMultipartUpload

def test_initiate_layout():
    root = parse_doc(X.initiate_multipart_upload_xml("bkt", "a/b c.txt", UPLOAD_ID),
                     "InitiateMultipartUploadResult")
    assert texts(root) == [("Bucket", "bkt"), ("Key", "a/b c.txt"), ("UploadId", UPLOAD_ID)]


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_initiate_escapes_keys_and_boto_reads_them(s3, key):
    body = X.initiate_multipart_upload_xml("bkt", key, UPLOAD_ID)
    assert ET.fromstring(body).find(NS + "Key").text == key
    s3.answer(body)
    resp = s3.client.create_multipart_upload(Bucket="bkt", Key=key)
    assert (resp["Bucket"], resp["Key"], resp["UploadId"]) == ("bkt", key, UPLOAD_ID)


def test_initiate_special_chars_are_entities():
    body = X.initiate_multipart_upload_xml("b", "<a>&b", "u")
    assert b"<Key>&lt;a&gt;&amp;b</Key>" in body
    assert b"<Key>a&#x1;b</Key>" in X.initiate_multipart_upload_xml("b", "a\x01b", "u")


# ------------------------------------------------------------------ CompleteMultipartUpload: parse

BOTO_LIKE = (
    b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b'<Part><ETag>"abc"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32>'
    b"<PartNumber>1</PartNumber></Part>"
    b'<Part><ETag>"def-2"</ETag><ChecksumCRC32>y/Q5Jg==</ChecksumCRC32>'
    b"<PartNumber>2</PartNumber></Part>"
    b"</CompleteMultipartUpload>")


def test_parse_complete_realistic_body():
    assert X.parse_complete_multipart_upload(BOTO_LIKE) == [
        {"part": 1, "etag": "abc", "checksums": {"crc32": "AAAAAA=="}},
        {"part": 2, "etag": "def-2", "checksums": {"crc32": "y/Q5Jg=="}},
    ]


def test_parse_complete_what_boto3_sends(s3):
    s3.answer(X.complete_multipart_upload_xml(location="http://x/b/k", bucket="b", key="k",
                                              etag="e-3"))
    s3.client.complete_multipart_upload(
        Bucket="b", Key="k", UploadId=UPLOAD_ID,
        MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"',
             "ChecksumCRC32": "AAAAAA=="},
            {"PartNumber": 2, "ETag": '"fedcba9876543210fedcba9876543210"',
             "ChecksumSHA256": "A" * 43 + "=", "ChecksumCRC64NVME": "AAAAAAAAAAA="},
            {"PartNumber": 3, "ETag": "unquoted"},
        ]})
    body = s3.last_body
    assert body.startswith(b"<CompleteMultipartUpload") and S3NS.encode() in body
    assert X.parse_complete_multipart_upload(body) == [
        {"part": 1, "etag": "0123456789abcdef0123456789abcdef",
         "checksums": {"crc32": "AAAAAA=="}},
        {"part": 2, "etag": "fedcba9876543210fedcba9876543210",
         "checksums": {"sha256": "A" * 43 + "=", "crc64nvme": "AAAAAAAAAAA="}},
        {"part": 3, "etag": "unquoted", "checksums": {}},
    ]


def test_parse_complete_without_namespace_and_pretty_printed():
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload>
  <Part>
    <PartNumber> 7 </PartNumber>
    <ETag>&quot;a1&quot;</ETag>
  </Part>
  <Part>
    <PartNumber>3</PartNumber>
    <ETag>a2</ETag>
  </Part>
</CompleteMultipartUpload>
"""
    assert X.parse_complete_multipart_upload(body) == [
        {"part": 7, "etag": "a1", "checksums": {}},
        {"part": 3, "etag": "a2", "checksums": {}},
    ]


@pytest.mark.parametrize("alg, element", ALGS)
def test_parse_complete_each_checksum(alg, element):
    body = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag>"
            f"<{element}>dmFsdWU=</{element}></Part></CompleteMultipartUpload>").encode()
    assert X.parse_complete_multipart_upload(body) == [
        {"part": 1, "etag": "e", "checksums": {alg: "dmFsdWU="}}]


def test_parse_complete_all_checksums_in_one_part():
    inner = "".join(f"<{el}>{alg}</{el}>" for alg, el in ALGS)
    body = (f"<CompleteMultipartUpload><Part>{inner}<ETag>e</ETag><PartNumber>1</PartNumber>"
            f"</Part></CompleteMultipartUpload>").encode()
    [part] = X.parse_complete_multipart_upload(body)
    assert part["checksums"] == {alg: alg for alg, _ in ALGS}


def test_parse_complete_leaves_order_duplicates_and_ranges_to_the_handler():
    parts = [(3, "c"), (1, "a"), (1, "a"), (0, "z"), (-4, "n"), (10001, "big"),
             (10**30, "huge"), (2, "")]
    body = ("<CompleteMultipartUpload>" + "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in parts)
        + "</CompleteMultipartUpload>").encode()
    got = X.parse_complete_multipart_upload(body)
    assert [(p["part"], p["etag"]) for p in got] == parts
    assert X.parse_complete_multipart_upload(
        b"<CompleteMultipartUpload><Part><PartNumber>+5</PartNumber><ETag>e</ETag></Part>"
        b"</CompleteMultipartUpload>")[0]["part"] == 5


@pytest.mark.parametrize("written, returned", [
    ('"abc"', "abc"),
    ("abc", "abc"),
    ('"abc', '"abc'),
    ('abc"', 'abc"'),
    ('""', ""),
    ('"', '"'),
    ('""abc""', '"abc"'),
    (' "abc" ', ' "abc" '),
    ("W/&quot;x&quot;", 'W/"x"'),
    ("&quot;0123-2&quot;", "0123-2"),
])
def test_parse_complete_etag_quotes_stripped_once(written, returned):
    body = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{written}</ETag>"
            f"</Part></CompleteMultipartUpload>").encode()
    assert X.parse_complete_multipart_upload(body)[0]["etag"] == returned


def test_parse_complete_ignores_unknown_and_foreign_elements():
    body = (b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/" '
            b'xmlns:o="urn:other"><!-- c --><?pi x?><Other/><o:Part><PartNumber>9</PartNumber>'
            b"</o:Part><Part><Size>3</Size><o:ETag>x</o:ETag><ETag>e</ETag><ChecksumSHA512>z"
            b"</ChecksumSHA512><o:ChecksumCRC32>q</o:ChecksumCRC32><PartNumber>1</PartNumber>"
            b"<LastModified>t</LastModified></Part></CompleteMultipartUpload>")
    assert X.parse_complete_multipart_upload(body) == [
        {"part": 1, "etag": "e", "checksums": {}}]


def _complete_body(n: int) -> bytes:
    parts = "".join(f'<Part><PartNumber>{i}</PartNumber><ETag>"{i:032x}"</ETag></Part>'
                    for i in range(1, n + 1))
    return f'<CompleteMultipartUpload xmlns="{S3NS}">{parts}</CompleteMultipartUpload>'.encode()


def test_parse_complete_part_count_limit():
    got = X.parse_complete_multipart_upload(_complete_body(10_000))
    assert len(got) == 10_000 and got[-1] == {"part": 10_000, "etag": f"{10_000:032x}",
                                              "checksums": {}}
    with pytest.raises(E.MalformedXML):
        X.parse_complete_multipart_upload(_complete_body(10_001))


def test_parse_complete_size_limit_fits_a_full_realistic_body():
    # 10,000 parts, each with a multipart-style ETag and all five checksums,
    # pretty-printed: well under the limit.
    part = ("\n  <Part>\n    <ETag>&quot;0123456789abcdef0123456789abcdef-10000&quot;</ETag>\n"
            + "".join(f"    <{el}>{'A' * 43}=</{el}>\n" for _, el in ALGS)
            + "    <PartNumber>10000</PartNumber>\n  </Part>")
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUpload xmlns="{S3NS}">'
            + part * 10_000 + "\n</CompleteMultipartUpload>").encode()
    assert len(body) < X.MAX_COMPLETE_MULTIPART_BODY
    assert len(X.parse_complete_multipart_upload(body)) == 10_000
    padded = body.replace(b"<Part>", b"<Part>" + b" " * 1000, 10_000)
    assert len(padded) > X.MAX_COMPLETE_MULTIPART_BODY
    with pytest.raises(E.MalformedXML):
        X.parse_complete_multipart_upload(padded)


_P = "<PartNumber>1</PartNumber><ETag>e</ETag>"


@pytest.mark.parametrize("body", [
    b"",
    b"   ",
    b"not xml",
    b"\xff\xfe<garbage",
    b"<CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>",
    b"<CompleteMultipartUpload/>",
    b"<CompleteMultipartUpload></CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Other/></CompleteMultipartUpload>",
    f"<Complete><Part>{_P}</Part></Complete>".encode(),
    f"<CompleteMultipartUploadResult><Part>{_P}</Part></CompleteMultipartUploadResult>".encode(),
    f'<CompleteMultipartUpload xmlns="urn:other"><Part>{_P}</Part>'
    f"</CompleteMultipartUpload>".encode(),
    # PartNumber / ETag missing or repeated
    b"<CompleteMultipartUpload><Part><ETag>e</ETag></Part></CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part/></CompleteMultipartUpload>",
    f"<CompleteMultipartUpload><Part>{_P}<PartNumber>2</PartNumber></Part>"
    f"</CompleteMultipartUpload>".encode(),
    f"<CompleteMultipartUpload><Part>{_P}<ETag>f</ETag></Part></CompleteMultipartUpload>".encode(),
    f"<CompleteMultipartUpload><Part>{_P}</Part><Part><ETag>e</ETag></Part>"
    f"</CompleteMultipartUpload>".encode(),
    # PartNumber not an integer
    b"<CompleteMultipartUpload><Part><PartNumber></PartNumber><ETag>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>  </PartNumber><ETag>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>abc</PartNumber><ETag>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1.5</PartNumber><ETag>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1e3</PartNumber><ETag>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>0x10</PartNumber><ETag>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1_000</PartNumber><ETag>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>- 1</PartNumber><ETag>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    "<CompleteMultipartUpload><Part><PartNumber>\uff11</PartNumber><ETag>e</ETag></Part>"
    "</CompleteMultipartUpload>".encode(),  # a full-width digit: int() would take it
    "<CompleteMultipartUpload><Part><PartNumber>\u0661</PartNumber><ETag>e</ETag></Part>"
    "</CompleteMultipartUpload>".encode(),  # an Arabic-Indic digit
    b"<CompleteMultipartUpload><Part><PartNumber>" + b"9" * 5000 + b"</PartNumber>"
    b"<ETag>e</ETag></Part></CompleteMultipartUpload>",
    # text-only elements holding elements
    b"<CompleteMultipartUpload><Part><PartNumber>1<x/></PartNumber><ETag>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag><x/>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    f"<CompleteMultipartUpload><Part>{_P}<ChecksumCRC32>a<b/></ChecksumCRC32></Part>"
    f"</CompleteMultipartUpload>".encode(),
    # the same checksum twice in one part
    f"<CompleteMultipartUpload><Part>{_P}<ChecksumCRC32>a</ChecksumCRC32>"
    f"<ChecksumCRC32>b</ChecksumCRC32></Part></CompleteMultipartUpload>".encode(),
    # entity / DTD attacks
    b'<!DOCTYPE CompleteMultipartUpload [<!ENTITY e "x">]><CompleteMultipartUpload><Part>'
    b"<PartNumber>1</PartNumber><ETag>&e;</ETag></Part></CompleteMultipartUpload>",
    b'<!DOCTYPE c [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><CompleteMultipartUpload><Part>'
    b"<PartNumber>1</PartNumber><ETag>&c;</ETag></Part></CompleteMultipartUpload>",
    b'<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]><CompleteMultipartUpload><Part>'
    b"<PartNumber>1</PartNumber><ETag>&x;</ETag></Part></CompleteMultipartUpload>",
    b'<!DOCTYPE c [<!ENTITY % p SYSTEM "http://example.com/evil.dtd"> %p;]>'
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b'<!DOCTYPE CompleteMultipartUpload SYSTEM "http://example.com/x.dtd">'
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b"<!DOCTYPE CompleteMultipartUpload><CompleteMultipartUpload><Part>"
    b"<PartNumber>1</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&undefined;</ETag>"
    b"</Part></CompleteMultipartUpload>",
    # oversized
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"
    + b"a" * X.MAX_COMPLETE_MULTIPART_BODY + b"</ETag></Part></CompleteMultipartUpload>",
])
def test_parse_complete_malformed(body):
    with pytest.raises(E.MalformedXML):
        X.parse_complete_multipart_upload(body)


# A Part as a client might write it: any element order, optional namespace,
# quoted or bare ETag, unknown siblings.
_etag_text = st.text(alphabet=st.characters(
    exclude_categories=("Cs",), exclude_characters='"\r\ufffe\uffff'
    + "".join(map(chr, range(32)))) | st.sampled_from(["\t", "\n", " "]), max_size=40)
_b64 = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
               max_size=64)
_part = st.fixed_dictionaries({
    "part": st.integers(min_value=-(10**12), max_value=10**12),
    "etag": _etag_text,
    "checksums": st.dictionaries(st.sampled_from([a for a, _ in ALGS]), _b64, max_size=5),
})


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(_part, min_size=1, max_size=25), namespaced=st.booleans(),
       data=st.data())
def test_property_part_lists_round_trip(parts, namespaced, data):
    ns = NS if namespaced else ""
    root = ET.Element(ns + "CompleteMultipartUpload")
    for p in parts:
        el = ET.SubElement(root, ns + "Part")
        children = [("PartNumber", str(p["part"])),
                    ("ETag", f'"{p["etag"]}"' if data.draw(st.booleans()) else p["etag"])]
        children += [(dict(ALGS)[alg], v) for alg, v in p["checksums"].items()]
        if data.draw(st.booleans()):
            children.append(("Size", "12"))
        for name, text in data.draw(st.permutations(children)):
            ET.SubElement(el, ns + name).text = text
    body = ET.tostring(root, encoding="utf-8", xml_declaration=data.draw(st.booleans()))
    assert X.parse_complete_multipart_upload(body) == parts


# ------------------------------------------------------------------ CompleteMultipartUpload: result

def test_complete_result_layout():
    root = parse_doc(X.complete_multipart_upload_xml(
        location="http://s3.example/bkt/a%20b", bucket="bkt", key="a b", etag="3858f6-9"),
        "CompleteMultipartUploadResult")
    assert texts(root) == [("Location", "http://s3.example/bkt/a%20b"), ("Bucket", "bkt"),
                           ("Key", "a b"), ("ETag", '"3858f6-9"')]


def test_complete_result_with_checksum_order():
    root = parse_doc(X.complete_multipart_upload_xml(
        location="l", bucket="b", key="k", etag='"e-2"', checksum=("CRC64NVME", "AAAAAAAAAAA="),
        checksum_type="FULL_OBJECT"), "CompleteMultipartUploadResult")
    assert texts(root) == [("Location", "l"), ("Bucket", "b"), ("Key", "k"), ("ETag", '"e-2"'),
                           ("ChecksumCRC64NVME", "AAAAAAAAAAA="), ("ChecksumType", "FULL_OBJECT")]
    only_type = parse_doc(X.complete_multipart_upload_xml(
        location="l", bucket="b", key="k", etag="e", checksum_type="COMPOSITE"),
        "CompleteMultipartUploadResult")
    assert tags(only_type) == ["Location", "Bucket", "Key", "ETag", "ChecksumType"]


@pytest.mark.parametrize("alg, element", ALGS)
def test_complete_result_each_checksum_through_botocore(alg, element):
    body = X.complete_multipart_upload_xml(location="l", bucket="b", key="k", etag="e-1",
                                           checksum=(alg, "dmFs"), checksum_type="COMPOSITE")
    parsed = raw_parse("CompleteMultipartUpload", body)
    assert parsed[element] == "dmFs"
    assert parsed["ChecksumType"] == "COMPOSITE"
    assert parsed["ETag"] == '"e-1"'


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_complete_result_through_boto(s3, key):
    location = "http://x/bkt/" + key.replace("&", "&amp;")
    s3.answer(X.complete_multipart_upload_xml(location=location, bucket="bkt", key=key,
                                              etag="0123456789abcdef0123456789abcdef-2",
                                              checksum=("crc32", "y/Q5Jg=="),
                                              checksum_type="FULL_OBJECT"))
    resp = s3.client.complete_multipart_upload(
        Bucket="bkt", Key=key, UploadId=UPLOAD_ID,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]})
    assert resp["Location"] == location
    assert resp["Bucket"] == "bkt"
    assert resp["Key"] == key
    assert resp["ETag"] == '"0123456789abcdef0123456789abcdef-2"'
    assert resp["ChecksumCRC32"] == "y/Q5Jg=="
    assert resp["ChecksumType"] == "FULL_OBJECT"


# ------------------------------------------------------------------ ListParts

def _parts(n: int, checksum: bool = False) -> list[dict]:
    return [{"part": i, "mtime_ms": T0 + i, "etag": f"{i:032x}", "size": i * 1000,
             "checksum": {"alg": "crc32c", "value": f"v{i}=="} if checksum else None}
            for i in range(1, n + 1)]


def _list_parts(**kw) -> bytes:
    args = dict(bucket="bkt", key="k", upload_id=UPLOAD_ID, part_number_marker=0,
                next_part_number_marker=None, max_parts=1000, truncated=False,
                parts=_parts(2), owner=OWNER)
    args.update(kw)
    return X.list_parts_xml(**args)


def test_list_parts_layout():
    root = parse_doc(_list_parts(part_number_marker=1, next_part_number_marker=3, max_parts=2,
                                 truncated=True, checksum_algorithm="crc32c",
                                 checksum_type="COMPOSITE", parts=_parts(3, True)[1:]),
                     "ListPartsResult")
    assert tags(root) == ["Bucket", "Key", "UploadId", "PartNumberMarker",
                          "NextPartNumberMarker", "MaxParts", "IsTruncated", "Part", "Part",
                          "Initiator", "Owner", "StorageClass", "ChecksumAlgorithm",
                          "ChecksumType"]
    assert texts(root) == [("Bucket", "bkt"), ("Key", "k"), ("UploadId", UPLOAD_ID),
                           ("PartNumberMarker", "1"), ("NextPartNumberMarker", "3"),
                           ("MaxParts", "2"), ("IsTruncated", "true"),
                           ("StorageClass", "STANDARD"), ("ChecksumAlgorithm", "CRC32C"),
                           ("ChecksumType", "COMPOSITE")]
    p2, p3 = root.findall(NS + "Part")
    assert texts(p2) == [("PartNumber", "2"), ("LastModified", "2009-10-12T17:50:30.002Z"),
                         ("ETag", f'"{2:032x}"'), ("Size", "2000"), ("ChecksumCRC32C", "v2==")]
    assert texts(p3)[0] == ("PartNumber", "3")
    for tag in ("Initiator", "Owner"):
        assert texts(root.find(NS + tag)) == [("ID", OWNER[0]), ("DisplayName", OWNER[1])]


def test_list_parts_minimal():
    root = parse_doc(_list_parts(parts=[], owner=("id", "")), "ListPartsResult")
    assert tags(root) == ["Bucket", "Key", "UploadId", "PartNumberMarker", "MaxParts",
                          "IsTruncated", "Initiator", "Owner", "StorageClass"]
    assert root.find(NS + "IsTruncated").text == "false"
    assert root.find(NS + "PartNumberMarker").text == "0"
    assert texts(root.find(NS + "Owner")) == [("ID", "id")]
    plain = ET.fromstring(_list_parts(parts=_parts(1))).find(NS + "Part")
    assert tags(plain) == ["PartNumber", "LastModified", "ETag", "Size"]


def test_list_parts_storage_class_and_quoted_etag():
    parts = [{"part": 1, "mtime_ms": T0, "etag": '"already"', "size": 5, "checksum": None}]
    root = ET.fromstring(_list_parts(parts=parts, storage_class="STANDARD_IA"))
    assert root.find(f"{NS}Part/{NS}ETag").text == '"already"'
    assert root.find(NS + "StorageClass").text == "STANDARD_IA"


@pytest.mark.parametrize("alg, element", ALGS)
def test_list_parts_each_checksum(alg, element):
    parts = [{"part": 1, "mtime_ms": T0, "etag": "e", "size": 5,
              "checksum": {"alg": alg.upper(), "value": "dmFs"}}]
    parsed = raw_parse("ListParts", _list_parts(parts=parts, checksum_algorithm=alg))
    assert parsed["Parts"][0][element] == "dmFs"
    assert parsed["ChecksumAlgorithm"] == alg.upper()


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_list_parts_through_boto(s3, key):
    s3.answer(_list_parts(key=key, part_number_marker=1, next_part_number_marker=3,
                          max_parts=2, truncated=True, parts=_parts(3, True)[1:],
                          checksum_algorithm="crc32c", checksum_type="FULL_OBJECT"))
    resp = s3.client.list_parts(Bucket="bkt", Key=key, UploadId=UPLOAD_ID, MaxParts=2,
                                PartNumberMarker=1)
    assert resp["Bucket"] == "bkt"
    assert resp["Key"] == key
    assert resp["UploadId"] == UPLOAD_ID
    assert resp["PartNumberMarker"] == 1
    assert resp["NextPartNumberMarker"] == 3
    assert resp["MaxParts"] == 2
    assert resp["IsTruncated"] is True
    assert resp["Initiator"] == {"ID": OWNER[0], "DisplayName": OWNER[1]}
    assert resp["Owner"] == {"ID": OWNER[0], "DisplayName": OWNER[1]}
    assert resp["StorageClass"] == "STANDARD"
    assert resp["ChecksumAlgorithm"] == "CRC32C"
    assert resp["ChecksumType"] == "FULL_OBJECT"
    assert [p["PartNumber"] for p in resp["Parts"]] == [2, 3]
    p2 = resp["Parts"][0]
    assert p2["ETag"] == f'"{2:032x}"'
    assert p2["Size"] == 2000
    assert p2["ChecksumCRC32C"] == "v2=="
    assert p2["LastModified"].isoformat() == "2009-10-12T17:50:30.002000+00:00"


def test_list_parts_escapes():
    body = _list_parts(key="<k>&\x01", upload_id="u&<", owner=("i&d", "n<m>"))
    assert b"<Key>&lt;k&gt;&amp;&#x1;</Key>" in body
    root = ET.fromstring(_list_parts(key="<k>&", upload_id="u&<", owner=("i&d", "n<m>")))
    assert root.find(NS + "Key").text == "<k>&"
    assert root.find(NS + "UploadId").text == "u&<"
    assert root.find(f"{NS}Owner/{NS}ID").text == "i&d"
    assert root.find(f"{NS}Initiator/{NS}DisplayName").text == "n<m>"


# ------------------------------------------------------------------ ListMultipartUploads

def _uploads(keys, **kw) -> list[dict]:
    return [dict({"key": k, "upload_id": f"up-{i}", "initiated_ms": T0 + i}, **kw)
            for i, k in enumerate(keys)]


def _lmu(**kw) -> bytes:
    args = dict(bucket="bkt", prefix=None, delimiter=None, key_marker="", upload_id_marker="",
                next_key_marker=None, next_upload_id_marker=None, max_uploads=1000,
                truncated=False, uploads=[], prefixes=[], owner=OWNER)
    args.update(kw)
    return X.list_multipart_uploads_xml(**args)


def test_list_uploads_layout():
    uploads = _uploads(["a/1", "a/2"])
    uploads[1].update(checksum_algorithm="sha256", checksum_type="COMPOSITE")
    root = parse_doc(_lmu(prefix="a/", delimiter="/", key_marker="a/0", upload_id_marker="u0",
                          next_key_marker="a/2", next_upload_id_marker="up-1", max_uploads=2,
                          truncated=True, uploads=uploads, prefixes=["a/b/", "a/c/"],
                          encoding_type="url"),
                     "ListMultipartUploadsResult")
    assert tags(root) == ["Bucket", "KeyMarker", "UploadIdMarker", "NextKeyMarker",
                          "NextUploadIdMarker", "Delimiter", "Prefix", "EncodingType",
                          "MaxUploads", "IsTruncated", "Upload", "Upload", "CommonPrefixes",
                          "CommonPrefixes"]
    assert texts(root) == [("Bucket", "bkt"), ("KeyMarker", "a/0"), ("UploadIdMarker", "u0"),
                           ("NextKeyMarker", "a/2"), ("NextUploadIdMarker", "up-1"),
                           ("Delimiter", "/"), ("Prefix", "a/"), ("EncodingType", "url"),
                           ("MaxUploads", "2"), ("IsTruncated", "true")]
    u1, u2 = root.findall(NS + "Upload")
    assert tags(u1) == ["Key", "UploadId", "Initiator", "Owner", "StorageClass", "Initiated"]
    assert texts(u1) == [("Key", "a/1"), ("UploadId", "up-0"), ("StorageClass", "STANDARD"),
                         ("Initiated", "2009-10-12T17:50:30.000Z")]
    assert tags(u2) == ["Key", "UploadId", "Initiator", "Owner", "StorageClass", "Initiated",
                        "ChecksumAlgorithm", "ChecksumType"]
    assert texts(u2)[-2:] == [("ChecksumAlgorithm", "SHA256"), ("ChecksumType", "COMPOSITE")]
    for tag in ("Initiator", "Owner"):
        assert texts(u1.find(NS + tag)) == [("ID", OWNER[0]), ("DisplayName", OWNER[1])]
    assert [cp.find(NS + "Prefix").text for cp in root.findall(NS + "CommonPrefixes")] == [
        "a/b/", "a/c/"]


def test_list_uploads_minimal():
    body = _lmu()
    root = parse_doc(body, "ListMultipartUploadsResult")
    assert tags(root) == ["Bucket", "KeyMarker", "UploadIdMarker", "NextKeyMarker",
                          "NextUploadIdMarker", "MaxUploads", "IsTruncated"]
    assert b"<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>" in body
    assert b"<NextKeyMarker></NextKeyMarker><NextUploadIdMarker></NextUploadIdMarker>" in body
    # an empty prefix was given: written empty; an empty delimiter is no delimiter
    assert tags(ET.fromstring(_lmu(prefix="", delimiter=""))) == [
        "Bucket", "KeyMarker", "UploadIdMarker", "NextKeyMarker", "NextUploadIdMarker",
        "Prefix", "MaxUploads", "IsTruncated"]


def test_list_uploads_checksums_only_when_present_and_storage_class():
    uploads = _uploads(["k"], checksum_algorithm=None, checksum_type=None,
                       storage_class="GLACIER")
    u = ET.fromstring(_lmu(uploads=uploads)).find(NS + "Upload")
    assert tags(u) == ["Key", "UploadId", "Initiator", "Owner", "StorageClass", "Initiated"]
    assert u.find(NS + "StorageClass").text == "GLACIER"


def test_list_uploads_through_boto(s3):
    uploads = _uploads(["a/1", "a/2"])
    uploads[0].update(checksum_algorithm="crc32", checksum_type="FULL_OBJECT")
    s3.answer(_lmu(prefix="a/", delimiter="/", key_marker="a/0", upload_id_marker="u0",
                   next_key_marker="a/2", next_upload_id_marker="up-1", max_uploads=2,
                   truncated=True, uploads=uploads, prefixes=["a/b/"]))
    resp = s3.client.list_multipart_uploads(Bucket="bkt", Prefix="a/", Delimiter="/",
                                            KeyMarker="a/0", UploadIdMarker="u0", MaxUploads=2)
    assert resp["Bucket"] == "bkt"
    assert resp["KeyMarker"] == "a/0"
    assert resp["UploadIdMarker"] == "u0"
    assert resp["NextKeyMarker"] == "a/2"
    assert resp["NextUploadIdMarker"] == "up-1"
    assert resp["Prefix"] == "a/"
    assert resp["Delimiter"] == "/"
    assert resp["MaxUploads"] == 2
    assert resp["IsTruncated"] is True
    assert resp["CommonPrefixes"] == [{"Prefix": "a/b/"}]
    u0, u1 = resp["Uploads"]
    assert (u0["Key"], u0["UploadId"]) == ("a/1", "up-0")
    assert u0["Initiated"].isoformat() == "2009-10-12T17:50:30+00:00"
    assert u0["Initiator"] == {"ID": OWNER[0], "DisplayName": OWNER[1]}
    assert u0["Owner"] == {"ID": OWNER[0], "DisplayName": OWNER[1]}
    assert u0["StorageClass"] == "STANDARD"
    assert u0["ChecksumAlgorithm"] == "CRC32"
    assert u0["ChecksumType"] == "FULL_OBJECT"
    assert "ChecksumAlgorithm" not in u1


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_list_uploads_escapes_without_encoding(key):
    parsed = raw_parse("ListMultipartUploads", _lmu(
        prefix=key[:2], delimiter="|", key_marker=key, next_key_marker=key,
        uploads=_uploads([key]), prefixes=[key + "|"]))
    assert parsed["Uploads"][0]["Key"] == key
    assert parsed["KeyMarker"] == key
    assert parsed["NextKeyMarker"] == key
    assert parsed["Prefix"] == key[:2]
    assert parsed["CommonPrefixes"] == [{"Prefix": key + "|"}]


@pytest.mark.parametrize("key", TRICKY_KEYS + ["a\x01b\x7f", "ctl\x1f\r\n"])
def test_list_uploads_url_encoding(key):
    body = _lmu(prefix=key[:2], delimiter=" ", key_marker=key, upload_id_marker="u +/=",
                next_key_marker=key + "~", next_upload_id_marker="n +/=",
                uploads=_uploads([key]), prefixes=[key + " "], encoding_type="url")
    root = ET.fromstring(body)  # plain ASCII: parses even for control characters
    encoded = {
        "Key": root.find(f"{NS}Upload/{NS}Key").text,
        "KeyMarker": root.find(NS + "KeyMarker").text,
        "NextKeyMarker": root.find(NS + "NextKeyMarker").text,
        "Prefix": root.find(NS + "Prefix").text,
        "Delimiter": root.find(NS + "Delimiter").text,
        "CommonPrefix": root.find(f"{NS}CommonPrefixes/{NS}Prefix").text,
    }
    for value in encoded.values():
        assert value is None or (" " not in value and "~" not in value
                                 and all(32 < ord(c) < 127 for c in value))
    decoded = {k: unquote_plus(v or "") for k, v in encoded.items()}
    assert decoded == {"Key": key, "KeyMarker": key, "NextKeyMarker": key + "~",
                       "Prefix": key[:2], "Delimiter": " ", "CommonPrefix": key + " "}
    assert encoded["Key"] == xmldoc.url_encode(key)
    # upload ids are opaque: never encoded
    assert root.find(NS + "UploadIdMarker").text == "u +/="
    assert root.find(NS + "NextUploadIdMarker").text == "n +/="
    assert root.find(f"{NS}Upload/{NS}UploadId").text == "up-0"
    assert root.find(NS + "EncodingType").text == "url"


def test_list_uploads_url_encoded_reaches_boto_as_written(s3):
    s3.answer(_lmu(uploads=_uploads(["a b+c"]), encoding_type="url"))
    resp = s3.client.list_multipart_uploads(Bucket="bkt", EncodingType="url")
    assert resp["EncodingType"] == "url"
    assert resp["Uploads"][0]["Key"] == "a%20b%2Bc"   # botocore does not decode this listing


def test_list_uploads_special_chars_escaped():
    body = _lmu(uploads=_uploads(["<a>&\"'"]), key_marker="&", owner=("i&d", ""))
    assert b"<Key>&lt;a&gt;&amp;\"'</Key>" in body
    assert b"<KeyMarker>&amp;</KeyMarker>" in body
    root = ET.fromstring(body)
    assert root.find(f"{NS}Upload/{NS}Key").text == "<a>&\"'"
    assert texts(root.find(f"{NS}Upload/{NS}Owner")) == [("ID", "i&d")]
    assert b"<Key>a&#x1;</Key>" in _lmu(uploads=_uploads(["a\x01"]))


_xml_key = st.text(alphabet=st.characters(exclude_categories=("Cs",),
                                          exclude_characters="\r\ufffe\uffff"
                                          + "".join(map(chr, range(32)))) | st.sampled_from(
    ["\t", "\n", " "]), min_size=1, max_size=30)
_any_key = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(keys=st.lists(_xml_key, min_size=1, max_size=4))
def test_property_upload_keys_round_trip(keys):
    root = ET.fromstring(_lmu(uploads=_uploads(keys), prefixes=keys, key_marker=keys[0]))
    assert [u.find(NS + "Key").text for u in root.findall(NS + "Upload")] == keys
    assert [p.find(NS + "Prefix").text for p in root.findall(NS + "CommonPrefixes")] == keys
    assert root.find(NS + "KeyMarker").text == keys[0]
    parts = [{"part": 1, "mtime_ms": T0, "etag": "e", "size": 1, "checksum": None}]
    assert ET.fromstring(_list_parts(key=keys[0], parts=parts)).find(NS + "Key").text == keys[0]


@settings(max_examples=150, deadline=None)
@given(keys=st.lists(_any_key, min_size=1, max_size=4))
def test_property_any_upload_key_round_trips_url_encoded(keys):
    root = ET.fromstring(_lmu(uploads=_uploads(keys), prefixes=keys, key_marker=keys[-1],
                              encoding_type="url"))
    assert [unquote_plus(u.find(NS + "Key").text) for u in root.findall(NS + "Upload")] == keys
    assert [unquote_plus(p.find(NS + "Prefix").text)
            for p in root.findall(NS + "CommonPrefixes")] == keys
    assert unquote_plus(root.find(NS + "KeyMarker").text) == keys[-1]


# ------------------------------------------------------------------ UploadPartCopy

def test_copy_part_result_layout():
    root = parse_doc(X.copy_part_result_xml("9b2cf535f27731c974343645a3985328", T0),
                     "CopyPartResult")
    assert texts(root) == [("ETag", '"9b2cf535f27731c974343645a3985328"'),
                           ("LastModified", "2009-10-12T17:50:30.000Z")]
    root = ET.fromstring(X.copy_part_result_xml('"e"', T0 + 5, ("SHA1", "c2hh")))
    assert texts(root) == [("ETag", '"e"'), ("LastModified", "2009-10-12T17:50:30.005Z"),
                           ("ChecksumSHA1", "c2hh")]


@pytest.mark.parametrize("alg, element", ALGS)
def test_copy_part_result_through_boto(s3, alg, element):
    s3.answer(X.copy_part_result_xml("0123", T0, (alg, "dmFs")))
    resp = s3.client.upload_part_copy(Bucket="b", Key="k", UploadId=UPLOAD_ID, PartNumber=1,
                                      CopySource="src/k")
    r = resp["CopyPartResult"]
    assert r["ETag"] == '"0123"'
    assert r["LastModified"].isoformat() == "2009-10-12T17:50:30+00:00"
    assert r[element] == "dmFs"
