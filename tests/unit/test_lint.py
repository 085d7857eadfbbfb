"""Checks over the source itself: pyflakes over the package, no test module
importing another, and no docstring or comment naming a file that is not there."""
import ast
import io
import re
import tokenize
from pathlib import Path

from pyflakes.api import checkPath
from pyflakes.reporter import Reporter

import minis3

PACKAGE = Path(minis3.__file__).parent
ROOT = PACKAGE.parent
TESTS = ROOT / "tests"


class _Collect:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        if text.strip():
            self.lines.append(text.strip())


def test_pyflakes_finds_nothing_in_the_package():
    """An unused import or an undefined name is a bug waiting (one of each
    once hid a deleted method from every other test)."""
    out = _Collect()
    reporter = Reporter(out, out)
    for path in sorted(PACKAGE.rglob("*.py")):
        checkPath(str(path), reporter)
    assert out.lines == []


# ----------------------------------------------------------------------------- test modules

def imported_modules(source: str, path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of everything ``source`` (the text of the file at
    ``path``) imports, relative imports resolved against its package: both
    the module and module.name for ``from module import name``, since the
    name may itself be a module (``from . import test_x``)."""
    package = list(path.relative_to(ROOT).parent.parts)
    out = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = base + (node.module.split(".") if node.module else [])
            out.append((node.lineno, ".".join(mod)))
            out += [(node.lineno, ".".join(mod + [a.name])) for a in node.names]
    return out


def imports_of_test_modules(source: str, path: Path) -> list[str]:
    """The imports in ``source`` of a test module of this repository."""
    found = []
    for line, mod in imported_modules(source, path):
        parts = mod.split(".")
        if parts[-1].startswith("test_") and (ROOT / Path(*parts)).with_suffix(".py").exists():
            found.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    return found


def test_no_test_module_imports_another():
    """A helper that two test modules need lives in a support module
    (tests/integration/cluster.py, wire.py, tests/unit/fake_s3.py ...), never
    in a test module: importing one runs its module-level code and ties two
    files' names and fixtures together, so neither can change alone."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        found += imports_of_test_modules(path.read_text(), path)
    assert found == []


def test_the_import_check_sees_every_form():
    here = TESTS / "integration" / "probe.py"
    source = ("from .test_wire import send\nfrom . import test_index\nimport tests.unit.test_sigv4\n"
              "from .wire import send\nfrom .cluster import TestCluster\nfrom aiohttp.test_utils import TestServer\n")
    assert [f.rsplit(" ", 1)[1] for f in imports_of_test_modules(source, here)] == [
        "tests.integration.test_wire", "tests.integration.test_index", "tests.unit.test_sigv4"]


# ----------------------------------------------------------------------------- paths named in the package

#: A path such as ``meta/client.py`` or ``minis3/frontend/app.py`` (a bare
#: ``app.py`` is too ambiguous to check).
PATH = re.compile(r"(?<![\w./-])((?:[A-Za-z_][\w-]*/)+[A-Za-z_]\w*\.py)\b")


def prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of every docstring and comment of ``source``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                out.append((node.body[0].lineno, doc))
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out.append((tok.start[0], tok.string))
    return out


def named_paths(source: str) -> list[tuple[int, str]]:
    """(line, path) of every path named in a docstring or a comment of ``source``."""
    return [(line, m.group(1)) for line, text in prose(source) for m in PATH.finditer(text)]


def path_exists(path: str) -> bool:
    """Relative to the repository (``minis3/...``, ``tests/...``) or to the package (``meta/client.py``)."""
    return (ROOT / path).is_file() or (PACKAGE / path).is_file()


def test_every_path_named_in_the_package_exists():
    """A docstring that sends a reader to a file must send them somewhere."""
    missing = [f"{path.relative_to(ROOT)}:{line} names {p}"
               for path in sorted(PACKAGE.rglob("*.py"))
               for line, p in named_paths(path.read_text()) if not path_exists(p)]
    assert missing == []


def test_every_path_named_in_the_docs_exists():
    """The same for the documentation a learner reads (docs/, the README, deploy/): a
    module that moves takes its mentions with it."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "deploy").rglob("*.md"))]
    missing = [f"{path.relative_to(ROOT)}:{n} names {m.group(1)}"
               for path in docs for n, line in enumerate(path.read_text().splitlines(), 1)
               for m in PATH.finditer(line)
               if not path_exists(m.group(1)) and not m.group(1).startswith(("http", "tmp/"))]
    assert missing == []


def test_the_path_check_sees_docstrings_and_comments():
    source = ('"""See meta/nowhere.py and minis3/meta/client.py; not http://x.org/a/b.py."""\n'
              "def f():\n    '''Like ``rpc/auth.py``.'''\n    return 1  # as in config/specs.py\n")
    assert [p for _, p in named_paths(source)] == ["meta/nowhere.py", "minis3/meta/client.py", "rpc/auth.py",
                                                  "config/specs.py"]
    assert [p for _, p in named_paths(source) if not path_exists(p)] == ["meta/nowhere.py"]


# ----------------------------------------------------------------------------- tracker numbers

#: An issue tracker's number ("issue 19", "issue #20"): history a reader of the
#: code cannot follow; the code and its tests say what they do and why instead.
ISSUE = re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE)


def issue_numbers(source: str) -> list[tuple[int, str]]:
    """(line, text) of every issue number in a docstring or a comment of ``source``."""
    return [(line, m.group(0)) for line, text in prose(source) for m in ISSUE.finditer(text)]


def test_no_issue_numbers_in_the_package_or_the_tests():
    found = [f"{path.relative_to(ROOT)}:{line}: {text}"
             for path in sorted([*PACKAGE.rglob("*.py"), *TESTS.rglob("*.py")]) if path.name != "test_lint.py"
             for line, text in issue_numbers(path.read_text())]
    assert found == []


def test_the_issue_check_sees_docstrings_and_comments():
    source = '"""Versioning (issue 18)."""\ndef f():\n    """An issue with it."""\n    return 1  # see Issue #20\n'
    assert [t for _, t in issue_numbers(source)] == ["issue 18", "Issue #20"]
