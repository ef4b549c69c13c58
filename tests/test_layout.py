"""The package layout holds: stages import only the stages below them, no import circles, no
function-local imports of repdrift modules outside the two places that keep start-up fast, and
no module grows past the size a reader can hold in mind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "repdrift"

# Each package may import packages of a lower floor (and itself), never one of its own floor or
# above. The floors are the pipeline read bottom-up (shared/LAYOUT.md).
FLOORS: dict[str, int] = {
    "errors": -1,
    "common": 0,
    "metrics": 1,
    "tasks": 1,
    "models": 2,
    "store": 2,
    "analysis": 3,
    "extraction": 3,
    "training": 3,
    "weights": 3,
    "plots": 4,
    "report": 5,
    "runner": 6,
    "demo": 7,
    "cli": 8,
    "__main__": 9,
}
# Lazy imports that keep `import repdrift` and `repdrift --help` fast (they pull in torch).
LAZY_ALLOWED = {"repdrift", "repdrift.cli.commands", "repdrift.cli.study_commands"}
MAX_LINES = 420


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, bool, bool]]:
    """(imported repdrift module, at module level, under TYPE_CHECKING) for every import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for n in ast.walk(node))
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from repdrift.x import y" may import the submodule repdrift.x.y
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                for a in node.names
            ]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.split(".")[0] == "repdrift":
                at_top = id(node) in top or id(node) in type_only
                found.append((name, at_top, id(node) in type_only))
    return found


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_top_level_holds_only_the_face_errors_demo_and_stage_packages():
    loose = sorted(p.name for p in SRC.iterdir() if p.suffix == ".py")
    assert loose == ["__init__.py", "__main__.py", "demo.py", "errors.py"]
    packages = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").is_file())
    assert set(packages) == set(FLOORS) - {"errors", "demo", "__main__"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "repdrift"))
def test_stages_import_only_stages_below(module):
    own = _package(module)
    wrong = []
    for name, _, _ in _imports(MODULES[module]):
        other = _package(name)
        if other is None:
            wrong.append(f"{name} (the package face)")
        elif other != own and FLOORS[other] >= FLOORS[own]:
            wrong.append(name)
    assert not wrong, f"{module} (floor {FLOORS[own]}) imports {wrong}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_function_local_imports(module):
    if module in LAZY_ALLOWED:
        return
    local = [name for name, at_top, _ in _imports(MODULES[module]) if not at_top]
    assert not local, f"{module} imports {local} inside a function"


def test_no_import_circles():
    graph = {
        module: {
            name if name in MODULES else name.rsplit(".", 1)[0]
            for name, _, type_only in _imports(path)
            if not type_only
        }
        for module, path in MODULES.items()
    }
    # a package's __init__ re-exports its modules; importing "repdrift.x.y" also runs repdrift.x
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in MODULES:
                continue
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it by concept"


def test_init_files_only_hand_names_on():
    for module, path in MODULES.items():
        if path.name != "__init__.py" or module == "repdrift":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            ok = isinstance(node, (ast.ImportFrom, ast.Import)) or (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            ) or (
                isinstance(node, ast.Assign)
                and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__all__"]
            )
            assert ok, f"{path}: line {node.lineno} is logic, not a re-export"
