"""Restoring a 12-megapixel decode in tiles of one shape, the arena kept between them, against the tiling before.

    python -m export.studies.deblock_tiling --rounds 3 --json results/studies/deblock_tiling.json

Why: nearly all of a 12-megapixel restoration is onnxruntime's runs over 35 tiles of 640 pixels and their
halos. Before 2026-12-07 the kept parts were 640-pixel runs and a remainder, with 32 pixels of context, the
windows ran narrower at the image border, and every run gave its arena memory back: each tile's activations
were then paged in and zeroed afresh, and tiles of different shapes could not reuse each other's chunks. Now
(``deblocker._spans``) a long axis is cut into equal parts, every window has one shape, the halo is 16
pixels, and only the image's last run shrinks the arena.

The picture: the bundled parrots sample tiled to 3000x4000, saved by the default save at ``--quality`` with
deblocking recommended. Each mode, in a *fresh process* (peak memory is per process), restores its decode
without deblocking with the default restorer, and decodes the file with Pillow (the restoration inside a
whole decode, where the heap already holds the decoder's planes); modes interleaved for ``--rounds`` rounds:

- ``before``: the previous tiling (640-pixel kept parts from 0, windows extended by up to 32 pixels, every run
  shrinks the arena);
- ``equal-shrinking``: the tiles of one shape and the shipped halo, but every run shrinks the arena (what
  keeping the arena brings);
- ``halo-32``: the runtime as it is but with the previous 32-pixel halo (what the smaller halo brings);
- ``shipped``: the runtime as it is.

Reported per run: seconds, resident memory before the restoration (or decode) and at its peak; per mode:
PSNR-RGB of the restoration against the original, and how far ``before``'s and ``shipped``'s restorations
differ.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from export.evaluation.report import emit, machine
from pillow_blockcnn.metrics import psnr
from pillow_blockcnn.runtime import deblocker

MODES = ("before", "equal-shrinking", "halo-32", "shipped")
_BEFORE_TILE = 640
_BEFORE_HALO = 32


def before_spans(length: int) -> list[tuple[int, int, int, int]]:
    """The tiling before 2026-12-07: kept parts of 640 pixels from 0 (the last the remainder), each window
    the kept part extended by up to 32 pixels, cut at the image border."""
    if length <= deblocker.ONE_PASS:
        return [(0, length, 0, length)]
    spans = []
    for start in range(0, length, _BEFORE_TILE):
        end = min(start + _BEFORE_TILE, length)
        spans.append((start, end, max(0, start - _BEFORE_HALO), min(length, end + _BEFORE_HALO)))
    return spans


def _install_shrinking() -> None:
    """Every run gives its arena memory back, as before 2026-12-07."""
    run = deblocker._run
    deblocker._run = lambda session, pixels, quality, release: run(session, pixels, quality, release=True)


def _install_before() -> None:
    deblocker._spans = before_spans
    deblocker.HALO = _BEFORE_HALO
    _install_shrinking()


def _high_water_mb() -> float:
    """The process's peak resident memory. Why not ``getrusage``: its ``ru_maxrss`` survives ``exec``, so a
    child started by this (large) study process would report the parent's size; /proc's VmHWM starts anew."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    msg = "this study reads Linux's /proc/self/status"
    raise SystemExit(msg)


def child(mode: str, kind: str, folder: Path, model: str, quality: int) -> None:
    """Under ``mode``, in this process: restore ``decoded.npy`` (``kind`` ``restore``; the result is written
    for the quality rows) or decode ``picture.bcnn`` with Pillow (``decode``); print one JSON line."""
    if mode == "before":
        _install_before()
    elif mode == "equal-shrinking":
        _install_shrinking()
    elif mode == "halo-32":
        deblocker.HALO = _BEFORE_HALO
    if kind == "restore":
        pixels = np.load(folder / "decoded.npy")
        deblocker.model_session(model)  # the session's build is not the restoration's time or memory
    else:
        import pillow_blockcnn  # noqa: F401  (registers the BCNN format)

        Image.MAX_IMAGE_PIXELS = None
    base = _high_water_mb()
    start = time.perf_counter()
    if kind == "restore":
        restored = deblocker.deblock_array(pixels, quality, model)
    else:
        with Image.open(folder / "picture.bcnn") as im:
            im.load()
    seconds = time.perf_counter() - start
    row = {"mode": mode, "kind": kind, "s": round(seconds, 2), "base_mb": round(base), "peak_mb": round(_high_water_mb())}
    if kind == "restore":
        np.save(folder / f"{mode}.npy", restored)
    print(json.dumps(row))


