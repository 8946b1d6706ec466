"""Measuring the codec against JPEG: folder evaluation, equal-size comparisons and the one-image demo.

This is the installed twin of ``export/evaluate_compression.py`` (same codecs,
same rows, same summary), so users can measure on their own images without
the training tree. Every number goes through the public API (``Image.save`` /
``Image.open``), the way users meet the codec; bits per pixel count the whole
file, headers included.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pillow_blockcnn._version import __version__
from pillow_blockcnn.metrics import psnr
from pillow_blockcnn.runtime.machine import machine

__all__ = ["CODECS", "Codec", "evaluate", "markdown", "pillow_saver"]


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
            ".bcnn, no prediction, no deblocking, JPEG's tables (the residual coder alone)",
            pillow_saver("BCNN", predict=False, deblock=False, tables="jpeg"),
        ),
        Codec("jpeg", "Pillow JPEG 4:2:0, optimize=True", pillow_saver("JPEG", optimize=True)),
    ]
}


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
        msg = f"unknown codec(s) {unknown}; known: {sorted(CODECS)}"
        raise ValueError(msg)
    rows: list[dict[str, Any]] = []
    measured: list[str] = []
    failed: dict[str, str] = {}
    for path in images:
        try:
            rows.extend(_measure(path, codecs, qualities))
            measured.append(path.name)
            reason = None
        except Exception as exc:
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
