"""A compact restoration pack expands to exactly the pack it came from, and refuses a pack its encoder cannot
reproduce."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.data import bcnn_pack, compact_pack


def _crop(seed: int, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    rng = np.random.default_rng(seed)
    base = np.stack([x * 3 + 20, y * 2 + 40, (x + y) + 60], axis=-1) + rng.normal(0, 8, (size, size, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def _pack() -> dict[str, np.ndarray]:
    """Three training crops (4:2:0 predicted tables, 4:4:4, gray) and two validation items of one image."""
    settings = [(20, "balanced", 2), (60, "mse", 0), (35, "jpeg", -1)]
    clean, decoded = [], []
    for i, (q, tables, sub) in enumerate(settings):
        crop = _crop(i, 32)
        decoded.append(bcnn_pack.code(crop, q, tables, sub))
        clean.append(np.repeat(bcnn_pack.to_gray(crop)[..., None], 3, axis=2) if sub < 0 else crop)
    val = _crop(9, 48)
    return {
        "clean": np.stack(clean),
        "decoded": np.stack(decoded),
        "quality": np.array([q for q, _, _ in settings], dtype=np.int16),
        "tables": np.array([bcnn_pack.TABLES.index(t) for _, t, _ in settings], dtype=np.int8),
        "subsampling": np.array([s for _, _, s in settings], dtype=np.int8),
        "val_clean": bcnn_pack._objects([val, val]),
        "val_decoded": bcnn_pack._objects([bcnn_pack.code(val, q, "balanced", 2) for q in (10, 30)]),
        "val_quality": np.array([10, 30], dtype=np.int16),
    }


def test_a_compact_pack_loads_as_the_pack_it_came_from(tmp_path: Path) -> None:
    pack = _pack()
    data = compact_pack.compact(pack, workers=1)
    assert data["val_tables"].tolist() == [bcnn_pack.TABLES.index("balanced")] * 2
    assert len(data["val_clean_offsets"]) == 2  # the validation image's crop is stored once
    path = tmp_path / "pack.npz"
    np.savez(path, **data)
    loaded = bcnn_pack.load(path)
    assert sorted(loaded) == sorted(pack)
    for key, value in pack.items():
        if value.dtype == object:
            assert all(np.array_equal(a, b) for a, b in zip(value, loaded[key], strict=True)), key
        else:
            assert loaded[key].dtype == value.dtype, key
            assert np.array_equal(loaded[key], value), key


def test_a_pack_whose_decodes_the_encoder_does_not_reproduce_is_refused() -> None:
    pack = _pack()
    pack["decoded"] = pack["decoded"].copy()
    pack["decoded"][1, 5, 5, 0] ^= 1
    with pytest.raises(ValueError, match="rebuild the pack"):
        compact_pack.compact(pack, workers=1)
