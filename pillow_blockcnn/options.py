"""Decoder options that cannot travel through ``Image.open``.

Pillow gives ``Image.open`` no way to pass decoder options, so, like
``pillow_heif.options`` and Pillow's own AVIF plugin, they are module globals,
set through :func:`pillow_blockcnn.register_bcnn_opener` (or the environment).
``deblock`` lives here; ``providers`` and ``threads`` are the runtime's
(:mod:`pillow_blockcnn.runtime.settings`), and :func:`update` sets all three.
They are read at ``load()`` time and never written by decoding, so concurrent
decodes share them safely.
"""

from __future__ import annotations

import os

from .runtime import settings

__all__ = ["DEBLOCK", "current", "update"]

#: Run the deblocking model after decoding when the file recommends it (True), never (False), or run this
#: .bcnn restorer (a model id, e.g. the faster ``"dblk-7"``) where the file recommends one.
DEBLOCK: bool | str = os.environ.get("PILLOW_BLOCKCNN_DEBLOCK", "1") not in ("0", "false", "no")

_NAMES = ("deblock", "providers", "threads")


def update(**options: object) -> None:
    """Set options by their lower-case names; an unknown name is an error, not a silent no-op."""
    unknown = sorted(set(options) - set(_NAMES))
    if unknown:
        msg = f"unknown pillow_blockcnn option(s) {unknown}; known: {sorted(_NAMES)}"
        raise TypeError(msg)
    if "threads" in options:
        threads = options["threads"]
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
            msg = f"threads must be an integer >= 0, got {threads!r}"
            raise ValueError(msg)
    if "deblock" in options:
        deblock = options["deblock"]
        if isinstance(deblock, str):
            from .pipeline import bcnn_restorer  # validated now, not at the first load

            bcnn_restorer(deblock)
        globals()["DEBLOCK"] = deblock if isinstance(deblock, str) else bool(deblock)
    if "providers" in options:
        providers = options["providers"]
        if isinstance(providers, str):
            providers = (providers,)
        settings.PROVIDERS = None if providers is None else tuple(providers)  # type: ignore[arg-type]
    if "threads" in options:
        settings.THREADS = options["threads"]  # type: ignore[assignment]


def current() -> dict[str, object]:
    """The options in force, by the names :func:`update` takes (to restore them later)."""
    return {"deblock": DEBLOCK, "providers": settings.PROVIDERS, "threads": settings.THREADS}
