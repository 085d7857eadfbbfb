"""Object Lock's pure core (minis3/core/objectlock.py): the documents, the headers of a new
version, and the decision whether a version may be removed or its retention changed."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis3.core import errors as E
from minis3.core import isodate
from minis3.core import objectlock as OL

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
NOW = isodate.parse_ms("2026-12-06T10:00:00Z")
HOUR = 3_600_000


def _config(inner: str) -> bytes:
    return (f'<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}'
            f'</ObjectLockConfiguration>').encode()


def _rule(inner: str) -> bytes:
    return _config(f"<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>{inner}"
                   f"</DefaultRetention></Rule>")


def _version(mode: str | None = None, until: int | None = None, hold: bool = False) -> dict:
    rec = {"etag": "e", "size": 1, "version_id": "v"}
    if mode:
        rec["lock"] = OL.lock_field(mode, until)
    if hold:
        rec["hold"] = True
    return rec


# ----------------------------------------------------------------------------- dates
def test_dates_parse_in_every_form_boto3_and_the_cli_send_and_are_kept_with_milliseconds():
    assert isodate.format_ms(isodate.parse_ms("2026-12-06T10:00:00Z")) == "2026-12-06T10:00:00.000Z"
    assert isodate.parse_ms("2026-12-06T10:00:00.250Z") == NOW + 250
    assert isodate.parse_ms("2026-12-06T11:00:00+01:00") == NOW
    assert isodate.parse_ms("2026-12-06T09:30:00-0030") == NOW
    for bad in ("2026-12-06", "2026-12-06T10:00:00", "tomorrow", ""):
        with pytest.raises(ValueError):
            isodate.parse_ms(bad)


def test_default_retention_in_days_and_in_calendar_years():
    assert OL.DefaultRetention(OL.GOVERNANCE, days=2).until(NOW) == NOW + 48 * HOUR
    assert isodate.format_ms(OL.DefaultRetention(OL.COMPLIANCE, years=1).until(NOW)) == "2027-12-06T10:00:00.000Z"
    leap = isodate.parse_ms("2028-02-29T10:00:00Z")
    assert isodate.format_ms(OL.DefaultRetention(OL.COMPLIANCE, years=1).until(leap)) == "2029-02-28T10:00:00.000Z"


# ----------------------------------------------------------------------------- the configuration
def test_a_configuration_round_trips_through_its_xml_and_its_record():
    for body, rule in ((_config("<ObjectLockEnabled>Enabled</ObjectLockEnabled>"), None),
                       (_rule("<Mode>GOVERNANCE</Mode><Days>30</Days>"), OL.DefaultRetention(OL.GOVERNANCE, days=30)),
                       (_rule("<Mode>COMPLIANCE</Mode><Years>2</Years>"), OL.DefaultRetention(OL.COMPLIANCE, years=2))):
        config = OL.parse_configuration(body)
        assert config == OL.LockConfiguration(rule)
        assert OL.parse_configuration(OL.configuration_xml(config)) == config
        assert OL.from_record(OL.to_record(config)) == config
    root = ET.fromstring(OL.configuration_xml(OL.LockConfiguration(OL.DefaultRetention(OL.GOVERNANCE, days=1))))
    assert root.find(f"{NS}Rule/{NS}DefaultRetention/{NS}Days").text == "1"
    assert OL.from_record(None) is None and OL.from_record({"enabled": False}) is None


@pytest.mark.parametrize("body", [
    _config(""),                                                              # no ObjectLockEnabled
    _config("<ObjectLockEnabled>Disabled</ObjectLockEnabled>"),               # cannot be disabled
    _config("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule></Rule>"),    # a Rule needs a DefaultRetention
    _rule("<Days>1</Days>"),                                                  # no Mode
    _rule("<Mode>STRICT</Mode><Days>1</Days>"),                               # unknown mode
    _rule("<Mode>GOVERNANCE</Mode>"),                                         # neither Days nor Years
    _rule("<Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years>"),           # both
    _rule("<Mode>GOVERNANCE</Mode><Days>one</Days>"),                         # not an integer
    b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled",                   # not XML
    b"<Retention/>",                                                          # another document
])
def test_a_malformed_configuration_is_malformed_xml(body):
    with pytest.raises(E.MalformedXML):
        OL.parse_configuration(body)


@pytest.mark.parametrize("inner", ["<Mode>GOVERNANCE</Mode><Days>0</Days>", "<Mode>COMPLIANCE</Mode><Years>-1</Years>",
                                   "<Mode>COMPLIANCE</Mode><Years>101</Years>", "<Mode>GOVERNANCE</Mode><Days>36501</Days>",
                                   "<Mode>GOVERNANCE</Mode><Days>2147483647</Days>"])
def test_a_period_that_is_not_positive_or_too_long_is_invalid_argument(inner):
    with pytest.raises(E.InvalidArgument):
        OL.parse_configuration(_rule(inner))


# ----------------------------------------------------------------------------- a new version's headers
def test_a_new_version_gets_the_headers_retention_else_the_buckets_default():
    config = OL.LockConfiguration(OL.DefaultRetention(OL.GOVERNANCE, days=1))
    assert OL.new_version_fields({}, config, NOW) == {"lock": {"mode": "GOVERNANCE", "until": "2026-12-07T10:00:00.000Z"}}
    assert OL.new_version_fields({}, OL.LockConfiguration(), NOW) == {}
    explicit = {OL.MODE_HEADER: "COMPLIANCE", OL.UNTIL_HEADER: "2026-12-06T10:00:05Z", OL.HOLD_HEADER: "ON"}
    assert OL.new_version_fields(explicit, config, NOW) == {
        "lock": {"mode": "COMPLIANCE", "until": "2026-12-06T10:00:05.000Z"}, "hold": True}
    assert OL.new_version_fields({OL.HOLD_HEADER: "OFF"}, OL.LockConfiguration(), NOW) == {}


def test_lock_headers_on_a_bucket_without_object_lock_are_invalid_request():
    for headers in ({OL.HOLD_HEADER: "ON"}, {OL.MODE_HEADER: "GOVERNANCE", OL.UNTIL_HEADER: "2027-01-01T00:00:00Z"}):
        with pytest.raises(E.InvalidRequest) as e:
            OL.new_version_fields(headers, None, NOW)
        assert e.value.message == "Bucket is missing Object Lock Configuration"
    assert OL.new_version_fields({}, None, NOW) == {}


@pytest.mark.parametrize("headers, message", [
    ({OL.MODE_HEADER: "GOVERNANCE"}, OL.BOTH_HEADERS),
    ({OL.UNTIL_HEADER: "2027-01-01T00:00:00Z"}, OL.BOTH_HEADERS),
    ({OL.MODE_HEADER: "governance", OL.UNTIL_HEADER: "2027-01-01T00:00:00Z"}, "Unknown wormMode directive."),
    ({OL.MODE_HEADER: "GOVERNANCE", OL.UNTIL_HEADER: "2026-12-06T09:59:59Z"}, OL.NOT_IN_FUTURE),
    ({OL.MODE_HEADER: "GOVERNANCE", OL.UNTIL_HEADER: "soon"}, None),
    # Past what the record's date form (and so every answer) can hold: refused, not a 500.
    ({OL.MODE_HEADER: "GOVERNANCE", OL.UNTIL_HEADER: "9999-12-31T23:59:59-23:59"},
     "The retain until date must be provided in ISO 8601 format"),
    ({OL.MODE_HEADER: "GOVERNANCE", OL.UNTIL_HEADER: "2027-01-01"},
     "The retain until date must be provided in ISO 8601 format"),
    ({OL.HOLD_HEADER: "yes"}, "Legal Hold must be either of 'ON' or 'OFF'"),
])
def test_bad_lock_headers_are_invalid_argument(headers, message):
    with pytest.raises(E.InvalidArgument) as e:
        OL.new_version_fields(headers, OL.LockConfiguration(), NOW)
    if message:
        assert e.value.message == message


def test_get_and_head_answer_the_three_headers():
    assert OL.response_headers(_version()) == {}
    assert OL.response_headers(_version(OL.COMPLIANCE, NOW, hold=True)) == {
        OL.MODE_HEADER: "COMPLIANCE", OL.UNTIL_HEADER: "2026-12-06T10:00:00.000Z", OL.HOLD_HEADER: "ON"}
    assert OL.wants_bypass({OL.BYPASS_HEADER: "True"}) and not OL.wants_bypass({OL.BYPASS_HEADER: "false"})
    assert not OL.wants_bypass({})


# ----------------------------------------------------------------------------- the decision
@pytest.mark.parametrize("rec, bypass, allowed", [
    (_version(), False, True),                                        # no protection
    (None, False, True),                                              # nothing there
    ({"marker": True, "deleted": True, "version_id": "m"}, False, True),   # a delete marker holds no lock
    (_version(OL.COMPLIANCE, NOW + HOUR), False, False),
    (_version(OL.COMPLIANCE, NOW + HOUR), True, False),               # nobody bypasses COMPLIANCE
    (_version(OL.GOVERNANCE, NOW + HOUR), False, False),
    (_version(OL.GOVERNANCE, NOW + HOUR), True, True),                # GOVERNANCE with the bypass
    (_version(OL.COMPLIANCE, NOW - 1), False, True),                  # expired: no protection left
    (_version(OL.COMPLIANCE, NOW), False, True),                      # retain *until*: free at that instant
    (_version(OL.GOVERNANCE, NOW - HOUR), False, True),
    (_version(hold=True), True, False),                               # a legal hold, whatever the mode
    (_version(OL.GOVERNANCE, NOW + HOUR, hold=True), True, False),
    (_version(OL.COMPLIANCE, NOW - HOUR, hold=True), False, False),   # expired retention, hold still on
])
def test_the_removal_decision_table(rec, bypass, allowed):
    assert OL.may_remove(rec, NOW, bypass) is allowed
    if allowed:
        OL.check_removal(rec, NOW, bypass)
    else:
        with pytest.raises(E.AccessDenied) as e:
            OL.check_removal(rec, NOW, bypass)
        assert e.value.message == "Access Denied because object protected by object lock."


LATER, EARLIER = NOW + 2 * HOUR, NOW + HOUR


@pytest.mark.parametrize("current, new, bypass, allowed", [
    (None, OL.lock_field(OL.GOVERNANCE, LATER), False, True),                         # first retention
    (OL.lock_field(OL.COMPLIANCE, EARLIER), OL.lock_field(OL.COMPLIANCE, LATER), False, True),   # extended
    (OL.lock_field(OL.COMPLIANCE, EARLIER), OL.lock_field(OL.COMPLIANCE, EARLIER), False, True),  # the same
    (OL.lock_field(OL.COMPLIANCE, LATER), OL.lock_field(OL.COMPLIANCE, EARLIER), True, False),   # shortened
    (OL.lock_field(OL.COMPLIANCE, EARLIER), OL.lock_field(OL.GOVERNANCE, LATER), True, False),   # mode changed
    (OL.lock_field(OL.COMPLIANCE, EARLIER), None, True, False),                                   # removed
    (OL.lock_field(OL.GOVERNANCE, EARLIER), OL.lock_field(OL.GOVERNANCE, LATER), False, True),
    (OL.lock_field(OL.GOVERNANCE, LATER), OL.lock_field(OL.GOVERNANCE, EARLIER), False, False),
    (OL.lock_field(OL.GOVERNANCE, LATER), OL.lock_field(OL.GOVERNANCE, EARLIER), True, True),
    (OL.lock_field(OL.GOVERNANCE, EARLIER), OL.lock_field(OL.COMPLIANCE, LATER), False, False),
    (OL.lock_field(OL.GOVERNANCE, EARLIER), OL.lock_field(OL.COMPLIANCE, LATER), True, True),
    (OL.lock_field(OL.GOVERNANCE, EARLIER), None, False, False),
    (OL.lock_field(OL.GOVERNANCE, EARLIER), None, True, True),
    (OL.lock_field(OL.COMPLIANCE, NOW - 1), None, False, True),                     # expired
    (OL.lock_field(OL.COMPLIANCE, NOW - 1), OL.lock_field(OL.GOVERNANCE, EARLIER), False, True),
])
def test_the_retention_change_decision_table(current, new, bypass, allowed):
    assert (OL.retention_change_refusal(current, new, NOW, bypass) is None) is allowed
    if not allowed:
        with pytest.raises(E.AccessDenied):
            OL.check_retention_change(current, new, NOW, bypass)


def test_a_retention_for_ever_is_kept_and_answered():
    """9999-12-31T23:59:59Z, the latest date S3's forms can write, is a retention clients set."""
    fields = OL.new_version_fields({OL.MODE_HEADER: "COMPLIANCE", OL.UNTIL_HEADER: "9999-12-31T23:59:59Z"},
                                   OL.LockConfiguration(), NOW)
    assert fields["lock"]["until"] == "9999-12-31T23:59:59.000Z"
    assert OL.response_headers(fields)[OL.UNTIL_HEADER] == "9999-12-31T23:59:59.000Z"
    assert not OL.may_remove(fields, NOW)


