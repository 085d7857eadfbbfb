"""frontend/keys.py: the master key (file or variable), the local key service
standing in for AWS KMS, and the data keys of SSE-S3, SSE-KMS and SSE-C: each
data key opens again only with what it was wrapped with, and nothing stored
holds a customer's key."""
from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest

from minis3.config.specs import TopologyError
from minis3.core import errors as E, seal, sse
from minis3.frontend import keys as K

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "us-east-1"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(autouse=True)
def no_master_key_variables(monkeypatch):
    monkeypatch.delenv(K.MASTER_KEY_ENV, raising=False)
    monkeypatch.delenv(K.MASTER_KEY_ENV + "_FILE", raising=False)


@pytest.fixture
def keys(tmp_path):
    return tmp_path / "data" / "keys"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ----------------------------------------------------------------------------- the master key
def test_the_master_key_is_made_once_mode_0600_and_read_back(keys):
    first = K.load_master_key(keys)
    path = keys / "master-key"
    assert len(first) == seal.KEY_BYTES
    assert mode(path) == 0o600
    assert base64.b64decode(path.read_text().strip()) == first
    assert K.load_master_key(keys) == first
    assert K.KeyService(keys, REGION).master == first


def test_a_master_key_file_is_never_replaced(keys):
    assert K._create_exclusive(keys / "x", b"first")
    assert not K._create_exclusive(keys / "x", b"second")
    assert (keys / "x").read_bytes() == b"first"
    assert sorted(p.name for p in keys.iterdir()) == ["x"]          # no temporary file left behind


def test_the_variable_wins_over_the_file(keys, monkeypatch):
    made = K.load_master_key(keys)
    given = seal.new_key()
    monkeypatch.setenv(K.MASTER_KEY_ENV, base64.b64encode(given).decode())
    assert K.load_master_key(keys) == given != made


def test_the_variable_makes_no_file(keys, monkeypatch):
    given = seal.new_key()
    monkeypatch.setenv(K.MASTER_KEY_ENV, base64.b64encode(given).decode())
    assert K.load_master_key(keys) == given
    assert not (keys / "master-key").exists()


def test_the_master_key_file_variable(keys, tmp_path, monkeypatch):
    given = seal.new_key()
    secret = tmp_path / "secret"
    secret.write_text(base64.b64encode(given).decode() + "\n")
    monkeypatch.setenv(K.MASTER_KEY_ENV + "_FILE", str(secret))
    assert K.load_master_key(keys) == given


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(bytes(16)).decode(),
                                   base64.b64encode(bytes(33)).decode(), "AAAA"])
def test_a_bad_master_key_variable_is_a_topology_error(keys, monkeypatch, value):
    monkeypatch.setenv(K.MASTER_KEY_ENV, value)
    with pytest.raises(TopologyError):
        K.load_master_key(keys)
    assert K.KeyService.if_present(keys, REGION) is None


def test_a_corrupt_master_key_file_is_a_topology_error(keys):
    keys.mkdir(parents=True)
    (keys / "master-key").write_text(base64.b64encode(bytes(10)).decode())
    with pytest.raises(TopologyError):
        K.load_master_key(keys)


@pytest.mark.parametrize("content", [b"abc", b"\xff\xfe", b"not a key!"])
def test_a_master_key_file_that_is_not_base64_is_a_topology_error(keys, content):
    keys.mkdir(parents=True)
    (keys / "master-key").write_bytes(content)
    with pytest.raises(TopologyError):
        K.load_master_key(keys)


def test_if_present_never_makes_the_master_key(keys):
    assert K.KeyService.if_present(keys, REGION) is None
    assert K.load_master_key(keys, create=False) is None
    assert not (keys / "master-key").exists()
    made = K.KeyService(keys, REGION)
    found = K.KeyService.if_present(keys, REGION)
    assert found is not None and found.master == made.master


