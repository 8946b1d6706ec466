"""The restoration-headroom study's own arithmetic: the error by scale, the least-squares post-filter, the summary."""

from __future__ import annotations

import math

import numpy as np

from export.studies import restoration_headroom as side


def test_the_post_filter_can_only_lower_the_error_it_is_fitted_to() -> None:
    rng = np.random.default_rng(3)
    original = rng.uniform(0, 255, (24, 32, 3))
    restored = original + rng.normal(0, 6, original.shape)
    decoded = restored + rng.normal(0, 3, original.shape)
    before = np.mean((restored - original) ** 2)
    fitted = side.post_filter(restored, decoded, original, rounded=False)
    assert np.mean((fitted - original) ** 2) <= before
    # a restoration that is the original scaled: the filter's own-channel centre tap undoes it
    scaled = original * 0.9
    undone = side.post_filter(scaled, scaled, original, rounded=False)
    assert np.abs(undone - original).max() < 1e-6


def test_the_summary_picks_per_image_offsets_and_prices_the_filter() -> None:
    def row(q: int, size: int, restored: float, offsets: dict[int, float], filtered: float) -> dict:
        return {
            "quality": q,
            "bytes": size,
            "restored": (restored, 10.0),
            "offsets": {str(o): (s, 10.0) for o, s in offsets.items()},
            "filtered": (filtered, 10.0),
            "coarse_share": {str(k): 0.5 for k in side.SCALES},
            "coarse_share_decoded": {str(k): 0.25 for k in side.SCALES},
        }

    images = [
        [row(10, 1000, 30.0, {-5: 29.0, 0: 30.0}, 30.1), row(20, 2000, 31.0, {-5: 31.5, 0: 31.0}, 31.0)],
        [row(10, 1000, 30.0, {-5: 30.2, 0: 30.0}, 30.0), row(20, 2000, 31.0, {-5: 30.0, 0: 31.0}, 31.0)],
    ]
    first = side.summarise(images, [-5, 0])[0]
    assert first["best_offsets"] == [0, -5]
    assert first["best_offset_mean_gain"] == [0.1, 0.0]
    assert first["offset_mean_change"]["-5"] == [-0.4, 0.0]
    slope = 1.0 / math.log(2)  # 1 dB for twice the bytes
    assert math.isclose(first["filter_rate_saving_pct"], round(100 * (1 - math.exp(-0.1 / slope)) / 2, 2))
    assert first["filter_side_info_pct"] == round(100 * side.FILTER_BYTES / 1000, 2)
    assert first["coarse_share"] == {str(k): 0.5 for k in side.SCALES}


def test_the_coarse_share_of_an_error_separates_a_flat_offset_from_noise() -> None:
    original = np.zeros((32, 32, 3))
    assert side._coarse_share(original + 4.0, original, 16) == 1.0  # an offset lives in every square's mean
    checker = (np.indices((32, 32)).sum(0) % 2 * 2 - 1)[..., None] * np.ones(3)
    assert side._coarse_share(checker, original, 8) == 0.0  # pixel-scale error leaves no mean
