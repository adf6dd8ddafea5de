"""Import contracts, read from the source (AST), not from what happens to be imported at run time.

(a) Layers import downward only: core `edgemod.*` (with `edgemod.runtime`) < training < quantization
    < export < benchmarks < mobile_harness. The dispatchers `edgemod/cli*.py` and
    `edgemod/pipeline*.py` may import any stage, inside functions.
(b) No import cycles between modules, counting imports inside functions too.
(c) `edgemod.runtime`, the on-device contract, imports no stage.

Imports at any depth count (inside functions, under `if`, in `try`); relative imports are resolved.
Stage folders map to their installed names through the package-dir (`training/x.py` is
`edgemod.training.x`).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {"edgemod": "edgemod", "training": "edgemod.training", "quantization": "edgemod.quantization",
                "export": "edgemod.export", "benchmarks": "edgemod.benchmarks",
                "mobile_harness": "edgemod.mobile_harness"}
STAGE_RANKS = {"training": 1, "quantization": 2, "export": 3, "benchmarks": 4, "mobile_harness": 5}
DISPATCHER_PREFIXES = ("edgemod.cli", "edgemod.pipeline")
# typer needs the harness command group when the app object is built, so the CLI imports it at load;
# it is a thin command module (typer, rich) that imports its stage inside the commands.
DISPATCHER_TOP_LEVEL = {("edgemod.cli", "edgemod.mobile_harness.cli")}


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is and whether it runs only when a function is called."""

    source: str  # importing module
    path: str  # its file, for the message
    line: int
    text: str  # the statement as written
    target: str  # imported module (or the module of an imported name)
    in_function: bool
    type_only: bool = False  # under `if TYPE_CHECKING:`: read by type checkers, never run

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: `{self.text}`"


def module_name(relative: Path) -> str:
    """`training/x.py` -> `edgemod.training.x`; `edgemod/runtime/__init__.py` -> `edgemod.runtime`."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE_DIRS[parts[0]], *parts[1:]])


def repository_sources(root: Path = REPO) -> dict[str, tuple[str, str, bool]]:
    """module -> (path, source, is_package) for every .py file under the package folders."""
    sources = {}
    for folder in PACKAGE_DIRS:
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root)
            sources[module_name(relative)] = (relative.as_posix(), path.read_text(), path.name == "__init__.py")
    return sources


def find_imports(sources: dict[str, tuple[str, str, bool]]) -> list[Import]:
    """Every import of every module, at any depth, with relative imports resolved."""
    found = []
    for module, (path, source, is_package) in sources.items():
        visitor = _ImportVisitor(module, path, is_package, set(sources))
        visitor.visit(ast.parse(source, path))
        found.extend(visitor.imports)
    return found


class _ImportVisitor(ast.NodeVisitor):
    def __init__(self, module: str, path: str, is_package: bool, known: set[str]):
        self.module, self.path, self.known, self.imports, self.depth = module, path, known, [], 0
        self.type_checking = False
        self.package = module if is_package else module.rpartition(".")[0]

    def _inside(self, node) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _inside

    def visit_If(self, node: ast.If) -> None:
        if ast.unparse(node.test) not in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            self.generic_visit(node)
            return
        self.type_checking = True
        for statement in node.body:
            self.visit(statement)
        self.type_checking = False
        for statement in node.orelse:
            self.visit(statement)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = self.package.split(".")
            anchor = ".".join(package[:len(package) - node.level + 1])
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self._add(node, submodule if submodule in self.known else base)

    def _add(self, node, target: str) -> None:
        self.imports.append(Import(self.module, self.path, node.lineno, ast.unparse(node), target, self.depth > 0,
                                   self.type_checking))


def layer(module: str) -> str | None:
    """`core`, a stage's name, or None outside edgemod."""
    parts = module.split(".")
    if parts[0] != "edgemod":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in STAGE_RANKS else "core"


def layer_violations(imports: list[Import]) -> list[str]:
    """Imports of a higher layer (a stage, for core), except dispatchers importing inside functions."""
    problems = []
    for item in imports:
        source, target = layer(item.source), layer(item.target)
        if target is None or STAGE_RANKS.get(target, 0) <= STAGE_RANKS.get(source, 0):
            continue
        if item.source.startswith(DISPATCHER_PREFIXES) and (
                item.in_function or (item.source, item.target) in DISPATCHER_TOP_LEVEL):
            continue
        where = "inside a function" if item.in_function else "at module level"
        problems.append(f"{item}: {source} imports {target} ({where}); "
                        f"a module may import only its own layer or lower ones")
    return problems


def runtime_violations(imports: list[Import]) -> list[str]:
    return [f"{item}: edgemod.runtime is the on-device contract and must not import the stage {layer(item.target)}"
            for item in imports
            if (item.source == "edgemod.runtime" or item.source.startswith("edgemod.runtime."))
            and layer(item.target) not in (None, "core")]


