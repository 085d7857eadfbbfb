"""core/lifecycle.py: the configuration as S3 checks it, filters, S3's day rounding, and the
runner's decisions as a pure function of a key's versions and the time."""
from __future__ import annotations

import datetime as dt

import pytest

from minis3.core import errors as E
from minis3.core import lifecycle as L
from minis3.core import versions as V

DAY = 86_400


def doc(*rules: str) -> bytes:
    return ("<LifecycleConfiguration>" + "".join(f"<Rule>{r}</Rule>" for r in rules)
            + "</LifecycleConfiguration>").encode()


def rule(body: str, rid: str = "r", filt: str = "<Filter><Prefix></Prefix></Filter>", status: str = "Enabled") -> str:
    return f"<ID>{rid}</ID>{filt}<Status>{status}</Status>{body}"


EXPIRE_1 = "<Expiration><Days>1</Days></Expiration>"


def utc(*a) -> float:
    return dt.datetime(*a, tzinfo=dt.timezone.utc).timestamp()


# ----------------------------------------------------------------------------- the document
def test_round_trip_keeps_every_element():
    body = doc(rule("<Expiration><Days>30</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>5"
                    "</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions>"
                    "</NoncurrentVersionExpiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>7"
                    "</DaysAfterInitiation></AbortIncompleteMultipartUpload>", "a", "<Filter><Prefix>logs/</Prefix>"
                    "</Filter>"),
               rule("<Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration>", "b",
                    "<Filter><And><Prefix>x/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeGreaterThan>10"
                    "</ObjectSizeGreaterThan><ObjectSizeLessThan>100</ObjectSizeLessThan></And></Filter>",
                    "Disabled"),
               rule("<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
                    "<Transition><Days>30</Days><StorageClass>ONEZONE_IA</StorageClass></Transition>", "c",
                    "<Filter></Filter>"))
    rules = L.parse_lifecycle(body)
    assert L.parse_lifecycle(L.lifecycle_xml(rules)) == rules
    assert L.from_record(L.to_record(rules)) == rules
    a, b, c = rules
    assert (a.expiration_days, a.noncurrent_days, a.newer_noncurrent, a.abort_days) == (30, 5, 2, 7)
    assert b.expiration_date == utc(2030, 1, 1) and not b.enabled
    assert b.filter == L.Filter("x/", (("k", "v"),), 10, 100, conjunction=True)
    assert c.expired_marker is True and c.transitions == (L.Transition("ONEZONE_IA", 30),)


def test_legacy_prefix_and_generated_id():
    rules = L.parse_lifecycle(doc("<Prefix>old/</Prefix><Status>Enabled</Status>" + EXPIRE_1),
                              new_id=lambda: "made-up")
    assert rules[0].id == "made-up" and rules[0].filter.legacy and rules[0].filter.prefix == "old/"
    assert b"<Prefix>old/</Prefix>" in L.lifecycle_xml(rules)


