"""`--tls` and the topology's ``tls``: which URLs are https, what the certificate must name,
and that `minis3 up --tls` passes it on to its children (config/tls.py)."""
from __future__ import annotations

import argparse
import socket

from minis3 import config as T
from minis3.cluster import supervisor
from minis3.config import tls


def test_tls_makes_the_frontends_and_the_console_https_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.delenv(T.TLS_ENV, raising=False)
    plain = T.parse(T.default_doc(), data_dir=tmp_path)
    assert plain.frontend.url.startswith("http://") and tls.client_context(plain) is None
    assert "--tls" not in supervisor._cli_args(plain)
    for topo in (T.parse(dict(T.default_doc(), tls=True), data_dir=tmp_path), plain.with_tls()):
        topo = topo.with_frontend_per_az()
        assert all(f.url.startswith("https://") for f in topo.frontends)
        assert topo.console.url.startswith("https://")
        assert all(n.url.startswith("http://") for n in topo.nodes + topo.all_metas)   # internal RPC: plain
        assert topo.scrub.url.startswith("http://")
        assert "--tls" in supervisor._cli_args(topo)
    p = argparse.ArgumentParser()
    T.add_arguments(p)
    assert T.from_args(p.parse_args(["--tls", "--data-dir", str(tmp_path)])).frontend.tls
    monkeypatch.setenv(T.TLS_ENV, "1")
    p = argparse.ArgumentParser()
    T.add_arguments(p)
    assert T.from_args(p.parse_args(["--data-dir", str(tmp_path)])).console.tls


def test_the_certificate_names_every_host_a_client_may_use(tmp_path):
    topo = T.parse(T.default_doc(), data_dir=tmp_path).with_tls().with_frontend_per_az()
    dns, ips = tls.server_names(topo)
    assert {"localhost", "*.s3.localhost"} <= set(dns)
    assert {"127.0.0.1", "::1"} | {f.host for f in topo.frontends} <= set(ips)
    doc = T.default_doc()
    doc["frontend"]["host"] = "0.0.0.0"          # listening everywhere: the machine's own name
    dns, ips = tls.server_names(T.parse(doc, data_dir=tmp_path).with_tls())
    assert socket.gethostname().lower() in dns and "0.0.0.0" not in ips
