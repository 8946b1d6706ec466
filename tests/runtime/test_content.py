"""Screen content or photograph (``codec.content``), and the table set a save without ``tables=`` gets."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from export.evaluation.content_battery import battery
from pillow_blockcnn import pipeline
from pillow_blockcnn.codec.content import FEW_COLOURS, MIN_SHARE, few_colour_share, is_screen_content
from pillow_blockcnn.format.limits import DEFAULT_TABLES, SCREEN_CONTENT_TABLES

IMAGES = battery()


def _count_by_hand(pixels: np.ndarray) -> float:
    """The share of 16x16 blocks with at most four colours, counted one block at a time with Python sets."""
    h, w = pixels.shape[:2]
    few = total = 0
    for y in range(0, h - 15, 16):
        for x in range(0, w - 15, 16):
            block = pixels[y : y + 16, x : x + 16].reshape(256, -1)
            few += len({tuple(p) for p in block}) <= FEW_COLOURS
            total += 1
    return few / total


@pytest.mark.parametrize("name", ["photo-like", "screenshot", "chart", "noise", "colour-blocks"])
def test_the_share_matches_a_count_by_hand(name) -> None:
    assert few_colour_share(IMAGES[name]) == pytest.approx(_count_by_hand(IMAGES[name]))


def test_colours_differing_in_one_channel_or_in_alpha_are_different_colours() -> None:
    block = np.zeros((16, 16, 4), dtype=np.uint8)
    for i in range(5):  # five colours that differ only in blue, then only in alpha
        block[i, :, 2] = i
    assert few_colour_share(block[..., :3]) == 0.0
    block[..., 2] = 0
    block[:5, :, 3] = np.arange(5)[:, None]
    assert few_colour_share(block) == 0.0
    assert few_colour_share(block[..., :3]) == 1.0


@pytest.mark.parametrize(("name", "screen"), [("photo-like", False), ("noise", False), ("gradient", False),
                                              ("screenshot", True), ("line-art", True), ("chart", True),
                                              ("flat-red", True), ("tiny-1x1", True)])
def test_text_graphics_and_flat_colours_are_screen_content(name, screen) -> None:
    assert is_screen_content(IMAGES[name]) is screen


def test_large_images_are_counted_in_bands_with_the_same_result() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (16 * 70, 16 * 9), dtype=np.uint8)  # gray, more block rows than one band
    pixels[: 16 * 20] = 7  # 20 of 70 block rows flat
    assert few_colour_share(pixels) == pytest.approx(20 / 70)
    assert is_screen_content(pixels) is (20 / 70 > MIN_SHARE)


@pytest.mark.parametrize(("name", "tables"), [("photo-like", DEFAULT_TABLES), ("screenshot", SCREEN_CONTENT_TABLES)])
def test_a_save_without_tables_chooses_them_by_content(name, tables) -> None:
    out = io.BytesIO()
    Image.fromarray(IMAGES[name]).save(out, "BCNN", quality=40, deblock=False)
    with Image.open(io.BytesIO(out.getvalue())) as im:
        assert im.info["tables"] == tables
    assert pipeline.default_tables(IMAGES[name]) == tables
    out = io.BytesIO()
    Image.fromarray(IMAGES[name]).save(out, "BCNN", quality=40, deblock=False, tune="ssim")
    with Image.open(io.BytesIO(out.getvalue())) as im:
        assert im.info["tables"] == "ssim"  # what the user asks for is kept
