"""A restoration data pack: training crops next to what the v2 codec decodes from them.

    python -m export.data.bcnn_pack --out runs/bcnn_pack.npz --crops 2000 --workers 2

A deblocker that restores .bcnn decodes must learn the codec's own artifacts: its rate-distortion level
choices (dead zone, dropped AC), predicted blocks, the ``mse``/``ssim``/``jpeg`` tables and the block-mode mix,
none of which a Pillow JPEG shows. Encoding with prediction costs ~0.12 s per 128-pixel crop on one core, too
slow to do per batch, so the crops are coded once, here, with the package's own default save
(:func:`pillow_blockcnn.pipeline.encode_pixels`, ``deblock=False``) and stored with their originals:

* ``clean``, ``decoded``: ``[N, S, S, 3]`` uint8 (gray crops are stored as three equal channels);
* ``quality``, ``tables`` (index into ``TABLES``), ``subsampling`` (2, 0, or -1 for gray): ``[N]`` int;
* ``val_clean``, ``val_decoded`` (object arrays of images), ``val_quality``: the validation split's centre crops (the same held-out
  images as every deblocker run), default save at ``VAL_QUALITIES`` with one table set (``--val-tables``; the PSNR
  tables unless told).

Crops are grid-aligned, rotated/flipped, and their settings drawn per crop from a generator seeded by
``(seed, index)``, so a pack is a pure function of its arguments and the training images.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from export.data.crops import BLOCK, centre_crop, list_images, load_rgb, make_input, split_holdout, to_gray
from pillow_blockcnn import pipeline
from pillow_blockcnn.runtime.jfif import rgb_to_ycbcr_float

REPO = Path(__file__).resolve().parents[2]
TABLES = ("mse", "ssim", "jpeg", "balanced")
# The PSNR tables (the default until 2026-12-06 and still the one for screen content), the tune="ssim" tables,
# libjpeg's, and "balanced" (the default for photographs since 2026-12-06). ``tables`` in a pack indexes this
# tuple, so a new set goes at its end. The default mix is the one `dblk-6`'s packs were built with; a new
# set drawn with probability 0 leaves every draw as it was (numpy's choice inverts the cumulative sum), so
# those packs are rebuilt byte for byte.
TABLE_PROB = (0.5, 0.3, 0.2, 0.0)
VAL_QUALITIES = (10, 20, 30, 40)
_CONFIG = REPO / "export/configs/deblock/deblock_v1.json"  # whose held-out split every deblocker run shares


def split(config: Path = _CONFIG) -> tuple[list[Path], list[Path]]:
    d = json.loads(config.read_text())["data"]
    files = list_images((REPO / d["root"]).resolve())
    return split_holdout(files, d["n_val"], d["split_seed"])


def code(crop: np.ndarray, quality: int, tables: str, subsampling: int) -> np.ndarray:
    """The default save's reconstruction of ``crop`` (RGB uint8), without deblocking; gray when
    ``subsampling`` is -1 (returned as three equal channels)."""
    if subsampling < 0:
        gray = to_gray(crop)
        rec = pipeline.encode_pixels(gray, "L", quality, tables=tables, deblock=False, reconstruct=True).reconstruction
        return np.repeat(rec[..., None], 3, axis=2)
    return pipeline.encode_pixels(crop, "RGB", quality, subsampling=subsampling, tables=tables,
                                  deblock=False, reconstruct=True).reconstruction


def _sample(
    args: tuple[int, int, int, list[Path], tuple[float, ...]],
) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    seed, index, size, files, table_prob = args
    rng = np.random.default_rng([seed, index])
    img = load_rgb(files[int(rng.integers(len(files)))])
    while min(img.shape[:2]) < size:
        img = load_rgb(files[int(rng.integers(len(files)))])
    h, w, _ = img.shape
    y0 = BLOCK * int(rng.integers(0, (h - size) // BLOCK + 1))
    x0 = BLOCK * int(rng.integers(0, (w - size) // BLOCK + 1))
    crop = np.rot90(img[y0 : y0 + size, x0 : x0 + size], int(rng.integers(0, 4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = np.ascontiguousarray(crop)
    quality = int(rng.integers(5, 51)) if rng.random() < 0.8 else int(rng.integers(51, 96))
    tables = int(rng.choice(len(TABLES), p=table_prob))
    u = rng.random()
    subsampling = 2 if u < 0.8 else (0 if u < 0.9 else -1)
    decoded = code(crop, quality, TABLES[tables], subsampling)
    if subsampling < 0:
        crop = np.repeat(to_gray(crop)[..., None], 3, axis=2)
    return crop, decoded, quality, tables, subsampling


def _validation(args: tuple[Path, int, str]) -> list[tuple[np.ndarray, np.ndarray, int]]:
    path, size, tables = args
    clean = centre_crop(load_rgb(path), size)
    return [(clean, code(clean, q, tables, 2), q) for q in VAL_QUALITIES]


def _objects(arrays: list[np.ndarray]) -> np.ndarray:
    """An object array of images (validation crops of small images are smaller than ``val_crop``)."""
    out = np.empty(len(arrays), dtype=object)
    out[:] = arrays
    return out


def build(
    crops: int,
    size: int,
    seed: int,
    workers: int,
    val_crop: int = 192,
    table_prob: tuple[float, ...] = TABLE_PROB,
    val_tables: str = "mse",
) -> dict[str, np.ndarray]:
    train_files, _ = split()
    with ProcessPoolExecutor(workers) as pool:
        jobs = [(seed, i, size, train_files, table_prob) for i in range(crops)]
        rows = list(pool.map(_sample, jobs, chunksize=16))
    return {
        "clean": np.stack([r[0] for r in rows]),
        "decoded": np.stack([r[1] for r in rows]),
        "quality": np.array([r[2] for r in rows], dtype=np.int16),
        "tables": np.array([r[3] for r in rows], dtype=np.int8),
        "subsampling": np.array([r[4] for r in rows], dtype=np.int8),
        **validation_crops(val_tables, val_crop, workers),
    }


def validation_crops(tables: str = "mse", size: int = 192, workers: int = 2) -> dict[str, np.ndarray]:
    """A pack's validation part on its own: ``val_clean``, ``val_decoded``, ``val_quality`` for the held-out
    images' centre crops coded with ``tables`` at ``VAL_QUALITIES`` (what ``validate_bcnn_deblock --tables``
    scores restorers on, without building a pack)."""
    _, val_files = split()
    with ProcessPoolExecutor(workers) as pool:
        val = [r for rs in pool.map(_validation, [(p, size, tables) for p in val_files]) for r in rs]
    return {
        "val_clean": _objects([v[0] for v in val]),
        "val_decoded": _objects([v[1] for v in val]),
        "val_quality": np.array([v[2] for v in val], dtype=np.int16),
    }


def _table_prob(text: str) -> tuple[float, ...]:
    """``--table-prob``'s ``set=p,...`` as probabilities in ``TABLES`` order."""
    given: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in TABLES:
            msg = f"{item!r}: expected SET=PROBABILITY with SET one of {', '.join(TABLES)}"
            raise argparse.ArgumentTypeError(msg)
        given[name.strip()] = float(value)
    probs = tuple(given.get(name, 0.0) for name in TABLES)
    if min(probs) < 0 or abs(sum(probs) - 1.0) > 1e-6:
        msg = f"{text!r}: the probabilities must be non-negative and sum to 1 (they sum to {sum(probs):g})"
        raise argparse.ArgumentTypeError(msg)
    return probs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--crops", type=int, default=2000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--table-prob", type=_table_prob, default=TABLE_PROB, metavar="SET=P,...",
                        help=f"how often each table set is drawn, e.g. balanced=0.45,mse=0.2,ssim=0.15,jpeg=0.2 "
                             f"(sets: {', '.join(TABLES)}; unnamed ones 0; default: dblk-6's mix {TABLE_PROB})")
    parser.add_argument("--val-tables", choices=TABLES, default="mse",
                        help="the table set of the validation crops (default: mse, as every earlier pack)")
    args = parser.parse_args(argv)
    pack = build(args.crops, args.size, args.seed, args.workers, table_prob=args.table_prob, val_tables=args.val_tables)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **pack)
    print(f"wrote {args.out}: {len(pack['clean'])} crops, {len(pack['val_clean'])} validation crops, "
          f"{args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()


class PackSampler:
    """Training batches from a pack: random crops' (network input, target) pairs, each under one of the eight
    rotations/flips (which keep the 8x8 and 4:2:0 grids of a grid-aligned square crop), as torch tensors.

    With ``teacher`` (a teacher's restorations of the pack's crops, ``export.data.teacher``) a batch is the
    triple (input, target, teacher's output), the last under the same rotation/flip as its crop.

    A pure function of (seed, step), as :class:`export.data.crops.CropSampler` is, so a resumed run sees the
    batches the uninterrupted one would have."""

    def __init__(self, pack: dict[str, np.ndarray], batch: int, seed: int, teacher: np.ndarray | None = None) -> None:
        self.clean, self.decoded, self.quality = pack["clean"], pack["decoded"], pack["quality"]
        self.teacher = teacher
        self.batch_size, self.seed = batch, seed
        self.images = self.clean  # what the training log counts as "used"

    def batch(self, step: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng([self.seed, step])
        xs, ts, teacher = [], [], []

        def target(rgb: np.ndarray) -> np.ndarray:
            return (rgb_to_ycbcr_float(rgb).transpose(2, 0, 1) / 255.0).astype(np.float32)

        for i in rng.integers(0, len(self.clean), self.batch_size):
            k, flip = int(rng.integers(0, 4)), bool(rng.random() < 0.5)

            def view(a: np.ndarray, k: int = k, flip: bool = flip) -> np.ndarray:
                a = np.rot90(a, k)
                return np.ascontiguousarray(a[:, ::-1] if flip else a)

            xs.append(make_input(rgb_to_ycbcr_float(view(self.decoded[i])), int(self.quality[i])))
            ts.append(target(view(self.clean[i])))
            if self.teacher is not None:
                teacher.append(target(view(self.teacher[i])))
        out = (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts)))
        return out if self.teacher is None else (*out, torch.from_numpy(np.stack(teacher)))


def load(path: Path) -> dict[str, np.ndarray]:
    """A pack written by :func:`main` (object arrays hold the validation crops), or by
    ``export.data.compact_pack``, expanded to the arrays of the pack it came from."""
    from export.data import compact_pack  # it imports this module

    with np.load(path, allow_pickle=True) as data:
        arrays = {k: data[k] for k in data.files}
    return compact_pack.expand(arrays) if compact_pack.is_compact(list(arrays)) else arrays


def merge_packs(packs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Several loaded packs as one: their training crops concatenated in order, the validation crops of the
    first (so runs on more data are scored on the same crops as runs on the first pack alone)."""
    merged = dict(packs[0])
    for key in merged:
        if not key.startswith("val_"):
            merged[key] = np.concatenate([p[key] for p in packs])
    return merged
