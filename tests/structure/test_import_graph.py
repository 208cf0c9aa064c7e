"""The house: every import points down, and no module imports itself back through others.

Walks every import of the product code, module level and inside function bodies (an import
hidden in a function still makes the dependency), maps each module to its layer and fails on an
import from a lower layer to a higher one, between two packages of the same layer, or on any
loop between modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Folder of the repository → (import name, layer). Higher layers may import lower ones only.
LAYERS: dict[str, tuple[str, int]] = {
    "core": ("civicair.core", 0),
    "migrations": ("civicair.migrations", 1),
    "ingest": ("civicair.ingest", 1),
    "calibration": ("civicair.calibration", 2),
    "readmodel": ("civicair.readmodel", 3),
    "gateway": ("civicair.gateway", 4),
    "firmware_tools": ("civicair.firmware_tools", 5),
    "open_export": ("civicair.open_export", 6),
    "api": ("civicair.api", 7),
    "web": ("civicair.web", 8),
    "sta": ("civicair.sta", 8),
    "demo": ("civicair.demo", 9),
    "civicair/runtime.py": ("civicair.runtime", 10),
    "bench": ("civicair.bench", 11),
    "civicair/cli.py": ("civicair.cli", 12),
    "civicair/__main__.py": ("civicair.__main__", 13),
    "civicair/__init__.py": ("civicair", 0),
}


def product_modules() -> dict[str, Path]:
    """Import name → file, for every product module."""
    modules: dict[str, Path] = {}
    for folder, (name, _) in LAYERS.items():
        path = REPO / folder
        if path.suffix == ".py":
            if path.exists():
                modules[name] = path
            continue
        for file in sorted(path.rglob("*.py")):
            parts = list(file.relative_to(path).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([name, *parts])] = file
    return modules


def unit_of(module: str) -> tuple[str, int]:
    best = ("", -1)
    for name, layer in LAYERS.values():
        if (module == name or module.startswith(name + ".")) and len(name) > len(best[0]):
            best = (name, layer)
    return best


def imports_of(module: str, file: Path, known: set[str]) -> set[str]:
    """The civicair modules `module` imports (every import statement, wherever it is)."""
    is_package = file.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from package import module` names a module; `from module import name` does not
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target.startswith("civicair") and target != module:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = product_modules()
    known = set(modules)
    return {m: imports_of(m, f, known) for m, f in modules.items()}


def test_every_import_points_down() -> None:
    wrong = []
    for module, targets in graph().items():
        unit, layer = unit_of(module)
        for target in targets:
            t_unit, t_layer = unit_of(target)
            if t_unit == unit or target in ("civicair",):
                continue
            if t_layer >= layer:
                wrong.append(f"{module} (layer {layer}) imports {target} (layer {t_layer})")
    assert not wrong, "imports that do not point down:\n" + "\n".join(sorted(wrong))


def test_no_import_loops() -> None:
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert not loops, "import loops:\n" + "\n".join(" ↔ ".join(c) for c in loops)


def test_the_walk_sees_every_product_package() -> None:
    # guards the test itself: a renamed folder must not silently leave the graph
    units = {unit_of(m)[0] for m in graph()}
    assert {"civicair.core", "civicair.gateway", "civicair.ingest", "civicair.calibration",
            "civicair.readmodel", "civicair.api", "civicair.open_export", "civicair.firmware_tools",
            "civicair.bench", "civicair.demo", "civicair.runtime", "civicair.cli"} <= units
    assert any(targets for targets in graph().values())
