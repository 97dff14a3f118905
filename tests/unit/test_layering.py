"""The layout holds: no import cycles, each package imports only what the architecture table in
docs/architecture.md allows, and no module or class outgrows the size rule.

Every import counts, including those under ``if TYPE_CHECKING:`` and inside functions: a cycle
that only type checking sees is still a cycle in the design.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Known violations, each removed by the change that fixes it (issue 10's split of
# pipeline/session.py and realtime/handler.py, and the realtime commands <-> handler cycle, landed
# before this test, so both lists are empty). An entry must still violate: a fixed one fails the
# test until it is taken off, so the lists only ever shrink.
PENDING_SPLIT: frozenset[str] = frozenset()
"""Modules (``voxdialog/x/y.py``) or classes (``voxdialog/x/y.py::Class``) still too large."""
PENDING_CYCLES: frozenset[frozenset[str]] = frozenset()
"""Import cycles (the modules of each strongly connected component) still to be broken."""

MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 300
SIZE_EXEMPT = ("voxdialog/db/migrations/",)  # Alembic revisions are generated, not designed

# The turn's core runs the same under any transport and any store.
FRAMEWORK_FREE = ("voxdialog.pipeline", "voxdialog.brain", "voxdialog.audio", "voxdialog.providers")
FRAMEWORKS = frozenset({"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic"})
ABOVE_THE_PIPELINE = ("voxdialog.api", "voxdialog.db", "voxdialog.realtime", "voxdialog.runtime")


# --- the modules and their imports ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Module:
    name: str  # dotted: voxdialog.pipeline.session
    path: Path
    is_package: bool  # an __init__.py

    @property
    def rel(self) -> str:
        return self.path.relative_to(SRC).as_posix()


@cache
def modules() -> Mapping[str, Module]:
    found: dict[str, Module] = {}
    for path in sorted((SRC / "voxdialog").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        found[name] = Module(name, path, is_package)
    return found


@cache
def tree(name: str) -> ast.Module:
    module = modules()[name]
    return ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))


def _known(name: str) -> str:
    """The longest prefix of ``name`` that is a module (``voxdialog.x.Thing``: ``voxdialog.x``)."""
    while name not in modules() and "." in name:
        name = name.rpartition(".")[0]
    return name


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imported(module: Module) -> Iterator[str]:
    """Every module name an import statement anywhere in ``module`` names."""
    for node in ast.walk(tree(module.name)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            # `from voxdialog.x import y` imports the submodule voxdialog.x.y when there is one.
            yield from (_known(f"{base}.{alias.name}") for alias in node.names)


@cache
def internal_imports(name: str) -> frozenset[str]:
    """The voxdialog modules ``name`` imports (a package counts as its ``__init__``)."""
    named = (
        n for n in _imported(modules()[name]) if n == "voxdialog" or n.startswith("voxdialog.")
    )
    return frozenset(_known(n) for n in named) - {name}


@cache
def external_imports(name: str) -> frozenset[str]:
    """The top-level names of what else ``name`` imports (stdlib and third party)."""
    top = {n.partition(".")[0] for n in _imported(modules()[name])}
    return frozenset(top - {"voxdialog", ""})


def within(name: str, scope: str) -> bool:
    return name == scope or name.startswith(scope + ".")


# --- import cycles ----------------------------------------------------------------------------


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[frozenset[str]]:
    """Tarjan's algorithm: the components of more than one node (the cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    cycles = set(strongly_connected({name: internal_imports(name) for name in modules()}))

    new = [sorted(c) for c in cycles - PENDING_CYCLES]
    fixed = [sorted(c) for c in PENDING_CYCLES - cycles]
    assert not new, f"import cycles (break each one): {new}"
    assert not fixed, f"no longer a cycle, remove it from PENDING_CYCLES: {fixed}"