def test_a_period_beyond_the_schemas_integer_is_malformed_xml():
    with pytest.raises(E.MalformedXML):
        OL.parse_configuration(_rule("<Mode>GOVERNANCE</Mode><Days>9999999999999999999</Days>"))


@pytest.mark.parametrize("headers, ok", [
    ({}, False),
    ({"content-type": "text/plain"}, False),
    ({"content-md5": "1B2M2Y8AsgTpgAmY7PhCfg=="}, True),
    ({"x-amz-checksum-crc32": "AAAAAA=="}, True),
    ({"x-amz-checksum-sha256": "x"}, True),
    ({"x-amz-sdk-checksum-algorithm": "CRC32"}, True),
    ({"x-amz-trailer": "x-amz-checksum-crc64nvme"}, True),
    ({"x-amz-checksum-type": "FULL_OBJECT"}, False),          # not a checksum
    ({"x-amz-checksum-algorithm": "CRC32"}, False),           # CopyObject's/Create's choice, no value
])
def test_put_object_with_lock_fields_needs_content_md5_or_a_checksum(headers, ok):
    fields = {"lock": OL.lock_field(OL.GOVERNANCE, NOW + 1000)}
    OL.check_integrity_header(headers, {})                   # nothing to lock: nothing asked
    if ok:
        OL.check_integrity_header(headers, fields)
        OL.check_integrity_header(headers, {"hold": True})
    else:
        for f in (fields, {"hold": True}):
            with pytest.raises(E.InvalidRequest) as e:
                OL.check_integrity_header(headers, f)
            assert e.value.message == OL.INTEGRITY_REQUIRED and e.value.status == 400