@pytest.mark.parametrize("body,error,message", [
    (doc(), E.MalformedXML, None),
    (b"<LifecycleConfiguration><Rule>", E.MalformedXML, None),
    (doc(rule(EXPIRE_1, "same"), rule(EXPIRE_1, "same")), E.InvalidArgument,
     "Rule ID must be unique. Found same ID for more than one rule"),
    (doc(rule(EXPIRE_1, "x" * 256)), E.InvalidArgument, "ID length should not exceed allowed limit of 255"),
    (doc(*[rule(EXPIRE_1, f"r{i}") for i in range(1001)]), E.InvalidRequest,
     "The number of lifecycle rules must not exceed the allowed limit of 1000 rules."),
    (doc(rule(EXPIRE_1, status="On")), E.MalformedXML, None),
    (doc(rule("")), E.InvalidRequest, "At least one action needs to be specified in a rule"),
    (doc(rule("<Expiration><Days>0</Days></Expiration>")), E.InvalidArgument,
     "'Days' for Expiration action must be a positive integer"),
    (doc(rule("<Expiration><Days>x</Days></Expiration>")), E.MalformedXML, None),
    (doc(rule("<Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration>")), E.MalformedXML, None),
    (doc(rule("<Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>")), E.InvalidArgument,
     "'Date' must be at midnight GMT"),
    (doc(rule("<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration>")),
     E.InvalidArgument, "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer"),
    (doc(rule("<NoncurrentVersionExpiration><NewerNoncurrentVersions>1</NewerNoncurrentVersions>"
              "</NoncurrentVersionExpiration>")), E.MalformedXML, None),
    (doc(rule("<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
              "</AbortIncompleteMultipartUpload>", filt="<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>")),
     E.InvalidRequest, "AbortIncompleteMultipartUpload cannot be specified with Tags."),
    (doc(rule("<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>",
              filt="<Filter><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></Filter>")),
     E.InvalidRequest, "ExpiredObjectDeleteMarker cannot be specified with Object Size."),
    (doc(rule(EXPIRE_1, filt="<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter>")),
     E.MalformedXML, None),
    (doc(rule(EXPIRE_1, filt="<Filter><And><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key>"
                             "<Value>2</Value></Tag></And></Filter>")),
     E.InvalidRequest, "Duplicate Tag Keys are not allowed."),
    (doc(rule(EXPIRE_1, filt="<Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>10"
                             "</ObjectSizeLessThan></And></Filter>")),
     E.InvalidRequest, "'ObjectSizeLessThan' has to be a value greater than 'ObjectSizeGreaterThan'."),
    (doc(rule(EXPIRE_1, filt="<Prefix>a</Prefix><Filter></Filter>")), E.MalformedXML, None),
    (doc(rule(EXPIRE_1, filt="")), E.MalformedXML, None),
    (doc(rule(EXPIRE_1, "a"), rule(EXPIRE_1, "b", filt="<Prefix>x</Prefix>")), E.InvalidRequest,
     "Base level prefix cannot be used in Lifecycle V2, prefixes are only supported in the Filter."),
    (doc(rule(EXPIRE_1, "a", filt="<Prefix>x</Prefix>"), rule(EXPIRE_1, "b")), E.InvalidRequest,
     "Filter element can only be used in Lifecycle V2."),
    (doc(rule(EXPIRE_1, "a", filt="<Prefix>x</Prefix>"), rule(EXPIRE_1, "b", filt="<Prefix>xy</Prefix>")),
     E.InvalidRequest, "Found overlapping prefixes 'x' and 'xy' for same action type 'Expiration'"),
    (doc(rule("<Transition><Days>30</Days><StorageClass>STANDARD</StorageClass></Transition>")),
     E.MalformedXML, None),
    (doc(rule("<Transition><Days>10</Days><StorageClass>ONEZONE_IA</StorageClass></Transition>")),
     E.InvalidArgument, "'Days' in Transition action must be greater than or equal to 30 for storageClass 'ONEZONE_IA'"),
    (doc(rule("<Transition><Days>30</Days><StorageClass>REDUCED_REDUNDANCY</StorageClass></Transition>")),
     E.MalformedXML, None),
    (doc(rule("<Transition><Days>29</Days><StorageClass>STANDARD_IA</StorageClass></Transition>")),
     E.InvalidArgument, "'Days' in Transition action must be greater than or equal to 30 for storageClass 'STANDARD_IA'"),
    (doc(rule("<NoncurrentVersionTransition><NoncurrentDays>29</NoncurrentDays><StorageClass>STANDARD_IA"
              "</StorageClass></NoncurrentVersionTransition>")), E.InvalidArgument,
     "'NoncurrentDays' in NoncurrentVersionTransition action must be greater than or equal to 30 for storageClass "
     "'STANDARD_IA'"),
    # Numbers are the schema's 32-bit Integer; NewerNoncurrentVersions at most 100 (AWS).
    (doc(rule("<Expiration><Days>2147483648</Days></Expiration>")), E.MalformedXML, None),
    (doc(rule("<Expiration><Days>9999999999999999999</Days></Expiration>")), E.MalformedXML, None),
    (doc(rule("<NoncurrentVersionExpiration><NoncurrentDays>9999999999999999999</NoncurrentDays>"
              "</NoncurrentVersionExpiration>")), E.MalformedXML, None),
    (doc(rule("<AbortIncompleteMultipartUpload><DaysAfterInitiation>9999999999999999999</DaysAfterInitiation>"
              "</AbortIncompleteMultipartUpload>")), E.MalformedXML, None),
    (doc(rule("<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>101"
              "</NewerNoncurrentVersions></NoncurrentVersionExpiration>")), E.InvalidArgument,
     "'NewerNoncurrentVersions' must not be more than 100"),
    # A Date: ISO 8601 with a time and a zone, no later than 9999-12-31 (core/isodate.py).
    (doc(rule("<Expiration><Date>9999-12-31T23:00:00-01:00</Date></Expiration>")), E.MalformedXML, None),
    (doc(rule("<Transition><Date>9999-12-31T23:00:00-01:00</Date><StorageClass>GLACIER</StorageClass>"
              "</Transition>")), E.MalformedXML, None),
    (doc(rule("<Expiration><Date>2030-01-01</Date></Expiration>")), E.MalformedXML, None),
    (doc(rule("<Expiration><Date>20300101T000000Z</Date></Expiration>")), E.MalformedXML, None),
    (doc(rule("<Expiration><Date>2030-01-01T00:00:00</Date></Expiration>")), E.MalformedXML, None),
    # An ID with a control character could not be sent back in x-amz-abort-rule-id.
    (doc(rule(EXPIRE_1, "a&#13;&#10;b")), E.InvalidArgument, "ID must not contain control characters"),
    (doc(rule(EXPIRE_1, "a&#9;b")), E.InvalidArgument, "ID must not contain control characters"),
    (doc(rule("<Expiration><Days>1</Days></Expiration><Unknown/>")), E.MalformedXML, None),
])
def test_refused_as_s3_refuses(body, error, message):
    with pytest.raises(error) as got:
        L.parse_lifecycle(body)
    if message:
        assert got.value.message == message


