"""What a batch reads: input files, folders and patterns, and the image formats Pillow reads and writes here."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

__all__ = [
    "BCNN_EXTENSIONS",
    "JPEG_EXTENSIONS",
    "PlanError",
    "Source",
    "collect_inputs",
    "output_format",
    "readable_extensions",
    "target_format",
]

JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})
BCNN_EXTENSIONS = frozenset({".bcnn"})
#: Output suffix for formats whose first registered extension is not the usual one.
_PREFERRED_SUFFIX = {"JPEG": ".jpg", "TIFF": ".tif", "PNG": ".png"}


class PlanError(ValueError):
    """The command line cannot become a batch (bad input, clashing outputs); nothing has been done yet."""



def readable_extensions() -> frozenset[str]:
    """Extensions of the image formats Pillow can open here (with .bcnn registered)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def _format_suffix(fmt: str) -> str:
    if fmt in _PREFERRED_SUFFIX:
        return _PREFERRED_SUFFIX[fmt]
    return next(ext for ext, f in Image.registered_extensions().items() if f == fmt)


def output_format(name: str) -> tuple[str, str]:
    """A format name or extension ("png", "JPEG", ".tif") -> (Pillow format, output suffix)."""
    Image.init()
    key = name.strip().lstrip(".")
    fmt = key.upper() if key.upper() in Image.SAVE else Image.registered_extensions().get("." + key.lower())
    if fmt is None or fmt not in Image.SAVE:
        msg = f"unknown output format {name!r}: use a format Pillow writes, such as PNG, TIFF, WEBP or JPEG"
        raise PlanError(msg)
    return fmt, _format_suffix(fmt)


def _format_of_path(path: Path) -> str:
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        msg = f"cannot tell the output format from {str(path)!r}: give it an extension such as .png, or pass --format"
        raise PlanError(
            msg
        )
    return fmt


def target_format(requested: str | None, target: Path, explicit: bool) -> str:
    """The Pillow format to write: as asked, else from a named output file's extension, else PNG."""
    if requested is not None:
        return output_format(requested)[0]
    return _format_of_path(target) if explicit else "PNG"


@dataclass(frozen=True)
class Source:
    """One input file and where it lands under an output folder (its path below the folder it was found in)."""

    path: Path
    relative: Path
    found: bool = False  # picked from a folder or a pattern, not named on the command line


def _files_in(folder: Path, recursive: bool) -> list[Path]:
    """Files below ``folder``, skipping hidden ones (and hidden folders: .git, editors' and our own .part files)."""
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    visible = (p for p in candidates if not any(part.startswith(".") for part in p.relative_to(folder).parts))
    return sorted(p for p in visible if p.is_file())


def collect_inputs(
    inputs: Iterable[str | Path], extensions: frozenset[str], *, recursive: bool = False
) -> list[Source]:
    """Expand files, folders and glob patterns into input files, in a stable order, each once.

    A file named on the command line is always taken, whatever its name: the
    user asked for it. Folders and patterns pick only files whose extension is
    in ``extensions`` (so a README in a photo folder is not "a failed image").
    """
    sources: list[Source] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = [p for p in _files_in(path, recursive) if p.suffix.lower() in extensions]
            sources.extend(Source(p, p.relative_to(path), found=True) for p in found)
        elif path.is_file():
            sources.append(Source(path, Path(path.name)))
        elif glob.has_magic(str(item)):
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=True))
            files = [m for m in matches if m.is_file() and m.suffix.lower() in extensions]
            if not files:
                msg = f"pattern {str(item)!r} matches no {_describe(extensions)} files"
                raise PlanError(msg)
            sources.extend(Source(p, Path(p.name), found=True) for p in files)
        else:
            msg = f"no such file or folder: {str(item)!r}"
            raise PlanError(msg)
    unique: dict[Path, Source] = {}
    for source in sources:
        unique.setdefault(source.path.resolve(), source)
    if not unique:
        hint = "" if recursive else "; pass --recursive to look into subfolders"
        msg = f"no {_describe(extensions)} files found in {', '.join(map(str, inputs))}{hint}"
        raise PlanError(msg)
    return list(unique.values())


def _describe(extensions: frozenset[str]) -> str:
    shown = sorted(extensions)
    return "/".join(shown) if len(shown) <= 4 else "image"
