"""Evaluate models before they ship: make ONNX files from ``runs/`` available to the real API, for one process.

The runtime loads only models listed in ``pillow_blockcnn/models/manifest.json`` or registered in-process
(:func:`pillow_blockcnn.runtime.register_model`; nothing in a file can make a decoder load another model). To
measure a candidate through the real API (``Image.save``/``Image.open``, ``deblock()``) before committing it,
the evaluation commands register it for the duration of a ``with`` block.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from pillow_blockcnn import runtime

__all__ = ["installed", "parse_spec"]


def parse_spec(spec: str) -> tuple[str, tuple[str, bytes, list[str]]]:
    """``TASK=PATH[:TABLES,...]`` (e.g. ``deblock=runs/x.onnx:jpeg,mse``) -> (id, (task, bytes, tables))."""
    task, _, rest = spec.partition("=")
    path, _, tables = rest.partition(":")
    if task not in runtime.TASKS or not path:
        msg = f"candidate {spec!r}: expected TASK=PATH[:TABLES] with TASK deblock or predict"
        raise ValueError(msg)
    return f"candidate-{task}", (task, Path(path).read_bytes(), tables.split(",") if tables else ["jpeg"])


@contextmanager
def installed(models: Mapping[str, tuple[str, bytes, Sequence[str]]]) -> Iterator[None]:
    """Within the block, ``models`` are registered (after the packaged ones, so each is its task's default)."""
    runtime.clear_sessions()
    try:
        with runtime.registered_models(models):
            yield
    finally:
        runtime.clear_sessions()
