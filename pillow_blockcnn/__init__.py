"""BlockCNN images for Pillow and imageio: ``import pillow_blockcnn`` and ``.bcnn`` just works.

Importing the package registers the ``BCNN`` format with Pillow (open, save,
the ``.bcnn`` extension, the ``image/x-bcnn`` MIME type) and, when imageio is
installed, the ``.bcnn`` extension with imageio. Pillow has no plugin entry
points, so the import is required; :func:`register_bcnn_opener` does the same
explicitly for code whose linters strip unused imports, and sets decoder
options that ``Image.open`` cannot carry.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import options
from .artifacts import deblock
from .container import BcnnFormatError
from .runtime import ModelError

__all__ = ["BcnnFormatError", "ModelError", "__version__", "deblock", "register_bcnn_opener"]


def _register_imageio() -> None:
    """Teach imageio that ``.bcnn`` belongs to its Pillow plugin.

    Without this entry imageio still reads .bcnn paths (its Pillow plugin is
    tried first), but writing to bytes and ``format="BCNN"`` lookups fail.
    """
    try:
        from imageio.config import known_extensions
        from imageio.config.extensions import FileExtension
    except ImportError:
        return
    entries = known_extensions.setdefault(".bcnn", [])
    if not any(getattr(e, "name", None) == "BCNN" for e in entries):
        entries.insert(
            0,
            FileExtension(
                name="BCNN",
                extension=".bcnn",
                description="BlockCNN learned image (pillow-blockcnn)",
                priority=["pillow"],
            ),
        )


def register_bcnn_opener(**decoder_options: object) -> None:
    """Register the format (idempotent) and set decoder options.

    Options: ``deblock`` (bool, run the deblocking model a file recommends),
    ``providers`` (onnxruntime providers, e.g. ``["CPUExecutionProvider"]``),
    ``threads`` (onnxruntime intra-op threads, 0 = all cores).
    """
    from . import BcnnImagePlugin  # noqa: F401  (registration happens on import)

    options.update(**decoder_options)
    _register_imageio()


register_bcnn_opener()
