"""What is left for restoration to take: where the restored decode's error lies, and whether the encoder, which
alone has the original, could steer the restorer with a few bytes of side information.

    python -m export.studies.restoration_headroom --json results/studies/restoration_headroom.json

Measured on what the default save writes:

* **the error by scale**: the share of the restored (and of the unrestored) decode's squared error that is
  left in the means of 8x8, 16x16 and 32x32 squares, i.e. what a coarser level of the restorer (more context)
  could reach at most;

* **a restoration strength**: the restorer's quality input (``deblock_array``'s ``quality``, the file's
  quality by default) chosen per image from ``--offsets`` around it, as an encoder would search it and
  store one byte. Reported: each offset's mean change, and the mean gain of the per-image best (chosen by
  PSNR-RGB + 3 MS-SSIM dB, the restorer's own training objective).
* **a least-squares post-filter** (as VVC's adaptive loop filter, one class): per RGB channel, 3x3 taps of
  all three restored channels, 3x3 taps of that channel's correction (restored minus decoded) and a bias,
  37 coefficients fitted to the original and rounded to 1/1024; stored as int16 they cost
  ``3 * 37 * 2`` bytes. Its gain in dB is turned into the rate it saves with the image's own slope of
  PSNR-RGB against log-bytes between neighbouring qualities, and set against those bytes.

Centre crops of the held-out training images only (split seed 1234), never Kodak, LIVE1 or Classic5.
"""

from __future__ import annotations

import argparse
import io
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image

import pillow_blockcnn
from export.data.bcnn_pack import split
from export.data.crops import centre_crops
from export.evaluation.metrics import ms_ssim_rgb_db, psnr
from export.evaluation.report import emit, machine
from pillow_blockcnn import runtime

#: Filter coefficients are stored in units of 1/COEF_SCALE as int16.
COEF_SCALE = 1024
#: The post-filter's side information: 37 int16 coefficients for each of R, G and B.
FILTER_BYTES = 3 * 37 * 2
#: Square sides (pixels) over which the error's mean is taken.
SCALES = (8, 16, 32)


def _shifts(plane: np.ndarray, radius: int) -> list[np.ndarray]:
    padded = np.pad(plane, radius, mode="edge")
    h, w = plane.shape
    side = range(-radius, radius + 1)
    return [padded[radius + dy : radius + dy + h, radius + dx : radius + dx + w] for dy in side for dx in side]


def post_filter(restored: np.ndarray, decoded: np.ndarray, original: np.ndarray, rounded: bool = True) -> np.ndarray:
    """The least-squares filter of the docstring, fitted on ``original`` and applied to ``restored`` (float
    RGB arrays); returns float RGB. Its taps include the restored channel's own centre, so the unrounded fit
    can only lower the squared error."""
    out = np.empty_like(restored, dtype=np.float64)
    for c in range(3):
        feats = [s for k in range(3) for s in _shifts(restored[..., k], 1)]
        feats += _shifts(restored[..., c] - decoded[..., c], 1)
        a = np.stack([f.ravel() for f in feats] + [np.ones(restored[..., c].size)], 1)
        w, *_ = np.linalg.lstsq(a, (original[..., c] - restored[..., c]).ravel(), rcond=None)
        if rounded:
            w = np.round(w * COEF_SCALE) / COEF_SCALE
        out[..., c] = restored[..., c] + (a @ w).reshape(restored.shape[:2])
    return out


