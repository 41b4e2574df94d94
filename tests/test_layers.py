"""The import drawing: no circle, and no import from a lower layer to a higher one.

Layers, bottom to top (DESIGN.md): the metric (self-contained: it is copied alone by
``evaluate.load``), the run folder, the simulator (participants, prompts, parser, backends,
runner, estimators), the analyses (read run folders), the report, then the experiments (run the
simulator repeatedly and read their results), the Space and the command line. Read from the
source with ``ast`` (imports inside functions count too), so the test needs no import side effects.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("dataset_builder", "metrics", "simulator", "space")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return "culturesim." + ".".join(parts)


def _imports(path: Path, module: str, modules: set[str]) -> set[str]:
    """Project modules that ``module`` (at ``path``) imports: ``from X import a`` counts as an
    import of ``X.a`` where that is a module, of ``X`` otherwise."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
    return {name for name in found if name in modules and name != module}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for top in FOLDERS for p in (REPO / top).rglob("*.py")}
    return {module: _imports(path, module, set(files)) for module, path in files.items()}


def _layer(module: str) -> str:
    name = module.removeprefix("culturesim.")
    for prefix, layer in (
        ("metrics.publish", "publish"),
        ("metrics", "metric"),
        ("simulator.runfolder", "runfolder"),
        ("simulator.cli", "cli"),
        ("simulator.experiments", "experiments"),
        ("simulator.harness", "harness"),
        ("simulator.analysis.report", "report"),
        ("simulator.analysis", "analysis"),
        ("simulator", "simulator"),
        ("space", "space"),
        ("dataset_builder.expand", "experiments"),
        ("dataset_builder.publish", "publish"),
        ("dataset_builder", "dataset"),
    ):
        if name == prefix or name.startswith(prefix + "."):
            return layer
    raise ValueError(f"no layer for {module}: add its folder to _layer")


#: For each layer, the layers it may import (its own included).
ALLOWED = {
    "metric": {"metric"},
    "runfolder": {"runfolder"},
    "dataset": {"dataset", "metric"},
    "simulator": {"simulator", "runfolder", "dataset", "metric"},
    "analysis": {"analysis", "simulator", "runfolder", "dataset", "metric"},
    "report": {"report", "analysis", "simulator", "runfolder", "dataset", "metric"},
    "experiments": {"experiments", "report", "analysis", "simulator", "runfolder", "metric", "dataset"},
    "harness": {"harness", "analysis", "simulator", "runfolder", "dataset", "metric"},
    "publish": {"publish", "simulator", "metric", "dataset"},
    "space": {"space", "experiments", "report", "analysis", "simulator", "runfolder", "dataset", "metric"},
    "cli": {"cli", "space", "experiments", "harness", "publish", "report", "analysis", "simulator", "runfolder",
            "metric", "dataset"},
}


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    wrong = sorted(
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if _layer(target) not in ALLOWED[_layer(module)]
    )
    assert not wrong, "\n".join(wrong)


def test_no_import_circle() -> None:
    graph = import_graph()
    # Tarjan's strongly connected components: any component of two or more modules is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, circles


def _top_level_names(path: Path) -> tuple[set[str], set[str]]:
    """Names a module defines at its top level, and names it only imports there."""
    defined: set[str] = set()
    imported: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
    return defined, imported - defined


def test_nothing_imports_a_name_from_a_module_that_only_reexports_it() -> None:
    """Import a name from the module that owns it. A package's ``__init__`` re-exporting its public
    names is the exception, for importers outside that package."""
    files = {_module_name(p): p for top in FOLDERS for p in (REPO / top).rglob("*.py")}
    names = {module: _top_level_names(path) for module, path in files.items()}
    wrong = []
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            if source not in files:
                continue
            is_package = files[source].name == "__init__.py"
            for alias in node.names:
                if f"{source}.{alias.name}" in files or alias.name not in names[source][1]:
                    continue
                if is_package and not module.startswith(source + "."):
                    continue
                wrong.append(f"{module} imports {alias.name} from {source}, which only re-exports it")
    assert not wrong, "\n".join(sorted(wrong))


def test_command_lines_live_in_the_cli_package_only() -> None:
    """Library modules define no ``add_arguments``/``main``: argument parsing is ``simulator/cli/``'s."""
    wrong = []
    for top in FOLDERS:
        for path in (REPO / top).rglob("*.py"):
            module = _module_name(path)
            if module.startswith("culturesim.simulator.cli"):
                continue
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.FunctionDef) and node.name in ("add_arguments", "main"):
                    wrong.append(f"{module}.{node.name}")
    assert not wrong, wrong


def test_no_private_name_is_imported_from_another_module() -> None:
    wrong = []
    for top in FOLDERS:
        for path in (REPO / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("culturesim.")):
                    wrong += [f"{_module_name(path)}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert not wrong, wrong


def test_every_metric_file_reads_in_one_sitting() -> None:
    lengths = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in (REPO / "metrics").rglob("*.py")}
    assert max(lengths.values()) <= 800, lengths


def test_each_shared_constant_is_defined_once() -> None:
    """The same tuple of names (value dimensions, insensitivity checks, statuses…) written out in
    two modules drifts apart; one module defines it, the others import it."""
    seen: dict[str, list[str]] = {}
    for top in FOLDERS:
        for path in (REPO / top).rglob("*.py"):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Tuple, ast.List, ast.Set)):
                    items = node.value.elts
                    if len(items) >= 3 and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in items):
                        key = repr(sorted(e.value for e in items))
                        names = ", ".join(ast.unparse(t) for t in node.targets)
                        seen.setdefault(key, []).append(f"{_module_name(path)}.{names}")
    repeated = {key: where for key, where in seen.items() if len(where) > 1}
    assert not repeated, repeated
