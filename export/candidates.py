"""Evaluate models before they ship: make ONNX files from ``runs/`` look packaged, for one process.

The runtime loads only models listed in ``pillow_blockcnn/models/manifest.json``
(by design: nothing in a file can make a decoder load another model). To measure
a candidate through the real API (``Image.save``/``Image.open``, ``deblock()``)
before committing it, the evaluation commands swap the registry's two lookups
for the duration of a ``with`` block. Nothing outside ``export/`` and the tests
calls this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pillow_blockcnn import runtime

__all__ = ["entries_for", "installed", "parse_spec"]


def entries_for(models: dict[str, tuple[str, bytes, list[str]]]) -> tuple[dict[str, runtime.ModelInfo], dict[str, bytes]]:
    """``{id: (task, onnx bytes, table sets)}`` -> (manifest entries, file name -> bytes)."""
    files = {f"{model_id}.onnx": data for model_id, (_, data, _) in models.items()}
    entries = {
        model_id: runtime.ModelInfo(
            model_id, task, f"{model_id}.onnx", hashlib.sha256(data).hexdigest(), {"tables": tables}
        )
        for model_id, (task, data, tables) in models.items()
    }
    return entries, files


def parse_spec(spec: str) -> tuple[str, tuple[str, bytes, list[str]]]:
    """``TASK=PATH[:TABLES,...]`` (e.g. ``deblock=runs/x.onnx:jpeg,mse``) -> (id, (task, bytes, tables))."""
    task, _, rest = spec.partition("=")
    path, _, tables = rest.partition(":")
    if task not in ("deblock", "predict") or not path:
        raise ValueError(f"candidate {spec!r}: expected TASK=PATH[:TABLES] with TASK deblock or predict")
    return f"candidate-{task}", (task, Path(path).read_bytes(), tables.split(",") if tables else ["jpeg"])


@contextmanager
def installed(models: dict[str, tuple[str, bytes, list[str]]]) -> Iterator[None]:
    """Within the block, ``models`` are the registry (packaged models stay visible too)."""
    entries, files = entries_for(models)
    manifest, read = runtime._manifest, runtime._read_packaged
    merged = {**manifest(), **entries}
    runtime._manifest = lambda: merged  # type: ignore[assignment]
    runtime._read_packaged = lambda name: files[name] if name in files else read(name)  # type: ignore[assignment]
    runtime.clear_sessions()
    try:
        yield
    finally:
        runtime._manifest, runtime._read_packaged = manifest, read  # type: ignore[assignment]
        runtime.clear_sessions()