def _coarse_share(x: np.ndarray, original: np.ndarray, k: int) -> float:
    """The share of the squared error of ``x`` that its means over aligned k x k squares hold."""
    err = x.astype(np.float64) - original
    h, w = err.shape[0] // k * k, err.shape[1] // k * k
    means = err[:h, :w].reshape(h // k, k, w // k, k, -1).mean(axis=(1, 3))
    return float(np.mean(means**2) / np.mean(err**2))


def _pixels(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _score(x: np.ndarray, original: np.ndarray) -> tuple[float, float]:
    return psnr(x, original), ms_ssim_rgb_db(x, original)


def measure_image(rgb: np.ndarray, qualities: list[int], offsets: list[int], model: str) -> list[dict]:
    """Every quality's default save, decoded, restored by ``model`` at the file's quality and at each offset
    from it, and post-filtered; with the restored and the unrestored error's shares by scale."""
    rows = []
    for q in qualities:
        out = io.BytesIO()
        Image.fromarray(rgb).save(out, "BCNN", quality=q)
        data = out.getvalue()
        with pillow_blockcnn.open_bcnn(io.BytesIO(data), deblock=False) as im:
            decoded = np.asarray(im.convert("RGB"))
        restored = runtime.deblock_array(decoded, q, model)
        by_offset = {
            o: _score(restored if o == 0 else runtime.deblock_array(decoded, min(100, max(1, q + o)), model), rgb)
            for o in offsets
        }
        coarse = {str(k): _coarse_share(restored, rgb, k) for k in SCALES}
        coarse_decoded = {str(k): _coarse_share(decoded, rgb, k) for k in SCALES}
        filtered = _pixels(post_filter(restored.astype(np.float64), decoded.astype(np.float64), rgb.astype(np.float64)))
        rows.append(
            {
                "quality": q,
                "bytes": len(data),
                "restored": _score(restored, rgb),
                "offsets": {str(o): s for o, s in by_offset.items()},
                "filtered": _score(filtered, rgb),
                "coarse_share": coarse,
                "coarse_share_decoded": coarse_decoded,
            }
        )
    return rows


def summarise(images: list[list[dict]], offsets: list[int]) -> list[dict]:
    """Per quality: the offsets' mean changes, the per-image best offset's mean gain, and the post-filter's
    gain, rate saving (by the image's local slope) and side-information cost."""
    out = []
    for i, q in enumerate(r["quality"] for r in images[0]):
        row: dict = {"quality": q}
        base = np.array([img[i]["restored"] for img in images])
        scores = np.array([[img[i]["offsets"][str(o)] for o in offsets] for img in images])  # [n, offsets, 2]
        row["offset_mean_change"] = {
            str(o): (scores[:, k] - base).mean(0).round(4).tolist() for k, o in enumerate(offsets)
        }
        pick = np.argmax(scores[:, :, 0] + 3 * scores[:, :, 1], axis=1)
        row["best_offset_mean_gain"] = (scores[np.arange(len(images)), pick] - base).mean(0).round(4).tolist()
        row["best_offsets"] = [offsets[k] for k in pick]
        gain = np.array([img[i]["filtered"] for img in images]) - base
        saving, cost = [], []
        for img, g in zip(images, gain[:, 0], strict=True):
            lo, hi = img[max(0, i - 1)], img[min(len(img) - 1, i + 1)]
            slope = (hi["restored"][0] - lo["restored"][0]) / math.log(hi["bytes"] / lo["bytes"])  # dB per ln
            saving.append(1 - math.exp(-g / slope))
            cost.append(FILTER_BYTES / img[i]["bytes"])
        row["filter_mean_gain_db"] = gain.mean(0).round(4).tolist()
        row["filter_rate_saving_pct"] = round(100 * float(np.mean(saving)), 2)
        row["filter_side_info_pct"] = round(100 * float(np.mean(cost)), 2)
        for key in ("coarse_share", "coarse_share_decoded"):
            row[key] = {str(k): round(float(np.mean([img[i][key][str(k)] for img in images])), 4) for k in SCALES}
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", type=int, nargs=2, default=(320, 480), metavar=("HEIGHT", "WIDTH"))
    ap.add_argument("--qualities", type=int, nargs="+", default=[10, 20, 30, 40, 50])
    ap.add_argument("--offsets", type=int, nargs="+", default=[-10, -5, 0, 5, 10])
    ap.add_argument("--model", default="dblk-9")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    offsets = sorted(set(args.offsets) | {0})
    crops = centre_crops(split()[1], *args.size, count=args.images, either_orientation=True)
    started = time.perf_counter()
    images = [measure_image(rgb, sorted(args.qualities), offsets, args.model) for rgb in crops]
    return emit(
        {
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
            "data": f"centre {args.size[0]}x{args.size[1]} crops (portrait ones turned) of "
            f"{len(crops)} of the 24 held-out images (split seed 1234); default save, restored by {args.model}",
            "summary": summarise(images, offsets),
            "images": images,
            "wall_s": time.perf_counter() - started,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
