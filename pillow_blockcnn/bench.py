"""Measuring the codec against JPEG: folder evaluation, equal-size comparisons and the one-image demo.

This is the installed twin of ``export/evaluate_compression.py`` (same codecs,
same rows, same summary), so users can measure on their own images without
the training tree. Every number goes through the public API (``Image.save`` /
``Image.open``), the way users meet the codec; bits per pixel count the whole
file, headers included.
"""

from __future__ import annotations

import io
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import __version__, container

__all__ = [
    "CODECS",
    "Codec",
    "Comparison",
    "closest_jpeg",
    "compare",
    "demo",
    "evaluate",
    "machine",
    "markdown",
    "pillow_saver",
    "psnr",
]


@dataclass(frozen=True)
class Codec:
    name: str
    description: str
    save: Callable[[Image.Image, int], bytes]


def pillow_saver(fmt: str, **params: object) -> Callable[[Image.Image, int], bytes]:
    """``save(image, quality) -> bytes`` through ``Image.save``: how every codec here is driven."""

    def save(im: Image.Image, quality: int) -> bytes:
        out = io.BytesIO()
        im.save(out, fmt, quality=quality, **params)
        return out.getvalue()

    return save


CODECS: dict[str, Codec] = {
    c.name: c
    for c in [
        Codec("bcnn", ".bcnn with the packaged models (what Image.save writes by default)", pillow_saver("BCNN")),
        Codec(
            "bcnn-plain",
            ".bcnn, no prediction, no deblocking, JPEG's tables (a headerless JPEG)",
            pillow_saver("BCNN", predict=False, deblock=False, tables="jpeg"),
        ),
        Codec("jpeg", "Pillow JPEG 4:2:0, optimize=True", pillow_saver("JPEG", optimize=True)),
    ]
}


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB over all elements (inf for identical arrays)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(peak * peak / mse))


def machine() -> str:
    """CPU model, its widest vector unit, usable cores and Python: enough to say where a number was measured.

    The vector unit is named because "2 cores" is not a speed: the same deblocker ran 0.90 MP/s on the 2-core
    Xeon of 2026-11-25 and 0.38 MP/s on the 2-core AVX2 EPYC of 2026-12-01 (export/NOTES.md)."""
    model, simd = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                simd = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags), "")
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}{f' ({simd})' if simd else ''}, {cores} cores, Python {platform.python_version()}"


def _decode(data: bytes) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    with Image.open(io.BytesIO(data)) as im:
        pixels = np.asarray(im.convert("RGB"))
    return pixels, time.perf_counter() - start


def _measure(path: Path, codecs: Sequence[str], qualities: Sequence[int]) -> list[dict[str, Any]]:
    with Image.open(path) as im:
        original = im.convert("RGB")
    reference = np.asarray(original)
    pixels = reference.shape[0] * reference.shape[1]
    rows = []
    for name in codecs:
        for quality in qualities:
            start = time.perf_counter()
            data = CODECS[name].save(original, quality)
            encode_s = time.perf_counter() - start
            decoded, decode_s = _decode(data)
            rows.append(
                {
                    "image": path.name,
                    "codec": name,
                    "quality": quality,
                    "bytes": len(data),
                    "bpp": 8 * len(data) / pixels,
                    "psnr_rgb": psnr(decoded, reference),
                    "encode_ms": 1000 * encode_s,
                    "decode_ms": 1000 * decode_s,
                }
            )
    return rows


def evaluate(
    images: Sequence[Path],
    codecs: Sequence[str],
    qualities: Sequence[int],
    *,
    on_image: Callable[[Path, str | None], None] | None = None,
) -> dict[str, Any]:
    """Encode and decode every image with every codec and quality; per-image rows and per-quality means.

    An image that cannot be read is left out and reported through
    ``on_image(path, reason)`` (called with ``None`` after each good image), so
    one bad file does not void a long run. The result has the layout of
    ``export/evaluate_compression.py``'s JSON, plus ``"failed"``.
    """
    unknown = sorted(set(codecs) - set(CODECS))
    if unknown:
        raise ValueError(f"unknown codec(s) {unknown}; known: {sorted(CODECS)}")
    rows: list[dict[str, Any]] = []
    measured: list[str] = []
    failed: dict[str, str] = {}
    for path in images:
        try:
            rows.extend(_measure(path, codecs, qualities))
            measured.append(path.name)
            reason = None
        except Exception as exc:  # noqa: BLE001  (reported, the run goes on)
            reason = str(exc) or type(exc).__name__
            failed[str(path)] = reason
        if on_image is not None:
            on_image(path, reason)
    summary = []
    for name in codecs:
        for quality in qualities:
            sel = [r for r in rows if r["codec"] == name and r["quality"] == quality]
            if sel:
                summary.append(
                    {"codec": name, "quality": quality, "images": len(sel)}
                    | {k: float(np.mean([r[k] for r in sel])) for k in ("bpp", "psnr_rgb", "encode_ms", "decode_ms")}
                )
    return {
        "date": date.today().isoformat(),
        "machine": machine(),
        "pillow": Image.__version__,
        "pillow_blockcnn": __version__,
        "images": measured,
        "failed": failed,
        "codecs": {n: CODECS[n].description for n in codecs},
        "summary": summary,
        "per_image": rows,
    }


