"""Suite-wide hooks."""
import shutil
import tempfile

_free_at_start: list[float] = []


def _free_gib() -> float:
    return shutil.disk_usage(tempfile.gettempdir()).free / (1 << 30)


def pytest_sessionstart(session):
    _free_at_start.append(_free_gib())


def pytest_terminal_summary(terminalreporter):
    """Free disk where the clusters keep their files, printed even with -q:
    the first thing to look at when a whole run fails with 500s (a full disk
    fails every WAL append). The suite's own peak is ~2 GiB above its start
    (one 1 GiB object's fragments, or the chaos tests' overwritten ones)."""
    terminalreporter.write_line(f"minis3: {_free_at_start[0]:.1f} GiB free in {tempfile.gettempdir()} at the start, "
                                f"{_free_gib():.1f} GiB at the end")
