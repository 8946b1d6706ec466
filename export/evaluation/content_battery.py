"""The content battery: images that are not photographs, made here, that a drop-in format must not spoil.

Screenshots with text, line art, charts, flat colours, gradients, noise,
1-bit images, and tiny and thin images, beside a synthetic photo-like texture.
Every image is generated from a seed (no benchmark images, nothing to
download), so ``tests/`` and the evaluation command see the same pixels.

``python -m export.evaluation.content_battery --json results/battery/battery.json`` codes each image with
the default save and with ``predict=False`` over a quality grid and reports, per image, the BD-rate of the
default against plain coding on PSNR-RGB (negative or zero: the default is never worse), and the worst
error on flat colours.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["BATTERY", "FLAT", "battery"]


def _photo_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour fields plus fine texture: a stand-in for a photograph's statistics."""
    out = np.zeros((h, w, 3))
    y, x = np.mgrid[0:h, 0:w]
    for _ in range(12):
        cy, cx, s = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(8, 40)
        out += rng.uniform(-90, 90, 3) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s))[..., None]
    out += rng.normal(0, 6, (h, w, 1))
    return np.clip(out + 128, 0, 255).astype(np.uint8)


def _screenshot(rng: np.random.Generator) -> np.ndarray:
    im = Image.new("RGB", (200, 120), "white")
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, 199, 14), fill=(40, 90, 200))
    draw.text((4, 2), "pillow-blockcnn - Editor", fill="white")
    for i, line in enumerate(["def save(im, fp):", "    quality = 75  # default", "    return encode(im)", "Ln 3, Col 12"]):
        draw.text((6, 22 + 14 * i), line, fill=(0, 0, 0) if i < 3 else (90, 90, 90))
    draw.rectangle((140, 80, 190, 110), outline=(200, 30, 30), width=2)
    return np.asarray(im)


def _line_art(rng: np.random.Generator) -> np.ndarray:
    im = Image.new("RGB", (160, 120), "white")
    draw = ImageDraw.Draw(im)
    for _ in range(14):
        pts = [tuple(rng.integers(0, 160, 2)) for _ in range(2)]
        draw.line(pts, fill="black", width=int(rng.integers(1, 3)))
    draw.ellipse((30, 20, 110, 100), outline="black", width=2)
    return np.asarray(im)


def _chart(rng: np.random.Generator) -> np.ndarray:
    im = Image.new("RGB", (192, 128), "white")
    draw = ImageDraw.Draw(im)
    draw.line((20, 110, 185, 110), fill="black")
    draw.line((20, 110, 20, 8), fill="black")
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
    for i, c in enumerate(colours):
        top = int(rng.integers(20, 100))
        draw.rectangle((30 + 30 * i, top, 50 + 30 * i, 109), fill=c)
        draw.text((32 + 30 * i, 112), str(2020 + i)[2:], fill="black")
    return np.asarray(im)


def _flat(colour: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: np.full((*size, 3), colour, dtype=np.uint8)


def _colour_blocks(rng: np.random.Generator) -> np.ndarray:
    out = np.zeros((96, 128, 3), dtype=np.uint8)
    for (y, x), c in zip([(0, 0), (0, 64), (48, 0), (48, 64)], [(255, 255, 255), (230, 30, 30), (20, 20, 20), (30, 120, 230)], strict=True):
        out[y : y + 48, x : x + 64] = c
    return out


def _gradient(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:96, 0:160]
    return np.stack([x * 255 / 159, y * 255 / 95, (x + y) * 255 / 254], axis=-1).round().astype(np.uint8)


def _noise(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)


def _one_bit(rng: np.random.Generator) -> np.ndarray:
    gray = _photo_like(rng, 96, 128).mean(axis=2)
    return np.repeat(np.where(gray > 128, 255, 0).astype(np.uint8)[..., None], 3, axis=2)


def _checkerboard(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:64, 0:64]
    return np.repeat((((y // 4 + x // 4) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)


BATTERY: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "photo-like": lambda rng: _photo_like(rng, 128, 192),
    "screenshot": _screenshot,
    "line-art": _line_art,
    "chart": _chart,
    "flat-white": _flat((255, 255, 255)),
    "flat-white-8x8": _flat((255, 255, 255), (8, 8)),
    "flat-grey": _flat((128, 128, 128)),
    "flat-red": _flat((200, 30, 40)),
    "colour-blocks": _colour_blocks,
    "gradient": _gradient,
    "noise": _noise,
    "one-bit": _one_bit,
    "checkerboard-4px": _checkerboard,
    "tiny-1x1": lambda rng: np.array([[[12, 200, 77]]], dtype=np.uint8),
    "tiny-3x5": lambda rng: rng.integers(0, 256, (3, 5, 3), dtype=np.uint8),
    "thin-1x300": lambda rng: _photo_like(rng, 1, 300),
    "thin-400x2": lambda rng: _photo_like(rng, 400, 2),
}
#: Battery images that are one flat colour: they must decode to within one level of it.
FLAT = ("flat-white", "flat-white-8x8", "flat-grey", "flat-red")


def battery(seed: int = 20261202) -> dict[str, np.ndarray]:
    """Every battery image, uint8 RGB, each from its own generator seeded from ``seed``."""
    return {name: make(np.random.default_rng([seed, i])) for i, (name, make) in enumerate(BATTERY.items())}


def _point(pixels: np.ndarray, quality: int, **params: object) -> tuple[int, float, int]:
    import pillow_blockcnn  # noqa: F401 (registers the format)
    from pillow_blockcnn.metrics import psnr

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "BCNN", quality=quality, **params)
    decoded = np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("RGB"))
    return out.tell(), psnr(decoded, pixels), int(np.abs(decoded.astype(int) - pixels).max())


def main(argv: list[str] | None = None) -> dict:
    from export.evaluation.bdrate import bd_rate
    from pillow_blockcnn.runtime.machine import machine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qualities", type=int, nargs="+", default=[10, 20, 35, 50, 70, 90])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = {}
    for name, pixels in battery().items():
        default = [_point(pixels, q) for q in args.qualities]
        plain = [_point(pixels, q, predict=False) for q in args.qualities]
        entry: dict[str, object] = {
            "size": list(pixels.shape[:2]),
            "default": [{"q": q, "bytes": b, "psnr": p, "max_error": e} for q, (b, p, e) in zip(args.qualities, default, strict=True)],
            "plain": [{"q": q, "bytes": b, "psnr": p, "max_error": e} for q, (b, p, e) in zip(args.qualities, plain, strict=True)],
        }
        finite = [i for i in range(len(args.qualities)) if np.isfinite(default[i][1]) and np.isfinite(plain[i][1])]
        if len(finite) >= 4:
            try:
                entry["bd_rate_default_vs_plain_pct"] = bd_rate(
                    [plain[i][0] for i in finite],
                    [plain[i][1] for i in finite],
                    [default[i][0] for i in finite],
                    [default[i][1] for i in finite],
                    method="pchip",
                )
            except ValueError as exc:
                entry["bd_rate_default_vs_plain_pct"] = str(exc)
        entry["default_not_larger_or_better_everywhere"] = all(
            d[0] <= p[0] or d[1] >= p[1] for d, p in zip(default, plain, strict=True)
        )
        rows[name] = entry
        print(name, entry.get("bd_rate_default_vs_plain_pct"), [d[2] for d in default], file=sys.stderr)
    result = {"date": date.today().isoformat(), "machine": machine(), "qualities": args.qualities, "images": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