# ----------------------------------------------------------------------------- filters and time
@pytest.mark.parametrize("f,key,tags,size,expected", [
    (L.Filter("logs/"), "logs/a", (), 0, True),
    (L.Filter("logs/"), "log/a", (), 0, False),
    (L.Filter(None), "anything", (), 0, True),
    (L.Filter(None, (("k", "v"),)), "a", [["k", "v"], ["x", "y"]], 0, True),
    (L.Filter(None, (("k", "v"),)), "a", [["k", "w"]], 0, False),
    (L.Filter(None, (("k", "v"), ("x", "y"))), "a", [["k", "v"]], 0, False),
    (L.Filter(None, size_gt=10), "a", (), 10, False),
    (L.Filter(None, size_gt=10), "a", (), 11, True),
    (L.Filter(None, size_lt=10), "a", (), 10, False),
    (L.Filter("a", (("k", "v"),), 1, 100, conjunction=True), "ab", [["k", "v"]], 50, True),
    (L.Filter("a", (("k", "v"),), 1, 100, conjunction=True), "ab", [["k", "v"]], 500, False),
])
def test_filter_matches(f, key, tags, size, expected):
    assert L.matches(f, key, tags, size) is expected


def test_days_round_up_to_the_next_midnight_utc():
    # The User Guide's example: made 2014-01-15 10:30 UTC, 3 days -> 2014-01-19 00:00 UTC.
    assert L.due_after(utc(2014, 1, 15, 10, 30), 3) == utc(2014, 1, 19)
    assert L.due_after(utc(2014, 1, 15, 23, 59, 59), 1) == utc(2014, 1, 17)


def test_scaled_days():
    # A "day" of 10 s: "midnight" every 10 s since the epoch.
    assert L.due_after(1003, 1, 10) == 1020
    assert L.due_after(1009.5, 2, 10) == 1030


