"""Compare deblocking ONNX models on .bcnn decodes of the held-out *training* images: what chooses a
restoration model for the codec's own output (float or int8, which checkpoint) without the benchmarks.

    python -m export.evaluation.validate_bcnn_deblock pillow_blockcnn/models/dblk-5.onnx runs/dblk-6.onnx \
        --pack runs/bcnn_pack.npz --out results/validation/validation_bcnn_dblk-6.json

The crops are the pack's validation part (``export.data.bcnn_pack``: 192-pixel centre crops of the 24
held-out training images, coded by the default save at q10/20/30/40, not deblocked), or, with ``--tables``,
the same crops coded here with each table set named (no pack needed):

    python -m export.evaluation.validate_bcnn_deblock pillow_blockcnn/models/dblk-6.onnx \
        pillow_blockcnn/models/dblk-9.onnx --tables balanced mse ssim jpeg \
        --out results/validation/validation_bcnn_dblk-9_tables.json

(``dblk-6.onnx`` was retired before release and lives in git history: ``export/checkpoints/README.md``.)

Reported per model and quality: the gain over the undeblocked decode in PSNR-RGB, Y-PSNR (MATLAB's BT.601 Y)
and MS-SSIM (RGB mean, dB), and the restoration time per megapixel (2 threads, crops run one at a time). Also
writes ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from export.data.bcnn_pack import TABLES, load, validation_crops
from export.evaluation.evaluate_deblock import onnx_restorer
from export.evaluation.metrics import ms_ssim_rgb_db, psnr, rgb_to_y_matlab
from pillow_blockcnn.runtime.jfif import rgb_to_ycbcr_float, to_uint8, ycbcr_to_rgb_float
from pillow_blockcnn.runtime.machine import machine


def _scores(out: np.ndarray, clean: np.ndarray) -> np.ndarray:
    return np.array([psnr(out, clean), psnr(rgb_to_y_matlab(out), rgb_to_y_matlab(clean)), ms_ssim_rgb_db(out, clean)])


def score(pack: dict[str, np.ndarray], model: Path, threads: int) -> dict[str, Any]:
    """Mean gains per quality and overall, and seconds per megapixel, of ``model`` on the pack's validation crops."""
    restore = onnx_restorer(model, threads)
    gains: dict[int, list[np.ndarray]] = {}
    seconds, pixels = 0.0, 0
    for clean, decoded, quality in zip(pack["val_clean"], pack["val_decoded"], pack["val_quality"]):
        q = int(quality)
        start = time.perf_counter()
        out = to_uint8(ycbcr_to_rgb_float(restore(rgb_to_ycbcr_float(decoded), q)))
        seconds += time.perf_counter() - start
        pixels += decoded.shape[0] * decoded.shape[1]
        gains.setdefault(q, []).append(_scores(out, clean) - _scores(decoded, clean))
    res: dict[str, Any] = {}
    for q, g in sorted(gains.items()):
        m = np.mean(g, axis=0)
        res[f"q{q}"] = {"gain_rgb": float(m[0]), "gain_y": float(m[1]), "gain_msssim": float(m[2])}
    for i, key in enumerate(("gain_rgb", "gain_y", "gain_msssim")):
        res[key] = float(np.mean([np.mean(g, axis=0)[i] for g in gains.values()]))
    res["s_per_mp"] = seconds / (pixels / 1e6)
    return res


def markdown(res: dict[str, Any]) -> str:
    if "by_tables" in res:
        parts = [(f"Deblocking .bcnn decodes of held-out training crops, coded with each table set; {res['date']}, "
                 f"{res['machine']}, {res['threads']} threads.\n")]
        for tables, part in res["by_tables"].items():
            parts.append(f"## tables `{tables}` ({part['crops']} crops)\n\n" + _model_tables(part["models"]))
        return "\n".join(parts)
    head = (f"Deblocking .bcnn decodes of held-out training crops ({res['crops']} crops, {res['pack']}); "
            f"{res['date']}, {res['machine']}, {res['threads']} threads.\n\n")
    return head + _model_tables(res["models"])


def _model_tables(models: dict[str, Any]) -> str:
    lines = [
        "| model | q | PSNR-RGB gain (dB) | Y gain (dB) | MS-SSIM gain (dB) |",
        "|---|---|---|---|---|",
    ]
    for name, r in models.items():
        for key in [k for k in r if k.startswith("q")] + ["mean"]:
            row = r if key == "mean" else r[key]
            lines.append(f"| {name} | {key} | {row['gain_rgb']:+.3f} | {row['gain_y']:+.3f} | {row['gain_msssim']:+.3f} |")
    lines += ["", "| model | s per MP (crops one at a time) |", "|---|---|"]
    lines += [f"| {name} | {r['s_per_mp']:.3f} |" for name, r in models.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--pack", type=Path, default=Path("runs/bcnn_pack.npz"))
    ap.add_argument("--tables", nargs="+", choices=TABLES, default=None,
                    help="instead of a pack's crops: the held-out crops coded here with each of these table sets")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    res: dict[str, Any] = {"date": str(date.today()), "machine": machine(), "threads": args.threads}
    if args.tables:
        res["by_tables"] = {}
        for tables in args.tables:
            crops = validation_crops(tables)
            res["by_tables"][tables] = {"crops": len(crops["val_clean"]),
                                        "models": {m.name: score(crops, m, args.threads) for m in args.models}}
    else:
        pack = load(args.pack)
        res |= {"pack": str(args.pack), "crops": len(pack["val_clean"]),
                "models": {m.name: score(pack, m, args.threads) for m in args.models}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    args.out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