# ----------------------------------------------------------------------------- Retention and LegalHold documents
def test_retention_and_legal_hold_documents():
    body = b"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2026-12-06T11:00:00Z</RetainUntilDate></Retention>"
    lock = OL.parse_retention(body, NOW)
    assert lock == {"mode": "GOVERNANCE", "until": "2026-12-06T11:00:00.000Z"}
    assert OL.parse_retention(OL.retention_xml(lock), NOW) == lock
    assert OL.parse_retention(b"<Retention/>", NOW) is None                   # remove it, where allowed
    with pytest.raises(E.InvalidArgument):
        OL.parse_retention(body.replace(b"11:00", b"09:00"), NOW)
    for bad in (b"<Retention><Mode>GOVERNANCE</Mode></Retention>",
                b"<Retention><Mode>LOOSE</Mode><RetainUntilDate>2026-12-06T11:00:00Z</RetainUntilDate></Retention>",
                b"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>x</RetainUntilDate></Retention>",
                b"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>9999-12-31T23:59:59-23:59</RetainUntilDate>"
                b"</Retention>",
                b"<LegalHold/>"):
        with pytest.raises(E.MalformedXML):
            OL.parse_retention(bad, NOW)
    assert OL.parse_legal_hold(OL.legal_hold_xml(True)) is True
    assert OL.parse_legal_hold(b"<LegalHold><Status>OFF</Status></LegalHold>") is False
    for bad in (b"<LegalHold/>", b"<LegalHold><Status>on</Status></LegalHold>", b"<Retention/>"):
        with pytest.raises(E.MalformedXML):
            OL.parse_legal_hold(bad)


