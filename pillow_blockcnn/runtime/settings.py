"""How onnxruntime sessions are built: providers and threads, from the environment or set by the application.

They are module globals because Pillow gives ``Image.open`` no way to carry
decoder options (the same choice as ``pillow_heif.options`` and Pillow's AVIF
plugin); :func:`pillow_blockcnn.register_bcnn_opener` sets them through
:func:`pillow_blockcnn.options.update`. They are read when a session is built and never written by
decoding, so concurrent decodes share them safely.
"""

from __future__ import annotations

import os

__all__ = ["PROVIDERS", "THREADS"]

#: onnxruntime execution providers in priority order; ``None`` = CUDA when present, else CPU.
PROVIDERS: tuple[str, ...] | None = (
    tuple(p.strip() for p in os.environ["PILLOW_BLOCKCNN_PROVIDERS"].split(",") if p.strip())
    if os.environ.get("PILLOW_BLOCKCNN_PROVIDERS")
    else None
)
#: onnxruntime intra-op threads per session; 0 lets onnxruntime use every physical core.
THREADS: int = int(os.environ.get("PILLOW_BLOCKCNN_THREADS", "0") or 0)
