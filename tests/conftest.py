from __future__ import annotations

import io
from importlib import resources

import pytest
from PIL import Image

import pillow_blockcnn  # noqa: F401  (registers the format)
from pillow_blockcnn.metrics import psnr

__all__ = ["psnr", "save_bytes"]


@pytest.fixture(scope="session")
def sample() -> Image.Image:
    """The photo bundled with the package (a 512x384 crop of Kodak's parrots)."""
    with resources.as_file(resources.files("pillow_blockcnn") / "samples" / "parrots.png") as path, Image.open(path) as im:
        return im.convert("RGB")


@pytest.fixture(scope="session")
def small(sample: Image.Image) -> Image.Image:
    """A 61x43 crop: odd sizes that cross no block or MCU boundary evenly."""
    return sample.crop((100, 100, 161, 143))


def save_bytes(im: Image.Image, **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, "BCNN", **params)
    return out.getvalue()
