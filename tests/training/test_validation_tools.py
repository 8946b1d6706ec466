"""The tools that choose between deblocking models on held-out training images: export/evaluation/quality_range.py (the
per-quality gain table and the max_quality rule) and export/evaluation/validate_deblock.py."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from export.data.crops import jpeg_roundtrip, list_images, split_holdout, validation_crops
from export.evaluation import quality_range as qr
from export.evaluation import validate_deblock
from export.evaluation.evaluate_deblock import identity_restorer


def _table(means: dict[int, float], mode_override: dict[tuple[str, int], float] | None = None) -> dict:
    table = {m: {str(q): {"mean": means.get(q, 1.0)} for q in qr.QUALITIES} for m in qr.MODES}
    for (m, q), v in (mode_override or {}).items():
        table[m][str(q)]["mean"] = v
    return table


def test_max_quality_stops_at_the_first_quality_where_any_mode_loses() -> None:
    assert qr.max_quality(_table({})) == qr.QUALITIES[-1]
    assert qr.max_quality(_table({92: -0.1})) == 90
    assert qr.max_quality(_table({}, {("colour 4:4:4", 85): 0.0})) == 80  # no gain is not a gain
    assert qr.max_quality(_table({98: -0.1}, {("gray", 40): -0.2})) == 30  # a later recovery does not count
    assert qr.max_quality(_table({10: -0.5})) == 0


def test_each_mode_gets_its_own_limit_and_the_overall_one_is_the_strictest() -> None:
    table = _table({}, {("colour 4:4:4", 88): -0.1, ("gray", 95): -0.3, ("colour 4:2:0", 94): -0.2})
    by_mode = qr.max_quality_by_mode(table)
    assert by_mode == {"colour 4:2:0": 92, "colour 4:4:4": 85, "gray": 94}
    assert qr.max_quality(table) == min(by_mode.values()) == 85


def test_gain_is_finite_when_the_jpeg_is_exact() -> None:
    clean = np.full((8, 8), 100, np.uint8)
    assert qr._gain(clean, clean, clean) == 0.0
    assert qr._gain(clean, clean, clean + 1) < 0 < qr._gain(clean, clean + 1, clean)


def test_an_identity_restorer_gains_nothing_in_any_mode(sample) -> None:
    images = [np.asarray(sample.convert("RGB").crop((0, 0, 64, 48)))]
    for mode in qr.MODES:
        for quality in (10, 95):
            assert qr.gains(images, identity_restorer, quality, mode) == [0.0]


def test_the_colour_modes_use_their_chroma_subsampling(sample) -> None:
    rgb = np.asarray(sample.convert("RGB").crop((0, 0, 64, 48)))
    sub420 = jpeg_roundtrip(rgb, 90, subsampling=qr.MODES["colour 4:2:0"])
    np.testing.assert_array_equal(sub420, jpeg_roundtrip(rgb, 90))  # Pillow's default
    assert not np.array_equal(sub420, jpeg_roundtrip(rgb, 90, subsampling=qr.MODES["colour 4:4:4"]))


def test_validation_crops_are_the_held_out_split_on_the_block_grid(tmp_path, sample) -> None:
    root = tmp_path / "train"
    root.mkdir()
    for i in range(6):
        sample.crop((i * 10, 0, i * 10 + 70 + i, 50)).save(root / f"img{i}.png")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": {"root": str(root), "n_val": 2, "split_seed": 3}}))
    crops = validation_crops(config, 64)
    _, val = split_holdout(list_images(root), 2, 3)
    assert len(crops) == 2
    for crop, path in zip(crops, val, strict=True):
        assert crop.shape[0] % 8 == 0
        assert crop.shape[1] % 8 == 0
        assert crop.shape[:2] == (48, 64)
        full = np.asarray(Image.open(path).convert("RGB"))
        y0, x0 = (full.shape[0] - 48) // 2 // 8 * 8, (full.shape[1] - 64) // 2 // 8 * 8
        np.testing.assert_array_equal(crop, full[y0 : y0 + 48, x0 : x0 + 64])


def test_validation_scores_an_identity_model_at_zero_gain(sample) -> None:
    images = [np.asarray(sample.convert("RGB").crop((0, 0, 64, 48)))]
    scores = validate_deblock.score(images, identity_restorer)
    assert scores["gain_y"] == 0.0
    assert scores["gain_rgb"] == 0.0
    assert {f"q{q}_gain_y" for q in (10, 20, 30, 40)} <= scores.keys()


def test_the_halo_study_restores_in_tiles_and_leaves_the_deblocker_as_it_was(monkeypatch, sample) -> None:
    from export.studies import deblock_halo
    from pillow_blockcnn.runtime import deblocker
    from tests.helpers import register_models, stand_in

    register_models(monkeypatch, {"test-deblock": ("deblock", stand_in("test-deblock"))})
    pixels = np.ascontiguousarray(np.asarray(sample.convert("RGB"))[:96, :160])
    before = deblocker.ONE_PASS, deblocker.TILE, deblocker.HALO
    whole, _ = deblock_halo.restore(pixels, 20, "test-deblock", 0, 0)
    wide, _ = deblock_halo.restore(pixels, 20, "test-deblock", 48, 48)
    none, _ = deblock_halo.restore(pixels, 20, "test-deblock", 48, 0)
    assert (deblocker.ONE_PASS, deblocker.TILE, deblocker.HALO) == before
    # a halo as wide as the stand-in's reach reproduces one pass; tiles without one show their seams
    assert np.abs(wide.astype(int) - whole).max() <= 1
    assert np.abs(none.astype(int) - whole).max() > np.abs(wide.astype(int) - whole).max()


def test_the_tiling_study_restores_the_previous_way_on_request(monkeypatch) -> None:
    from export.studies import deblock_tiling
    from pillow_blockcnn.runtime import deblocker

    # the tiling before 2026-12-07: 640-pixel kept parts and a remainder, windows cut at the border
    assert deblock_tiling.before_spans(1500) == [(0, 640, 0, 672), (640, 1280, 608, 1312), (1280, 1500, 1248, 1500)]
    assert deblock_tiling.before_spans(1024) == [(0, 1024, 0, 1024)]
    releases: list[bool] = []
    monkeypatch.setattr(deblocker, "_run", lambda session, pixels, quality, release: releases.append(release))
    monkeypatch.setattr(deblocker, "_spans", deblocker._spans)  # restored after the test, as _run is
    monkeypatch.setattr(deblocker, "HALO", deblocker.HALO)
    deblock_tiling._install_before()
    assert deblocker._spans is deblock_tiling.before_spans
    assert deblocker.HALO == 32
    deblocker._run(None, None, 30, release=False)
    assert releases == [True]  # every run of the previous way gave its memory back
