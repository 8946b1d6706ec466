"""Does projecting a restorer's output back onto the JPEG's quantisation intervals help? (measured: no)

A JPEG's levels say that each original DCT coefficient lay within half a step of ``level * step``; that set is
convex and holds the original, so moving a restoration onto it can only bring it closer (in the plane's own
samples, where the DCT is orthonormal). The study restores Pillow JPEGs of centre crops of the held-out training
images with a packaged JPEG restorer, reads the JPEG's true levels and tables with jpeglib, and clips the
restored planes' coefficients into ``[(level - a) step, (level + a) step]``: luma at full resolution, and luma
plus chroma, whose correction is made on the 2x2-averaged planes and spread back over each 2x2 pixel group.
Scored as ``export.evaluation.evaluate_deblock``'s colour protocol (Y-PSNR on MATLAB's Y, PSNR-RGB). ::

    python -m export.studies.qcs_projection --json results/studies/qcs_projection.json
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import jpeglib
import numpy as np
from PIL import Image

from export.data.crops import centre_crop, list_images, load_rgb, split_holdout
from export.evaluation.evaluate_deblock import QUALITIES, onnx_restorer
from export.evaluation.metrics import psnr, rgb_to_y_matlab
from export.evaluation.report import emit, machine
from pillow_blockcnn.runtime.jfif import rgb_to_ycbcr_float, to_uint8, ycbcr_to_rgb_float

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "train"
_N = np.arange(8)
#: Orthonormal DCT-II basis (T.81's transform, as ``codec.dct.fdct``), for the inverse as well.
_BASIS = np.cos((2 * _N[None, :] + 1) * _N[:, None] * np.pi / 16) / 2
_BASIS[0] /= np.sqrt(2)


def project(plane: np.ndarray, levels: np.ndarray, table: np.ndarray, half_width: float) -> np.ndarray:
    """``plane`` (samples 0..255, sides at least the levels' grid) with each 8x8 block's DCT coefficients clipped
    into ``(levels -/+ half_width) * table``; ``levels`` ``[BY, BX, 8, 8]`` as jpeglib reads them."""
    by, bx = levels.shape[:2]
    h, w = by * 8, bx * 8
    blocks = (plane[:h, :w] - 128.0).reshape(by, 8, bx, 8).transpose(0, 2, 1, 3)
    coeffs = _BASIS @ blocks @ _BASIS.T
    clipped = np.clip(coeffs, (levels - half_width) * table, (levels + half_width) * table)
    out = plane.copy()
    out[:h, :w] = (_BASIS.T @ clipped @ _BASIS).transpose(0, 2, 1, 3).reshape(h, w) + 128.0
    return out


def _read_levels(data: bytes) -> jpeglib.DCTJPEG:
    with tempfile.NamedTemporaryFile(suffix=".jpg") as f:
        f.write(data)
        f.flush()
        jpeg = jpeglib.read_dct(f.name)
        jpeg.load()
    return jpeg


def _pad_to(plane: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.pad(plane, ((0, max(0, h - plane.shape[0])), (0, max(0, w - plane.shape[1]))), mode="edge")[:h, :w]


def variants(rgb: np.ndarray, quality: int, restore, half_widths: tuple[float, ...]) -> dict[str, np.ndarray]:
    """The JPEG, its restoration and the projected restorations of one image, as uint8 RGB."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        decoded = np.asarray(im).copy()
    jpeg = _read_levels(buf.getvalue())
    restored = restore(rgb_to_ycbcr_float(decoded), quality)
    h, w = rgb.shape[:2]
    out = {"jpeg": decoded, "restored": to_uint8(ycbcr_to_rgb_float(restored))}
    for a in half_widths:
        ycc = restored.copy()
        ph, pw = jpeg.Y.shape[0] * 8, jpeg.Y.shape[1] * 8
        ycc[..., 0] = project(_pad_to(ycc[..., 0], ph, pw), jpeg.Y, jpeg.qt[0], a)[:h, :w]
        out[f"luma, a={a}"] = to_uint8(ycbcr_to_rgb_float(ycc))
        for channel, levels in ((1, jpeg.Cb), (2, jpeg.Cr)):
            ch, cw = levels.shape[0] * 8, levels.shape[1] * 8
            full = _pad_to(ycc[..., channel], 2 * ch, 2 * cw)
            half = full.reshape(ch, 2, cw, 2).mean(axis=(1, 3))
            change = project(half, levels, jpeg.qt[1], a) - half
            ycc[..., channel] += np.repeat(np.repeat(change, 2, 0), 2, 1)[:h, :w]
        out[f"luma+chroma, a={a}"] = to_uint8(ycbcr_to_rgb_float(ycc))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--model", type=Path, default=Path("pillow_blockcnn/models/dblk-5.onnx"))
    ap.add_argument("--images", type=int, default=24, help="how many of the 24 held-out images")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--half-widths", type=float, nargs="+", default=[0.5, 0.6])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    _, held_out = split_holdout(list_images(args.data), 24, 1234)
    images = [centre_crop(load_rgb(p), args.crop) for p in held_out[: args.images]]
    restore = onnx_restorer(args.model, 2)
    started = time.perf_counter()
    table: dict[str, dict[str, dict[str, float]]] = {}
    for quality in QUALITIES:
        scores: dict[str, list[tuple[float, float]]] = {}
        for rgb in images:
            y = rgb_to_y_matlab(rgb)
            for name, out in variants(rgb, quality, restore, tuple(args.half_widths)).items():
                scores.setdefault(name, []).append((psnr(rgb_to_y_matlab(out), y), psnr(out, rgb)))
        table[f"q{quality}"] = {name: {"psnr_y": float(np.mean([s[0] for s in v])),
                                       "psnr_rgb": float(np.mean([s[1] for s in v]))} for name, v in scores.items()}
    gains = {name: {metric: float(np.mean([table[q][name][metric] - table[q]["restored"][metric] for q in table]))
                    for metric in ("psnr_y", "psnr_rgb")} for name in table["q10"] if name not in ("jpeg", "restored")}
    return emit({
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "data": f"{args.data}: centre crops of at most {args.crop} of {len(images)} of the 24 held-out images "
        "(split seed 1234), Pillow JPEG 4:2:0",
        "model": str(args.model),
        "mean_gain_over_restored_db": gains,
        "by_quality": table,
        "wall_s": round(time.perf_counter() - started, 1),
    }, args.json)


if __name__ == "__main__":
    main()
