"""AZ addresses, the RPC layer's inter-AZ delay, and `minis3 chaos` argument checks (no cluster)."""
from __future__ import annotations

import sys
import time

import pytest

from minis3 import config
from minis3.cluster import chaos
from minis3.rpc import delay


def test_each_az_has_its_own_loopback_address_on_linux():
    topo = config.load(None)
    if not sys.platform.startswith("linux"):
        assert {az.meta.host for az in topo.azs} == {"127.0.0.1"}
        return
    assert [az.meta.host for az in topo.azs] == ["127.0.1.1", "127.0.2.1", "127.0.3.1"]
    for az in topo.azs:
        assert {n.host for n in az.nodes} == {az.meta.host}
    assert topo.frontend.host == topo.scrub.host == "127.0.0.1"
    # Clusters on other port ranges (tests, benchmarks) use other addresses, so a
    # partition of one never cuts another.
    other = config.parse(config.default_doc(12000))
    assert [az.meta.host for az in other.azs] == ["127.12.1.1", "127.12.2.1", "127.12.3.1"]


def test_crossing_delay_applies_only_across_a_delayed_az():
    d = {"az-b": 5.0}
    assert delay.crossing_delay_ms(d, None, "az-b") == 5.0          # main frontend → az-b
    assert delay.crossing_delay_ms(d, None, "az-a") == 0.0
    assert delay.crossing_delay_ms(d, "az-b", "az-a") == 5.0        # az-b's replica → az-a
    assert delay.crossing_delay_ms(d, "az-b", "az-b") == 0.0        # inside the AZ
    assert delay.crossing_delay_ms(d, "az-a", "az-c") == 0.0
    assert delay.crossing_delay_ms(d, None, None) == 0.0            # the scrubber, say
    assert delay.crossing_delay_ms({"az-a": 2, "az-b": 5}, "az-a", "az-b") == 5.0


def test_delay_switches_live_from_the_settings_file(tmp_path, monkeypatch):
    monkeypatch.setattr(delay, "CHECK_EVERY_S", 0.0)
    topo = config.parse(config.default_doc(12000), data_dir=tmp_path)
    d = delay.InterAZDelay.for_topology(topo, None)
    b1 = topo.node("b1")
    assert d.seconds(b1.host, b1.port) == 0.0
    delay.write_settings(tmp_path, {"az-b": 5.0})
    time.sleep(0.01)                                              # a new mtime
    assert d.seconds(b1.host, b1.port) == pytest.approx(0.005)
    a1 = topo.node("a1")
    assert d.seconds(a1.host, a1.port) == 0.0
    assert d.seconds("example.org", 80) == 0.0                    # not an AZ's process
    in_b = delay.InterAZDelay.for_topology(topo, "az-b")
    assert in_b.seconds(a1.host, a1.port) == pytest.approx(0.005)
    assert in_b.seconds(b1.host, b1.port) == 0.0
    (tmp_path / "run" / "latency.json").unlink()
    time.sleep(0.01)
    assert d.seconds(b1.host, b1.port) == 0.0


def test_latency_amounts_and_heal(tmp_path):
    topo = config.parse(config.default_doc(12000), data_dir=tmp_path)
    assert "5 ms" in chaos.set_latency(topo, "az-b", "5ms")
    assert delay.read_settings(tmp_path) == {"az-b": 5.0}
    chaos.set_latency(topo, "all", "0.01s")
    assert delay.read_settings(tmp_path) == {"az-a": 10.0, "az-b": 10.0, "az-c": 10.0}
    chaos.set_latency(topo, "az-a", "0")
    assert delay.read_settings(tmp_path) == {"az-b": 10.0, "az-c": 10.0}
    for bad in ("", "fast", "-5ms", "5 minutes"):
        with pytest.raises(chaos.ChaosError):
            chaos.set_latency(topo, "az-b", bad)
    with pytest.raises(chaos.ChaosError):
        chaos.set_latency(topo, "az-z", "5ms")
    assert "latency removed" in chaos.heal(topo, "az-c")
    assert delay.read_settings(tmp_path) == {"az-b": 10.0}


def test_partition_without_root_says_so_and_changes_nothing(tmp_path, monkeypatch):
    topo = config.parse(config.default_doc(12000), data_dir=tmp_path)
    monkeypatch.setattr(chaos.os, "geteuid", lambda: 1000)
    ran = []
    monkeypatch.setattr(chaos.subprocess, "run", lambda *a, **k: ran.append(a))
    with pytest.raises(chaos.ChaosError, match="needs root"):
        chaos.partition_az(topo, "az-b")
    assert ran == []


def test_partition_refuses_an_az_sharing_its_address(tmp_path, monkeypatch):
    doc = config.default_doc(12000)
    for az in doc["az"]:                       # every AZ on 127.0.0.1, as on macOS
        az["meta"]["host"] = "127.0.0.1"
        for n in az["nodes"]:
            n["host"] = "127.0.0.1"
    topo = config.parse(doc, data_dir=tmp_path)
    monkeypatch.setattr(chaos.os, "geteuid", lambda: 0)
    monkeypatch.setattr(chaos.shutil, "which", lambda name: "/usr/sbin/iptables")
    with pytest.raises(chaos.ChaosError, match="shares its address"):
        chaos.partition_az(topo, "az-b")
