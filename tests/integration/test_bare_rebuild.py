"""The bare rebuild `make bench-scrub` sets beside minis3's (bench/bare_rebuild.py):
real source processes, every rebuilt fragment compared with the one it replaces.
No timing is asserted."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from minis3.bench import bare_rebuild


def test_bare_rebuild_rebuilds_every_fragment_and_reports_json(tmp_path):
    # 2.5 MiB objects: three segments a fragment file, the last one shorter
    p = subprocess.run([sys.executable, "-m", "minis3.bench.bare_rebuild", "--objects", "40",
                        "--size-mib", "2.5", "--rounds", "2", "--dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout)
    assert got["objects"] == 40 and got["rounds"] == 2 and len(got["mb_s_each"]) == 2
    assert got["mb_written"] == round(40 * got["fragment_bytes"] / 1e6, 1)
    assert got["fragment_bytes"] > (5 << 20) // 8          # 2.5 MiB over k = 4, and pyeclib's headers
    assert got["mb_s"] > 0 and got["cpu_ms_per_mb"] > 0
    assert list(tmp_path.iterdir()) == []                  # its work directory is gone


def test_bare_rebuild_fails_when_a_fragment_comes_out_wrong(tmp_path, monkeypatch):
    """The comparison is real: a rebuilt fragment with one bit wrong is caught."""
    real = bare_rebuild.Receiver._rebuild

    def lossy(self, batch, got):
        real(self, batch, got)
        victim = self.out / f"{batch[0] % 256:02x}" / f"o{batch[0]}"
        data = victim.read_bytes()
        victim.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    monkeypatch.setattr(bare_rebuild.Receiver, "_rebuild", lossy)
    with pytest.raises(RuntimeError, match="fragments wrong"):
        bare_rebuild.measure(tmp_path / "work", 6, 1 << 20, rounds=1)


def test_every_design_rebuilds_every_fragment(tmp_path):
    """Both transports and both landings, their rounds interleaved; each
    round's output is compared with the originals inside measure()."""
    got = bare_rebuild.measure(tmp_path / "work", 20, (5 << 20) // 2, rounds=2, designs=bare_rebuild.DESIGNS)
    assert [(d["transport"], d["landing"]) for d in got["designs"]] == list(bare_rebuild.DESIGNS)
    assert all(len(d["mb_s_each"]) == 2 and d["mb_s"] > 0 and d["cpu_ms_per_mb"] > 0 for d in got["designs"])
    assert got["mb_s_each"] == got["designs"][0]["mb_s_each"]          # the top level is the first design


@pytest.mark.parametrize("transport", bare_rebuild.TRANSPORTS)
def test_an_extent_with_a_wrong_byte_is_caught(tmp_path, monkeypatch, transport):
    real = bare_rebuild.Receiver._land_extent

    def lossy(self, batch, rebuilt):
        real(self, batch, rebuilt)
        path = self.extents[-1][0]
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))
    monkeypatch.setattr(bare_rebuild.Receiver, "_land_extent", lossy)
    with pytest.raises(RuntimeError, match=rf"\({transport}\+extent\) got 1 of 6 fragments wrong"):
        bare_rebuild.measure(tmp_path / "work", 6, 1 << 20, rounds=1, designs=((transport, "extent"),))


def test_an_unknown_design_is_refused(tmp_path):
    with pytest.raises(ValueError, match="designs"):
        bare_rebuild.measure(tmp_path / "work", 2, 1 << 20, rounds=1, designs=(("http", "tape"),))
