"""The package's import graph: no cycles, counting imports made inside functions and the package ``__init__``
modules every import runs; and every import follows the layer contract written in docs/architecture.md.

How the graph is read (``import_graph``):

* a module depends on every module it imports, wherever the import stands (at the top, inside a function, under
  ``TYPE_CHECKING``): a lazy import that closes a cycle still ties two modules together;
* importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first, so a module outside ``a.b`` that imports
  ``a.b.c`` depends on ``a.b``'s ``__init__`` too (inside the package, the package is already being imported).
  Those implicit edges reach a package's *import-time* node, its top-level imports; ``from a import name``
  reaches the package's *attribute* node too, which adds the imports inside its functions (a module
  ``__getattr__`` that imports what ``name`` is).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lco_embedding"
ATTRIBUTES = "!"
"""Suffix of a package's attribute node (its imports inside functions, for ``from package import name``)."""


def _modules(package: Path) -> dict[str, Path]:
    modules = {}
    for path in package.rglob("*.py"):
        name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(tree: ast.Module, name: str, is_package: bool) -> list[tuple[str, list[str], bool]]:
    """``(module, names, top_level)`` of every import statement in a module's tree."""
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((module, [alias.name for alias in node.names], id(node) in top))
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules (and package nodes) it depends on, as the module docstring says."""
    modules = _modules(package)
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    graph.update({name + ATTRIBUTES: {name} for name in packages})

    def ancestors(module: str, importer: str) -> list[str]:
        """The packages ``module`` lies in that ``importer`` does not (their ``__init__`` runs first)."""
        parts = module.split(".")
        found = [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in packages]
        return [p for p in found if not (importer == p or importer.startswith(p + "."))]

    for name, path in modules.items():
        for module, names, top_level in _imports(ast.parse(path.read_text()), name, name in packages):
            if module not in modules:
                continue  # another distribution
            targets = {module, *ancestors(module, name)}
            for imported in names:
                if f"{module}.{imported}" in modules:
                    targets.add(f"{module}.{imported}")
                elif module in packages:
                    targets.add(module + ATTRIBUTES)  # a name the package gives, perhaps lazily
            targets.discard(name)
            if name in packages and not top_level:  # runs only when the package's function runs
                graph[name + ATTRIBUTES].update(targets)
            else:
                graph[name].update(targets)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def layer_contract(document: Path = ROOT / "docs" / "architecture.md") -> tuple[dict[str, str], dict[str, set[str]]]:
    """The contract docs/architecture.md writes down: module prefix -> layer, and layer -> the layers it may import
    (its own included)."""
    text = document.read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    owners: dict[str, str] = {}
    allowed: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("layer", "") or set(cells[0]) <= {"-"}:
            continue
        layer, members, imports = cells
        for member in re.findall(r"`([\w.]+)`", members):
            owners[member] = layer
        allowed[layer] = {layer, *re.findall(r"[\w-]+", imports.replace("nothing", ""))}
    return owners, allowed


def layer_of(module: str, owners: dict[str, str]) -> str | None:
    """The layer of ``module``: that of the longest prefix the contract names."""
    module = module.removesuffix(ATTRIBUTES)
    root = PACKAGE.name  # the package's own __init__ is a layer of its own, not a prefix of every module
    candidates = [p for p in owners if module == p or (p != root and module.startswith(p + "."))]
    return owners[max(candidates, key=len)] if candidates else None


def test_no_import_cycles_counting_lazy_imports_and_package_inits():
    graph = import_graph()
    assert len(graph) > 60
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_graph_sees_what_a_cycle_is_made_of(tmp_path):
    """Each kind of edge the docstring names closes a cycle of a small package written here."""
    cases = {
        "lazy import inside a function": {"a.py": "def f():\n    import pkg.b\n", "b.py": "import pkg.a\n"},
        "an ancestor package's top-level import": {
            "sub/__init__.py": "import pkg.sub.x\n",
            "sub/x.py": "import pkg.y\n",
            "y.py": "from pkg.sub import z\n",
            "sub/z.py": "",
        },
        "a package's lazy attribute": {
            "__init__.py": "def __getattr__(name):\n    import pkg.big\n    return pkg.big\n",
            "big.py": "import pkg.small\n",
            "small.py": "from pkg import big_thing\n",
        },
    }
    for name, files in cases.items():
        root = tmp_path / name.replace(" ", "_") / "pkg"
        for relative, source in {"__init__.py": "", **files}.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(source)
        (root / "sub").mkdir(exist_ok=True)
        if not (root / "sub" / "__init__.py").exists():
            (root / "sub" / "__init__.py").write_text("")
        assert find_cycle(import_graph(root)) is not None, name
    root = tmp_path / "acyclic" / "pkg"
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("def __getattr__(name):\n    import pkg.big\n")
    (root / "big.py").write_text("import pkg.small\n")
    (root / "small.py").write_text("import os\n")  # the package's ancestors' import-time nodes only: no cycle
    assert find_cycle(import_graph(root)) is None


def test_every_import_follows_the_layer_contract():
    owners, allowed = layer_contract()
    graph = import_graph()
    unowned = sorted(module for module in graph if layer_of(module, owners) is None)
    assert not unowned, f"modules the contract in docs/architecture.md does not place: {unowned}"
    broken = []
    for module, targets in graph.items():
        mine = layer_of(module, owners)
        for target in targets:
            theirs = layer_of(target, owners)
            if theirs not in allowed[mine]:
                broken.append(f"{module} ({mine}) -> {target} ({theirs})")
    assert not broken, "imports against the layer contract:\n" + "\n".join(sorted(broken))


def test_importing_the_package_and_the_cli_does_not_import_torch():
    code = "import sys, lco_embedding, lco_embedding.cli.main, lco_embedding.corpus; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
