"""The limits and names every layer checks, each defined once.

The save options a user passes (``quality``, ``subsampling``, ``tables``), the
header fields a file stores and the command line's choices all go through the
functions here, so a rule cannot drift between the Pillow glue, the codec, the
container and the CLI. Pure Python: no numpy, no Pillow.
"""

from __future__ import annotations

__all__ = [
    "CODINGS",
    "DEFAULT_CODING",
    "DEFAULT_TILE_BLOCKS",
    "DEFAULT_QUALITY",
    "DEFAULT_SUBSAMPLING",
    "DEFAULT_TABLES",
    "MAX_DIMENSION",
    "SUBSAMPLING_CODES",
    "SUBSAMPLING_NAMES",
    "TABLE_SETS",
    "TUNES",
    "QUALITY_RANGE",
    "check_quality",
    "check_size",
    "coding_setting",
    "quality_setting",
    "size_error",
    "subsampling_code",
    "tables_setting",
    "tune_setting",
    "tile_setting",
]

#: Each plane is coded as one JPEG image, whose sides libjpeg caps at 65 500 (``JPEG_MAX_DIMENSION``).
MAX_DIMENSION = 65500
#: The qualities a header stores and the tables are scaled for (IJG's 1..100).
QUALITY_RANGE = range(1, 101)
#: Quality of a save without ``quality=``, as Pillow's JPEG.
DEFAULT_QUALITY = 75
#: Header subsampling code -> the name Pillow's JPEG plugin uses for it.
SUBSAMPLING_NAMES: dict[int, str] = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
#: Name -> header code (the inverse of :data:`SUBSAMPLING_NAMES`).
SUBSAMPLING_CODES: dict[str, int] = {name: code for code, name in SUBSAMPLING_NAMES.items()}
#: Header code of the default chroma subsampling (4:2:0, as Pillow's JPEG).
DEFAULT_SUBSAMPLING = 2
#: Quantisation table sets (docs/FORMAT.md 4.1; the header stores the index): JPEG's Annex K tables, the flat
#: ones tuned for PSNR, the steeper ones tuned for MS-SSIM, and the ones between, tuned for both metrics of
#: the restored decode.
TABLE_SETS = ("jpeg", "mse", "ssim", "balanced")
#: ``tune=`` names -> the table set tuned for that metric.
TUNES: dict[str, str] = {"psnr": "mse", "ssim": "ssim", "balanced": "balanced"}
#: Entropy coders of the residual planes: JPEG's arithmetic coder (T.81 Annex D) or optimised Huffman tables.
CODINGS = ("arithmetic", "huffman")
#: The coder of a save without ``coding=``: arithmetic, 5-10% smaller, decoded by Pillow's wheels.
DEFAULT_CODING = "arithmetic"
#: Prediction tile side in blocks of a save without ``tile=`` (512 pixels of luma); 0 would be one tile.
DEFAULT_TILE_BLOCKS = 64
#: The table set of a save of a photograph without ``tables=`` or ``tune=``: the one tuned for both PSNR-RGB
#: and MS-SSIM of the restored decode. On 18 held-out training images it beat the PSNR-tuned set on the mean of
#: the two BD-rates, and AVIF on both (export/NOTES.md, "Tables for the restored decode").
DEFAULT_TABLES = "balanced"
#: The table set of such a save of text, graphics and flat colours (``codec.content.is_screen_content``): the
#: flat PSNR-tuned tables ring less around sharp edges and keep flat colours within a level.
SCREEN_CONTENT_TABLES = "mse"


def quality_setting(value: object) -> int:
    """A user's ``quality`` (an integer 0..100, as Pillow's JPEG, WebP and AVIF take it) as the header's 1..100.

    Quality 0 is accepted and stored as 1, which is what libjpeg's own scaling makes of it.
    """
    if isinstance(value, bool) or not hasattr(value, "__index__") or not 0 <= value.__index__() <= 100:  # type: ignore[union-attr]
        msg = f"Invalid quality setting: {value!r} (an integer 0..100)"
        raise ValueError(msg)
    return max(1, value.__index__())  # type: ignore[union-attr]


