"""``python -m pillow_blockcnn demo``: the codec on the bundled sample, in one command."""

from __future__ import annotations

import argparse
import io
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

import pillow_blockcnn


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def demo(quality: int, out_dir: Path) -> int:
    """Encode the sample as .bcnn and as JPEG at the same quality, decode both, print size and PSNR."""
    with resources.as_file(resources.files("pillow_blockcnn") / "samples" / "parrots.png") as path:
        with Image.open(path) as im:
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
    jpeg_pixels = np.asarray(Image.open(jpeg))
    size = bcnn_path.stat().st_size
    print(f"pillow-blockcnn {pillow_blockcnn.__version__}: {original.width}x{original.height} sample, quality {quality}")
    print(f"  .bcnn  {size:7d} bytes  {8 * size / pixels:.3f} bpp  PSNR-RGB {_psnr(decoded, reference):.2f} dB"
          f"  (encode {1000 * encode_s:.0f} ms, decode {1000 * decode_s:.0f} ms)")
    print(f"  JPEG   {jpeg.tell():7d} bytes  {8 * jpeg.tell() / pixels:.3f} bpp  PSNR-RGB {_psnr(jpeg_pixels, reference):.2f} dB"
          "  (Pillow, optimize=True)")
    print(f"  wrote {bcnn_path} and {out_dir / 'parrots.decoded.png'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pillow_blockcnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="encode and decode the bundled sample image; compare with JPEG")
    p.add_argument("--quality", type=int, default=30, help="1..100 (default 30)")
    p.add_argument("--out", type=Path, default=Path("blockcnn-demo"), help="output folder (default ./blockcnn-demo)")
    args = parser.parse_args(argv)
    if not 1 <= args.quality <= 100:
        parser.error("--quality must be 1..100")
    return demo(args.quality, args.out)


if __name__ == "__main__":
    sys.exit(main())