def picture(quality: int) -> tuple[np.ndarray, np.ndarray, bytes]:
    """The tiled parrots (original), its default save (deblocking recommended) and that file's decode without
    deblocking."""
    import pillow_blockcnn  # registers the BCNN format; open_bcnn below

    sample = resources.files("pillow_blockcnn") / "samples" / "parrots.png"
    with resources.as_file(sample) as path:
        tile = np.asarray(Image.open(path).convert("RGB"))
    reps = (-(-3000 // tile.shape[0]), -(-4000 // tile.shape[1]), 1)
    original = np.ascontiguousarray(np.tile(tile, reps)[:3000, :4000])
    buffer = io.BytesIO()
    Image.fromarray(original).save(buffer, "BCNN", quality=quality, deblock=True)
    buffer.seek(0)
    with pillow_blockcnn.open_bcnn(buffer, deblock=False) as im:
        decoded = np.asarray(im.convert("RGB"))
    return original, decoded, buffer.getvalue()


def _summary(runs: list[dict], kind: str) -> dict[str, dict[str, list[float]]]:
    mine = [r for r in runs if r["kind"] == kind]
    return {
        mode: {key: sorted(r[key] for r in mine if r["mode"] == mode) for key in ("s", "peak_mb")} for mode in MODES
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=int, default=30)
    parser.add_argument("--model", default=None, help="deblocking model (default: the default .bcnn restorer)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from pillow_blockcnn import runtime

    model = args.model or runtime.default_model("deblock").id
    if args.child:
        mode, kind, folder = args.child
        child(mode, kind, Path(folder), model, args.quality)
        return {}
    original, decoded, data = picture(args.quality)
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "decoded.npy", decoded)
        (Path(folder) / "picture.bcnn").write_bytes(data)
        for _ in range(args.rounds):
            for kind in ("restore", "decode"):
                for mode in MODES:
                    command = [sys.executable, "-m", "export.studies.deblock_tiling", "--quality", str(args.quality),
                               "--model", model, "--child", mode, kind, folder]
                    done = subprocess.run(command, capture_output=True, text=True, check=True)
                    runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
                    print(runs[-1], flush=True)
        restored = {mode: np.load(Path(folder) / f"{mode}.npy") for mode in MODES}
    quality_rows = {f"psnr_rgb_{mode}": round(psnr(original, restored[mode]), 4) for mode in MODES}
    quality_rows["psnr_rgb_decoded"] = round(psnr(original, decoded), 4)
    difference = np.abs(restored["before"].astype(np.int16) - restored["shipped"].astype(np.int16))
    summaries = {kind: _summary(runs, kind) for kind in ("restore", "decode")}
    ratios = {
        f"{kind}_{mode}_over_before_median_s": round(
            float(np.median(summaries[kind][mode]["s"]) / np.median(summaries[kind]["before"]["s"])), 3
        )
        for kind in summaries
        for mode in MODES[1:]
    }
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "picture": "pillow_blockcnn/samples/parrots.png tiled to 3000x4000, default save (deblocking recommended)",
        "quality": args.quality,
        "model": model,
        "runs": runs,
        "summary": summaries,
        "ratios": ratios,
        "quality_rows": quality_rows,
        "max_pixel_difference": int(difference.max()),
        "pixels_differing": round(float((difference > 0).mean()), 5),
    }
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
