"""The import rules of the layout: `core` never imports Qt or the GUI; the stages (models,
pose, detection, tracking, video, ...) never import what orchestrates them (step, pipeline,
engine, batch, commands); nothing but main.py and the GUI imports the commands. Read from
the source (every import statement, also those inside functions), nothing is imported."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORCHESTRATION = ("core.step", "core.pipeline", "core.engine", "core.batch", "core.commands")
STAGES = ("core.models", "core.pose", "core.detection", "core.tracking", "core.video",
          "core.keypoints", "core.types", "core.errors", "core.io_utils")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(path: Path, name: str | None = None) -> list[str]:
    """The package a file's relative imports start from (its module `name`, by default its
    place in the repository)."""
    package = (name or module_name(path)).split(".")
    return package if path.name == "__init__.py" else package[:-1]


def _from_module(node: ast.ImportFrom, package: list[str]) -> str:
    """The module a `from ... import` statement reads, relative imports resolved."""
    if not node.level:
        return node.module or ""
    return ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module
                                                                 else []))


def imports(path: Path, name: str | None = None) -> set[str]:
    """Every module a file imports, also inside functions (`from m import x` counts as both
    m and m.x)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _package(path, name)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = _from_module(node, package)
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


CORE_FILES = sorted((ROOT / "core").rglob("*.py"))


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_no_qt_and_no_gui(path):
    bad = sorted(m for m in imports(path) if under(m, ("PySide6", "PyQt5", "PyQt6", "app",
                                                          "pyqtgraph")))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_stages_do_not_import_what_orchestrates_them():
    wrong = {}
    for path in CORE_FILES:
        me = module_name(path)
        if not under(me, STAGES):
            continue
        bad = sorted(m for m in imports(path) if under(m, ORCHESTRATION))
        if bad:
            wrong[me] = bad
    assert not wrong, f"lower layers import higher ones: {wrong}"


def test_only_main_and_the_gui_import_the_commands():
    wrong = {}
    for path in CORE_FILES:
        me = module_name(path)
        if under(me, ("core.commands",)):
            continue
        bad = sorted(m for m in imports(path) if under(m, ("core.commands",)))
        if bad:
            wrong[me] = bad
    assert not wrong, f"imports of core.commands from below it: {wrong}"


def test_the_rules_see_a_violation(tmp_path):
    """The scanner itself: an import inside a function and a relative one are found."""
    f = tmp_path / "probe.py"
    f.write_text("def f():\n    from ..step import PoseStep\n    import PySide6.QtCore\n")
    found = imports(f, "core.pose.probe")
    assert "core.step" in found and "PySide6.QtCore" in found
    assert under("core.step", ORCHESTRATION) and not under("core.stepper", ORCHESTRATION)


def module_level_imports(path: Path, known: set[str]) -> set[str]:
    """The core modules a file imports when it is imported (not inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _package(path)
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            mod = _from_module(node, package)
            for a in node.names:
                full = f"{mod}.{a.name}"
                out.add(full if full in known else mod)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out & known


def test_no_import_cycles_at_module_level():
    graph = {module_name(p): p for p in CORE_FILES}
    known = set(graph)
    edges = {m: module_level_imports(p, known) - {m} for m, p in graph.items()}
    # depth-first search for a back edge
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> list[str] | None:
        state[m] = 1
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                return trail + [m, n]
            if n not in state:
                found = visit(n, trail + [m])
                if found:
                    return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m, [])
            assert cycle is None, f"import cycle: {' -> '.join(cycle)}"
