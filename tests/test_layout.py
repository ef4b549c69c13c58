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
    "original_study": 4,
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


def test_analysis_never_loads_models_or_tokenizers():
    """Foreign formats are converted at the edge (``repdrift import``) and what the analysis
    shows of tokens is recorded at extraction (store/token_ids): analysis reads run directories
    only, so no analysis module imports the models or tasks packages, with no exemption."""
    wrong = {
        module: [n for n, _, _ in _imports(path) if _package(n) in ("models", "tasks")]
        for module, path in MODULES.items()
        if _package(module) == "analysis"
    }
    wrong = {m: names for m, names in wrong.items() if names}
    assert not wrong, f"analysis imports models or tasks: {wrong}"


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


# The package face's lazy ``__getattr__`` is the one place that may import by name.
IMPORT_BY_NAME_ALLOWED = {"repdrift"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_imports_by_name(module):
    """``importlib.import_module`` / ``__import__`` hide an arrow from the floors test (and an
    ImportError in our own code would silently skip what it loads)."""
    if module in IMPORT_BY_NAME_ALLOWED:
        return
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == "importlib"]
        elif isinstance(node, ast.ImportFrom) and node.module == "importlib":
            found += [f"importlib.{a.name}" for a in node.names if a.name == "import_module"]
        elif isinstance(node, (ast.Name, ast.Attribute)):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in ("import_module", "__import__"):
                found.append(name)
    assert not found, f"{module} imports by name: {found}"


# Small rules with one home each (shared/LAYOUT.md: "one home per rule").
ONE_HOME = {
    "Method": "repdrift.common.naming",
    "layer_names": "repdrift.common.naming",
    "layer_name": "repdrift.common.naming",
    "checkpoint_name": "repdrift.common.naming",
    "checkpoint_step": "repdrift.common.naming",
    "find_checkpoints": "repdrift.common.naming",
    "checkpoint_folder": "repdrift.common.naming",
    "row_cosines": "repdrift.metrics.cosine",
    "DEFAULT_METRICS": "repdrift.metrics.definitions",
    "CROSS_LAYER_METRIC": "repdrift.metrics.definitions",
    "PREFERRED_METRIC": "repdrift.store.results",
    "TOKEN_METRICS": "repdrift.analysis.tokens",
    "DTYPE_CODES": "repdrift.store.tensorfile",
    "STARS": "repdrift.common.display",
    "stars": "repdrift.common.display",
    "DEFAULT_LR": "repdrift.models.training_record",
    # the settings objects and their light defaults
    "Settings": "repdrift.common.settings",
    "SampleSettings": "repdrift.tasks.settings",
    "DEFAULT_SAMPLES": "repdrift.tasks.settings",
    "Placement": "repdrift.models.placement",
    "ExtractionOptions": "repdrift.extraction.options",
    "TrainingSettings": "repdrift.training.settings",
    "DEFAULT_EPOCHS": "repdrift.training.settings",
    "AnalysisSettings": "repdrift.analysis.settings",
    "N_BLOCKS": "repdrift.analysis.settings",
    "TOKEN_NULL_PERMS": "repdrift.analysis.settings",
    "ADAPTER_FILE": "repdrift.store.adapter_file",
}


def _defined_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level by assignment or definition (not by import)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_small_rules_are_defined_once():
    homes: dict[str, list[str]] = {name: [] for name in ONE_HOME}
    for module, path in MODULES.items():
        for name in _defined_names(ast.parse(path.read_text(encoding="utf-8"))) & set(ONE_HOME):
            homes[name].append(module)
    wrong = {name: found for name, found in homes.items() if found != [ONE_HOME[name]]}
    assert not wrong, f"defined elsewhere or more than once (name: modules): {wrong}"


def _literal_rules(tree: ast.Module) -> list[str]:
    """Spellings that belong to one home: ``f"checkpoint-{n}"`` and ``f"layer_{i}"`` (names),
    ``Literal["full", "lora"]`` (the Method type) and ``"cka_debiased"`` as a default value."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            if isinstance(head, ast.Constant) and head.value in ("checkpoint-", "layer_"):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Subscript) and ast.unparse(node) == "Literal['full', 'lora']":
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.arguments):
            for default in [*node.defaults, *node.kw_defaults]:
                if isinstance(default, ast.Constant) and default.value == "cka_debiased":
                    found.append(f"line {default.lineno}: default 'cka_debiased'")
    return found


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m not in {"repdrift.common.naming"})
)
def test_named_rules_are_spelled_only_in_their_home(module):
    found = _literal_rules(ast.parse(MODULES[module].read_text(encoding="utf-8")))
    assert not found, f"{module} spells a rule of common/naming or the metric registry: {found}"


# The public edge: functions a user calls with friendly keyword arguments, which build the
# settings objects once (CLI commands are typer's options, one parameter each).
EDGE = {
    "repdrift.extraction.api.extract",
    "repdrift.training.recipe.train",
    "repdrift.store.writer.write_run",
}
MAX_PARAMETERS = 8


def test_nothing_below_the_edge_takes_more_than_eight_parameters():
    """Settings travel as typed objects (shared/LAYOUT.md): below the public functions and the
    CLI commands, no function takes more than eight parameters (self and cls not counted)."""
    wide = []
    for module, path in MODULES.items():
        if module.startswith("repdrift.cli."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            a = node.args
            names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
            count = len([n for n in names if n not in ("self", "cls")])
            if count > MAX_PARAMETERS and f"{module}.{node.name}" not in EDGE:
                wide.append(f"{module}.{node.name} ({count})")
    assert not wide, f"take a settings object instead of loose arguments: {wide}"
