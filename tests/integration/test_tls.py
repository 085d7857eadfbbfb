"""`minis3 up --tls`: S3 and the console over HTTPS, with the data directory's own CA.

One cluster for the module, started as a user starts it (`minis3 up --tls`, the
web console on). Over HTTPS botocore sends PutObject and UploadPart bodies as
aws-chunked with a trailing checksum (``STREAMING-UNSIGNED-PAYLOAD-TRAILER``,
its default since 1.36: it only leaves the payload unsigned where TLS protects
it); the tests watch the requests it sends (a ``before-send`` hook) and read
the objects back with their checksums.
"""
from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from minis3 import config
from minis3.config import tls
from minis3.cluster.supervisor import wait_healthy

from .cluster import ACCESS_KEY, SECRET_KEY, discard_dir, pick_base_port, write_topology

MiB = 1 << 20
BIN = Path(sys.executable).parent


class TLSCluster:
    def __init__(self, root: Path):
        self.root = root
        self.topo_path = write_topology(root / "topology.toml", root / "data", pick_base_port(), console=True)
        self.topo = config.load(self.topo_path).with_tls()
        self.ca = tls.files(self.topo).ca
        self.endpoint = self.topo.frontend.url
        self.up = subprocess.Popen([str(BIN / "minis3"), "up", "--tls", "--topology", str(self.topo_path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.banner = ""
        try:
            for line in self.up.stdout:              # the banner, once every process answers
                self.banner += line
                if "Ctrl-C stops every process" in line:
                    break
            assert "Ctrl-C stops" in self.banner, self.banner
            wait_healthy(self.topo, 30)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self.up.poll() is None:
            self.up.terminate()
            try:
                self.up.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.up.kill()
                self.up.communicate()

    def s3(self, sent: list | None = None):
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", verify=str(self.ca),
                              aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                              config=Config(retries={"max_attempts": 1}))
        if sent is not None:                          # every request as botocore sends it
            client.meta.events.register("before-send.s3", lambda request, **kw: sent.append(request))
        return client


@pytest.fixture(scope="module")
def tc(tmp_path_factory):
    root = tmp_path_factory.mktemp("tls")
    c = TLSCluster(root)
    yield c
    c.stop()
    discard_dir(root)


def _headers(request) -> dict[str, str]:
    """A sent request's headers, names lower-case, values text (botocore keeps some as bytes)."""
    return {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}


def _crc32(body: bytes) -> str:
    return base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()


def test_the_ca_is_made_once_with_private_keys_and_named_in_the_banner(tc):
    fs = tls.files(tc.topo)
    assert tc.endpoint.startswith("https://") and tc.topo.console.url.startswith("https://")
    assert f"AWS_CA_BUNDLE={fs.ca}" in tc.banner and f"endpoint    {tc.endpoint}" in tc.banner
    assert stat.S_IMODE(fs.ca_key.stat().st_mode) == 0o600 and stat.S_IMODE(fs.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(fs.ca.parent.stat().st_mode) == 0o700
    before = {p: p.read_bytes() for p in (fs.ca, fs.ca_key, fs.cert, fs.key)}
    tls.ensure(tc.topo)                               # kept: what clients trust does not change
    assert {p: p.read_bytes() for p in before} == before
    # With another host to serve, the server certificate is issued again by the same CA.
    other = tc.topo.with_frontend_per_az()
    tls.ensure(other)
    assert fs.ca.read_bytes() == before[fs.ca] and fs.cert.read_bytes() != before[fs.cert]
    from cryptography import x509
    san = x509.load_pem_x509_certificate(fs.cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert other.az_frontend("az-b").host in {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    assert {"localhost", "*.s3.localhost"} <= set(san.get_values_for_type(x509.DNSName))


def test_minis3_status_sees_the_https_frontend_up(tc):
    from minis3.cluster import status
    rows = status.collect(tc.topo)
    assert rows[0]["process"] == "frontend" and rows[0]["up"], rows[0]


def test_boto3_sends_aws_chunked_bodies_with_trailing_checksums_over_https(tc):
    sent: list = []
    s3 = tc.s3(sent)
    s3.create_bucket(Bucket="tls")

    # PutObject: an aws-chunked body, its CRC32 in a trailer, the payload unsigned (TLS protects it).
    body = os.urandom(300_000)
    s3.put_object(Bucket="tls", Key="single", Body=body)
    put = next(r for r in sent if r.method == "PUT" and r.url.endswith("/tls/single"))
    h = _headers(put)
    assert put.url.startswith("https://")
    assert "aws-chunked" in h["content-encoding"]
    assert h["x-amz-trailer"] == "x-amz-checksum-crc32"
    assert h["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert int(h["x-amz-decoded-content-length"]) == len(body)
    got = s3.get_object(Bucket="tls", Key="single", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ChecksumCRC32"] == _crc32(body)
    assert "aws-chunked" not in got.get("ContentEncoding", "")      # framing, not a property of the object

    # A multipart upload: each part aws-chunked with its own trailing CRC32, the whole a composite.
    parts = [os.urandom(5 * MiB), os.urandom(MiB + 17)]
    uid = s3.create_multipart_upload(Bucket="tls", Key="multi", ChecksumAlgorithm="CRC32")["UploadId"]
    done = []
    for n, part in enumerate(parts, 1):
        sent.clear()
        r = s3.upload_part(Bucket="tls", Key="multi", UploadId=uid, PartNumber=n, Body=part)
        [req] = [q for q in sent if q.method == "PUT"]
        h = _headers(req)
        assert "aws-chunked" in h["content-encoding"] and h["x-amz-trailer"] == "x-amz-checksum-crc32"
        assert r["ChecksumCRC32"] == _crc32(part)
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    r = s3.complete_multipart_upload(Bucket="tls", Key="multi", UploadId=uid, MultipartUpload={"Parts": done})
    composite = _crc32(b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)) + "-2"
    assert r["ChecksumCRC32"] == composite
    got = s3.get_object(Bucket="tls", Key="multi", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(parts) and got["ChecksumCRC32"] == composite


def test_plain_http_and_clients_that_do_not_trust_the_ca_get_nothing(tc):
    host, port = tc.topo.frontend.host, tc.topo.frontend.port
    # Plain HTTP to the TLS port: no HTTP answer, only a TLS alert or a closed connection.
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        reply = b""
        try:
            while chunk := s.recv(4096):
                reply += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert not reply.startswith(b"HTTP/"), reply[:200]
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://{host}:{port}/", timeout=10)
    # HTTPS with the system's CAs only: the certificate is not theirs.
    with pytest.raises(urllib.error.URLError) as e:
        urllib.request.urlopen(tc.endpoint + "/", timeout=10, context=ssl.create_default_context())
    assert isinstance(e.value.reason, ssl.SSLCertVerificationError)
    # With the CA: an S3 answer (403 for an anonymous request).
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tc.endpoint + "/", timeout=10, context=ssl.create_default_context(cafile=str(tc.ca)))
    assert e.value.code == 403 and b"<Code>AccessDenied</Code>" in e.value.read()


def test_aws_cli_copies_with_the_ca_bundle(tc, tmp_path):
    s3 = tc.s3()
    s3.create_bucket(Bucket="tls-cli")
    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(200_000))
    (tmp_path / "config").write_text("[default]\nregion = us-east-1\n")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_CONFIG_FILE=str(tmp_path / "config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_DEFAULT_REGION="us-east-1")
    env.pop("AWS_CA_BUNDLE", None)
    p = subprocess.run([str(BIN / "aws"), "--endpoint-url", tc.endpoint, "--ca-bundle", str(tc.ca),
                        "s3", "cp", str(src), "s3://tls-cli/up.bin"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert s3.get_object(Bucket="tls-cli", Key="up.bin")["Body"].read() == src.read_bytes()
    # Without it the CLI refuses the certificate.
    p = subprocess.run([str(BIN / "aws"), "--endpoint-url", tc.endpoint, "s3", "ls", "s3://tls-cli/"],
                       env=dict(env, AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard"),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in p.stderr, p.stdout + p.stderr


def test_the_console_serves_https_and_reaches_s3_over_it(tc):
    tc.s3().create_bucket(Bucket="tls-console")
    import http.cookiejar
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), urllib.request.HTTPSHandler(
        context=ssl.create_default_context(cafile=str(tc.ca))))
    console = tc.topo.console.url
    html = opener.open(console + "/login?next=/", timeout=30).read().decode()
    token = re.search(r'name="login_csrf" value="([^"]+)"', html).group(1)
    fields = {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "next": "/", "login_csrf": token}
    with opener.open(console + "/login", urllib.parse.urlencode(fields).encode(), timeout=30) as r:
        page = r.read().decode()
    assert r.status == 200 and "tls-console" in page               # listed through the frontend's HTTPS
    assert all(c.secure for c in jar if c.name == "minis3_console")  # the session cookie never goes out in clear
    assert any(c.name == "minis3_console" for c in jar)
    # The live feed asks the frontend for its recent requests (its /_minis3/trace) over HTTPS too.
    feed = opener.open(console + "/requests", timeout=30).read().decode()
    assert "PUT /tls-console" in feed and 'href="/trace/' in feed, feed


def test_sse_c_over_https_as_s3_requires(tc):
    """S3 takes SSE-C keys over TLS only; over HTTPS a customer's key works as it does there."""
    import hashlib
    s3 = tc.s3()
    key = os.urandom(32)
    s3.create_bucket(Bucket="tls-ssec")
    s3.put_bucket_encryption(Bucket="tls-ssec", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
        "BlockedEncryptionTypes": {"EncryptionType": ["NONE"]}}]})
    body = os.urandom(200_000)
    put = s3.put_object(Bucket="tls-ssec", Key="k", Body=body, SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert put["SSECustomerKeyMD5"] == base64.b64encode(hashlib.md5(key).digest()).decode()
    got = s3.get_object(Bucket="tls-ssec", Key="k", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert got["Body"].read() == body
