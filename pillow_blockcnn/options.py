"""Decoder options that cannot travel through ``Image.open``.

Pillow gives ``Image.open`` no way to pass decoder options, so, like
``pillow_heif.options`` and Pillow's own AVIF plugin, they are module globals,
set through :func:`pillow_blockcnn.register_bcnn_opener`. They are read at
``load()`` time and never written by decoding, so concurrent decodes share them
safely.
"""

from __future__ import annotations

import os

__all__ = ["DEBLOCK", "PROVIDERS", "THREADS", "update"]

#: Run the deblocking model after decoding when the file recommends it.
DEBLOCK: bool = os.environ.get("PILLOW_BLOCKCNN_DEBLOCK", "1") not in ("0", "false", "no")
#: onnxruntime execution providers in priority order; ``None`` = CUDA when present, else CPU.
PROVIDERS: tuple[str, ...] | None = (
    tuple(p.strip() for p in os.environ["PILLOW_BLOCKCNN_PROVIDERS"].split(",") if p.strip())
    if os.environ.get("PILLOW_BLOCKCNN_PROVIDERS")
    else None
)
#: onnxruntime intra-op threads per session; 0 lets onnxruntime use every physical core.
THREADS: int = int(os.environ.get("PILLOW_BLOCKCNN_THREADS", "0") or 0)

_NAMES = {"deblock": "DEBLOCK", "providers": "PROVIDERS", "threads": "THREADS"}


def update(**options: object) -> None:
    """Set options by their lower-case names; an unknown name is an error, not a silent no-op."""
    unknown = sorted(set(options) - set(_NAMES))
    if unknown:
        raise TypeError(f"unknown pillow_blockcnn option(s) {unknown}; known: {sorted(_NAMES)}")
    if "deblock" in options:
        globals()["DEBLOCK"] = bool(options["deblock"])
    if "providers" in options:
        providers = options["providers"]
        if isinstance(providers, str):
            providers = (providers,)
        globals()["PROVIDERS"] = None if providers is None else tuple(providers)  # type: ignore[arg-type]
    if "threads" in options:
        threads = options["threads"]
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
            raise ValueError(f"threads must be an integer >= 0, got {threads!r}")
        globals()["THREADS"] = threads
