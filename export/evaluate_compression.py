"""Rate-distortion evaluation of .bcnn against Pillow's codecs on a folder of images (Kodak by default).

Every number goes through the public API (``Image.save`` / ``Image.open``), the
way users meet the codec. Bits per pixel count the whole file, headers
included. Example::

    python -m export.evaluate_compression --codecs bcnn-plain jpeg --qualities 10 30 75 \
        --json results/kodak_plain_vs_jpeg.json --markdown results/kodak_plain_vs_jpeg.md
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

import pillow_blockcnn

from .metrics import psnr

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


@dataclass(frozen=True)
class Codec:
    name: str
    description: str
    save: Callable[[Image.Image, int], bytes]


def _pillow_saver(fmt: str, **params: object) -> Callable[[Image.Image, int], bytes]:
    def save(im: Image.Image, quality: int) -> bytes:
        out = io.BytesIO()
        im.save(out, fmt, quality=quality, **params)
        return out.getvalue()

    return save


CODECS: dict[str, Codec] = {
    c.name: c
    for c in [
        Codec("bcnn-plain", ".bcnn, no prediction, no deblocking", _pillow_saver("BCNN", predict=False, deblock=False)),
        Codec("jpeg", "Pillow JPEG 4:2:0, optimize=True", _pillow_saver("JPEG", optimize=True)),
    ]
}


def _decode(data: bytes) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    with Image.open(io.BytesIO(data)) as im:
        pixels = np.asarray(im.convert("RGB"))
    return pixels, time.perf_counter() - start


def machine() -> str:
    """CPU model, usable cores and Python: enough to say where a number was measured."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores, Python {platform.python_version()}"


def evaluate(images: list[Path], codecs: list[str], qualities: list[int]) -> dict:
    rows = []
    for path in images:
        with Image.open(path) as im:
            original = im.convert("RGB")
        reference = np.asarray(original)
        pixels = reference.shape[0] * reference.shape[1]
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
    summary = []
    for name in codecs:
        for quality in qualities:
            sel = [r for r in rows if r["codec"] == name and r["quality"] == quality]
            summary.append(
                {"codec": name, "quality": quality, "images": len(sel)}
                | {k: float(np.mean([r[k] for r in sel])) for k in ("bpp", "psnr_rgb", "encode_ms", "decode_ms")}
            )
    return {
        "date": date.today().isoformat(),
        "machine": machine(),
        "pillow": Image.__version__,
        "pillow_blockcnn": pillow_blockcnn.__version__,
        "images": [p.name for p in images],
        "codecs": {n: CODECS[n].description for n in codecs},
        "summary": summary,
        "per_image": rows,
    }


def markdown(result: dict, against: str = "jpeg") -> str:
    lines = [
        f"Kodak, {len(result['images'])} images, mean per quality; {result['date']}, {result['machine']}, "
        f"Pillow {result['pillow']}.",
        "",
        "| codec | q | bpp | PSNR-RGB (dB) | bpp vs " + against + " | PSNR vs " + against + " | encode ms | decode ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    anchor = {s["quality"]: s for s in result["summary"] if s["codec"] == against}
    for s in result["summary"]:
        ref = anchor.get(s["quality"])
        rel_bpp = f"{100 * (s['bpp'] / ref['bpp'] - 1):+.1f}%" if ref else "–"
        rel_psnr = f"{100 * (s['psnr_rgb'] / ref['psnr_rgb'] - 1):+.2f}%" if ref else "–"
        lines.append(
            f"| {s['codec']} | {s['quality']} | {s['bpp']:.3f} | {s['psnr_rgb']:.2f} | {rel_bpp} | {rel_psnr} | "
            f"{s['encode_ms']:.0f} | {s['decode_ms']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of PNG images (default: Kodak)")
    parser.add_argument("--codecs", nargs="+", default=list(CODECS), choices=list(CODECS))
    parser.add_argument("--qualities", nargs="+", type=int, default=[10, 30, 75])
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (smoke runs)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    images = sorted(args.data.glob("*.png"))[: args.limit]
    if not images:
        parser.error(f"no PNG images in {args.data}")
    result = evaluate(images, args.codecs, args.qualities)
    table = markdown(result)
    print(table)
    for path, text in ((args.json, json.dumps(result, indent=1)), (args.markdown, table)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + ("\n" if path.suffix == ".json" else ""))
    return result


if __name__ == "__main__":
    main()
