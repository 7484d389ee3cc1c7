"""The package's layers point downward: no module imports from a layer above its own (README, Layout). A new
top-level module or package must be placed in LAYERS, or this test names it."""

import ast
from pathlib import Path

import ltdistill

# lower numbers sit lower; a module may import from its own layer and below
LAYERS = {
    "errors": 0, "keys": 0, "safe_io": 0, "runtime": 0, "distributed": 0, "watch": 0, "protocols": 0,
    "models": 1, "params": 1, "data": 1, "synthetic": 1,
    "train": 2, "together": 2,
    "experts": 3, "engine": 3,
    "evaluate": 4, "labels": 4,
    "families": 5,
    "methods": 6,
    "twostage": 7, "report": 7, "config": 7,
    "bench": 8,
    "cli": 9,
}
ROOT = Path(ltdistill.__file__).parent


def layer_of(parts: list[str]) -> str:
    return parts[0].removesuffix(".py")


def imported_layers(node: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, the layers it names) for each ltdistill module an import statement names: `from ltdistill.a import
    b` names a; `from ltdistill import a, b` names a and b; `import ltdistill.a.b` names a."""
    if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ltdistill":
        inner = node.module.split(".")[1:]
        return [(node.module, [layer_of(inner)] if inner else [alias.name for alias in node.names])]
    if isinstance(node, ast.Import):
        return [(alias.name, [layer_of(alias.name.split(".")[1:])]) for alias in node.names
                if alias.name.split(".")[0] == "ltdistill" and "." in alias.name]
    return []


def test_every_module_imports_only_from_its_layer_and_below():
    upward, unplaced = [], set()
    for path in ROOT.rglob("*.py"):
        here = layer_of(list(path.relative_to(ROOT).parts))
        if here == "__init__":
            continue
        if here not in LAYERS:
            unplaced.add(here)
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            for module, targets in imported_layers(node):
                for target in targets:
                    if LAYERS.get(target, -1) > LAYERS[here]:
                        upward.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {module} ({target})")
    assert not unplaced, f"place these in LAYERS: {sorted(unplaced)}"
    assert not upward, "imports that point up:\n" + "\n".join(upward)