def test_expiration_header_names_the_earliest_rule():
    rules = L.parse_lifecycle(doc(rule("<Expiration><Days>10</Days></Expiration>", "late"),
                                  rule("<Expiration><Days>2</Days></Expiration>", "early a/b",
                                       filt="<Filter><Prefix>k</Prefix></Filter>")))
    rec = {"mtime": int(utc(2012, 12, 20, 12) * 1000), "size": 1}
    when, rid = L.expiration(rules, "key", rec)
    assert (when, rid) == (utc(2012, 12, 23), "early a/b")
    assert L.header_value(when, rid) == 'expiry-date="Sun, 23 Dec 2012 00:00:00 GMT", rule-id="early%20a%2Fb"'
    assert L.expiration(rules, "other", rec)[1] == "late"


def test_abort_date():
    rules = L.parse_lifecycle(doc(rule("<AbortIncompleteMultipartUpload><DaysAfterInitiation>1"
                                       "</DaysAfterInitiation></AbortIncompleteMultipartUpload>", "ab",
                                       filt="<Filter><Prefix>up/</Prefix></Filter>")))
    assert L.abort_date(rules, "up/x", utc(2020, 5, 1, 8)) == (utc(2020, 5, 3), "ab")
    assert L.abort_date(rules, "down/x", utc(2020, 5, 1, 8)) is None
    assert L.decide_upload(rules, "up/x", "u1", utc(2020, 5, 1, 8), now_s=utc(2020, 5, 2, 23)) is None
    assert L.decide_upload(rules, "up/x", "u1", utc(2020, 5, 1, 8), now_s=utc(2020, 5, 3)) == \
        L.Action(L.ABORT, "up/x", "ab", upload_id="u1")


# ----------------------------------------------------------------------------- the runner's decisions
def version(ts_s: float, vid: str, **kw) -> dict:
    return {"mtime": int(ts_s * 1000), "ts": 0, "version_id": vid, "size": kw.pop("size", 5), **kw}


def marker(ts_s: float, vid: str) -> dict:
    return {"mtime": int(ts_s * 1000), "ts": 0, "version_id": vid, "deleted": True, "marker": True}


T0 = utc(2024, 3, 1, 12)
RULES = L.parse_lifecycle(doc(rule(EXPIRE_1, "exp", filt="<Filter><Prefix>tmp/</Prefix></Filter>"),
                              rule("<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker>"
                                   "</Expiration><NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays>"
                                   "<NewerNoncurrentVersions>1</NewerNoncurrentVersions>"
                                   "</NoncurrentVersionExpiration>", "nc")))


def test_current_version_expires_after_its_day():
    v = [(version(T0, V.NULL), True)]
    assert L.decide_key(RULES, "tmp/a", v, versioned=False, now_s=utc(2024, 3, 2, 23)).actions == []
    got = L.decide_key(RULES, "tmp/a", v, versioned=False, now_s=utc(2024, 3, 3)).actions
    assert got == [L.Action(L.EXPIRE, "tmp/a", "exp")]
    assert L.decide_key(RULES, "keep/a", v, versioned=False, now_s=utc(2025, 1, 1)).actions == []
    # In a versioned bucket the expiry names the version (a delete marker goes on top of it).
    assert L.decide_key(RULES, "tmp/a", [(version(T0, "v1"), True)], versioned=True,
                        now_s=utc(2024, 3, 3)).actions == [L.Action(L.EXPIRE, "tmp/a", "exp", "v1")]


def test_only_a_lone_delete_marker_is_removed():
    lone = [(marker(T0, "m1"), True)]
    assert L.decide_key(RULES, "a", lone, versioned=True, now_s=T0).actions == \
        [L.Action(L.REMOVE_MARKER, "a", "nc", "m1")]
    with_older = [(marker(T0, "m1"), True), (version(T0 - 10, "v1"), False)]
    assert all(a.kind != L.REMOVE_MARKER for a in
               L.decide_key(RULES, "a", with_older, versioned=True, now_s=T0).actions)


