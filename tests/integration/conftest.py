import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from .cluster import ACCESS_KEY, SECRET_KEY, discard_dir, on_demand_cluster, started_cluster
from .regions import TwoRegions


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    yield from started_cluster(tmp_path_factory, "minis3")


@pytest.fixture(scope="module")
def hc(request, tmp_path_factory):
    """A cluster of the test module's own whose scrubber runs only when asked (or when a
    node returns), for the modules that test what a pass heals."""
    yield from on_demand_cluster(tmp_path_factory, request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def hs3(hc):
    return make_client(hc.endpoint)


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Two regions and the DNS server (tests/integration/regions.py); names
    under the zone resolve with minis3's DNS server in this process."""
    from minis3.dns.resolve import using_dns
    w = TwoRegions(tmp_path_factory.mktemp("regions"))
    w.regions.start(timeout=90)
    with using_dns(w.dns.host, w.dns.port, w.dns.domain):
        yield w
    w.regions.stop()
    discard_dir(w.path.parent)


def make_client(endpoint, **cfg):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=Config(retries={"max_attempts": 2, "mode": "standard"}, **cfg))


@pytest.fixture(scope="session")
def s3(cluster):
    return make_client(cluster.endpoint)


@pytest.fixture
def bucket(s3, request):
    name = "t-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40].rstrip("-")
    name = "".join(c for c in name if c.isalnum() or c == "-")
    s3.create_bucket(Bucket=name)
    yield name
    # Empty and remove it, page by page.
    while True:
        page = s3.list_objects_v2(Bucket=name)
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if not keys:
            break
        s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def aws(cluster, tmp_path_factory):
    """Run the aws CLI (v1, installed in the venv) against the cluster."""
    cfg_dir = tmp_path_factory.mktemp("awscfg")
    (cfg_dir / "config").write_text(
        "[default]\nregion = us-east-1\n"
        # Most tests check single-PUT ETags; test_awscli's multipart test runs the CLI's own defaults.
        "s3 =\n    multipart_threshold = 5GB\n")
    base_env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                    AWS_CONFIG_FILE=str(cfg_dir / "config"), AWS_SHARED_CREDENTIALS_FILE=str(cfg_dir / "none"),
                    AWS_DEFAULT_REGION="us-east-1")
    aws_bin = Path(sys.executable).parent / "aws"

    def run(*args, check=True, input=None, env=None):
        """``input``: text, or bytes (then stdout and stderr are bytes too); ``env``: variables
        to change for this run."""
        p = subprocess.run([str(aws_bin), "--endpoint-url", cluster.endpoint, *args], env={**base_env, **(env or {})},
                           capture_output=True, text=not isinstance(input, bytes), input=input, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p
    return run