# ----------------------------------------------------------------------------- adversarial input

hostile = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80) | \
    st.text("0123456789-:TZ.+ \u0663", max_size=40)
near_xml = st.builds(lambda root, a, b: f"<{root}><Mode>{a}</Mode><Days>{b}</Days><RetainUntilDate>{b}"
                                        f"</RetainUntilDate><Status>{a}</Status></{root}>".encode(),
                     st.sampled_from(["Retention", "LegalHold", "ObjectLockConfiguration", "x"]), hostile, hostile) | \
    st.builds(lambda a, b: _rule(f"<Mode>{a}</Mode><Years>{b}</Years>"), hostile, hostile) | st.binary(max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=near_xml, raw=hostile)
def test_every_parser_answers_a_value_or_an_s3_error(body, raw):
    """Never anything else, which the frontend would turn into a 500."""
    for parse in (OL.parse_configuration, OL.parse_legal_hold, lambda b: OL.parse_retention(b, NOW)):
        try:
            parse(body)
        except E.S3Error:
            pass
    for headers in ({OL.MODE_HEADER: "GOVERNANCE", OL.UNTIL_HEADER: raw}, {OL.MODE_HEADER: raw, OL.UNTIL_HEADER: raw},
                    {OL.HOLD_HEADER: raw}):
        try:
            OL.new_version_fields(headers, OL.LockConfiguration(), NOW)
        except E.S3Error:
            pass