def test_noncurrent_days_count_from_the_successor_and_newer_ones_are_kept():
    # v3 current (made day 10), v2 noncurrent since day 10, v1 noncurrent since day 5 (v2's creation).
    v = [(version(utc(2024, 3, 10, 6), "v3"), True), (version(utc(2024, 3, 5, 6), "v2"), False),
         (version(utc(2024, 3, 1, 6), "v1"), False)]
    # NoncurrentDays 2: v1 is due 2024-03-08 00:00; v2 (the newest noncurrent one) is kept by NewerNoncurrentVersions 1.
    assert L.decide_key(RULES, "k", v, versioned=True, now_s=utc(2024, 3, 7, 23)).actions == []
    assert L.decide_key(RULES, "k", v, versioned=True, now_s=utc(2024, 3, 8)).actions == \
        [L.Action(L.EXPIRE_NONCURRENT, "k", "nc", "v1")]
    assert L.decide_key(RULES, "k", v, versioned=True, now_s=utc(2030, 1, 1)).actions == \
        [L.Action(L.EXPIRE_NONCURRENT, "k", "nc", "v1")]


def test_locked_versions_are_never_deleted_for_good():
    later = "2099-01-01T00:00:00Z"
    v = [(version(utc(2024, 3, 10), "v3"), True), (version(utc(2024, 3, 5), "v2"), False),
         (version(utc(2024, 3, 1), "v1", lock={"mode": "COMPLIANCE", "until": later}), False)]
    d = L.decide_key(RULES, "k", v, versioned=True, now_s=utc(2025, 1, 1))
    assert d.actions == [] and d.locked == 1
    held = [(version(utc(2024, 3, 1), V.NULL, hold=True), True)]
    d = L.decide_key(RULES, "tmp/k", held, versioned=False, now_s=utc(2025, 1, 1))
    assert d.actions == [] and d.locked == 1
    # A retention date passed no longer keeps it.
    past = [(version(utc(2024, 3, 1), V.NULL, lock={"mode": "GOVERNANCE", "until": "2024-06-01T00:00:00Z"}), True)]
    assert L.decide_key(RULES, "tmp/k", past, versioned=False, now_s=utc(2025, 1, 1)).actions[0].kind == L.EXPIRE
    # A versioned bucket's expiry only adds a delete marker: a lock does not stop that.
    locked_current = [(version(utc(2024, 3, 1), "v1", hold=True), True)]
    assert L.decide_key(RULES, "tmp/k", locked_current, versioned=True, now_s=utc(2025, 1, 1)).actions[0].kind == \
        L.EXPIRE


def test_tag_and_size_filters_decide():
    rules = L.parse_lifecycle(doc(rule(EXPIRE_1, "big", filt="<Filter><And><Tag><Key>t</Key><Value>1</Value></Tag>"
                                                           "<ObjectSizeGreaterThan>100</ObjectSizeGreaterThan>"
                                                           "</And></Filter>")))
    now = utc(2030, 1, 1)
    small = [(version(T0, V.NULL, size=50, tags=[["t", "1"]]), True)]
    big_untagged = [(version(T0, V.NULL, size=500), True)]
    big_tagged = [(version(T0, V.NULL, size=500, tags=[["t", "1"]]), True)]
    assert L.decide_key(rules, "k", small, versioned=False, now_s=now).actions == []
    assert L.decide_key(rules, "k", big_untagged, versioned=False, now_s=now).actions == []
    assert L.decide_key(rules, "k", big_tagged, versioned=False, now_s=now).actions == [L.Action(L.EXPIRE, "k", "big")]


def test_disabled_rules_do_nothing():
    rules = L.parse_lifecycle(doc(rule(EXPIRE_1, status="Disabled")))
    assert L.decide_key(rules, "k", [(version(T0, V.NULL), True)], versioned=False, now_s=utc(2030, 1, 1)).actions == []
    assert L.expiration(rules, "k", version(T0, V.NULL)) is None


