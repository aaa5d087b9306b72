"""The layers point one way: geometry <- fields <- fit | render | extract | train <- view | pipelines <- cli.

Checked twice: by import-linter's contract in pyproject.toml (``lint-imports`` of this venv, a dev
dependency) and by an AST walk over the sources that needs nothing installed and also sees imports made
inside functions.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

SRC = REPO / "src" / "deepcsp"
TOP = ("fit", "render", "extract", "train")

#: package -> packages it must not import
UPPER = ("view", "pipelines", "cli")  # view and pipelines: one layer, independent of each other
FORBIDDEN = {
    "geometry": {"fields", *UPPER, *TOP},
    "fields": {*UPPER, *TOP},
    **{p: {*UPPER, *(set(TOP) - {p})} for p in TOP},
    "view": {"pipelines", "cli"},
    "pipelines": {"view", "cli"},
}


def _imported_modules(path: Path, source: str | None = None) -> set[str]:
    """Absolute names of every deepcsp module that ``path`` imports (relative imports resolved,
    imports inside functions included)."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"), filename=str(path))
    # the package a relative import starts from (the same for pkg/__init__.py and pkg/mod.py)
    pkg_parts = list(path.relative_to(SRC.parent).parts[:-1])
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return {m for m in out if m == "deepcsp" or m.startswith("deepcsp.")}


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_ast_layers_point_one_way():
    violations = []
    n_files = 0
    for pkg, banned in FORBIDDEN.items():
        folder = SRC / pkg
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.py")):
            n_files += 1
            for mod in _imported_modules(path):
                if _layer_of(mod) in banned:
                    violations.append(f"{path.relative_to(REPO)} imports {mod}")
    assert n_files > 5
    assert not violations, "\n".join(violations)


def test_ast_walk_sees_lazy_and_relative_imports():
    """The checker itself can fail: a lazy import inside a function and a relative import count."""
    code = "def f():\n    from deepcsp.fit import FitConfig\n\nfrom ..fields import query\nfrom . import sampling\n"
    mods = _imported_modules(SRC / "geometry" / "closest.py", source=code)
    assert {"deepcsp.fit.FitConfig", "deepcsp.fields.query", "deepcsp.geometry.sampling"} <= mods
    assert _layer_of("deepcsp.fit.FitConfig") in FORBIDDEN["geometry"]


def test_import_linter_contract():
    """import-linter (a dev dependency) checks the contract in pyproject.toml. Its script is taken
    next to this interpreter, not from PATH (the venv is rarely on PATH); the test fails when it is
    missing rather than skipping."""
    exe = Path(sys.executable).parent / ("lint-imports.exe" if os.name == "nt" else "lint-imports")
    assert exe.exists(), f"{exe} not found: install the dev extra (pip install -e '.[dev]')"
    p = subprocess.run([str(exe), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "broken" in p.stdout and "0 broken" in p.stdout


def _module_graph() -> dict[str, set[str]]:
    """deepcsp module -> deepcsp modules it imports (names reduced to modules that exist as files)."""
    names = {".".join(p.relative_to(SRC.parent).with_suffix("").parts): p for p in SRC.rglob("*.py")}
    names = {n.removesuffix(".__init__"): p for n, p in names.items()}
    graph = {}
    for name, path in names.items():
        deps = set()
        for mod in _imported_modules(path):
            while mod and mod not in names:  # "deepcsp.fields.query.Field" -> "deepcsp.fields.query"
                mod = mod.rpartition(".")[0]
            if mod and mod != name and not name.startswith(mod + "."):  # a module's own package is not a cycle
                deps.add(mod)
        graph[name] = deps
    return graph


def test_no_import_cycles_between_modules():
    """No two modules import each other, directly or through others (imports inside functions
    count; a package's ``__init__`` importing its own modules does not)."""
    graph = _module_graph()
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)
