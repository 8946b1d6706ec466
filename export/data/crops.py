"""Training data: clean crops from ``train/`` JPEG-compressed on the fly by Pillow.

Why on the fly: every step sees a fresh quality factor and crop, and the degradation is exactly the one the
benchmark applies (Pillow's libjpeg, 4:2:0 chroma, Pillow's decoder upsampling). Batches are a pure function
of ``(seed, step)``, so a resumed run draws exactly the batches an uninterrupted run would have drawn.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pillow_blockcnn.runtime.jfif import gray_to_ycbcr_float, rgb_to_ycbcr_float

BLOCK = 8


def list_images(root: Path) -> list[Path]:
    """All training images (the folder holds both PNG and original-JPEG files, see its MANIFEST)."""
    return sorted([*root.glob("*.png"), *root.glob("*.jpg")])


def split_holdout(files: list[Path], n_val: int, seed: int) -> tuple[list[Path], list[Path]]:
    """Fixed, seeded split: (train, validation). The validation images are never sampled for training."""
    order = np.random.default_rng(seed).permutation(len(files))
    val_idx = set(order[:n_val].tolist())
    train = [f for i, f in enumerate(files) if i not in val_idx]
    val = [files[i] for i in sorted(val_idx)]
    return train, val


def load_rgb(path: Path) -> np.ndarray:
    """Decode an image to uint8 RGB (H, W, 3)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def centre_crops(
    paths: list[Path], height: int, width: int, count: int = 1, either_orientation: bool = False
) -> list[np.ndarray]:
    """Centre ``height`` x ``width`` crops (uint8 RGB, contiguous) of the first ``count`` images of ``paths``
    that are at least that large: the fixed test images of the speed and tile benchmarks.
    ``either_orientation``: an image too small for the crop but large enough for it turned (a portrait photo
    for a landscape crop) gives a ``width`` x ``height`` crop, so a study keeps the portrait photos."""
    out = []
    for path in paths:
        with Image.open(path) as im:
            h, w = height, width
            if (im.height < h or im.width < w) and either_orientation:
                h, w = width, height
            if im.height < h or im.width < w:
                continue
            rgb = np.asarray(im.convert("RGB"))
        y, x = (rgb.shape[0] - h) // 2, (rgb.shape[1] - w) // 2
        out.append(np.ascontiguousarray(rgb[y : y + h, x : x + w]))
        if len(out) == count:
            break
    return out