def test_transitions_when_due_and_big_enough():
    rules = L.parse_lifecycle(doc(rule("<Transition><Days>30</Days><StorageClass>ONEZONE_IA</StorageClass>"
                                       "</Transition><NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays>"
                                       "<StorageClass>ONEZONE_IA</StorageClass><NewerNoncurrentVersions>1"
                                       "</NewerNoncurrentVersions></NoncurrentVersionTransition>", "t")))
    big = L.MIN_TRANSITION_SIZE
    cur = [(version(utc(2024, 1, 1, 6), "v1", size=big), True)]
    assert L.decide_key(rules, "k", cur, versioned=True, now_s=utc(2024, 1, 31, 23)).actions == []
    assert L.decide_key(rules, "k", cur, versioned=True, now_s=utc(2024, 2, 1)).actions == \
        [L.Action(L.TRANSITION, "k", "t", "v1", storage_class="ONEZONE_IA")]
    small = [(version(utc(2024, 1, 1, 6), "v1", size=big - 1), True)]
    assert L.decide_key(rules, "k", small, versioned=True, now_s=utc(2025, 1, 1)).actions == []
    done = [(version(utc(2024, 1, 1, 6), "v1", size=big, storage_class="ONEZONE_IA"), True)]
    assert L.decide_key(rules, "k", done, versioned=True, now_s=utc(2025, 1, 1)).actions == []
    # Noncurrent: 30 days after the successor was made, the newest noncurrent one kept.
    three = [(version(utc(2024, 3, 1), "v3", size=big, storage_class="ONEZONE_IA"), True),
             (version(utc(2024, 2, 1), "v2", size=big), False), (version(utc(2024, 1, 1), "v1", size=big), False)]
    # (v1: noncurrent since 2024-02-01, + 30 days = 03-02 00:00, rounded up to 03-03.)
    assert L.decide_key(rules, "k", three, versioned=True, now_s=utc(2024, 3, 2, 23)).actions == []
    assert L.decide_key(rules, "k", three, versioned=True, now_s=utc(2024, 3, 3)).actions == \
        [L.Action(L.TRANSITION, "k", "t", "v1", storage_class="ONEZONE_IA")]


COMMON = doc(rule("<Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition>"
                  "<Transition><Days>90</Days><StorageClass>GLACIER</StorageClass></Transition>", "tiers"))


@pytest.mark.parametrize("sc", sorted(L.TRANSITION_CLASSES))
def test_every_class_s3_transitions_to_is_accepted_and_minis3_stores_it(sc):
    from minis3.ec import storage_class as SC
    days = 30
    rules = L.parse_lifecycle(doc(rule(f"<Transition><Days>{days}</Days><StorageClass>{sc}</StorageClass>"
                                       f"</Transition><NoncurrentVersionTransition><NoncurrentDays>{days}"
                                       f"</NoncurrentDays><StorageClass>{sc}</StorageClass>"
                                       "</NoncurrentVersionTransition>")))
    assert rules[0].transitions == (L.Transition(sc, days),)
    assert sc in SC.ACCEPTED                     # what a PUT accepts, so a version may carry it
    assert L.parse_lifecycle(L.lifecycle_xml(rules)) == rules


def test_a_common_tiering_configuration_moves_down_the_waterfall_only():
    rules = L.parse_lifecycle(COMMON)
    big = L.MIN_TRANSITION_SIZE
    made = utc(2024, 1, 1, 6)

    def move(now, **kw):
        return L.decide_key(rules, "k", [(version(made, "v1", size=big, **kw), True)], versioned=True,
                            now_s=now).actions
    assert move(utc(2024, 1, 31, 23)) == []
    assert move(utc(2024, 2, 1)) == [L.Action(L.TRANSITION, "k", "tiers", "v1", storage_class="STANDARD_IA")]
    # Day 90 (+ the rounding): GLACIER, from STANDARD or from STANDARD_IA.
    assert move(utc(2024, 4, 1)) == [L.Action(L.TRANSITION, "k", "tiers", "v1", storage_class="GLACIER")]
    assert move(utc(2024, 4, 1), storage_class="STANDARD_IA") == \
        [L.Action(L.TRANSITION, "k", "tiers", "v1", storage_class="GLACIER")]
    # Never back up: a GLACIER or DEEP_ARCHIVE version stays; one PUT as GLACIER is not moved to STANDARD_IA.
    assert move(utc(2024, 4, 1), storage_class="GLACIER") == []
    assert move(utc(2024, 4, 1), storage_class="DEEP_ARCHIVE") == []
    assert move(utc(2024, 2, 1), storage_class="GLACIER") == []
    # REDUCED_REDUNDANCY moves like STANDARD (the runner then finds it needs re-encoding: skipped).
    assert move(utc(2024, 2, 1), storage_class="REDUCED_REDUNDANCY") == \
        [L.Action(L.TRANSITION, "k", "tiers", "v1", storage_class="STANDARD_IA")]


