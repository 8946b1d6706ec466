"""A restoration pack small enough to travel: clean crops as lossless WebP, decodes as the .bcnn files themselves.

    python -m export.data.compact_pack --pack runs/bcnn_pack_balanced_gpu.npz --out runs/bcnn_pack_balanced_gpu.compact.npz

Why: a lent GPU machine gets the working tree and the files a call carries, 64 MiB in all
(``/work/.library/device/README.md``), and the tree is about 36 MB. A restoration pack
(:mod:`export.data.bcnn_pack`) stores every crop twice as raw pixels, clean and decoded: `deblock_v16_gpu`'s 700
crops took 55.7 MB and could not travel. But a decode is a pure function of its .bcnn file (integer prediction,
libjpeg's ISLOW IDCT, FORMAT.md §10), and the file is 1–2 KB; the clean crop compresses losslessly. So this
pack holds the clean crops as lossless WebP and, instead of the decodes, the files, and
:func:`export.data.bcnn_pack.load` expands it to the very arrays of the pack it came from, on any machine with
Pillow and onnxruntime (the GPU machines have both; the encoder's jpeglib is not needed).

:func:`compact` re-encodes each crop with the settings the pack records and refuses to write a pack whose files
do not decode to the stored decodes (an encoder changed since the pack was built), so the expanded pack is the
original one exactly; the validation crops' table set, which a pack does not record, is found the same way.

Layout (no pickled objects): for the training crops ``clean_webp`` and ``decoded_bcnn`` (``uint8``, every
crop's bytes concatenated) with ``clean_offsets`` and ``decoded_offsets`` (``[N + 1]`` int64), and ``quality``,
``tables``, ``subsampling`` as in the pack; for the validation crops ``val_clean_webp``/``val_clean_offsets``
(each held-out image's crop once), ``val_clean_index`` (which of those each item uses),
``val_decoded_bcnn``/``val_decoded_offsets``, ``val_quality`` and ``val_tables`` (index into ``TABLES``).
"""

from __future__ import annotations

import argparse
import io
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from export.data.bcnn_pack import TABLES, _objects, load, to_gray
from pillow_blockcnn import pipeline
from pillow_blockcnn.format import container

__all__ = ["compact", "expand", "is_compact"]

#: A compact pack's own key: :func:`export.data.bcnn_pack.load` expands a file that has it.
MARKER = "clean_offsets"
VAL_SUBSAMPLING = 2  # bcnn_pack's validation crops are 4:2:0


def is_compact(files: list[str]) -> bool:
    return MARKER in files


def _webp(rgb: np.ndarray, gray: bool) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb[..., 0] if gray else rgb).save(out, "WEBP", lossless=True, quality=100, method=4)
    return out.getvalue()


