"""The package's layers import only downwards (README "Layout"): an AST walk over every module.

format (bytes) imports nothing of the package but itself; codec (pixels) imports format; runtime (models)
imports format and never the codec; the command line uses what any client may use; nothing imports the
training tree or torch, and only the runtime's session module imports onnxruntime.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pillow_blockcnn

PACKAGE = Path(pillow_blockcnn.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))

#: layer -> the package's modules and subpackages it may import (beside its own).
ALLOWED = {
    "format": set(),
    "codec": {"format"},
    "runtime": {"format", "_version"},
    "cli": {"", "format", "runtime", "metrics", "options", "_version"},  # "" = the package's public __init__
}
NEVER = ("torch", "onnx", "export", "tests")


def _imports(path: Path) -> list[tuple[str, int]]:
    """Absolute dotted names a module imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ["pillow_blockcnn", *path.relative_to(PACKAGE).parent.parts]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.append((module, node.lineno))
            if node.module is None or node.level:
                names.extend((f"{module}.{alias.name}", node.lineno) for alias in node.names)
    return names


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def _target(name: str) -> str | None:
    """Which part of the package ``name`` is (``""`` for the package itself), or None outside it."""
    if name != "pillow_blockcnn" and not name.startswith("pillow_blockcnn."):
        return None
    rest = name.split(".")[1:]
    if not rest:
        return ""
    return rest[0] if (PACKAGE / rest[0]).is_dir() or (PACKAGE / f"{rest[0]}.py").exists() else ""


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path: Path) -> None:
    layer = _layer(path)
    for name, line in _imports(path):
        where = f"{path.relative_to(PACKAGE)}:{line} imports {name}"
        assert name.split(".")[0] not in NEVER, where
        if name.split(".")[0] == "onnxruntime":
            assert path.relative_to(PACKAGE).as_posix() == "runtime/sessions.py", where
        target = _target(name)
        if target is None or target == layer or layer not in ALLOWED:
            continue
        assert target in ALLOWED[layer], where


def test_format_needs_neither_numpy_nor_pillow() -> None:
    for path in (PACKAGE / "format").glob("*.py"):
        roots = {name.split(".")[0] for name, _ in _imports(path)}
        assert not roots & {"numpy", "PIL"}, path.name


def test_the_walk_sees_every_layer() -> None:
    # Guards the test itself: a renamed folder would otherwise make every check above pass vacuously.
    assert {_layer(p) for p in MODULES} >= {"format", "codec", "runtime", "cli", "pipeline", "BcnnImagePlugin"}
    assert any(name == "pillow_blockcnn.format.container" for name, _ in _imports(PACKAGE / "codec" / "image.py"))