def test_relabel_to_a_standard_placed_class_drops_the_zone():
    from minis3.scrub.lifecycle import relabel
    azs = [("az-a", ["a1", "a2"]), ("az-b", ["b1", "b2"]), ("az-c", ["c1", "c2"])]
    ec = {"id": "oid1", "k": 4, "m": 2, "seg": 1 << 20, "nodes": ["a1", "b1", "c1", "a2", "b2", "c2"]}
    out = relabel({"size": 300_000, "ec": ec}, "STANDARD_IA", 4, 2, azs)
    assert out["storage_class"] == "STANDARD_IA" and out["ec"] == ec
    one_zone = {"size": 300_000, "storage_class": "ONEZONE_IA", "ec": dict(ec, zone="az-b")}
    out = relabel(one_zone, "GLACIER", 4, 2, azs)
    assert out["storage_class"] == "GLACIER" and "zone" not in out["ec"]


# ----------------------------------------------------------------------------- headers never fail
def test_a_rule_whose_date_is_past_year_9999_leaves_the_header_out_instead_of_failing():
    """The most days the schema allows put a date millions of years ahead: no HTTP date can
    say it, and the request that asked (a PUT, after its commit) must not fail for it."""
    rules = L.parse_lifecycle(doc(rule("<Expiration><Days>2147483647</Days></Expiration>"
                                       "<AbortIncompleteMultipartUpload><DaysAfterInitiation>2147483647"
                                       "</DaysAfterInitiation></AbortIncompleteMultipartUpload>", "far")))
    exp = L.expiration(rules, "k", version(T0, V.NULL))
    assert exp is not None and L.header_value(*exp) is None
    assert L.abort_header_values(*L.abort_date(rules, "k", T0)) == {}
    # The latest Date a rule may name is written back and told in a header.
    last = L.parse_lifecycle(doc(rule("<Expiration><Date>9999-12-31T00:00:00Z</Date></Expiration>", "last")))
    assert b"<Date>9999-12-31T00:00:00.000Z</Date>" in L.lifecycle_xml(last)
    assert L.header_value(*L.expiration(last, "k", version(T0, V.NULL))) == \
        'expiry-date="Fri, 31 Dec 9999 00:00:00 GMT", rule-id="last"'


def test_abort_rule_id_is_url_encoded_like_the_expiration_header():
    rules = L.parse_lifecycle(doc(rule("<AbortIncompleteMultipartUpload><DaysAfterInitiation>1"
                                       "</DaysAfterInitiation></AbortIncompleteMultipartUpload>", "clean up/é")))
    got = L.abort_header_values(*L.abort_date(rules, "k", utc(2024, 1, 1, 6)))
    assert got == {"x-amz-abort-date": "Wed, 03 Jan 2024 00:00:00 GMT", "x-amz-abort-rule-id": "clean%20up%2F%C3%A9"}


