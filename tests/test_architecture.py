"""The package's architecture, kept by a test: layers, no import cycles, no private imports.

`LAYERS` is the layer map, lowest first (docs/architecture.md draws it). A module may import
from its own layer or from a lower one; layers on the same rank (a tuple) may not import each
other. Every import counts, including those inside functions and `TYPE_CHECKING` blocks.
The root package (`cnnkit/__init__.py`: the version and lazy public names) may be imported from
anywhere, and itself imports only `core` eagerly.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnkit"

LAYERS: list[tuple[str, ...]] = [
    ("core",),  # errors, argument checks, atomic file writes
    ("calc",),  # pure-Python arithmetic: shapes, parameter counts, receptive fields
    ("ops",),  # NumPy kernels, their loop references, activations
    ("imaging", "nn"),  # images, kernels, digits | the NumPy engine's layers and optimizers
    ("data",),  # dataset registry, readers, fetching, verification, transforms
    ("models",),  # the model registry (torch and NumPy), the fast conv, checkpoints
    ("training",),  # TrainConfig, engines, run folders and resume, the loop
    ("analysis",),  # summary, evaluate, predict, feature maps, ERF, the chapter: dataclasses
    ("render",),  # tables, figures, the HTML report: dataclasses in, text/PNG/HTML out
    ("web",),  # the playground server (below cli: `cnnkit serve` starts it)
    ("cli",),  # the command line
    ("__main__",),  # `python -m cnnkit`
]
RANK = {layer: rank for rank, group in enumerate(LAYERS) for layer in group}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str | None:
    """'cnnkit.ops.conv' -> 'ops'; the root package -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every cnnkit import in the file, wherever it is."""
    source = path.read_text(encoding="utf-8")
    return imports_in(source, module_name(path), is_package=path.name == "__init__.py")


def imports_in(source: str, package: str, *, is_package: bool) -> list[tuple[str, list[str], int]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("cnnkit")]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([module] if module else []))
            if module.startswith("cnnkit"):
                found.append((module, [a.name for a in node.names], node.lineno))
    return found


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_is_in_a_layer():
    unknown = {layer_of(m) for m in all_modules()} - set(RANK) - {None}
    assert not unknown, f"folders missing from LAYERS: {sorted(unknown)}"


def test_no_upward_or_sideways_import():
    bad = []
    for module, path in all_modules().items():
        here = layer_of(module)
        for target, _names, line in imports(path):
            there = layer_of(target)
            if there is None or here == there:
                continue
            if here is None:  # the root package: only core, eagerly
                if there != "core":
                    bad.append(f"{module}:{line} imports {target} (the root imports only core)")
            elif there not in RANK or RANK[there] >= RANK[here]:
                bad.append(f"{module}:{line} ({here}) imports {target} ({there})")
    assert not bad, "imports against the layer map:\n" + "\n".join(bad)


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (`from pkg import mod` counts as `pkg.mod`).

    Package __init__ files are imported on the way to their submodules; an edge to a
    package is an edge to its __init__, which is how Python runs it.
    """
    modules = all_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for target, names, _line in imports(path):
            candidates = [f"{target}.{n}" for n in names] + [target]
            found = next((c for c in candidates if c in modules and c != module), None)
            if found is not None:
                graph[module].add(found)
    return graph


def test_no_import_cycle():
    graph = import_graph()
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join(stack[stack.index(n) :] + [n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_private_name_imported_across_modules():
    bad = []
    for module, path in all_modules().items():
        for target, names, line in imports(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != module:
                bad.append(f"{module}:{line} imports {private} from {target}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from cnnkit.cli.main import main\n", ["cnnkit.cli.main"]),
        ("def f():\n    from cnnkit.render import tables\n", ["cnnkit.render"]),
        ("if TYPE_CHECKING:\n    import cnnkit.ops.conv\n", ["cnnkit.ops.conv"]),
        ("from .pool import max_pool2d\n", ["cnnkit.ops.pool"]),
        ("from ..calc import arithmetic\n", ["cnnkit.calc"]),
        ("import numpy\n", []),
    ],
)
def test_the_checker_sees_every_kind_of_import(source, expected):
    found = imports_in(source, "cnnkit.ops.conv", is_package=False)
    assert [m for m, _names, _line in found] == expected


# Modules still without `__all__`, owned by parts being reworked now; remove each name when
# its module gets one (the test below then keeps it).
ALL_PENDING = {
    "cnnkit.cli.commands.serve",
    "cnnkit.training.engine",
    "cnnkit.training.numpy_engine",
}


def defines_all(path: Path) -> bool:
    """True when the module assigns `__all__`, or holds nothing but a docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if all(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in tree.body
    ):
        return True
    return any(
        isinstance(node, ast.Assign | ast.AnnAssign)
        and any(
            isinstance(t, ast.Name) and t.id == "__all__"
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
        for node in tree.body
    )


def test_every_public_module_declares_all():
    """`__all__` says what a module offers; empty package markers and __main__ are exempt."""
    missing = sorted(
        module
        for module, path in all_modules().items()
        if not module.endswith("__main__") and module not in ALL_PENDING and not defines_all(path)
    )
    assert not missing, f"modules without __all__: {missing}"
    done = sorted(m for m in ALL_PENDING if m in all_modules() and defines_all(all_modules()[m]))
    assert not done, f"remove from ALL_PENDING (they have __all__ now): {done}"