def _unwebp(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _encode(clean: np.ndarray, quality: int, tables: str, subsampling: int) -> bytes:
    """The .bcnn file of :func:`export.data.bcnn_pack.code`'s reconstruction (the default save, no deblocking)."""
    if subsampling < 0:
        encoded = pipeline.encode_pixels(to_gray(clean), "L", quality, tables=tables, deblock=False)
    else:
        encoded = pipeline.encode_pixels(clean, "RGB", quality, subsampling=subsampling, tables=tables, deblock=False)
    return container.write_container(encoded.container)


def _decode(data: bytes) -> np.ndarray:
    """A file's decode before restoration, as a pack stores it: ``[H, W, 3]`` uint8 (gray as three channels)."""
    pixels = pipeline.decode_pixels(container.read_container(io.BytesIO(data)), deblock=False).pixels
    return np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels


def _compact_item(args: tuple[np.ndarray, np.ndarray, int, tuple[str, ...], int]) -> tuple[bytes, int]:
    """(the file, the index in ``TABLES`` of the table set) that reproduces ``decoded``; ``candidates``: the
    table sets to try, in order."""
    clean, decoded, quality, candidates, subsampling = args
    for name in candidates:
        data = _encode(clean, quality, name, subsampling)
        if np.array_equal(_decode(data), decoded):
            return data, TABLES.index(name)
    msg = (f"no table set of {candidates} re-encodes a crop (quality {quality}) to the decode its pack stores: "
           "the encoder changed since the pack was built; rebuild the pack (python -m export.data.bcnn_pack)")
    raise ValueError(msg)


def _joined(parts: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return np.frombuffer(b"".join(parts), dtype=np.uint8).copy(), offsets


def _split(data: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    raw = data.tobytes()
    return [raw[int(a) : int(b)] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def compact(pack: dict[str, np.ndarray], workers: int = 2) -> dict[str, np.ndarray]:
    """``pack`` (as :func:`export.data.bcnn_pack.load` returns it) in the compact layout."""
    n = len(pack["clean"])
    gray = pack["subsampling"] < 0
    jobs = [(pack["clean"][i], pack["decoded"][i], int(pack["quality"][i]), (TABLES[int(pack["tables"][i])],),
             int(pack["subsampling"][i])) for i in range(n)]
    val_unique: list[np.ndarray] = []
    val_index = []
    for clean in pack["val_clean"]:
        match = next((j for j, u in enumerate(val_unique) if u.shape == clean.shape and np.array_equal(u, clean)), None)
        if match is None:
            val_unique.append(clean)
            match = len(val_unique) - 1
        val_index.append(match)
    val_items = list(zip(pack["val_clean"], pack["val_decoded"], pack["val_quality"], strict=True))
    with ProcessPoolExecutor(workers) as pool:
        files = list(pool.map(_compact_item, jobs, chunksize=8))
        val_files = []
        if val_items:
            # A pack codes its validation crops with one table set: the first crop finds it, and the others try it
            # first instead of re-encoding with every set before it.
            clean, decoded, q = val_items[0]
            val_files.append(_compact_item((clean, decoded, int(q), TABLES, VAL_SUBSAMPLING)))
            found = TABLES[val_files[0][1]]
            order = (found, *(t for t in TABLES if t != found))
            val_files += pool.map(_compact_item, [(c, d, int(q), order, VAL_SUBSAMPLING) for c, d, q in val_items[1:]])
        webps = list(pool.map(_webp, pack["clean"], gray, chunksize=16))
        val_webps = list(pool.map(_webp, val_unique, [False] * len(val_unique)))
    out: dict[str, np.ndarray] = {}
    out["clean_webp"], out["clean_offsets"] = _joined(webps)
    out["decoded_bcnn"], out["decoded_offsets"] = _joined([f for f, _ in files])
    out["val_clean_webp"], out["val_clean_offsets"] = _joined(val_webps)
    out["val_decoded_bcnn"], out["val_decoded_offsets"] = _joined([f for f, _ in val_files])
    out["val_clean_index"] = np.asarray(val_index, dtype=np.int32)
    out["val_tables"] = np.asarray([t for _, t in val_files], dtype=np.int8)
    for key in ("quality", "tables", "subsampling", "val_quality"):
        out[key] = np.asarray(pack[key])
    return out


def expand(data: dict[str, np.ndarray], workers: int | None = None) -> dict[str, np.ndarray]:
    """The pack a compact pack came from, array for array: the clean crops unpacked, the files decoded."""
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        clean = list(pool.map(_unwebp, _split(data["clean_webp"], data["clean_offsets"]), chunksize=16))
        decoded = list(pool.map(_decode, _split(data["decoded_bcnn"], data["decoded_offsets"]), chunksize=8))
        val_unique = list(pool.map(_unwebp, _split(data["val_clean_webp"], data["val_clean_offsets"])))
        val_decoded = list(pool.map(_decode, _split(data["val_decoded_bcnn"], data["val_decoded_offsets"])))
    return {
        "clean": np.stack(clean),
        "decoded": np.stack(decoded),
        "quality": data["quality"],
        "tables": data["tables"],
        "subsampling": data["subsampling"],
        "val_clean": _objects([val_unique[int(i)] for i in data["val_clean_index"]]),
        "val_decoded": _objects(val_decoded),
        "val_quality": data["val_quality"],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", type=Path, required=True, help="a pack written by export.data.bcnn_pack")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    out = compact(load(args.pack), args.workers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **out)
    print(f"wrote {args.out}: {len(out['quality'])} crops, {len(out['val_quality'])} validation crops, "
          f"{args.out.stat().st_size / 1e6:.1f} MB (from {args.pack.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
