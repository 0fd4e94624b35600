"""The rooms of the house: no import cycle between xorlab's modules, and no module longer than
MAX_LINES but the known exceptions (each waiting to be split, for the reason given).

Only module-level imports count: an import inside a function runs on first use (lazy, and it
cannot take part in a cycle at import time), and one under ``if TYPE_CHECKING:`` never runs."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "xorlab"
MAX_LINES = 450
KNOWN_LONG = {  # path under xorlab/ -> why it is still long (the lead splits these)
}


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def _top_level(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is imported: its body, and the branches of module-level
    ``if`` (but ``if TYPE_CHECKING:``) and ``try`` statements."""
    out: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                out += _top_level(node.body) + _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            out += _top_level(node.body) + _top_level(node.orelse) + _top_level(node.finalbody)
            for handler in node.handlers:
                out += _top_level(handler.body)
    return out


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph() -> dict[str, set[str]]:
    """Module -> the xorlab modules it imports at module level. Importing ``a.b.c`` also runs the
    package ``a.b``, unless the importer is inside it (then the package is already loading)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        targets: set[str] = set()
        for node in _top_level(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
                continue
            if node.level:
                base = name.split(".")
                base = base[: len(base) - (node.level - 1) - (0 if is_pkg else 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets.add(mod)
            targets |= {f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules}
        edges: set[str] = set()
        for t in targets:
            if t not in modules:
                continue
            edges |= {a for a in _ancestors(t) if a in modules and a not in _ancestors(name)}
            edges.add(t)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m) :] + [m]
            if m not in state and (found := visit(m)):
                return found
        path.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_the_graph_sees_imports_of_every_form():
    g = import_graph()
    assert "xorlab.draw.boundary" in g["xorlab.gif"]  # from .draw.boundary import ...
    assert "xorlab.draw" in g["xorlab.gif"]  # ... runs the package draw too
    assert "xorlab.plots" in g["xorlab.report.run"]  # from .. import plots
    assert "xorlab.search.spec" in g["xorlab.search"]  # a package's own submodule
    assert "xorlab.search" not in g["xorlab.search.plan"]  # the importer's package is loading
    assert "xorlab.gif" not in g["xorlab.plots"]  # imported inside render_run_bytes: lazy


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_who_imports_gif_and_compare():
    g = import_graph()
    assert [m for m, deps in g.items() if "xorlab.gif" in deps] == []  # only lazily, by plots
    pages = [m for m in g if m.startswith("xorlab.report")]
    assert [m for m in pages if "xorlab.compare" in g[m]] == []  # pages share xorlab.show instead


def test_no_module_is_too_long():
    lengths = {
        p.relative_to(PACKAGE).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
        for p in _modules().values()
    }
    long = {p: n for p, n in lengths.items() if n > MAX_LINES and p not in KNOWN_LONG}
    assert long == {}, f"over {MAX_LINES} lines: split them by idea, or name them in KNOWN_LONG"


def test_the_readme_names_every_room():
    """README's Layout gives each module and package under xorlab/ a line of its own."""
    text = (PACKAGE.parent / "README.md").read_text(encoding="utf-8").split("## Layout", 1)[1]
    listed = {line.split("`")[1] for line in text.splitlines() if line.startswith("- `")}
    rooms = {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("__")}
    rooms |= {f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert sorted(rooms - listed) == [] and sorted(listed - rooms - {"configs/", "tests/",
        "benchmarks/", "docs/"}) == []  # fmt: skip
