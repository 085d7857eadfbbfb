"""DurableFile: pieces in, the same bytes out (through the page cache or
with direct I/O), and a closed descriptor stays closed; direct reads give
the bytes a plain read gives."""
from __future__ import annotations

import os

import pytest

from minis3 import fsutil
from minis3.fsutil import DurableFile, open_direct, pread_direct


def test_durable_file_writes_pieces_across_writeback_steps(tmp_path, monkeypatch):
    monkeypatch.setattr(DurableFile, "WRITEBACK_STEP", 1000)
    path = tmp_path / "f"
    f = DurableFile(path, direct=False)
    assert not f.direct
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


BUF = DurableFile.BUFFERS.size


@pytest.mark.parametrize("sizes", [[], [10], [4096], [5000], [BUF - 1], [BUF], [BUF + 5], [3000] * 1000,
                                   [BUF * 4, 7, 99_999], [BUF // 2, BUF // 2, 1]])
@pytest.mark.parametrize("direct", [True, False])
def test_direct_and_page_cache_writes_give_the_same_file(tmp_path, sizes, direct):
    pieces = [os.urandom(n) for n in sizes]
    f = DurableFile(tmp_path / "f", direct=direct)
    if direct and fsutil._O_DIRECT:
        assert f.direct
    for i in range(0, len(pieces), 3):
        f.write(*pieces[i:i + 3])
    f.sync_and_close()
    assert (tmp_path / "f").read_bytes() == b"".join(pieces)
    assert f.size == sum(sizes)
    f.close()


def test_buffers_are_reused_and_a_closed_file_gives_its_buffer_back(tmp_path):
    if not fsutil._O_DIRECT:
        pytest.skip("no direct I/O here")
    a = DurableFile(tmp_path / "a")
    buf = a._buf
    a.close()                                   # abandoned, never synced
    b = DurableFile(tmp_path / "b")
    assert b._buf is buf
    b.write(b"x" * (BUF + 1))
    b.sync_and_close()
    assert (tmp_path / "b").read_bytes() == b"x" * (BUF + 1)


@pytest.mark.parametrize("size", [0, 10, 4096, 5000, (1 << 20) + 3])
def test_direct_reads_give_what_a_plain_read_gives(tmp_path, size):
    data = os.urandom(size)
    p = tmp_path / "f"
    p.write_bytes(data)
    fd = open_direct(p)
    if fd < 0:
        pytest.skip("no direct I/O here")
    try:
        for off, n in [(0, 10), (1, 5000), (4095, 1 << 20), (max(0, size - 3), 100), (size + 10, 5),
                       (12345, 3 << 20)]:
            assert pread_direct(fd, n, off) == data[off:off + n], (off, n)
        assert pread_direct(fd, fsutil.READ_BUFFERS.size + 1, 0) is None     # too big: the caller reads plainly
    finally:
        os.close(fd)


def test_a_file_system_that_refuses_direct_writes_gets_them_through_the_page_cache(tmp_path, monkeypatch):
    """Opened for direct I/O, then EINVAL on a direct write (some overlay and
    FUSE file systems): the file is still written, through the page cache."""
    if not fsutil._O_DIRECT:
        pytest.skip("no direct I/O here")
    real_write = os.write
    refused = []

    def write(fd, data):
        import fcntl
        if fcntl.fcntl(fd, fcntl.F_GETFL) & fsutil._O_DIRECT:
            refused.append(len(data))
            raise OSError(22, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(fsutil.os, "write", write)
    data = os.urandom(BUF * 2 + 100)
    f = DurableFile(tmp_path / "f")
    f.write(data)
    f.sync_and_close()
    assert refused and (tmp_path / "f").read_bytes() == data


@pytest.mark.parametrize("direct", [True, False])
def test_a_missing_directory_is_made_only_when_asked(tmp_path, direct):
    path = tmp_path / "gone" / "f"
    with pytest.raises(FileNotFoundError):
        DurableFile(path, direct=direct)
    f = DurableFile(path, direct=direct, make_parent=True)
    f.write(b"abc")
    f.sync_and_close()
    assert path.read_bytes() == b"abc"