def check_quality(quality: object, error: type[Exception] = ValueError) -> int:
    """A stored quality (an integer 1..100, not a bool), or ``error`` saying what it must be."""
    if isinstance(quality, bool) or not hasattr(quality, "__index__") or quality.__index__() not in QUALITY_RANGE:  # type: ignore[union-attr]
        msg = f"quality {quality!r} is invalid: quality must be an integer 1..100"
        raise error(msg)
    return quality.__index__()  # type: ignore[union-attr]


def subsampling_code(value: object) -> int:
    """A user's ``subsampling`` (``"4:4:4"``, ``"4:2:2"``, ``"4:2:0"``, Pillow's 0, 1, 2, or -1 for the default)
    as the header code."""
    if value == -1 or value is None:
        return DEFAULT_SUBSAMPLING
    if isinstance(value, str) and value in SUBSAMPLING_CODES:
        return SUBSAMPLING_CODES[value]
    if isinstance(value, int) and not isinstance(value, bool) and value in SUBSAMPLING_NAMES:
        return value
    msg = f"Invalid subsampling {value!r}: use '4:4:4', '4:2:2' or '4:2:0' (or 0, 1, 2)"
    raise ValueError(msg)


def tables_setting(value: object) -> str:
    """A user's ``tables`` checked against :data:`TABLE_SETS`."""
    if not isinstance(value, str) or value not in TABLE_SETS:
        msg = (
            f"Invalid tables {value!r}: use 'balanced' (tuned for PSNR and MS-SSIM, photographs' default), "
            "'mse' (tuned for PSNR), 'ssim' (tuned for MS-SSIM) or 'jpeg' (libjpeg's)"
        )
        raise ValueError(msg)
    return value


def tune_setting(tune: object, tables: object) -> str | None:
    """The table set for a save's ``tune`` (``"psnr"``, ``"ssim"`` or ``"balanced"``) and ``tables`` options;
    ``None`` for either means not given, and ``None`` back means neither was: the encoder chooses by content
    (:data:`DEFAULT_TABLES` or :data:`SCREEN_CONTENT_TABLES`). Both given must agree."""
    if tune is None:
        return None if tables is None else tables_setting(tables)
    if not isinstance(tune, str) or tune not in TUNES:
        msg = (
            f"Invalid tune {tune!r}: use 'balanced' (PSNR and MS-SSIM, photographs' default), 'psnr' (PSNR "
            "first) or 'ssim' (what MS-SSIM and eyes prefer)"
        )
        raise ValueError(msg)
    if tables is not None and tables_setting(tables) != TUNES[tune]:
        msg = f"tune={tune!r} means tables={TUNES[tune]!r}, but tables={tables!r} was given: pass one of them"
        raise ValueError(msg)
    return TUNES[tune]


def coding_setting(value: object) -> str:
    """A user's ``coding`` checked against :data:`CODINGS`."""
    if not isinstance(value, str) or value not in CODINGS:
        msg = f"Invalid coding {value!r}: use 'arithmetic' (smaller, the default) or 'huffman'"
        raise ValueError(msg)
    return value


def tile_setting(value: object) -> int:
    """A user's ``tile`` (prediction tile side in 8x8 blocks, 1..255, or 0 for none) checked."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        msg = f"Invalid tile {value!r}: the prediction tile side in 8x8 blocks, 1..255, or 0 for one tile per plane"
        raise ValueError(msg)
    return value


def size_error(width: int, height: int) -> str | None:
    """Why an image of ``width`` x ``height`` cannot be a .bcnn file, or None when it can."""
    if width < 1 or height < 1:
        return f"image size {width}x{height} is empty: a .bcnn image has at least one pixel"
    if width > MAX_DIMENSION or height > MAX_DIMENSION:
        return f"image size {width}x{height} exceeds the .bcnn limit of {MAX_DIMENSION} pixels per side"
    return None


def check_size(width: int, height: int, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` with :func:`size_error`'s message when the size is not storable."""
    message = size_error(width, height)
    if message is not None:
        raise error(message)