def test_if_present_takes_the_variable(keys, monkeypatch):
    given = seal.new_key()
    monkeypatch.setenv(K.MASTER_KEY_ENV, base64.b64encode(given).decode())
    assert K.KeyService.if_present(keys, REGION).master == given


def test_key_dir():
    assert K.key_dir(Path("/d/region1"), False) == Path("/d/region1/keys")
    assert K.key_dir(Path("/d/region1"), True) == Path("/d/keys")


# ----------------------------------------------------------------------------- the local key service
def test_an_alias_resolves_to_one_key_twice_and_across_services(keys):
    a = K.KeyService(keys, REGION)
    arn = a.kms.resolve("alias/my-key", ACCOUNT)
    assert arn.startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    sse.parse_kms_ref(arn)
    assert a.kms.resolve("alias/my-key", ACCOUNT) == arn
    assert a.kms.resolve(f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/my-key", ACCOUNT) == arn
    b = K.KeyService(keys, REGION)
    assert b.kms.resolve("alias/my-key", ACCOUNT) == arn
    assert b.kms.material(arn) == a.kms.material(arn)
    assert len(a.kms.material(arn)) == seal.KEY_BYTES


def test_aliases_are_per_account_and_per_name(keys):
    kms = K.KeyService(keys, REGION).kms
    mine = kms.resolve("alias/my-key", ACCOUNT)
    assert kms.resolve("alias/my-key", OTHER_ACCOUNT) != mine
    assert kms.resolve("alias/other", ACCOUNT) != mine
    assert kms.resolve("alias/team/my-key", ACCOUNT) != mine
    assert kms.resolve(f"alias/{K.MANAGED_ALIAS}", ACCOUNT) == kms.resolve("alias/aws/s3", ACCOUNT)


def test_a_key_id_names_a_key_of_this_region_and_account(keys):
    kms = K.KeyService(keys, REGION).kms
    arn = kms.resolve(KEY_ID, ACCOUNT)
    assert arn == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
    assert kms.resolve(arn, OTHER_ACCOUNT) == arn
    assert len(kms.material(arn)) == seal.KEY_BYTES


@pytest.mark.parametrize("ref", [f"arn:aws:kms:eu-west-3:{OTHER_ACCOUNT}:key/{KEY_ID}",
                                 f"arn:aws:kms:eu-west-3:{OTHER_ACCOUNT}:key/mrk-{'0' * 32}"])
def test_a_key_arn_of_another_region_and_account_is_kept_as_named(keys, ref):
    kms = K.KeyService(keys, REGION).kms
    assert kms.resolve(ref, ACCOUNT) == ref
    assert len(kms.material(ref)) == seal.KEY_BYTES


def test_an_alias_arn_of_another_region_and_account_is_kept(keys):
    kms = K.KeyService(keys, REGION).kms
    arn = kms.resolve(f"arn:aws:kms:eu-west-3:{OTHER_ACCOUNT}:alias/theirs", ACCOUNT)
    assert arn.startswith(f"arn:aws:kms:eu-west-3:{OTHER_ACCOUNT}:key/")
    assert kms.resolve("alias/theirs", ACCOUNT) != arn


def test_one_key_id_in_two_accounts_is_two_keys(keys):
    kms = K.KeyService(keys, REGION).kms
    mine, theirs = kms.resolve(KEY_ID, ACCOUNT), kms.resolve(KEY_ID, OTHER_ACCOUNT)
    assert mine != theirs
    assert len(kms.material(mine)) == len(kms.material(theirs)) == seal.KEY_BYTES


@pytest.mark.parametrize("ref", ["", "my key", "arn:aws:s3:::bucket", "alias/", KEY_ID[:-1]])
def test_a_garbage_key_name_is_kms_not_found(keys, ref):
    kms = K.KeyService(keys, REGION).kms
    with pytest.raises(E.KMSNotFound) as info:
        kms.resolve(ref, ACCOUNT)
    assert info.value.code == "KMS.NotFoundException" and info.value.status == 400


@pytest.mark.parametrize("ref", ["alias/.", "alias/.."])
def test_a_dot_alias_is_kms_not_found(keys, ref):
    with pytest.raises(E.KMSNotFound):
        K.KeyService(keys, REGION).kms.resolve(ref, ACCOUNT)


def test_a_dot_alias_does_not_break_the_accounts_other_aliases(keys):
    kms = K.KeyService(keys, REGION).kms
    try:
        kms.resolve("alias/.", ACCOUNT)
    except E.S3Error:
        pass
    assert kms.resolve("alias/aws/s3", ACCOUNT).startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")


def test_an_unknown_arn_has_no_material(keys):
    kms = K.KeyService(keys, REGION).kms
    with pytest.raises(E.KMSNotFound):
        kms.material(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}")


def test_key_material_is_stored_wrapped(keys):
    kms = K.KeyService(keys, REGION).kms
    arn = kms.resolve("alias/my-key", ACCOUNT)
    material = kms.material(arn)
    files = list(kms.dir.glob("*.json"))
    assert len(files) == 1 and mode(files[0]) == 0o600
    text = files[0].read_text()
    assert material not in files[0].read_bytes() and base64.b64encode(material).decode() not in text
    assert json.loads(text)["arn"] == arn
    assert [k["arn"] for k in kms.keys()] == [arn]
    # Another master key cannot open it.
    with pytest.raises(seal.Unsealable):
        K.LocalKMS(keys, seal.new_key(), REGION).material(arn)


# ----------------------------------------------------------------------------- data keys
def test_sse_s3_data_key_round_trip(keys):
    ks = K.KeyService(keys, REGION)
    dk, rec = ks.new_data_key(sse.Encryption(sse.SSE_S3), "b", "k", ACCOUNT)
    assert len(dk) == seal.KEY_BYTES and set(rec) == {"alg", "wrap"} and rec["alg"] == sse.SSE_S3
    assert ks.open(rec) == dk
    assert K.KeyService(keys, REGION).open(rec) == dk
    assert ks.new_data_key(sse.Encryption(sse.SSE_S3), "b", "k", ACCOUNT)[0] != dk
    with pytest.raises(seal.Unsealable):
        K.KeyService(keys, REGION, master=seal.new_key()).open(rec)


def test_sse_kms_data_key_round_trip_with_a_context(keys):
    ks = K.KeyService(keys, REGION)
    enc = sse.Encryption(sse.SSE_KMS, kms_key="alias/my-key", context={"project": "blue"})
    dk, rec = ks.new_data_key(enc, "bucket", "dir/key", ACCOUNT)
    assert rec["alg"] == sse.SSE_KMS and rec["kms"] == ks.kms.resolve("alias/my-key", ACCOUNT)
    assert "bk" not in rec
    ctx = json.loads(base64.b64decode(rec["ctx"]))
    assert ctx == {"project": "blue", "aws:s3:arn": "arn:aws:s3:::bucket/dir/key"}
    assert ks.open(rec) == dk
    assert K.KeyService(keys, REGION).open(rec) == dk
    changed = base64.b64encode(json.dumps({**ctx, "project": "red"}, sort_keys=True,
                                          separators=(",", ":")).encode()).decode()
    with pytest.raises(seal.Unsealable):
        ks.open({**rec, "ctx": changed})
    other = ks.kms.resolve("alias/other", ACCOUNT)
    with pytest.raises(seal.Unsealable):
        ks.open({**rec, "kms": other})


def test_sse_kms_with_a_bucket_key_binds_the_bucket_arn(keys):
    ks = K.KeyService(keys, REGION)
    dk, rec = ks.new_data_key(sse.Encryption(sse.SSE_KMS, kms_key=KEY_ID, bucket_key=True), "bucket", "k", ACCOUNT)
    assert rec["bk"] is True and rec["kms"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
    assert json.loads(base64.b64decode(rec["ctx"])) == {"aws:s3:arn": "arn:aws:s3:::bucket"}
    assert ks.open(rec) == dk


def test_sse_kms_without_a_key_uses_the_aws_managed_key(keys):
    ks = K.KeyService(keys, REGION)
    dk, rec = ks.new_data_key(sse.Encryption(sse.SSE_KMS), "b", "k", ACCOUNT)
    assert rec["kms"] == ks.kms.resolve("alias/aws/s3", ACCOUNT)
    assert ks.open(rec) == dk


def test_sse_c_data_key_round_trip_and_the_record_holds_no_key(keys):
    ks = K.KeyService(keys, REGION)
    customer_key = seal.new_key()
    md5 = base64.b64encode(hashlib.md5(customer_key).digest()).decode()
    enc = sse.Encryption(sse.SSE_C, customer=sse.CustomerKey(customer_key, md5))
    dk, rec = ks.new_data_key(enc, "b", "k", ACCOUNT)
    assert set(rec) == {"alg", "wrap", "salt", "hmac"} and rec["alg"] == sse.SSE_C    # no MD5 of the key
    stored = json.dumps(rec)
    assert base64.b64encode(customer_key).decode() not in stored and customer_key.hex() not in stored
    for value in rec.values():
        try:
            assert customer_key not in base64.b64decode(value)
        except ValueError:
            pass
    assert seal.key_matches(customer_key, rec["salt"], rec["hmac"])
    assert ks.open(rec, customer_key) == dk
    with pytest.raises(seal.Unsealable):
        ks.open(rec, seal.new_key())
    with pytest.raises(seal.Unsealable):
        ks.open(rec)                                   # no key given
    assert not seal.key_matches(seal.new_key(), rec["salt"], rec["hmac"])


def test_each_kind_of_wrap_opens_only_as_its_own_kind(keys):
    """The AADs bind a wrapped key to its kind: an SSE-S3 record relabelled SSE-C
    (the master key given as the customer's) does not open."""
    ks = K.KeyService(keys, REGION)
    _, rec = ks.new_data_key(sse.Encryption(sse.SSE_S3), "b", "k", ACCOUNT)
    with pytest.raises(seal.Unsealable):
        ks.open({**rec, "alg": sse.SSE_C}, ks.master)


# ----------------------------------------------------------------------------- SSE-C over plain HTTP
def test_sse_c_over_plain_http_only_on_a_loopback_frontend_unless_the_topology_says():
    from minis3.config.specs import FrontendSpec
    from minis3.frontend.encryption import sse_c_over_http
    assert sse_c_over_http(FrontendSpec(host="127.0.0.1")) is True       # make run's, the tests'
    assert sse_c_over_http(FrontendSpec(host="::1")) is True
    assert sse_c_over_http(FrontendSpec(host="10.1.2.3")) is False       # a network: S3's rule (TLS only)
    assert sse_c_over_http(FrontendSpec(host="0.0.0.0")) is False        # every interface: not loopback
    assert sse_c_over_http(FrontendSpec(host="127.0.0.1", sse_c_over_http=False)) is False
    assert sse_c_over_http(FrontendSpec(host="10.1.2.3", sse_c_over_http=True)) is True
    assert sse_c_over_http(FrontendSpec(host="no-such-host.invalid")) is False


def test_an_alias_of_250_characters_and_many_slashes_has_a_file_of_its_own(tmp_path):
    kms = K.KeyService(tmp_path, "us-east-1").kms
    name = "alias/" + "/".join(["team"] * 50)[:250]
    arn = kms.resolve(name, "111122223333")
    assert arn == kms.resolve(name, "111122223333")
    assert K.KeyService(tmp_path, "us-east-1").kms.resolve(name, "111122223333") == arn   # from its file
    assert all(len(p.name) < 100 for p in (tmp_path / "kms").rglob("*"))