def markdown(result: dict[str, Any], against: str = "jpeg", title: str = "") -> str:
    """The summary as a Markdown table, each codec relative to ``against`` at the same quality."""
    lines = [
        (
            f"{title or 'Images'}, {len(result['images'])} images, mean per quality; {result['date']}, "
            f"{result['machine']}, Pillow {result['pillow']}."
        ),
        "",
        f"| codec | q | bpp | PSNR-RGB (dB) | bpp vs {against} | PSNR vs {against} | encode ms | decode ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    anchor = {s["quality"]: s for s in result["summary"] if s["codec"] == against}
    for s in result["summary"]:
        ref = anchor.get(s["quality"])
        rel_bpp = f"{100 * (s['bpp'] / ref['bpp'] - 1):+.1f}%" if ref else "–"
        rel_psnr = (
            f"{100 * (s['psnr_rgb'] / ref['psnr_rgb'] - 1):+.2f}%" if ref and np.isfinite(ref["psnr_rgb"]) else "–"
        )
        lines.append(
            f"| {s['codec']} | {s['quality']} | {s['bpp']:.3f} | {s['psnr_rgb']:.2f} | {rel_bpp} | {rel_psnr} | "
            f"{s['encode_ms']:.0f} | {s['decode_ms']:.0f} |"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# equal-size comparison (blockcnn compare)

#: Layout of the comparison image: panels side by side, GAP pixels around and
#: between them, a LABEL band of two text lines above each panel.
GAP = 8
LABEL = 32


def _jpeg_bytes(image: Image.Image, quality: int, subsampling: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, subsampling=subsampling, optimize=True)
    return out.getvalue()


def closest_jpeg(image: Image.Image, target_bytes: int, subsampling: int = 2) -> tuple[int, bytes]:
    """The Pillow JPEG quality (optimize=True) whose file size is closest to ``target_bytes``, and its bytes.

    Sizes grow with quality almost everywhere, so a bisection finds the
    crossing in about seven encodes; the neighbours of the crossing are then
    compared directly because the growth is not strictly monotonic.
    """
    cache: dict[int, bytes] = {}

    def size(q: int) -> int:
        if q not in cache:
            cache[q] = _jpeg_bytes(image, q, subsampling)
        return len(cache[q])

    low, high = 1, 100
    while low < high:
        mid = (low + high) // 2
        if size(mid) < target_bytes:
            low = mid + 1
        else:
            high = mid
    candidates = [q for q in (low - 2, low - 1, low, low + 1) if 1 <= q <= 100]
    best = min(candidates, key=lambda q: (abs(size(q) - target_bytes), -q))
    return best, cache[best]


@dataclass(frozen=True)
class Comparison:
    """The side-by-side image and the numbers behind its labels."""

    image: Image.Image
    jpeg_quality: int
    jpeg_bytes: int
    jpeg_psnr: float
    bcnn_quality: int
    bcnn_bytes: int
    bcnn_psnr: float


def default_crop(size: tuple[int, int], side: int = 128) -> tuple[int, int, int, int]:
    """A centred ``side`` x ``side`` box (smaller for small images), as (x, y, width, height)."""
    w, h = min(side, size[0]), min(side, size[1])
    return (size[0] - w) // 2, (size[1] - h) // 2, w, h


def _panel(image: Image.Image, crop: tuple[int, int, int, int], scale: int, lines: Sequence[str]) -> Image.Image:
    x, y, w, h = crop
    zoomed = image.crop((x, y, x + w, y + h)).resize((w * scale, h * scale), Image.Resampling.NEAREST)
    panel = Image.new("RGB", (zoomed.width, LABEL + zoomed.height), "white")
    draw = ImageDraw.Draw(panel)
    font = ImageFont.load_default()
    for i, line in enumerate(lines):
        draw.text((2, 2 + 14 * i), line, fill="black", font=font)
    panel.paste(zoomed, (0, LABEL))
    return panel


def compare(
    original: Image.Image,
    bcnn_data: bytes,
    crop: tuple[int, int, int, int] | None = None,
    scale: int = 2,
) -> Comparison:
    """Original, JPEG and .bcnn crops side by side, the JPEG at the quality whose file size matches the .bcnn's.

    Equal file size, not equal quality setting, is the comparison that matters
    to a user choosing a format: what does the same number of bytes buy.
    PSNR in the labels is over the whole image, not just the crop.
    """
    original = original.convert("RGB")
    header, _ = container.read_header(io.BytesIO(bcnn_data))
    if (header.width, header.height) != original.size:
        raise ValueError(
            f"the .bcnn image is {header.width}x{header.height} but the original is "
            f"{original.width}x{original.height}: compare a .bcnn with the image it was encoded from"
        )
    crop = crop or default_crop(original.size)
    x, y, w, h = crop
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > original.width or y + h > original.height:
        raise ValueError(f"crop {x},{y},{w},{h} is not inside the {original.width}x{original.height} image")
    reference = np.asarray(original)
    with Image.open(io.BytesIO(bcnn_data)) as im:
        bcnn_image = im.convert("RGB")
    jpeg_quality, jpeg_data = closest_jpeg(original, len(bcnn_data), header.subsampling)
    with Image.open(io.BytesIO(jpeg_data)) as im:
        jpeg_image = im.convert("RGB")
    jpeg_psnr = psnr(np.asarray(jpeg_image), reference)
    bcnn_psnr = psnr(np.asarray(bcnn_image), reference)
    panels = [
        _panel(original, crop, scale, ["original", f"crop {w}x{h} at {x},{y}, x{scale}"]),
        _panel(jpeg_image, crop, scale, [f"JPEG q{jpeg_quality}", f"{len(jpeg_data):,} bytes, {jpeg_psnr:.2f} dB"]),
        _panel(bcnn_image, crop, scale, [f".bcnn q{header.quality}", f"{len(bcnn_data):,} bytes, {bcnn_psnr:.2f} dB"]),
    ]
    canvas = Image.new("RGB", comparison_size(crop, scale, len(panels)), "white")
    for i, panel in enumerate(panels):
        canvas.paste(panel, (GAP + i * (panel.width + GAP), GAP))
    return Comparison(canvas, jpeg_quality, len(jpeg_data), jpeg_psnr, header.quality, len(bcnn_data), bcnn_psnr)


def comparison_size(crop: tuple[int, int, int, int], scale: int, panels: int = 3) -> tuple[int, int]:
    """Width and height of the comparison image for a crop, zoom and number of panels."""
    _, _, w, h = crop
    return panels * w * scale + (panels + 1) * GAP, LABEL + h * scale + 2 * GAP


# ---------------------------------------------------------------------------
# the demo (python -m pillow_blockcnn demo)


def demo(quality: int, out_dir: Path, echo: Callable[[str], Any] = print) -> int:
    """Encode the bundled sample as .bcnn and as JPEG at the same quality, decode both, print size and PSNR."""
    sample = resources.files("pillow_blockcnn") / "samples" / "parrots.png"
    with resources.as_file(sample) as path, Image.open(path) as im:
        original = im.convert("RGB")
    reference = np.asarray(original)
    pixels = original.width * original.height
    out_dir.mkdir(parents=True, exist_ok=True)
    bcnn_path = out_dir / "parrots.bcnn"
    start = time.perf_counter()
    original.save(bcnn_path, quality=quality)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    with Image.open(bcnn_path) as im:
        decoded = np.asarray(im)
    decode_s = time.perf_counter() - start
    Image.fromarray(decoded).save(out_dir / "parrots.decoded.png")
    jpeg = io.BytesIO()
    original.save(jpeg, "JPEG", quality=quality, optimize=True)
    jpeg_size = jpeg.tell()
    jpeg_pixels = np.asarray(Image.open(jpeg))
    size = bcnn_path.stat().st_size
    echo(f"pillow-blockcnn {__version__}: {original.width}x{original.height} sample, quality {quality}")
    echo(
        f"  .bcnn  {size:7d} bytes  {8 * size / pixels:.3f} bpp  PSNR-RGB {psnr(decoded, reference):.2f} dB"
        f"  (encode {1000 * encode_s:.0f} ms, decode {1000 * decode_s:.0f} ms)"
    )
    echo(
        f"  JPEG   {jpeg_size:7d} bytes  {8 * jpeg_size / pixels:.3f} bpp  "
        f"PSNR-RGB {psnr(jpeg_pixels, reference):.2f} dB  (Pillow, optimize=True)"
    )
    echo(f"  wrote {bcnn_path} and {out_dir / 'parrots.decoded.png'}")
    return 0
