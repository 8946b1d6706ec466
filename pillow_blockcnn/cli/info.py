"""``blockcnn info``: what a .bcnn file holds, read through the container module's own rules."""

from __future__ import annotations

import io
from typing import Any

from pillow_blockcnn import runtime
from pillow_blockcnn.format import container
from pillow_blockcnn.format.limits import SUBSAMPLING_NAMES

__all__ = ["describe_bcnn", "info_text"]


def _model_entries(header: container.Header) -> list[dict[str, Any]]:
    deblock_id = header.models[-1] if header.deblock and header.models else None
    entries = []
    for index, model_id in enumerate(header.models):
        role = "deblock" if deblock_id is not None and index == len(header.models) - 1 else "predict"
        try:
            runtime.model_info(model_id)
            installed = True
        except runtime.ModelError:
            installed = False
        entries.append({"id": model_id, "role": role, "installed": installed})
    return entries


def describe_bcnn(data: bytes) -> dict[str, Any]:
    """Everything ``blockcnn info`` shows about a .bcnn file, as plain JSON-able values.

    The whole file is validated first (every CRC, every rule), so a damaged
    file is reported as damaged instead of being half-described.
    """
    parsed = container.read_container(io.BytesIO(data))
    header = parsed.header
    spans, trailing = container.chunk_spans(io.BytesIO(data))
    chunks = [{"type": span.type, "offset": span.offset, "length": span.length} for span in spans]
    return {
        "bytes": len(data),
        "version": header.version,
        "width": header.width,
        "height": header.height,
        "mode": header.mode,
        "quality": header.quality,
        "subsampling": SUBSAMPLING_NAMES[header.subsampling],
        "tables": header.tables,
        "predicted": header.predicted,
        "deblock": header.deblock,
        "bpp": 8 * len(data) / (header.width * header.height),
        "models": _model_entries(header),
        "chunks": chunks,
        "trailing_bytes": trailing,
        "metadata": {key: len(value) for key, value in parsed.metadata().items()},
    }


def info_text(d: dict[str, Any]) -> str:
    """:func:`describe_bcnn`'s result as the lines ``blockcnn info`` prints."""
    yes = {True: "yes", False: "no"}
    lines = [
        f"{d['file']}: {d['width']}x{d['height']} {d['mode']}, {d['bytes']:,} bytes, {d['bpp']:.3f} bpp",
        (
            f"  format version {d['version']}, quality {d['quality']}, subsampling {d['subsampling']}, "
            f"tables {d['tables']}, "
            f"predicted {yes[d['predicted']]}, deblocking recommended {yes[d['deblock']]}"
        ),
    ]
    models = [f"{m['id']} ({m['role']}, {'installed' if m['installed'] else 'NOT installed'})" for m in d["models"]]
    lines.append(f"  models: {', '.join(models) or 'none'}")
    metadata = [f"{key} {size:,} bytes" for key, size in d["metadata"].items()]
    lines.append(f"  metadata: {', '.join(metadata) or 'none'}")
    lines.append("  chunks:")
    lines.extend(f"    {c['type']}  {c['length']:>10,} bytes  at {c['offset']:,}" for c in d["chunks"])
    if d["trailing_bytes"]:
        lines.append(f"  {d['trailing_bytes']:,} bytes after END (ignored)")
    return "\n".join(lines)
