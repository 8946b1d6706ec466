"""The compression evaluation: BD-rate arithmetic and a smoke run of the command.

The BD-rate tests use curves whose answer is known in closed form (a constant rate factor shifts log-rate by
a constant, which both fits reproduce exactly). The smoke run codes two small crops of the bundled sample, so
it needs neither the Kodak folder nor more than a few seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from export.evaluation import evaluate_compression as ev
from export.evaluation.bdrate import _pchip_integral, bd_rate, bd_rates, overlap, select_up_to

# Mean Kodak points of Pillow JPEG 4:2:0 optimize=True, q 5..50: a realistic, unevenly spaced curve.
JPEG_BPP = [0.141, 0.256, 0.359, 0.449, 0.533, 0.610, 0.743, 0.869]
JPEG_PSNR = [23.85, 26.67, 28.14, 29.14, 29.89, 30.49, 31.42, 32.17]


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_identical_curves_have_zero_bd_rate(method: str) -> None:
    assert bd_rate(JPEG_BPP, JPEG_PSNR, JPEG_BPP, JPEG_PSNR, method=method) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("method", ["cubic", "pchip"])
@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_scaled_rates_give_that_bd_rate(method: str, factor: float) -> None:
    scaled = [factor * r for r in JPEG_BPP]
    expected = 100.0 * (factor - 1.0)
    assert bd_rate(JPEG_BPP, JPEG_PSNR, scaled, JPEG_PSNR, method=method) == pytest.approx(expected, abs=0.1)


def test_bd_rates_pairs_each_images_curves() -> None:
    anchor = list(zip(JPEG_BPP, JPEG_PSNR, strict=True))
    tests = [[(0.8 * r, q) for r, q in anchor], [(1.25 * r, q) for r, q in anchor]]
    assert bd_rates([anchor, anchor], tests) == pytest.approx([-20.0, 25.0], abs=0.1)
    with pytest.raises(ValueError):
        bd_rates([anchor], tests)


def test_bd_rate_uses_only_the_shared_psnr_interval() -> None:
    """A test curve covering only the top half is compared there only: still exactly the rate factor."""
    top = slice(3, None)
    scaled = [0.8 * r for r in JPEG_BPP[top]]
    assert overlap(JPEG_PSNR, JPEG_PSNR[top]) == (JPEG_PSNR[3], JPEG_PSNR[-1])
    assert bd_rate(JPEG_BPP, JPEG_PSNR, scaled, JPEG_PSNR[top], method="pchip") == pytest.approx(-20.0, abs=0.1)


def test_pchip_integral_is_exact_for_a_line_and_follows_scipy_slopes() -> None:
    x = np.array([0.0, 1.0, 3.0, 4.0])
    assert _pchip_integral(x, 2 * x + 1, 0.5, 3.5) == pytest.approx((3.5**2 + 3.5) - (0.5**2 + 0.5))
    # A monotone step: pchip neither overshoots nor undershoots, so the integral stays between the plateaus.
    y = np.array([0.0, 0.0, 1.0, 1.0])
    assert 0.0 < _pchip_integral(x, y, 0.0, 4.0) < 4.0
    assert _pchip_integral(x, y, 0.0, 1.0) == pytest.approx(0.0)
    assert _pchip_integral(x, y, 3.0, 4.0) == pytest.approx(1.0)


def test_bd_rate_refuses_what_it_cannot_compute() -> None:
    with pytest.raises(ValueError, match=">= 4"):
        bd_rate(JPEG_BPP, JPEG_PSNR, JPEG_BPP[:3], JPEG_PSNR[:3])
    with pytest.raises(ValueError, match="overlap"):
        bd_rate(JPEG_BPP, JPEG_PSNR, JPEG_BPP, [p + 20 for p in JPEG_PSNR])
    rate, psnr = select_up_to([0.5, 0.9, 1.0, 1.1], [30, 31, 32, 33], 1.0)
    assert rate.tolist() == [0.5, 0.9, 1.0]
    assert psnr.tolist() == [30, 31, 32]


@pytest.fixture
def two_images(tmp_path: Path, sample: Image.Image) -> Path:
    """Two 128x96 crops of the bundled photo as PNGs: a Kodak stand-in that takes milliseconds to code."""
    folder = tmp_path / "data"
    folder.mkdir()
    sample.crop((0, 0, 128, 96)).save(folder / "a.png")
    sample.crop((200, 150, 328, 246)).save(folder / "b.png")
    return folder


def test_smoke_run_writes_json_and_markdown(tmp_path: Path, two_images: Path) -> None:
    out_json, out_md = tmp_path / "out" / "r.json", tmp_path / "out" / "r.md"
    argv = ["--data", str(two_images), "--codecs", "jpeg", "bcnn-plain", "--qualities", "20", "60"]
    ev.main([*argv, "--limit", "2", "--json", str(out_json), "--markdown", str(out_md)])

    result = json.loads(out_json.read_text())
    assert result["images"] == ["a.png", "b.png"]
    assert set(result["codecs"]) == {"jpeg", "bcnn-plain"}
    assert result["unavailable"] == {}
    assert len(result["per_image"]) == 2 * 2 * 2
    assert len(result["summary"]) == 2 * 2
    assert result["versions"]["pillow"] == Image.__version__
    assert result["machine"]
    by_point = {(r["image"], r["codec"], r["quality"]): r for r in result["per_image"]}
    for (image, codec, quality), row in by_point.items():
        assert row["bpp"] == pytest.approx(8 * row["bytes"] / (128 * 96))
        assert 20 < row["psnr_rgb"] < 60
        assert 0 < row["ssim_rgb"] <= 1
        assert row["encode_ms"] > 0
        assert row["decode_ms"] > 0
        assert 0 < row["ms_ssim_db"] < 60
        if codec == "bcnn-plain":  # no prediction, JPEG's tables: about JPEG's PSNR in a smaller file
            jpeg = by_point[(image, "jpeg", quality)]
            assert row["psnr_rgb"] > jpeg["psnr_rgb"] - 1.0
            assert row["bytes"] < jpeg["bytes"]
    # Two qualities cannot carry a cubic fit: the BD-rate says so instead of printing a number.
    assert "jpeg" not in result["bd_rate"]
    assert ">= 4" in result["bd_rate"]["bcnn-plain"]["error"]
    assert "| bcnn-plain | 20 |" in out_md.read_text()


def test_unavailable_codec_is_listed_not_faked(monkeypatch: pytest.MonkeyPatch, two_images: Path) -> None:
    missing = ev.Codec("bcnn-predict", "stand-in", ev.CODECS["jpeg"].save, (20,), lambda: "no predict model packaged")
    monkeypatch.setitem(ev.CODECS, "bcnn-predict", missing)
    result = ev.main(
        ["--data", str(two_images), "--codecs", "jpeg", "bcnn-predict", "--qualities", "50", "--limit", "1"]
    )
    assert result["unavailable"] == {"bcnn-predict": "no predict model packaged"}
    assert {r["codec"] for r in result["per_image"]} == {"jpeg"}


def test_decoder_settings_are_restored() -> None:
    from pillow_blockcnn import options

    before = options.current()
    with ev.fixed_decoder_settings():
        assert (options.current()["threads"], options.current()["deblock"]) == (1, True)
    assert options.current() == before


def test_missing_jxl_plugin_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pillow_jxl", None)  # import now fails, as when the plugin is absent
    assert "pillow-jxl-plugin is not installed" in (ev.CODECS["jxl"].unavailable() or "")


def _run(codecs: dict[str, float]) -> dict:
    """A stand-in result: each codec is JPEG's curve with its rates scaled by a factor."""
    summary = [
        {"codec": name, "quality": q, "bpp": b * factor, "psnr_rgb": p, "ms_ssim_db": p - 15}
        for name, factor in codecs.items()
        for q, (b, p) in enumerate(zip(JPEG_BPP, JPEG_PSNR))
    ]
    return {"images": ["a.png"], "date": "d", "machine": "m", "summary": summary,
            "per_image": [{"codec": s["codec"]} for s in summary],
            "codecs": dict.fromkeys(codecs, "x"), "qualities": dict.fromkeys(codecs, [0])}


