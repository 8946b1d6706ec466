"""export/quality_range.py: the per-quality gain table and the max_quality rule it derives."""

from __future__ import annotations

import numpy as np

from export import quality_range as qr
from export.data import jpeg_roundtrip
from export.evaluate_deblock import identity_restorer


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
