"""The pure rules of regions (minis3.core.regions) and the topology of several regions."""
import tomllib

import pytest

from minis3 import config
from minis3.core import errors as E
from minis3.core.regions import creation_region, wrong_region

REGIONS = ("us-east-1", "eu-west-1")


def test_a_bucket_of_another_region_is_a_permanent_redirect():
    err = wrong_region(here="us-east-1", signed_for="us-east-1", bucket="b", bucket_region="eu-west-1",
                       endpoint="s3.eu-west-1.minis3.test")
    assert isinstance(err, E.PermanentRedirect) and err.status == 301
    assert err.extra == {"Endpoint": "s3.eu-west-1.minis3.test", "Bucket": "b"}
    assert err.headers == {"x-amz-bucket-region": "eu-west-1"}
    # Even signed for the bucket's region: the endpoint is still the wrong one.
    assert isinstance(wrong_region(here="us-east-1", signed_for="eu-west-1", bucket="b", bucket_region="eu-west-1",
                                   endpoint="x"), E.PermanentRedirect)


def test_a_signature_for_another_region_names_the_right_one():
    err = wrong_region(here="eu-west-1", signed_for="us-east-1", bucket="b", bucket_region="eu-west-1", endpoint=None)
    assert isinstance(err, E.AuthorizationHeaderMalformed) and err.status == 400
    assert err.extra == {"Region": "eu-west-1"}
    assert "the region 'us-east-1' is wrong; expecting 'eu-west-1'" in err.message
    assert err.headers == {"x-amz-bucket-region": "eu-west-1"}       # what boto3 reads for a HEAD
    pre = wrong_region(here="eu-west-1", signed_for="us-east-1", bucket=None, bucket_region=None, endpoint=None,
                       presigned=True)
    assert isinstance(pre, E.AuthorizationQueryParametersError) and pre.extra == {"Region": "eu-west-1"}
    assert pre.headers == {}                  # no bucket: nothing to say where it lives


def test_the_right_place_is_no_error():
    assert wrong_region(here="eu-west-1", signed_for="eu-west-1", bucket="b", bucket_region="eu-west-1",
                        endpoint=None) is None
    assert wrong_region(here="eu-west-1", signed_for="eu-west-1", bucket="b", bucket_region=None,
                        endpoint=None) is None


@pytest.mark.parametrize("constraint,here,want", [
    (None, "us-east-1", "us-east-1"),
    ("eu-west-1", "us-east-1", "eu-west-1"),          # the us-east-1 endpoint creates anywhere
    ("eu-west-1", "eu-west-1", "eu-west-1"),
    ("us-east-1", "us-east-1", E.InvalidLocationConstraint),
    ("ap-south-9", "us-east-1", E.InvalidLocationConstraint),
    (None, "eu-west-1", E.IllegalLocationConstraintException),
    ("us-west-2", "eu-west-1", E.IllegalLocationConstraintException),
])
def test_creation_region(constraint, here, want):
    if isinstance(want, str):
        assert creation_region(constraint, here=here, regions=REGIONS) == want
    else:
        with pytest.raises(want):
            creation_region(constraint, here=here, regions=REGIONS)


def test_a_topology_of_two_regions(tmp_path):
    doc = tomllib.loads(config.regions_toml(23000, tmp_path, REGIONS))
    world = config.parse_world(doc)
    us, eu = world.regions
    assert (us.region, eu.region, world.global_region) == ("us-east-1", "eu-west-1", "us-east-1")
    assert us.frontend.port == eu.frontend.port and us.frontend.host != eu.frontend.host
    assert (eu.erasure.k, eu.erasure.m, len(eu.nodes)) == (2, 1, 3)
    assert eu.data_dir == tmp_path / "eu-west-1" and eu.world is world and eu.registry_region == "us-east-1"
    assert "s3.eu-west-1.minis3.test" in eu.frontend.virtual_host_domains
    assert eu.endpoint("us-east-1", "b") == "b.s3.us-east-1.minis3.test"
    assert eu.region_topology("us-east-1") is us
    doc["dns"]["global_region"] = "mars-1"
    with pytest.raises(config.TopologyError):
        config.parse_world(doc)


def test_load_picks_a_region(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(config.regions_toml(23000, tmp_path, REGIONS))
    assert config.load(path).region == "us-east-1"
    assert config.load(path, region="eu-west-1").region == "eu-west-1"
    with pytest.raises(config.TopologyError):
        config.load(path, region="mars-1")
    with pytest.raises(config.TopologyError):
        config.load(None, region="eu-west-1")      # the built-in cluster is one region
