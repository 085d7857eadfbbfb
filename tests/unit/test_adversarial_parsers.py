"""Every pure parser a request's bytes reach answers with a value or an S3
error, never anything else (which the frontend would turn into a 500): fed by
hypothesis with adversarial text and bytes, around each input's real shape
(the shapes' own round-trip properties are in each parser's test file)."""
from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis3.core import checksums, conditions, errors as E, metadata, multipart_xml, names, numbers, ranges, s3xml
from minis3.core import sigv2, sigv4, tagging, trace, versions

from .parser_support import value_or_s3_error

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2024, 3, 1, 12, 30, 45, tzinfo=timezone.utc)
# Text as hostile clients send it: controls, surrogate-free unicode, separators S3 syntax uses.
hostile = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200) | st.text("=,;/ :&%+\t\r\n\"'<>\\0aZ9-_.*", max_size=80)
near_xml = st.builds(lambda a, b, c: f"<{a}>{b}</{c}>".encode(), hostile, hostile, hostile) | st.binary(max_size=400) | \
    st.sampled_from([b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]><x>&b;</x>",
                     b"<Delete><Object><Key>\x00</Key></Object></Delete>", b"<CompleteMultipartUpload><Part>"
                     b"<PartNumber>99999999999999999999</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
                     b"<Tagging><TagSet><Tag><Key/><Value/></Tag></TagSet></Tagging>", b"\xef\xbb\xbf<a/>"])




@SETTINGS
@given(body=near_xml)
def test_xml_bodies(body):
    for parse in (s3xml.parse_create_bucket, s3xml.parse_delete_objects, s3xml.parse_versioning,
                  multipart_xml.parse_complete_multipart_upload, tagging.parse_tagging):
        value_or_s3_error(parse, body)


@SETTINGS
@given(raw=hostile, size=st.integers(0, 2**63))
def test_header_values(raw, size):
    value_or_s3_error(ranges.parse_range, raw, size)
    value_or_s3_error(ranges.parse_range, "bytes=" + raw, size)
    value_or_s3_error(numbers.parse_int, raw)
    value_or_s3_error(tagging.parse_header, raw)
    value_or_s3_error(metadata.decode_value, raw)
    value_or_s3_error(conditions.parse_http_date, raw)
    value_or_s3_error(conditions.check_read, {"if-match": raw, "if-modified-since": raw}, "etag", 0)
    value_or_s3_error(conditions.check_write, {"if-none-match": raw}, None)
    value_or_s3_error(versions.parse_id, raw)
    value_or_s3_error(names.validate_bucket_name, raw)
    value_or_s3_error(names.validate_key, raw)
    value_or_s3_error(trace.parse_traceparent, raw)
    value_or_s3_error(checksums.parse_checksum_headers, {"x-amz-checksum-crc32": raw, "x-amz-sdk-checksum-algorithm": raw})
    for alg in ("crc32", "crc32c", "crc64nvme", "sha1", "sha256"):
        value_or_s3_error(checksums.decode_checksum, alg, raw)


@SETTINGS
@given(raw=hostile)
def test_authorization_headers(raw):
    value_or_s3_error(sigv4.parse_authorization, raw)
    value_or_s3_error(sigv4.parse_authorization, "AWS4-HMAC-SHA256 " + raw)
    value_or_s3_error(sigv2.parse_sigv2_authorization, "AWS " + raw)


@SETTINGS
@given(auth=hostile, date=hostile, sha=hostile, path=hostile,
       query=st.lists(st.tuples(st.sampled_from(["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                                                 "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature",
                                                 "AWSAccessKeyId", "Signature", "Expires", "versionId"]), hostile),
                      max_size=8))
def test_whole_requests_reach_the_verifier(auth, date, sha, path, query):
    headers = {"host": "localhost:9000", "authorization": auth, "x-amz-date": date, "x-amz-content-sha256": sha}
    for h in (headers, {"host": "localhost:9000"}):
        value_or_s3_error(sigv4.verify, sigv4.SigningInput("GET", "/" + path, query, h), {"AK": "SK"}, NOW)


# ----------------------------------------------------------------------------- who may do what
near_json = st.recursive(st.none() | st.booleans() | st.integers() | hostile,
                         lambda kids: st.lists(kids, max_size=4) | st.dictionaries(hostile, kids, max_size=4),
                         max_leaves=20)
STATEMENT_KEYS = st.sampled_from(["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                                  "NotResource", "Condition"])


@SETTINGS
@given(doc=st.dictionaries(st.sampled_from(["Version", "Statement", "Id"]), near_json | st.lists(
    st.dictionaries(STATEMENT_KEYS, near_json, max_size=9), max_size=3), max_size=3), raw=near_xml)
def test_policy_documents(doc, raw):
    import json
    from minis3.core import policy
    value_or_s3_error(policy.parse_policy, json.dumps(doc), "b")
    value_or_s3_error(policy.parse_policy, raw, "b")


@SETTINGS
@given(body=near_xml, raw=hostile)
def test_access_documents_and_headers(body, raw):
    from minis3.core import access, access_xml, acl, cors
    for parse in (cors.parse_cors, acl.parse_xml, access_xml.parse_public_access_block,
                  access_xml.parse_ownership_controls):
        value_or_s3_error(parse, body)
    for h in ("x-amz-acl", *acl.HEADERS):
        value_or_s3_error(acl.from_headers, {h: raw}, "a" * 64)
        value_or_s3_error(access.acl_headers_allowed, {h: raw}, "a" * 64)
    value_or_s3_error(cors.preflight, cors.parse_cors(b"<CORSConfiguration><CORSRule><AllowedOrigin>*"
                                                      b"</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"
                                                      b"</CORSConfiguration>"),
                      {"origin": raw, "access-control-request-method": raw, "access-control-request-headers": raw})


@SETTINGS
@given(fields=st.dictionaries(st.sampled_from(["policy", "x-amz-signature", "x-amz-credential", "x-amz-date",
                                               "x-amz-algorithm", "awsaccesskeyid", "signature", "key"]), hostile,
                              max_size=8), doc=near_json)
def test_post_policies(fields, doc):
    import base64
    import json
    from minis3.core import postpolicy
    value_or_s3_error(postpolicy.signer, fields, {"AKID": "secret"})
    raw = base64.b64encode(json.dumps(doc).encode()).decode()
    value_or_s3_error(postpolicy.parse, raw)
    value_or_s3_error(postpolicy.parse, fields.get("policy", ""))
    try:
        parsed = postpolicy.parse(base64.b64encode(json.dumps(
            {"expiration": "2030-01-01T00:00:00Z", "conditions": doc if isinstance(doc, list) else [doc]}).encode()))
    except E.S3Error:
        return
    value_or_s3_error(postpolicy.check, parsed, fields, "b", NOW)