# --- the layering rule, as docs/architecture.md states it --------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the "Where each part lives" table.

    Attributes:
        scopes: What the row is about: packages (``voxdialog.audio``, every module in it) or
            single modules (``voxdialog.live``).
        packages: For each scope, whether it is a package (matched with its submodules).
        allowed: The voxdialog modules or packages it may import; None for ``all``.
        external: The third-party names in the cell (documentation only).
    """

    label: str
    scopes: tuple[str, ...]
    packages: tuple[bool, ...]
    allowed: tuple[str, ...] | None
    external: tuple[str, ...]

    def covers(self, name: str) -> bool:
        return any(
            within(name, s) if p else name == s
            for s, p in zip(self.scopes, self.packages, strict=True)
        )

    def specificity(self, name: str) -> int:
        return max(len(s) for s in self.scopes if within(name, s))

    def may_import(self, name: str) -> bool:
        if self.allowed is None or self.covers(name):  # a package may always import itself
            return True
        return any(within(name, entry) for entry in self.allowed)


def _scope(cell_path: str) -> tuple[str, bool]:
    """``audio/`` -> (voxdialog.audio, package); ``live.py`` -> (voxdialog.live, module)."""
    is_package = cell_path.endswith("/")
    parts = cell_path.strip("/").removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["voxdialog", *parts]), is_package


def _is_voxdialog(entry: str) -> bool:
    """Whether a cell entry names a part of voxdialog (by its first name: ``brain.base``)."""
    return f"voxdialog.{entry.partition('.')[0]}" in modules()


def _row(cells: list[str]) -> Row:
    paths = re.findall(r"`([^`]+)`", cells[0])
    scopes = [_scope(p) for p in paths]
    rule = re.sub(r"\([^)]*\)", "", cells[2]).replace("`", "")
    entries = [e.strip() for e in rule.split(",") if e.strip() not in ("", "—", "-")]
    internal = tuple(f"voxdialog.{e}" for e in entries if _is_voxdialog(e))
    external = tuple(e for e in entries if not _is_voxdialog(e) and e != "all")
    return Row(
        label=cells[0],
        scopes=tuple(s for s, _ in scopes),
        packages=tuple(p for _, p in scopes),
        allowed=None if "all" in entries else internal,
        external=external,
    )


@cache
def table() -> tuple[Row, ...]:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Where each part lives", 1)[1].splitlines()
    # The first table under the heading: its header and separator, then one line per row.
    start = next(i for i, ln in enumerate(section) if ln.startswith("|"))
    lines = list(itertools.takewhile(lambda ln: ln.startswith("|"), section[start:]))
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines[2:]]
    return tuple(_row(cells) for cells in rows)


def row_for(name: str) -> Row | None:
    rows = [row for row in table() if row.covers(name)]
    return max(rows, key=lambda row: row.specificity(name), default=None)


def test_every_module_has_a_row_and_every_row_names_real_things() -> None:
    missing = sorted(m.rel for m in modules().values() if row_for(m.name) is None)
    assert not missing, f"add a row to the table in {ARCHITECTURE.name} for: {missing}"

    for row in table():
        assert row.scopes, f"a row names no path: {row.label}"
        for scope, is_package in zip(row.scopes, row.packages, strict=True):
            path = SRC.joinpath(*scope.split("."))
            exists = path.is_dir() if is_package else scope in modules()
            assert exists, f"the row {row.label} names {scope}, which does not exist"
        for entry in row.allowed or ():
            assert entry in modules(), f"{row.label} may import {entry}, which does not exist"
        for name in row.external:
            assert _installed(name), f"{row.label}: '{name}' is neither voxdialog's nor installed"


def _installed(name: str) -> bool:
    """A third-party name in a cell: an importable top-level module or a distribution."""
    if "." not in name and importlib.util.find_spec(name) is not None:
        return True
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _rows_of(entry: str) -> Iterator[Row]:
    """The rows an entry reaches: the one that holds it, and any row for a part inside it."""
    holder = row_for(entry)
    if holder is not None:
        yield holder
    yield from (row for row in table() if any(s.startswith(entry + ".") for s in row.scopes))


def test_the_table_allows_no_upward_imports() -> None:
    """Read as a graph (row -> the rows its entries reach), the table has no cycle."""
    ranked = [row for row in table() if row.allowed is not None]
    graph: dict[str, set[str]] = {row.label: set() for row in ranked}
    for row in ranked:
        for entry in row.allowed or ():
            for other in _rows_of(entry):
                assert other.allowed is not None, f"{row.label} may import the top: {entry}"
                graph[row.label].add(other.label)
        graph[row.label].discard(row.label)
    cycles = [sorted(c) for c in strongly_connected(graph)]
    assert not cycles, f"rows of the table that may import each other: {cycles}"


def test_each_package_imports_only_what_the_table_allows() -> None:
    wrong = []
    for name in modules():
        row = row_for(name)
        assert row is not None, f"{name} has no row (see the test above)"
        wrong += [
            f"{name} -> {t} ({row.label})" for t in internal_imports(name) if not row.may_import(t)
        ]
    assert not wrong, "imports the table does not allow:\n" + "\n".join(sorted(wrong))


def test_the_pipeline_knows_no_web_framework_or_database() -> None:
    wrong = []
    for name in modules():
        if any(within(name, core) for core in FRAMEWORK_FREE):
            wrong += [f"{name} imports {t}" for t in external_imports(name) & FRAMEWORKS]
        if within(name, "voxdialog.pipeline"):
            above = [
                t for t in internal_imports(name) if any(within(t, a) for a in ABOVE_THE_PIPELINE)
            ]
            wrong += [f"{name} imports {t}" for t in above]
    assert not wrong, "\n".join(sorted(wrong))


def test_only_tests_import_the_testing_package() -> None:
    wrong = [
        f"{name} imports {t}"
        for name in modules()
        if not within(name, "voxdialog.testing")
        for t in internal_imports(name)
        if within(t, "voxdialog.testing")
    ]
    assert not wrong, "\n".join(sorted(wrong))


# --- the size rule ----------------------------------------------------------------------------


def oversized() -> set[str]:
    found: set[str] = set()
    for module in modules().values():
        if module.rel.startswith(SIZE_EXEMPT):
            continue
        if len(module.path.read_text(encoding="utf-8").splitlines()) > MAX_MODULE_LINES:
            found.add(module.rel)
        for node in ast.walk(tree(module.name)):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                    found.add(f"{module.rel}::{node.name}")
    return found


def test_no_module_or_class_outgrows_the_size_rule() -> None:
    found = oversized()

    new = sorted(found - PENDING_SPLIT)
    fixed = sorted(PENDING_SPLIT - found)
    rule = f"modules over {MAX_MODULE_LINES} lines or classes over {MAX_CLASS_LINES}"
    assert not new, f"{rule} (split them along a seam): {new}"
    assert not fixed, f"no longer too large, remove from PENDING_SPLIT: {fixed}"