def predictor_validation_images(paths: list[Path], crop: int) -> list[np.ndarray]:
    """The predictor's validation images: the top-left corner of each, at most ``crop`` pixels a side and cut
    to whole 16-pixel MCUs (so 4:2:0 chroma has whole blocks too)."""
    out = []
    for path in paths:
        img = load_rgb(path)
        h, w = (min(img.shape[0], crop) // 16) * 16, (min(img.shape[1], crop) // 16) * 16
        out.append(np.ascontiguousarray(img[:h, :w]))
    return out


def jpeg_roundtrip(img: np.ndarray, quality: int, subsampling: int | None = None) -> np.ndarray:
    """Compress with Pillow's JPEG (default 4:2:0 for RGB; ``subsampling`` as Pillow's option) and decode;
    gray (H, W) arrays stay gray."""
    buf = io.BytesIO()
    extra = {} if subsampling is None else {"subsampling": subsampling}
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), **extra)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im, dtype=np.uint8).copy()


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Pillow's RGB -> L conversion (ITU-R 601-2 luma, rounded), i.e. what a user's grayscale image looks like."""
    return np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint8)


def make_input(ycc: np.ndarray, quality: int) -> np.ndarray:
    """YCbCr (H, W, 3) in 0..255 -> network input (4, H, W): YCbCr/255 and a constant quality/100 plane."""
    h, w, _ = ycc.shape
    q = np.full((1, h, w), quality / 100.0, dtype=np.float32)
    return np.concatenate([ycc.transpose(2, 0, 1) / 255.0, q], axis=0).astype(np.float32)


def degrade(crop: np.ndarray, quality: int, gray: bool) -> tuple[np.ndarray, np.ndarray]:
    """Clean RGB crop -> (network input (4,H,W), target YCbCr/255 (3,H,W)) for one quality and colour mode."""
    if gray:
        clean = to_gray(crop)
        x, t = gray_to_ycbcr_float(jpeg_roundtrip(clean, quality)), gray_to_ycbcr_float(clean)
    else:
        x, t = rgb_to_ycbcr_float(jpeg_roundtrip(crop, quality)), rgb_to_ycbcr_float(crop)
    return make_input(x, quality), (t.transpose(2, 0, 1) / 255.0).astype(np.float32)


@dataclass
class SamplerConfig:
    """How training batches are drawn (all fields come from the run's JSON config)."""

    crop: int = 128
    batch: int = 16
    gray_prob: float = 0.2
    q_min: int = 5
    q_split: int = 50  # qualities q_min..q_split get ``low_q_prob`` of the mass, the rest q_split+1..q_max
    q_max: int = 95
    low_q_prob: float = 0.8


class CropSampler:
    """Random grid-aligned crops of in-memory images, augmented then JPEG-compressed, as torch batches."""

    def __init__(self, images: list[np.ndarray], cfg: SamplerConfig, seed: int) -> None:
        self.cfg = cfg
        self.seed = seed
        self.images = [im for im in images if min(im.shape[:2]) >= cfg.crop]
        self.n_skipped = len(images) - len(self.images)  # smaller than one crop
        areas = np.array([im.shape[0] * im.shape[1] for im in self.images], dtype=np.float64)
        self.p = areas / areas.sum()  # pixel-uniform sampling: large images are not under-used

    def sample_quality(self, rng: np.random.Generator) -> int:
        c = self.cfg
        if rng.random() < c.low_q_prob:
            return int(rng.integers(c.q_min, c.q_split + 1))
        return int(rng.integers(c.q_split + 1, c.q_max + 1))

    def crop_one(self, rng: np.random.Generator) -> np.ndarray:
        c = self.cfg.crop
        im = self.images[int(rng.choice(len(self.images), p=self.p))]
        h, w, _ = im.shape
        y0 = BLOCK * int(rng.integers(0, (h - c) // BLOCK + 1))
        x0 = BLOCK * int(rng.integers(0, (w - c) // BLOCK + 1))
        crop = im[y0 : y0 + c, x0 : x0 + c]
        crop = np.rot90(crop, int(rng.integers(0, 4)))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return np.ascontiguousarray(crop)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch for ``step``: a pure function of (seed, step)."""
        rng = np.random.default_rng([self.seed, step])
        xs, ts = [], []
        for _ in range(self.cfg.batch):
            crop = self.crop_one(rng)
            x, t = degrade(crop, self.sample_quality(rng), bool(rng.random() < self.cfg.gray_prob))
            xs.append(x)
            ts.append(t)
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts))


def validation_crops(config: Path, crop: int) -> list[np.ndarray]:
    """Centre crops of the validation split of a training config file: the images ``export.training.train_deblocker``
    validates on and never samples, for choosing between models without the benchmarks."""
    data = json.loads(Path(config).read_text())["data"]
    _, val = split_holdout(list_images(Path(data["root"])), data["n_val"], data["split_seed"])
    return [centre_crop(load_rgb(f), crop) for f in val]


def centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Grid-aligned centre crop of at most ``size`` x ``size`` (multiple of 8 on each side)."""
    h, w = img.shape[:2]
    ch, cw = min(size, h) // BLOCK * BLOCK, min(size, w) // BLOCK * BLOCK
    y0, x0 = (h - ch) // 2 // BLOCK * BLOCK, (w - cw) // 2 // BLOCK * BLOCK
    return np.ascontiguousarray(img[y0 : y0 + ch, x0 : x0 + cw])
