"""pyflakes over the package: an unused import or an undefined name is a bug
waiting (one of each once hid a deleted method from every other test)."""
from pathlib import Path

from pyflakes.api import checkPath
from pyflakes.reporter import Reporter

import minis3


class _Collect:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        if text.strip():
            self.lines.append(text.strip())


def test_pyflakes_finds_nothing_in_the_package():
    out = _Collect()
    reporter = Reporter(out, out)
    for path in sorted(Path(minis3.__file__).parent.rglob("*.py")):
        checkPath(str(path), reporter)
    assert out.lines == []
