"""The encoder-side studies' own arithmetic: the position rate model's features and its trellis, and
``tune_tables``' restored, two-metric scoring."""

from __future__ import annotations

import numpy as np

from export.studies import rate_model_position as rmp
from export.studies import tune_tables
from pillow_blockcnn.codec.dct import ZIGZAG
from tests.helpers import assert_trellis_finds_the_optimum


def test_position_features_count_what_they_name() -> None:
    levels = np.zeros((1, 8, 8), dtype=np.int64)
    flat = levels.reshape(64)
    flat[ZIGZAG[2]], flat[ZIGZAG[7]] = 3, -1  # ranks 2 and 7 non-zero, ranks 1, 3..6 zero inside the run
    flat[0] = 5
    f = dict(zip(rmp.FEATURES, rmp.block_features(levels, dc_reference=2)[0], strict=True))
    assert (f["nz"], f["nz_rank"], f["zr"], f["zr_rank"], f["last_rank"]) == (2, 9, 5, 1 + 3 + 4 + 5 + 6, 7)
    assert (f["mag_low"], f["mag_high"]) == (np.log2(3), 0)
    assert (f["dc_nonzero"], f["dc_log2"]) == (1, np.log2(3))


def test_the_position_trellis_finds_its_models_optimum_by_exhaustive_search() -> None:
    model = rmp.PositionModel(np.array([1.6, 1.8, 0.01, 0.4, 0.01, 1.2, 0.8, 1.4, 0.6, 4.0]))
    assert_trellis_finds_the_optimum(model.trellis, model.bits, seed=21, n=48)


def test_tune_tables_scores_both_metrics_and_their_mean() -> None:
    rates = np.array([0.2, 0.4, 0.6, 0.8])
    anchor = (rates, np.stack([np.array([28.0, 30, 32, 34]), np.array([11.0, 13, 15, 17])], axis=1))
    test = (rates * 0.9, anchor[1])  # the same qualities at 10% fewer bits
    scores = tune_tables._scores(anchor, test, "both")
    assert abs(scores["bd_rate_psnr"] + 10) < 1e-6
    assert abs(scores["bd_rate_ms_ssim"] + 10) < 1e-6
    assert abs(scores["bd_rate_both"] + 10) < 1e-6


def test_tune_default_variants_carry_their_subsampling_and_rdo_settings() -> None:
    import io

    from PIL import Image

    from export.studies import tune_default
    from pillow_blockcnn.codec import quantise
    from pillow_blockcnn.format.container import read_header

    rgb = np.random.default_rng(5).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    dz_before = quantise.DEADZONE
    codes = {}
    for code in ("420", "422", "444"):
        codec = tune_default.variant_codec(f"v{code}=balanced:0.4:1:-:{code}")
        header, _ = read_header(io.BytesIO(codec.save(Image.fromarray(rgb), 40)))
        codes[code] = (header.subsampling, header.tables)
    assert codes == {"420": (2, "balanced"), "422": (1, "balanced"), "444": (0, "balanced")}
    assert quantise.DEADZONE == dz_before  # the variant's settings are undone after its save
    assert "subsampling default" in tune_default.variant_codec("d=mse:0.33:1").description
