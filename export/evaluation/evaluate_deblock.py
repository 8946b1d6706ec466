"""Evaluate a deblocking ONNX model on LIVE1 and Classic5 at JPEG q10/20/30/40 (never used for training/tuning).

Usage: ``python -m export.evaluation.evaluate_deblock --model models/deblock_v1.onnx --out results/deblock_v1.json``
(omit ``--model`` to score plain JPEG and check that the baselines reproduce the published numbers).

Protocols:
  * colour (LIVE1): RGB -> Pillow JPEG (4:2:0) -> restore -> RGB uint8; PSNR on RGB, and Y-PSNR on the MATLAB
    BT.601 Y (16..235, float) of the RGB result.
  * grayscale (LIVE1 and Classic5): MATLAB Y rounded to uint8 (Classic5 as stored), JPEG as L, restore with
    neutral chroma; PSNR, SSIM and PSNR-B on Y.
The whole image is restored in one onnxruntime run (CPU, 2 threads), padded to a multiple of 8 by edge
replication and cropped back, as the runtime package does. Also writes ``<out>.md`` (table with published rows)
and ``<out>.png`` (plot), and records speed (MP/s) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from export.data.crops import jpeg_roundtrip, make_input
from export.evaluation.metrics import psnr, psnr_b, rgb_to_y_matlab, ssim
from pillow_blockcnn.runtime.jfif import gray_to_ycbcr_float, rgb_to_ycbcr_float, to_uint8, ycbcr_to_rgb_float

QUALITIES = (10, 20, 30, 40)
DATA = Path("../shared/data")
# Published rows (dB). Gray: LIVE1 Y-PSNR; colour: LIVE1 RGB-PSNR.
PUBLISHED_GRAY_LIVE1 = {"JPEG": (27.77, 32.35), "AR-CNN": (28.96, 33.63), "DnCNN-3": (29.19, 33.96),
                        "FBCNN": (29.75, 34.53)}
PUBLISHED_COLOUR_LIVE1 = {"JPEG": (25.69, 30.28), "FBCNN": (27.77, 32.34)}
EXPECTED_JPEG = {("live1", "colour"): (25.69, 30.28), ("live1", "gray"): (27.77, 32.35),
                 ("classic5", "gray"): (27.82, 32.43)}

Restorer = Callable[[np.ndarray, int], np.ndarray]  # YCbCr float (H,W,3) 0..255, quality -> restored YCbCr


def onnx_restorer(model: Path, threads: int) -> Restorer:
    """Restore a whole image in one run: pad to a multiple of 8 (edge replication), run, crop."""
    from export.conversion.export_onnx import make_session

    sess = make_session(model, threads)

    def restore(ycc: np.ndarray, quality: int) -> np.ndarray:
        h, w, _ = ycc.shape
        ph, pw = -h % 8, -w % 8
        padded = np.pad(ycc, ((0, ph), (0, pw), (0, 0)), mode="edge")
        y = sess.run(["y"], {"x": make_input(padded, quality)[None]})[0][0]
        return y.transpose(1, 2, 0)[:h, :w] * 255.0

    return restore


def identity_restorer(ycc: np.ndarray, quality: int) -> np.ndarray:
    return ycc


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im, dtype=np.uint8).copy()


def eval_colour(files: list[Path], restore: Restorer, timer: list[float]) -> dict:
    out = {}
    for q in QUALITIES:
        rows = []
        for f in files:
            rgb = load(f)
            jpg = jpeg_roundtrip(rgb, q)
            t = time.perf_counter()
            res = to_uint8(ycbcr_to_rgb_float(restore(rgb_to_ycbcr_float(jpg), q)))
            timer[0] += time.perf_counter() - t
            timer[1] += rgb.shape[0] * rgb.shape[1]
            yc, yr, yj = rgb_to_y_matlab(rgb), rgb_to_y_matlab(res), rgb_to_y_matlab(jpg)
            rows.append({"psnr_rgb": psnr(res, rgb), "psnr_y": psnr(yr, yc),
                         "jpeg_psnr_rgb": psnr(jpg, rgb), "jpeg_psnr_y": psnr(yj, yc)})
        out[f"q{q}"] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return out


def eval_gray(images: list[np.ndarray], restore: Restorer, timer: list[float]) -> dict:
    out = {}
    for q in QUALITIES:
        rows = []
        for y in images:
            jpg = jpeg_roundtrip(y, q)
            t = time.perf_counter()
            res = to_uint8(restore(gray_to_ycbcr_float(jpg), q)[..., 0])
            timer[0] += time.perf_counter() - t
            timer[1] += y.shape[0] * y.shape[1]
            rows.append({"psnr": psnr(res, y), "ssim": ssim(res, y), "psnr_b": psnr_b(y, res),
                         "jpeg_psnr": psnr(jpg, y), "jpeg_ssim": ssim(jpg, y), "jpeg_psnr_b": psnr_b(y, jpg)})
        out[f"q{q}"] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return out


def check_baselines(results: dict) -> dict:
    """JPEG baselines vs the published q10/q40 numbers (|diff| <= 0.02 dB counts as reproduced)."""
    checks = {}
    for (ds, proto), (e10, e40) in EXPECTED_JPEG.items():
        key = "jpeg_psnr_rgb" if proto == "colour" else "jpeg_psnr"
        got = (results[ds][proto]["q10"][key], results[ds][proto]["q40"][key])
        checks[f"{ds}/{proto}"] = {"expected": [e10, e40], "got": [round(g, 3) for g in got],
                                   "ok": all(abs(g - e) <= 0.02 for g, e in zip(got, (e10, e40)))}
    return checks


def summary(results: dict) -> dict:
    """Mean gains over JPEG across q10..q40 (the targets: colour Y >= +1.5 dB, colour RGB >= +1.2 dB)."""
    c, g = results["live1"]["colour"], results["live1"]["gray"]
    qs = [f"q{q}" for q in QUALITIES]
    return {
        "live1_colour_gain_y": float(np.mean([c[q]["psnr_y"] - c[q]["jpeg_psnr_y"] for q in qs])),
        "live1_colour_gain_rgb": float(np.mean([c[q]["psnr_rgb"] - c[q]["jpeg_psnr_rgb"] for q in qs])),
        "live1_gray_gain_y": float(np.mean([g[q]["psnr"] - g[q]["jpeg_psnr"] for q in qs])),
        "classic5_gray_gain_y": float(np.mean([results["classic5"]["gray"][q]["psnr"]
                                               - results["classic5"]["gray"][q]["jpeg_psnr"] for q in qs])),
    }


def markdown(res: dict, name: str) -> str:
    qs = [f"q{q}" for q in QUALITIES]
    head = "| method | " + " | ".join(qs) + " |\n|---|" + "---|" * len(qs) + "\n"
    lines = [f"# Deblocking evaluation: {name}\n", (f"Speed: {res['speed_mp_s']:.3f} MP/s (restore incl. colour "
             f"conversion, onnxruntime CPU {res['threads']} threads); peak RSS {res['peak_rss_mb']:.0f} MB.\n")]
    lines.append("Mean gain over JPEG (q10-q40): " + ", ".join(f"{k} {v:+.3f} dB" for k, v in res["summary"].items()) + "\n")
    for ds, proto, metric, jpeg_metric, published in (
        ("live1", "gray", "psnr", "jpeg_psnr", PUBLISHED_GRAY_LIVE1),
        ("live1", "colour", "psnr_rgb", "jpeg_psnr_rgb", PUBLISHED_COLOUR_LIVE1),
        ("live1", "colour", "psnr_y", "jpeg_psnr_y", {}),
        ("classic5", "gray", "psnr", "jpeg_psnr", {}),
        ("live1", "gray", "ssim", "jpeg_ssim", {}),
        ("live1", "gray", "psnr_b", "jpeg_psnr_b", {}),
        ("classic5", "gray", "ssim", "jpeg_ssim", {}),
        ("classic5", "gray", "psnr_b", "jpeg_psnr_b", {}),
    ):
        r = res["results"][ds][proto]
        fmt = "{:.4f}" if "ssim" in metric else "{:.2f}"
        lines.append(f"\n## {ds} {proto} {metric}\n\n" + head)
        lines.append("| JPEG (ours) | " + " | ".join(fmt.format(r[q][jpeg_metric]) for q in qs) + " |\n")
        lines.append(f"| **{name}** | " + " | ".join(fmt.format(r[q][metric]) for q in qs) + " |\n")
        for m, (p10, p40) in published.items():
            lines.append(f"| {m} (published) | {p10:.2f} | – | – | {p40:.2f} |\n")
    lines.append("\n## JPEG baseline check (published q10/q40)\n\n")
    for k, v in res["baseline_check"].items():
        lines.append(f"- {k}: expected {v['expected']}, got {v['got']}, {'OK' if v['ok'] else 'MISMATCH'}\n")
    return "".join(lines)


def plot(res: dict, path: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qs = list(QUALITIES)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, proto, metric, jm, pub, title in (
        (axes[0], "gray", "psnr", "jpeg_psnr", PUBLISHED_GRAY_LIVE1, "LIVE1 gray, Y-PSNR"),
        (axes[1], "colour", "psnr_rgb", "jpeg_psnr_rgb", PUBLISHED_COLOUR_LIVE1, "LIVE1 colour, RGB-PSNR"),
    ):
        r = res["results"]["live1"][proto]
        ax.plot(qs, [r[f"q{q}"][jm] for q in qs], "k--o", label="JPEG")
        ax.plot(qs, [r[f"q{q}"][metric] for q in qs], "r-o", label=name)
        for m, (p10, p40) in pub.items():
            if m != "JPEG":
                ax.plot([10, 40], [p10, p40], "x", ms=9, label=f"{m} (published)")
        ax.set(title=title, xlabel="JPEG quality", ylabel="dB", xticks=qs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="ONNX model; omit to score plain JPEG only")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    restore = onnx_restorer(args.model, args.threads) if args.model else identity_restorer
    name = args.model.stem if args.model else "identity"
    live1 = sorted((args.data / "live1").glob("*.png"))
    classic5 = sorted((args.data / "classic5").glob("*.png"))
    timer = [0.0, 0]  # seconds, pixels
    live1_y = [to_uint8(rgb_to_y_matlab(load(f))) for f in live1]
    results = {
        "live1": {"colour": eval_colour(live1, restore, timer), "gray": eval_gray(live1_y, restore, timer)},
        "classic5": {"gray": eval_gray([load(f) for f in classic5], restore, timer)},
    }
    res = {
        "model": str(args.model) if args.model else None, "threads": args.threads,
        "n_images": {"live1": len(live1), "classic5": len(classic5)},
        "summary": summary(results), "baseline_check": check_baselines(results), "results": results,
        "speed_mp_s": timer[1] / 1e6 / max(timer[0], 1e-9),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    if args.model:
        from export.conversion.export_onnx import make_session

        sess = make_session(args.model, args.threads)
        meta = sess.get_modelmeta().custom_metadata_map
        res["model_metadata"] = meta
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    args.out.with_suffix(".md").write_text(markdown(res, name))
    plot(res, args.out.with_suffix(".png"), name)
    print(json.dumps({"summary": res["summary"], "baseline_check": res["baseline_check"],
                      "speed_mp_s": res["speed_mp_s"], "peak_rss_mb": res["peak_rss_mb"]}, indent=1))


if __name__ == "__main__":
    main()
