"""The sampled deblocking check's study: its counts agree with its cases, and it leaves the encoder as it was."""

from __future__ import annotations

import numpy as np

from export.studies import deblock_check_sampling as study
from pillow_blockcnn import pipeline


def test_agreement_counts_its_cases_and_restores_the_shipped_windows() -> None:
    shipped = pipeline.SAMPLE_CELL, pipeline.SAMPLE_SIDE
    rng = np.random.default_rng(2)
    smooth = np.linspace(0, 255, 96 * 128).reshape(96, 128)
    crop = np.clip(
        np.stack([smooth, smooth.T.reshape(96, 128), 255 - smooth], -1) + rng.normal(0, 20, (96, 128, 3)), 0, 255
    ).astype(np.uint8)
    result = study.agreement([crop], [30], cell=64, side=32)
    assert (pipeline.SAMPLE_CELL, pipeline.SAMPLE_SIDE) == shipped
    assert result["cases"] == len(result["detail"]) == 2
    detail = result["detail"]
    assert result["wrong_yes"] == sum(c["samples_decide"] and not c["whole"] for c in detail)
    assert result["fallback_where_it_pays"] == sum(c["whole"] and not c["samples_decide"] for c in detail)
    assert {c["subsampling"] for c in detail} == {"4:2:0", "4:4:4"}
