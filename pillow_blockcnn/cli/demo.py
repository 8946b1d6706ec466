"""``blockcnn demo`` / ``python -m pillow_blockcnn demo``: the codec on the bundled sample, against JPEG."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pillow_blockcnn._version import __version__
from pillow_blockcnn.metrics import psnr

__all__ = ["demo"]



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
