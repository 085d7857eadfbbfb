"""Tag sets and GetObjectAttributes documents (minis3/core/tagging.py, attributes.py)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from minis3.core import attributes, tagging
from minis3.core import errors as E

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def test_the_header_round_trips_and_keeps_the_order():
    tags = [("b", "2"), ("a b", "x+y=z"), ("é", "")]
    assert tagging.parse_header(tagging.header_value(tags)) == tags
    assert tagging.parse_header("") == []
    assert tagging.parse_header("flag") == [("flag", "")]


@pytest.mark.parametrize("value", ["a=1&a=2", "a=%FF", "a&a"])
def test_a_bad_header_is_invalid_argument(value):
    with pytest.raises(E.InvalidArgument):
        tagging.parse_header(value)


def test_limits():
    tagging.validate([(f"k{i}", "v") for i in range(10)])
    tagging.validate([(f"k{i}", "v") for i in range(50)], bucket=True)
    with pytest.raises(E.BadRequest):
        tagging.validate([(f"k{i}", "v") for i in range(11)])
    with pytest.raises(E.InvalidTag):
        tagging.validate([(f"k{i}", "v") for i in range(51)], bucket=True)
    tagging.validate([("k" * 128, "v" * 256)])
    tagging.validate([("Ünï cødé 7", "a b_c.d:e/f=g+h-i@j")])
    for bad in ([("k" * 129, "v")], [("k", "v" * 257)], [("", "v")], [("aws:x", "v")], [("a", "1"), ("a", "2")],
                [("k", "a#b")], [("k%", "v")], [("k", "\x00")]):
        with pytest.raises(E.InvalidTag):
            tagging.validate(bad)


def test_the_tagging_document_round_trips():
    tags = [("a", "x/y@z"), ("\u00e9", "")]
    assert tagging.parse_tagging(tagging.tagging_xml(tags)) == tags
    for body in (b"<Tagging/>", b"<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>", b"<nope/>"):
        with pytest.raises(E.MalformedXML):
            tagging.parse_tagging(body)


def test_requested_attributes():
    assert attributes.requested("ObjectSize, ETag") == ["ETag", "ObjectSize"]
    for bad in (None, "", "Size", "ETag,Nope"):
        with pytest.raises(E.InvalidArgument):
            attributes.requested(bad)
    assert attributes.parts_page(None, None) == (0, 1000)
    assert attributes.parts_page("3", "5000") == (3, 1000)
    for bad in ("\u00b2", "-1", "x"):
        with pytest.raises(E.InvalidArgument):
            attributes.parts_page(bad, None)


def test_the_attributes_document_pages_parts():
    rec = {"etag": "abc-3", "size": 30, "checksum": {"alg": "sha256", "value": "AAAA-3", "type": "COMPOSITE"},
           "parts": [{"part": n, "size": 10, "checksum": {"alg": "sha256", "value": f"p{n}"}} for n in (1, 2, 3)]}
    root = ET.fromstring(attributes.attributes_xml(rec, attributes.ATTRIBUTES, marker=1, max_parts=1,
                                                   part_checksums=True))
    assert root.tag == NS + "GetObjectAttributesResponse"
    assert root.findtext(NS + "ETag") == "abc-3" and root.findtext(NS + "ObjectSize") == "30"
    assert root.findtext(f"{NS}Checksum/{NS}ChecksumSHA256") == "AAAA-3"
    parts = root.find(NS + "ObjectParts")
    assert parts.findtext(NS + "PartsCount") == "3" and parts.findtext(NS + "IsTruncated") == "true"
    assert parts.findtext(NS + "NextPartNumberMarker") == "2"
    assert [p.findtext(NS + "PartNumber") for p in parts.findall(NS + "Part")] == ["2"]
    assert parts.find(f"{NS}Part/{NS}ChecksumSHA256").text == "p2"
    # No checksum algorithm at upload: the count, no Part elements (as S3).
    plain = ET.fromstring(attributes.attributes_xml(rec, ["ObjectParts"])).find(NS + "ObjectParts")
    assert plain.findtext(NS + "PartsCount") == "3" and plain.findall(NS + "Part") == []
    single = ET.fromstring(attributes.attributes_xml({"etag": "e", "size": 1}, ["ObjectParts", "Checksum"]))
    assert list(single) == []
