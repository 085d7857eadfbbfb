"""The package's layers, as docs/ARCHITECTURE.md ("Packages and layers") writes them down.

A module may import from its own package and from packages in lower layers only. The table is
read from the document, so the document and the code cannot drift apart: a new module, a
moved one, or an import that goes up or sideways fails here with the line that does it.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "minis3"
DOC = ROOT / "docs" / "ARCHITECTURE.md"


# ----------------------------------------------------------------------------- the table

def layer_table(text: str) -> dict[str, tuple[int, frozenset[str]]]:
    """``{unit: (layer, its modules)}`` from the "Packages and layers" table: a unit is a
    package (its modules named in backquotes) or a top-level module (none named)."""
    section = text.split("## Packages and layers", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].isdigit():
            continue
        unit = cells[1].strip("`")
        assert unit not in table, f"{unit} is in the table twice"
        table[unit] = (int(cells[0]), frozenset(re.findall(r"`([\w]+)`", cells[2])))
    return table


def tree_units() -> dict[str, frozenset[str]]:
    """``{unit: its modules}`` as the tree has them."""
    units = {}
    for path in sorted(PACKAGE.iterdir()):
        if path.is_dir() and (path / "__init__.py").exists():
            units[path.name] = frozenset(p.stem for p in path.glob("*.py") if p.stem != "__init__")
        elif path.suffix == ".py" and path.stem != "__init__":
            units[path.stem] = frozenset()
    return units


# ----------------------------------------------------------------------------- the imports

def imported_units(source: str, module: str) -> list[tuple[int, str]]:
    """``(line, unit)`` for every minis3 unit that ``module`` (dotted, e.g.
    ``minis3.frontend.app``; a package as ``minis3.x.__init__``) imports, anywhere in it:
    at the top, inside functions, under ``if TYPE_CHECKING``."""
    here = module.split(".")[:-1]                  # the package a relative import starts from
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            targets = [(name, [a.name for a in node.names])]
        else:
            continue
        for name, names in targets:
            parts = name.split(".")
            if parts[0] != "minis3":
                continue
            if len(parts) > 1:
                found.append((node.lineno, parts[1]))
            else:                                  # ``from minis3 import config`` / ``from .. import config``
                found += [(node.lineno, n) for n in names or ()]
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def unit_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else Path(rel[0]).stem


def import_graph() -> dict[str, dict[str, list[str]]]:
    """``{unit: {unit it imports: ["file:line", ...]}}``."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        src = unit_of(path)
        if src == "__init__":
            continue
        for line, dst in imported_units(path.read_text(), module_name(path)):
            if dst != src:
                graph.setdefault(src, {}).setdefault(dst, []).append(f"{path.relative_to(ROOT)}:{line}")
    return graph


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """One cycle of units (first unit repeated at the end), or None."""
    state: dict[str, int] = {}                     # 1: on the current path, 2: done
    path: list[str] = []

    def visit(u: str) -> list[str] | None:
        state[u] = 1
        path.append(u)
        for v in sorted(graph.get(u, {})):
            if state.get(v) == 1:
                return path[path.index(v):] + [v]
            if v not in state and (cycle := visit(v)):
                return cycle
        path.pop()
        state[u] = 2
        return None

    for u in sorted(graph):
        if u not in state and (cycle := visit(u)):
            return cycle
    return None


# ----------------------------------------------------------------------------- the checks

def test_the_table_lists_every_package_and_module_of_the_tree():
    table = {unit: modules for unit, (_, modules) in layer_table(DOC.read_text()).items()}
    tree = tree_units()
    assert sorted(table) == sorted(tree), "packages the table and the tree disagree about"
    wrong = {unit: {"not in the table": sorted(tree[unit] - table[unit]),
                    "not in the tree": sorted(table[unit] - tree[unit])}
             for unit in tree if tree[unit] != table[unit]}
    assert wrong == {}


def test_every_import_goes_down_the_layers():
    table = layer_table(DOC.read_text())
    wrong = [f"{where}: {src} (layer {table[src][0]}) imports {dst} (layer {table[dst][0]})"
             for src, dsts in import_graph().items() for dst, wheres in dsts.items()
             if table[dst][0] >= table[src][0] for where in wheres]
    assert wrong == []


def test_the_packages_form_no_cycle():
    assert find_cycle(import_graph()) is None


def test_the_import_reader_sees_every_form():
    source = ("import os\nimport minis3.core.sigv4\nfrom minis3 import config\nfrom minis3.ec import layout\n"
              "from . import blocks\nfrom .. import meta\nfrom ..rpc.http import x\nfrom ...elsewhere import y\n"
              "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..frontend import app\n"
              "def f():\n    from ..cluster import chaos, where\n")
    assert imported_units(source, "minis3.storage.server") == [
        (2, "core"), (3, "config"), (4, "ec"), (5, "storage"), (6, "meta"), (7, "rpc"), (11, "frontend"),
        (13, "cluster")]
    assert imported_units("from . import config\nfrom .core import errors\n", "minis3.cli") == [
        (1, "config"), (2, "core")]
    assert imported_units("from .specs import Topology\n", "minis3.config.__init__") == [(1, "config")]


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": [], "c": []}, "b": {"c": []}}) is None


def test_the_table_reader_reads_layers_and_modules():
    text = ("## Packages and layers\n\n| layer | package | modules | what |\n|---|---|---|---|\n"
            "| 1 | `core` | `errors` `s3xml` | rules |\n| 9 | `cli` | | the command |\n\n## Next\n| 3 | `x` | | |\n")
    assert layer_table(text) == {"core": (1, frozenset({"errors", "s3xml"})), "cli": (9, frozenset())}


def test_the_readme_layout_names_every_package():
    """README.md's "Layout" names each package and top-level module of minis3/ (the short
    map; the table in docs/ARCHITECTURE.md is the full one)."""
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"\b([a-z_]+)/?", layout))
    assert sorted(u for u in tree_units() if u != "__main__" and u not in named) == []
