"""BlockCNN images for Pillow and imageio: ``import pillow_blockcnn`` and ``.bcnn`` just works.

Importing the package registers the ``BCNN`` format with Pillow (open, save,
the ``.bcnn`` extension, the ``image/x-bcnn`` MIME type) and, when imageio is
installed, the ``.bcnn`` extension with imageio. Pillow has no plugin entry
points, so the import is required; :func:`register_bcnn_opener` does the same
explicitly for code whose linters strip unused imports, and sets decoder
options that ``Image.open`` cannot carry; :func:`open_bcnn` sets them for one
image.

The layers, each knowing only those below it: the Pillow glue
(:mod:`.BcnnImagePlugin`) over the pipeline (:mod:`.pipeline`: the codec plus the
models a file names), over :mod:`.format` (bytes), :mod:`.codec` (pixels) and
:mod:`.runtime` (models and onnxruntime).
"""

from __future__ import annotations

from typing import IO

from PIL import Image

from . import options, pipeline
from ._version import __version__
from .deblocking import deblock
from .format import BcnnFormatError
from .runtime import ModelError

__all__ = ["BcnnFormatError", "ModelError", "__version__", "deblock", "open_bcnn", "register_bcnn_opener"]


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

    Options: ``deblock`` (bool, run the deblocking model a file recommends, or a restorer's id to run instead),
    ``providers`` (onnxruntime providers, e.g. ``["CPUExecutionProvider"]``),
    ``threads`` (onnxruntime intra-op threads, 0 = all cores).
    """
    from . import BcnnImagePlugin  # noqa: F401  (registration happens on import)

    options.update(**decoder_options)
    _register_imageio()


def open_bcnn(fp: str | bytes | IO[bytes], *, deblock: bool | str | None = None) -> Image.Image:
    """``Image.open`` for a .bcnn file with a decoder option for this image alone.

    ``deblock`` overrides :data:`pillow_blockcnn.options.DEBLOCK` for this
    image: ``False`` returns the exact decode (``docs/FORMAT.md`` §3–§5) even
    when the file recommends deblocking; a model id (``"dblk-7"``) runs that
    restorer where the file recommends one. Anything that is not .bcnn raises
    Pillow's ``UnidentifiedImageError``.
    """
    if isinstance(deblock, str):
        pipeline.bcnn_restorer(deblock)  # a ValueError before the file is opened
    image = Image.open(fp, formats=["BCNN"])
    image.deblock = deblock  # type: ignore[attr-defined]  (read by BcnnImageFile.load)
    return image


register_bcnn_opener()