def test_runs_merge_and_score_head_to_head_against_avif() -> None:
    """A codec measured again replaces its points; the head-to-head table compares with AVIF directly."""
    merged = ev.merge_runs([_run({"jpeg": 1.0, "avif": 0.9, "bcnn": 0.5}), _run({"avif": 0.5})], ["a", "b"])
    assert sorted(merged["codecs"]) == ["avif", "bcnn", "jpeg"]
    assert len(merged["summary"]) == 3 * len(JPEG_BPP)
    assert [m["file"] for m in merged["merged_from"]] == ["a", "b"]
    scores = ev.scores(merged["summary"])
    assert scores["bd_rate"]["avif"]["bd_rate_cubic_pct"] == pytest.approx(-50.0, abs=1e-6)
    assert scores["bd_rate_vs_avif"]["bcnn"]["bd_rate_cubic_pct"] == pytest.approx(0.0, abs=1e-6)
    assert scores["bd_rate_vs_avif"]["bcnn"]["ms_ssim_bd_rate_cubic_pct"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(SystemExit, match="other images"):
        ev.merge_runs([_run({"jpeg": 1.0}), _run({"avif": 1.0}) | {"images": ["b.png"]}], ["a", "b"])


def test_a_candidate_predictor_is_installed_with_the_interface_its_file_declares() -> None:
    from export.evaluation.candidates import details, installed
    from pillow_blockcnn import runtime
    from tests.helpers import stand_in

    guided, plain = stand_in("test-int-guided"), stand_in("test-int-predict")
    assert details(guided) == {"arithmetic": "integer", "guide": "luma"}
    assert details(plain) == {"arithmetic": "integer"}
    with installed({"candidate-predict": ("predict", guided, ["mse"])}):
        assert runtime.default_model("predict", "mse").id == "candidate-predict"
        assert runtime.predictor_for("candidate-predict", 30).guided
    assert "candidate-predict" not in [m.id for m in runtime.models("predict")]
