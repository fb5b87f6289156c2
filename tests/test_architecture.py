"""The house rules of docs/architecture.md, read from the package's own source.

Every import statement of every module is read (module level and lazy ones inside
functions), resolved to the module it names, and held against the floors: no module
imports one above it (or one listed after it on its own floor), no module takes a name with
a leading underscore from another module, the module-level imports form no circle, no file
is over 700 lines and no function over 150. The rules are read off the AST, not from a
picture: a new import that breaks them fails here with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ppl_models"

# The floors of docs/architecture.md, bottom up; within a floor, the order in which its
# modules may import each other (a module may import those before it).
FLOORS = (
    ("_deprecation", "_files", "_checks", "_numerics", "_arviz"),
    ("inference", "datasets", "workflow"),
    ("gaussian", "regression", "logistic", "pca", "autoencoder", "ppca", "bayesian_pca", "vae"),
    ("plots", "estimators", "persistence", "distributed"),
    ("tour", "cli", "__main__"),
)
ORDER = {unit: i for i, unit in enumerate(u for floor in FLOORS for u in floor)}
GROUND_PRIVATE = set(FLOORS[0])  # underscore modules every floor shares
MAX_FILE_LINES = 700
MAX_FUNCTION_LINES = 150


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        out[_module_name(path)] = (path, ast.parse(path.read_text(), str(path)))
    return out


SOURCES = _sources()


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name: str) -> list[tuple[int, str, bool]]:
    """(line, imported dotted path, at module level) of every ppl_models import in
    ``name``; ``from a import b`` gives ``a.b`` (b may be a module or a name in a)."""
    path, tree = SOURCES[name]
    is_package = path.name == "__init__.py"
    top_level = {id(n) for n in tree.body}
    for n in tree.body:  # imports under a module-level `if`/`try` are module level too
        if isinstance(n, (ast.If, ast.Try)):
            top_level.update(id(m) for m in ast.walk(n))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ppl_models"):
                    found.append((node.lineno, alias.name, id(node) in top_level))
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, is_package, node)
            if target.split(".")[0] != "ppl_models":
                continue
            for alias in node.names:
                found.append((node.lineno, f"{target}.{alias.name}", id(node) in top_level))
    return found


def _unit(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_is_on_a_floor():
    units = {_unit(name) for name in SOURCES} - {None}
    assert units <= set(ORDER), f"modules on no floor of FLOORS: {sorted(units - set(ORDER))}"


def test_no_upward_import():
    wrong = []
    for name in SOURCES:
        me = _unit(name)
        if me is None:  # the package's face hands names on lazily (module __getattr__)
            continue
        for line, target, _ in _imports(name):
            other = _unit(target)
            if other is None or other == me or other not in ORDER:
                continue
            if ORDER[other] > ORDER[me]:
                wrong.append(f"{name}:{line} imports {target} (floor of {other} is above {me})")
    assert not wrong, "\n".join(wrong)


def test_no_private_name_from_another_module():
    wrong = []
    for name in SOURCES:
        me = _unit(name)
        for line, target, _ in _imports(name):
            parts = target.split(".")
            if _unit(target) == me:
                continue
            for i, part in enumerate(parts[1:], 1):
                if part.startswith("_") and not part.startswith("__"):
                    if i == 1 and part in GROUND_PRIVATE:
                        continue  # the ground floor's modules themselves
                    wrong.append(f"{name}:{line} imports the private {target}")
                    break
        # `module._name` on an imported ppl_models module
        path, tree = SOURCES[name]
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(name, path.name == "__init__.py", node)
                if target.split(".")[0] == "ppl_models":
                    for alias in node.names:
                        full = f"{target}.{alias.name}"
                        if full in SOURCES and _unit(full) != me:
                            modules.add(alias.asname or alias.name)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                wrong.append(f"{name}:{node.lineno} reads {node.value.id}.{node.attr}")
    assert not wrong, "\n".join(wrong)


def test_no_circle_of_module_level_imports():
    graph: dict[str, set[str]] = {}
    for name in SOURCES:
        edges = set()
        for _, target, top in _imports(name):
            if not top:
                continue
            # `from pkg import sub` names the submodule; `from mod import f` the module.
            module = target if target in SOURCES else target.rsplit(".", 1)[0]
            if module in SOURCES and module != name:
                edges.add(module)
        graph[name] = edges
    # A package's face imports its files; a file importing its own package's face (or
    # a parent package's) would close a circle, and so would any longer loop.
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not circles, "\n".join(circles)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_file_and_function_sizes(name):
    path, tree = SOURCES[name]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_FILE_LINES, f"{path.name} has {lines} lines; split it along its seams"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines in {name}: {long}"


def test_the_rules_catch_what_they_forbid(tmp_path):
    """The checks above can fail: an upward import, a private import and a circle are found."""
    tree = ast.parse("from ..cli import main\nfrom ..ppca._base import thing\n")
    SOURCES["ppl_models.pca.fake"] = (tmp_path / "fake.py", tree)
    try:
        with pytest.raises(AssertionError, match=r"pca\.fake:1 imports ppl_models\.cli\.main"):
            test_no_upward_import()
        with pytest.raises(AssertionError, match=r"private ppl_models\.ppca\._base\.thing"):
            test_no_private_name_from_another_module()
    finally:
        del SOURCES["ppl_models.pca.fake"]
    SOURCES["ppl_models.pca.fake_a"] = (tmp_path / "fake_a.py", ast.parse("from . import fake_b"))
    SOURCES["ppl_models.pca.fake_b"] = (tmp_path / "fake_b.py", ast.parse("from .fake_a import f"))
    try:
        with pytest.raises(AssertionError, match=r"pca\.fake_a -> ppl_models\.pca\.fake_b"):
            test_no_circle_of_module_level_imports()
    finally:
        del SOURCES["ppl_models.pca.fake_a"], SOURCES["ppl_models.pca.fake_b"]


def test_benchmarks_and_tutorials_import_names_that_exist():
    """Every ``from ppl_models... import name`` in benchmarks/ and tutorials/ (lazy ones
    included) names something that exists: a layout change cannot leave them behind
    (bench_vae's breakdown once imported inference internals that had moved)."""
    import importlib

    root = PACKAGE.parent
    missing = []
    for path in sorted([*root.glob("benchmarks/*.py"), *root.glob("tutorials/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
                continue
            if node.module.split(".")[0] != "ppl_models":
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name) and f"{node.module}.{alias.name}" not in {
                    n for n in SOURCES
                }:
                    missing.append(f"{path.name}:{node.lineno} {node.module}.{alias.name}")
    assert not missing, "\n".join(missing)