def cycles(imports: list[Import], modules: set[str]) -> list[str]:
    """Each group of modules that import each other (a strongly connected component of more than
    one module), with the imports that close it.

    An import of a module's own enclosing package is left out: Python imports that package before
    the module anyway, so the import adds no dependency (a registry imports its package to load
    the plugins the package's `__init__` lists). So is an import under `if TYPE_CHECKING:`, which
    never runs (layers still count it).
    """
    edges: dict[str, dict[str, Import]] = {module: {} for module in modules}
    for item in imports:
        own_package = item.source == item.target or item.source.startswith(item.target + ".")
        if item.target in modules and not own_package and not item.type_only:
            edges[item.source].setdefault(item.target, item)
    problems = []
    for group in _strongly_connected(edges):
        if len(group) > 1:
            inside = dict.fromkeys(str(item) for module in sorted(group)
                                   for target, item in sorted(edges[module].items()) if target in group)
            problems.append(f"import cycle between {', '.join(sorted(group))}:\n    " + "\n    ".join(inside))
    return problems


def _strongly_connected(edges: dict[str, dict[str, Import]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on long import chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            following = next(successors, None)
            if following is not None:
                if following not in index:
                    index[following] = low[following] = len(index)
                    stack.append(following)
                    on_stack.add(following)
                    work.append((following, iter(edges[following])))
                elif following in on_stack:
                    low[node] = min(low[node], index[following])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


@pytest.fixture(scope="module")
def repository():
    sources = repository_sources()
    return find_imports(sources), set(sources)


def _fail_on(problems: list[str]) -> None:
    if problems:
        pytest.fail(f"{len(problems)} import contract violation(s):\n" + "\n".join(problems), pytrace=False)


def test_every_layer_imports_only_its_own_layer_or_lower_ones(repository):
    _fail_on(layer_violations(repository[0]))


def test_no_module_imports_itself_through_others(repository):
    _fail_on(cycles(*repository))


def test_the_runtime_imports_no_stage(repository):
    _fail_on(runtime_violations(repository[0]))


def test_folders_map_to_their_installed_module_names():
    assert module_name(Path("training/label.py")) == "edgemod.training.label"
    assert module_name(Path("training/teachers/__init__.py")) == "edgemod.training.teachers"
    assert module_name(Path("edgemod/runtime/decision.py")) == "edgemod.runtime.decision"


def _synthetic(**modules: str) -> dict[str, tuple[str, str, bool]]:
    """In-memory modules: `edgemod__export__student="..."` is edgemod.export.student."""
    return {name.replace("__", "."): (name.replace("__", "/") + ".py", source, False)
            for name, source in modules.items()}


def test_the_checker_catches_a_back_edge_inside_a_function():
    sources = _synthetic(edgemod__export__student="import os\n\ndef f():\n    from edgemod.benchmarks import bench\n",
                         edgemod__benchmarks__bench="")
    problems = layer_violations(find_imports(sources))
    assert len(problems) == 1
    assert problems[0].startswith("edgemod/export/student.py:4: `from edgemod.benchmarks import bench`: "
                                  "export imports benchmarks (inside a function)")


def test_the_checker_resolves_relative_imports_and_allows_only_dispatchers():
    sources = _synthetic(edgemod__quantization__tflite="from ..export import tflite\n",
                         edgemod__export__tflite="",
                         edgemod__manifest="from .training import label\n",
                         edgemod__training__label="",
                         edgemod__cli="def export():\n    from edgemod.export import tflite\n",
                         edgemod__pipeline="from edgemod.export import tflite\n")
    problems = layer_violations(find_imports(sources))
    assert [p.split(":")[0] for p in problems] == ["edgemod/quantization/tflite.py", "edgemod/manifest.py",
                                                    "edgemod/pipeline.py"]
    assert "quantization imports export" in problems[0] and "core imports training" in problems[1]


def test_the_checker_finds_a_cycle_closed_inside_a_function():
    sources = _synthetic(edgemod__training__label="def run():\n    from edgemod.training.label_ray import score\n",
                         edgemod__training__label_ray="from edgemod.training import label_shards\n",
                         edgemod__training__label_shards="from edgemod.training.label import chunk_items\n",
                         edgemod__training__items="from edgemod.training import label\n")
    found = cycles(find_imports(sources), set(sources))
    assert len(found) == 1 and found[0].startswith("import cycle between edgemod.training.label, "
                                                   "edgemod.training.label_ray, edgemod.training.label_shards:")
    assert "edgemod/training/label.py:2: `from edgemod.training.label_ray import score`" in found[0]


def test_the_checker_keeps_the_runtime_free_of_stages():
    sources = _synthetic(edgemod__runtime__runners="def load():\n    from edgemod.export.runners import TFLiteRunner\n",
                         edgemod__export__runners="")
    problems = runtime_violations(find_imports(sources))
    assert problems == ["edgemod/runtime/runners.py:2: `from edgemod.export.runners import TFLiteRunner`: "
                        "edgemod.runtime is the on-device contract and must not import the stage export"]


def test_the_checker_ignores_type_only_imports_in_cycles_but_not_in_layers():
    sources = _synthetic(edgemod__registry__core="from edgemod.registry.journal import begin\n",
                         edgemod__registry__journal="from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                                                    "    from edgemod.registry.core import Registry\n",
                         edgemod__export__student="from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                                                  "    from edgemod.benchmarks.bench import run\n",
                         edgemod__benchmarks__bench="import os\n")
    imports = find_imports(sources)
    assert cycles(imports, set(sources)) == []
    assert len(layer_violations(imports)) == 1
