"""HTTPS for the S3 endpoint and the console: ``minis3 up --tls``.

A data directory served over TLS has its own certificate authority, made once
with the ``cryptography`` library and kept in ``DATA_DIR/tls/``:

- ``ca.pem``: the CA's certificate (ECDSA P-256, self-signed, 10 years). This
  is what a client trusts: ``AWS_CA_BUNDLE=DATA_DIR/tls/ca.pem``, boto3's
  ``verify=``, the aws CLI's ``--ca-bundle``, curl's ``--cacert``;
- ``ca.key``: its private key (mode 0600);
- ``server.pem``: the certificate the frontend and the console present,
  signed by the CA (397 days), for ``localhost``, ``127.0.0.1``, ``::1``,
  every frontend's and the console's host (the machine's name for a wildcard
  address) and the virtual-host domains (``*.s3.localhost``);
- ``server.key``: its private key (mode 0600).

:func:`ensure` makes what is missing: the CA once (so a client that trusts it
keeps trusting it), and the server certificate again when the topology names
a host it does not cover, when it has less than 30 days left, or when another
CA signed it. It holds ``tls/.lock`` (flock) meanwhile, so processes starting
together agree. Only the S3 and console listeners use it: requests between
minis3's processes stay plain HTTP, signed with the cluster secret
(docs/security.md).
"""
from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import socket
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .specs import Topology

DIR = "tls"
CA_DAYS = 3650
SERVER_DAYS = 397              # what browsers accept of a public CA's certificate; renewed with 30 days left
RENEW_DAYS = 30
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Files:
    ca: Path            # the CA certificate clients trust
    ca_key: Path
    cert: Path          # the server certificate
    key: Path


def files(topo: Topology) -> Files:
    d = topo.data_dir / DIR
    return Files(ca=d / "ca.pem", ca_key=d / "ca.key", cert=d / "server.pem", key=d / "server.key")


def enabled(topo: Topology) -> bool:
    return topo.frontend.tls or topo.console.tls


def server_names(topo: Topology) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the server certificate must cover."""
    hosts = {"localhost", "127.0.0.1", "::1", topo.console.host}
    hosts.update(f.host for f in topo.frontends)
    for d in topo.frontend.virtual_host_domains:
        hosts.update((d, "*." + d))
    if hosts & set(WILDCARD_HOSTS):       # listening everywhere: the machine's own names too
        hosts -= set(WILDCARD_HOSTS)
        hosts.update({socket.gethostname(), socket.getfqdn()})
    dns, ips = [], []
    for h in sorted(h for h in hosts if h):
        try:
            ips.append(str(ipaddress.ip_address(h)))
        except ValueError:
            dns.append(h.lower())
    return dns, ips


@contextmanager
def _locked(d: Path):
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    with open(d / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Whole or not at all, created with ``mode`` (never readable by others first)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _make_ca(fs: Files) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "minis3"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"minis3 local CA ({socket.gethostname()})")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(signs_certificates=True), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))
    _write_pair(fs.ca_key, key, fs.ca, cert)


def _key_usage(signs_certificates: bool):
    """A CA's key signs certificates (and CRLs); a server's only handshakes."""
    from cryptography import x509
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=signs_certificates,
                         crl_sign=signs_certificates, encipher_only=False, decipher_only=False)


def _write_pair(key_path: Path, key, cert_path: Path, cert) -> None:
    """A private key (PKCS#8, mode 0600), then its certificate (PEM, readable by all)."""
    from cryptography.hazmat.primitives import serialization
    _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _issue(fs: Files, dns: list[str], ips: list[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    ca_cert = x509.load_pem_x509_certificate(fs.ca.read_bytes())
    ca_key = serialization.load_pem_private_key(fs.ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    san = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "minis3"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else ips[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signs_certificates=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_pair(fs.key, key, fs.cert, cert)


def _server_cert_fits(fs: Files, dns: list[str], ips: list[str]) -> bool:
    """The server certificate exists, is the CA's, covers these names and has RENEW_DAYS left."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    try:
        cert = x509.load_pem_x509_certificate(fs.cert.read_bytes())
        ca = x509.load_pem_x509_certificate(fs.ca.read_bytes())
        if not fs.key.exists():
            return False
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False
    have_dns = {d.lower() for d in san.get_values_for_type(x509.DNSName)}
    have_ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    left = cert.not_valid_after_utc - _now()
    return set(dns) <= have_dns and set(ips) <= have_ips and left > dt.timedelta(days=RENEW_DAYS)


def ensure(topo: Topology) -> Files:
    """The data directory's CA and a server certificate for this topology's
    hosts, made if missing (see the module's docstring)."""
    fs = files(topo)
    dns, ips = server_names(topo)
    with _locked(fs.ca.parent):
        if not (fs.ca.exists() and fs.ca_key.exists()):
            _make_ca(fs)
        if not _server_cert_fits(fs, dns, ips):
            _issue(fs, dns, ips)
    return fs


def server_context(topo: Topology) -> ssl.SSLContext:
    """The SSL context of the S3 and console listeners (TLS 1.2 and later)."""
    fs = ensure(topo)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with _locked(fs.ca.parent):
        ctx.load_cert_chain(fs.cert, fs.key)
    return ctx


_contexts: dict[tuple[str, int], ssl.SSLContext] = {}


def client_context(topo: Topology) -> ssl.SSLContext | None:
    """What minis3's own tools trust when they reach the frontend or the
    console over HTTPS: the data directory's CA (None without TLS). Before
    the CA exists (a tool waiting for ``minis3 up --tls`` to make it), a
    context that trusts nothing of it yet: ask again."""
    if not enabled(topo):
        return None
    ca = files(topo).ca
    try:
        key = (str(ca), ca.stat().st_mtime_ns)
    except FileNotFoundError:
        return ssl.create_default_context()
    if key not in _contexts:
        _contexts[key] = ssl.create_default_context(cafile=str(ca))
    return _contexts[key]