def test_relabel_keeps_the_fragments_and_names_the_zone():
    from minis3.scrub.lifecycle import relabel
    azs = [("az-a", ["a1", "a2"]), ("az-b", ["b1", "b2"]), ("az-c", ["c1", "c2"])]
    ec = {"id": "oid1", "k": 4, "m": 2, "seg": 1 << 20, "nodes": ["a1", "b1", "c1", "a2", "b2", "c2"]}
    rec = {"etag": "e", "size": 300_000, "ec": ec}
    out = relabel(rec, "ONEZONE_IA", 4, 2, azs)
    assert out["storage_class"] == "ONEZONE_IA" and out["ec"]["nodes"] == ec["nodes"]
    assert out["ec"]["zone"] in {"az-a", "az-b", "az-c"} and "zone" not in ec
    multipart = {"size": 1, "parts": [{"ec": dict(ec, id="p1")}, {"inline": "eA=="}, {"ec": dict(ec, id="p2")}]}
    zones = {p["ec"]["zone"] for p in relabel(multipart, "ONEZONE_IA", 4, 2, azs)["parts"] if "ec" in p}
    assert len(zones) == 1
    # REDUCED_REDUNDANCY is 4+1: ONEZONE_IA (4+2) would need re-encoding.
    assert relabel({"size": 1, "storage_class": "REDUCED_REDUNDANCY", "ec": dict(ec, m=1)}, "ONEZONE_IA", 4, 2,
                   azs) is None


def test_transition_minimum_size_setting():
    assert L.parse_minimum_size(None) == "all_storage_classes_128K"
    assert L.parse_minimum_size("varies_by_storage_class") == "varies_by_storage_class"
    with pytest.raises(E.InvalidRequest):
        L.parse_minimum_size("1K")


def test_access_key_space_is_the_authorisers():
    from minis3.frontend.authorize import ACCESS as FRONTEND_ACCESS
    from minis3.meta.client import ACCESS
    assert ACCESS == FRONTEND_ACCESS


# ----------------------------------------------------------------------------- adversarial documents
from hypothesis import given, settings, strategies as st  # noqa: E402

_PIECES = ["<LifecycleConfiguration>", "</LifecycleConfiguration>", "<Rule>", "</Rule>", "<Filter>", "</Filter>",
           "<And>", "</And>", "<Prefix>", "</Prefix>", "<Tag><Key>k</Key><Value>v</Value></Tag>", "<Status>Enabled",
           "</Status>", "<Expiration>", "</Expiration>", "<Days>", "</Days>", "<Date>", "</Date>", "1", "-1", "0",
           "99999999999999999999", "2030-01-01T00:00:00Z", "9999-12-31T00:00:00-14:00", "x", "<ID>a</ID>",
           "2147483647", "2147483648", "9999-12-31T00:00:00Z", "9999-12-31T23:00:00-01:00", "<ID>&#13;&#10;</ID>",
           "<StorageClass>GLACIER</StorageClass>", "<StorageClass>STANDARD_IA</StorageClass>",
           "<ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker>", "<NoncurrentVersionExpiration>",
           "</NoncurrentVersionExpiration>", "<NoncurrentDays>", "</NoncurrentDays>", "<ObjectSizeLessThan>",
           "</ObjectSizeLessThan>", "<Transition>", "</Transition>", "<StorageClass>ONEZONE_IA</StorageClass>",
           "<AbortIncompleteMultipartUpload>", "</AbortIncompleteMultipartUpload>", "<DaysAfterInitiation>",
           "</DaysAfterInitiation>", "<!-- c -->", "&amp;"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_any_document_is_a_configuration_or_an_s3_error(pieces):
    try:
        rules = L.parse_lifecycle("".join(pieces).encode())
    except E.S3Error as exc:
        assert exc.status in (400, 501)
        return
    assert L.parse_lifecycle(L.lifecycle_xml(rules)) == rules
    # Whatever was accepted, the headers that tell a client about it can always be written.
    for made in (utc(1971, 1, 1), utc(2024, 3, 1, 12)):
        exp = L.expiration(rules, "k", version(made, V.NULL))
        assert exp is None or L.header_value(*exp) is None or L.header_value(*exp).startswith("expiry-date=")
        due = L.abort_date(rules, "k", made)
        assert due is None or isinstance(L.abort_header_values(*due), dict)
