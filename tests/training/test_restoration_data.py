"""Restoration training on the codec's own decodes (export.data.bcnn_pack, export.training.losses): the pack
holds exactly what a decoder shows, the differentiable MS-SSIM is the benchmark's, and a pack-fed run resumes
exactly."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pillow_blockcnn  # noqa: F401  (registers .bcnn)
from export.data import bcnn_pack
from export.evaluation.metrics import ms_ssim as ms_ssim_numpy
from export.training.losses import ms_ssim, ycbcr_to_rgb
from pillow_blockcnn.runtime.jfif import rgb_to_ycbcr_float
from tests.training.helpers import train_whole_and_split


@pytest.mark.parametrize(("tables", "subsampling"), [("mse", 2), ("ssim", 0), ("jpeg", -1), ("balanced", 2)])
def test_pack_decodes_are_what_the_decoder_shows(sample, tables, subsampling) -> None:
    crop = np.asarray(sample.convert("RGB"))[:64, :96].copy()
    decoded = bcnn_pack.code(crop, 25, tables, subsampling)
    buf = io.BytesIO()
    if subsampling < 0:
        Image.fromarray(crop).convert("L").save(buf, "BCNN", quality=25, tables=tables, deblock=False)
    else:
        Image.fromarray(crop).save(buf, "BCNN", quality=25, tables=tables, subsampling=subsampling, deblock=False)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        shown = np.asarray(im.convert("RGB"))
    assert np.array_equal(decoded, shown)


def test_table_mix_parses_by_name_and_keeps_earlier_packs_draws() -> None:
    assert bcnn_pack._table_prob("balanced=0.5,mse=0.5") == (0.5, 0.0, 0.0, 0.5)
    for bad in ("balanced=0.5", "sharp=1", "mse"):
        with pytest.raises(argparse.ArgumentTypeError):
            bcnn_pack._table_prob(bad)
    # the default mix gives the table set of every crop of the packs built before "balanced" was added
    old = [int(np.random.default_rng([7, i]).choice(3, p=(0.5, 0.3, 0.2))) for i in range(2000)]
    new = [int(np.random.default_rng([7, i]).choice(len(bcnn_pack.TABLES), p=bcnn_pack.TABLE_PROB)) for i in range(2000)]
    assert old == new


def test_torch_ms_ssim_is_the_benchmark_ms_ssim() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (2, 3, 64, 80)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    got = ms_ssim(torch.from_numpy(a / 255), torch.from_numpy(b / 255)).numpy()
    want = [[ms_ssim_numpy(a[n, c], b[n, c]) for c in range(3)] for n in range(2)]
    assert np.allclose(got, want, rtol=0, atol=1e-9)


def test_ycbcr_to_rgb_inverts_the_runtime_conversion() -> None:
    rgb = np.random.default_rng(4).integers(0, 256, (8, 8, 3)).astype(np.float64)
    ycc = torch.from_numpy(rgb_to_ycbcr_float(rgb).transpose(2, 0, 1)[None] / 255)
    assert np.allclose(ycbcr_to_rgb(ycc)[0].numpy().transpose(1, 2, 0) * 255, rgb, atol=1e-3)  # float32


def _tiny_pack(path: Path, sample: Image.Image) -> Path:
    clean = np.stack([np.asarray(sample.convert("RGB"))[i * 8 : i * 8 + 32, i * 16 : i * 16 + 32] for i in range(4)])
    decoded = np.stack([bcnn_pack.code(c, 20, "mse", 2) for c in clean])
    val = bcnn_pack._objects([clean[0][:24, :32]])
    np.savez(path, clean=clean, decoded=decoded, quality=np.full(4, 20, np.int16), tables=np.zeros(4, np.int8),
             subsampling=np.full(4, 2, np.int8), val_clean=val,
             val_decoded=bcnn_pack._objects([bcnn_pack.code(val[0], 20, "mse", 2)]), val_quality=np.array([20], np.int16))
    return path


def pack_run_config(tmp_path: Path, pack: Path) -> dict:
    """A tiny pack-fed training config (5 iterations of an 8-channel BlockUNet) for smoke runs."""
    return {
        "name": "tiny", "seed": 7, "threads": 1,
        "data": {"root": str(tmp_path), "n_val": 0, "split_seed": 1, "val_crop": 32, "pack": str(pack),
                 "sampler": {"batch": 2}},
        "model": {"arch": "BlockUNet", "ch": [8, 8, 8], "enc_blocks": [1, 1, 1], "dec_blocks": [1, 1]},
        "optim": {"kind": "adamw", "lr": 0.001, "weight_decay": 0.0001, "clip_grad_norm": 1.0},
        "schedule": {"total_iters": 5, "warmup_iters": 2, "min_lr": 1e-06},
        "log_every": 1, "val_every": 3, "ckpt_minutes": 5,
        "loss": {"kind": "log_mse_msssim", "channel_weights": [4, 1, 1], "msssim_weight": 1.0}, "select": "rgb_msssim",
    }


def test_pack_fed_run_resumes_exactly(tmp_path, sample, monkeypatch) -> None:
    pack = _tiny_pack(tmp_path / "pack.npz", sample)
    events = train_whole_and_split(tmp_path, monkeypatch, pack_run_config(tmp_path, pack))
    val = next(e["val"] for e in events if "val" in e)
    assert {"gain_y", "gain_rgb", "gain_msssim"} <= set(val)


def test_validate_bcnn_deblock_scores_models_on_the_pack(tmp_path, sample) -> None:
    from export.evaluation import validate_bcnn_deblock
    from tests.helpers import STAND_INS

    pack = _tiny_pack(tmp_path / "pack.npz", sample)
    out = tmp_path / "v.json"
    validate_bcnn_deblock.main([str(STAND_INS / "test-deblock.onnx"), "--pack", str(pack), "--out", str(out), "--threads", "1"])
    res = json.loads(out.read_text())["models"]["test-deblock.onnx"]
    assert set(res["q20"]) == {"gain_rgb", "gain_y", "gain_msssim"}
    assert np.isfinite([res["gain_rgb"], res["gain_msssim"], res["s_per_mp"]]).all()
    assert "| test-deblock.onnx | mean |" in out.with_suffix(".md").read_text()


def test_validate_bcnn_deblock_codes_the_held_out_crops_per_table_set(tmp_path, sample, monkeypatch) -> None:
    from export.evaluation import validate_bcnn_deblock
    from tests.helpers import STAND_INS

    image = tmp_path / "held_out.png"
    sample.convert("RGB").crop((0, 0, 64, 48)).save(image)
    monkeypatch.setattr(bcnn_pack, "split", lambda: ([], [image]))
    out = tmp_path / "v.json"
    validate_bcnn_deblock.main([str(STAND_INS / "test-deblock.onnx"), "--tables", "balanced", "mse", "--out", str(out),
                                "--threads", "1"])
    by_tables = json.loads(out.read_text())["by_tables"]
    assert list(by_tables) == ["balanced", "mse"]
    assert by_tables["mse"]["crops"] == len(bcnn_pack.VAL_QUALITIES)
    # the two table sets code the same crops differently, so the restorer's scores differ
    gains = [by_tables[t]["models"]["test-deblock.onnx"]["gain_rgb"] for t in ("balanced", "mse")]
    assert gains[0] != gains[1]
    assert "## tables `mse`" in out.with_suffix(".md").read_text()
