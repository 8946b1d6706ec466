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


#: ONNX metadata keys that are manifest details the runtime acts on (an integer predictor's arithmetic, a
#: luma-guided one's guide): a candidate carries them in its file, as ``export_int_predictor`` writes them.
_DETAILS = ("arithmetic", "guide")


def details(data: bytes) -> dict[str, str]:
    """The manifest details a candidate's ONNX metadata declares."""
    import onnxruntime as ort

    meta = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    return {k: meta[k] for k in _DETAILS if k in meta}


@contextmanager
def installed(models: Mapping[str, tuple[str, bytes, Sequence[str]]]) -> Iterator[None]:
    """Within the block, ``models`` are registered (after the packaged ones, so each is its task's default),
    with the details their ONNX metadata declares."""
    runtime.clear_sessions()
    try:
        for model_id, (task, data, tables) in models.items():
            runtime.register_model(model_id, task, data, tables=tables, **details(data))
        yield
    finally:
        for model_id in models:
            runtime.unregister_model(model_id)
        runtime.clear_sessions()
