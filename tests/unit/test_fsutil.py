"""DurableFile: pieces in, the same bytes out, and a closed descriptor stays closed."""
from __future__ import annotations

import os

import pytest

from minis3.fsutil import DurableFile


def test_durable_file_writes_pieces_across_writeback_steps(tmp_path, monkeypatch):
    monkeypatch.setattr(DurableFile, "WRITEBACK_STEP", 1000)
    path = tmp_path / "f"
    f = DurableFile(path)
    chunks = [os.urandom(n) for n in (10, 999, 1, 2500, 0, 77)]
    for i in range(0, len(chunks), 2):
        f.write(*chunks[i:i + 2])
    assert f.size == sum(map(len, chunks))
    f.sync_and_close()
    assert path.read_bytes() == b"".join(chunks)
    f.close()                                   # idempotent
    with pytest.raises(ValueError):
        f.write(b"late")


def test_durable_file_refuses_to_overwrite(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        DurableFile(tmp_path / "f")
