"""The training loop resumes exactly and stops cleanly on SIGTERM: a run that is interrupted (the machine is
lent by the hour) must end where an uninterrupted one would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from export.training import train_deblocker as train
from tests.training.helpers import assert_runs_end_alike, training_images


def _setup(tmp_path: Path, sample: Image.Image, total: int, **extra: object) -> Path:
    data = training_images(tmp_path, sample, 6, (96, 80))
    cfg = {
        "name": "tiny", "seed": 7, "threads": 1,
        "data": {"root": str(data), "n_val": 2, "split_seed": 1, "val_crop": 32,
                 "sampler": {"crop": 32, "batch": 2, "gray_prob": 0.5, "q_min": 5, "q_split": 50, "q_max": 95,
                             "low_q_prob": 0.8}},
        "model": {"arch": "BlockUNet", "ch": [8, 8, 8], "enc_blocks": [1, 1, 1], "dec_blocks": [1, 1]},
        "optim": {"kind": "adamw", "lr": 0.001, "weight_decay": 0.0001, "clip_grad_norm": 1.0},
        "schedule": {"total_iters": total, "warmup_iters": 2, "min_lr": 1e-06},
        "log_every": 1, "val_every": 3, "ckpt_minutes": 5, **extra,
    }
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return path


def _train(monkeypatch: pytest.MonkeyPatch, cfg: Path, run: Path, *extra: str) -> None:
    monkeypatch.setattr(sys, "argv", ["train", "--config", str(cfg), "--run-dir", str(run), *extra])
    train.main()


@pytest.mark.parametrize("extra", [{}, {"channels_last": True, "loss": {"kind": "log_mse", "channel_weights": [2, 1, 1]}},
                                   {"qat": {"keep_float": ["head", "tail"]}}],
                         ids=["paper", "channels_last-log_mse", "qat"])
def test_interrupted_run_ends_where_an_uninterrupted_one_does(tmp_path, sample, monkeypatch, extra) -> None:
    cfg = _setup(tmp_path, sample, total=5, **extra)
    _train(monkeypatch, cfg, tmp_path / "whole")
    _train(monkeypatch, cfg, tmp_path / "split", "--max-steps", "2")
    _train(monkeypatch, cfg, tmp_path / "split")
    assert_runs_end_alike(tmp_path / "whole", tmp_path / "split", 5, [0, 2])


def test_sigterm_saves_and_stops(tmp_path, sample) -> None:
    cfg = _setup(tmp_path, sample, total=100_000)
    run = tmp_path / "run"
    root = Path(__file__).resolve().parents[2]  # the repository, where export/ lives
    proc = subprocess.Popen([sys.executable, "-m", "export.training.train_deblocker", "--config", str(cfg), "--run-dir", str(run)],
                            cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    log = run / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and log.read_text().count('"loss"') >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    stop = json.loads(log.read_text().splitlines()[-1])
    assert stop["event"] == "stop"
    assert stop["signal"] == signal.SIGTERM
    assert stop["step"] >= 2
    assert torch.load(run / "last.pt", weights_only=False)["step"] == stop["step"]


def test_max_minutes_stops_with_a_validated_checkpoint_and_the_run_resumes(tmp_path, sample, monkeypatch) -> None:
    cfg = _setup(tmp_path, sample, total=5)
    run = tmp_path / "run"
    _train(monkeypatch, cfg, run, "--max-minutes", "0")  # out of time after the first step
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert records[-1]["event"] == "stop"
    assert records[-1]["step"] == 1
    assert records[-1]["max_minutes"] == 0
    assert any("val" in r and r["step"] == 1 for r in records)
    assert torch.load(run / "last.pt", weights_only=False)["step"] == 1
    assert (run / "best.pt").exists()
    _train(monkeypatch, cfg, run)
    assert torch.load(run / "last.pt", weights_only=False)["step"] == 5
    assert json.loads((run / "log.jsonl").read_text().splitlines()[-1])["max_minutes"] is None


def test_warm_start_takes_another_runs_weights_and_a_fresh_schedule(tmp_path, sample, monkeypatch) -> None:
    cfg_path = _setup(tmp_path, sample, total=3)
    monkeypatch.chdir(tmp_path)
    _train(monkeypatch, cfg_path, tmp_path / "runs" / "tiny")
    first = torch.load(tmp_path / "runs" / "tiny" / "best.pt", weights_only=False)["model"]
    cfg = json.loads(cfg_path.read_text())
    cfg.update(name="tiny2", init="tiny")
    cfg["schedule"]["total_iters"] = 1
    cfg2 = tmp_path / "cfg2.json"
    cfg2.write_text(json.dumps(cfg))
    _train(monkeypatch, cfg2, tmp_path / "runs" / "tiny2")
    events = [json.loads(line) for line in (tmp_path / "runs" / "tiny2" / "log.jsonl").read_text().splitlines()]
    assert events[0]["init"] == "tiny"
    assert events[0]["step"] == 0
    cfg.update(name="tiny3", init="missing")
    cfg2.write_text(json.dumps(cfg))
    with pytest.raises(SystemExit, match="no weights for run 'missing'"):
        _train(monkeypatch, cfg2, tmp_path / "runs" / "tiny3")
    from export.networks.deblocker import build_model

    model = build_model(cfg["model"])
    train._warm_start(model, "tiny")
    for k, v in model.state_dict().items():
        assert torch.equal(v, first[k]), k


def test_default_loss_is_the_papers_mse() -> None:
    gen = torch.Generator().manual_seed(0)
    out, target = torch.rand(2, 3, 8, 8, generator=gen), torch.rand(2, 3, 8, 8, generator=gen)
    assert torch.equal(train.restoration_loss(out, target), torch.nn.functional.mse_loss(out, target))
    assert torch.equal(train.restoration_loss(out, target, {"kind": "mse"}), torch.nn.functional.mse_loss(out, target))


def test_log_mse_is_minus_the_mean_psnr_over_samples() -> None:
    target = torch.full((2, 3, 8, 8), 0.5)
    out = target.clone()
    out[0] += 0.01  # a near-perfect sample (40 dB) ...
    out[1] += 0.1  # ... and a poor one (20 dB): pooled MSE is ~all the poor one's, the mean of logs weighs both alike
    loss = train.restoration_loss(out, target, {"kind": "log_mse"})
    assert loss.item() == pytest.approx(-(40 + 20) / 2 / 10, abs=1e-4)
    out.requires_grad_(True)
    train.restoration_loss(out, target, {"kind": "log_mse"}).backward()
    g_log = out.grad.abs().mean(dim=(1, 2, 3))
    assert g_log[0] > g_log[1]  # the small error is not drowned out


def test_channel_weights_price_luma_errors_above_chroma_errors() -> None:
    target = torch.zeros(1, 3, 8, 8)
    in_y, in_cb = target.clone(), target.clone()
    in_y[:, 0] += 0.1
    in_cb[:, 1] += 0.1
    spec = {"kind": "mse", "channel_weights": [2.0, 1.0, 1.0]}
    ly, lcb = train.restoration_loss(in_y, target, spec), train.restoration_loss(in_cb, target, spec)
    assert ly.item() == pytest.approx(2 * lcb.item())
    with pytest.raises(ValueError, match="unknown loss"):
        train.restoration_loss(in_y, target, {"kind": "l1"})


def test_rgb_space_prices_the_error_psnr_rgb_measures() -> None:
    from export.training.losses import ycbcr_to_rgb

    gen = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 8, 8, generator=gen) * 0.5 + 0.25
    out = target + 0.05 * torch.randn(2, 3, 8, 8, generator=gen)
    want = ((ycbcr_to_rgb(out) - ycbcr_to_rgb(target)) ** 2).mean()
    got = train.restoration_loss(out, target, {"kind": "mse", "space": "rgb", "channel_weights": [9.0, 1.0, 1.0]})
    assert got.item() == pytest.approx(want.item(), rel=1e-6)  # channel weights do not apply in RGB
    ycbcr = train.restoration_loss(out, target, {"kind": "mse", "channel_weights": [1.0, 1.0, 1.0]})
    assert got.item() != pytest.approx(ycbcr.item(), rel=1e-3)  # it is another error than the YCbCr one
    cb_err = target.clone()
    cb_err[:, 1] += 0.1  # a Cb error moves B by 1.772x (and G): in RGB it costs more than the same error in Y
    y_err = target.clone()
    y_err[:, 0] += 0.1
    rgb = {"kind": "mse", "space": "rgb"}
    ratio = train.restoration_loss(cb_err, target, rgb) / train.restoration_loss(y_err, target, rgb)
    assert ratio.item() == pytest.approx((0.344136**2 + 1.772**2) / 3, rel=1e-4)
    with pytest.raises(ValueError, match="unknown loss space"):
        train.restoration_loss(out, target, {"kind": "mse", "space": "lab"})


def test_best_checkpoint_selection_follows_the_config() -> None:
    val = {"gain_y": 1.0, "gain_rgb": 3.0}
    assert train.selection_score(val, {}) == 2.0
    assert train.selection_score(val, {"select": "y"}) == 1.0
    assert train.selection_score(val, {"select": "rgb"}) == 3.0
