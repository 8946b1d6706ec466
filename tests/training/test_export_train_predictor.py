"""The predictor's trainer resumes exactly, like the deblocker's: a run cut into pieces ends where a whole one
does, and its validation codes held-out images through the real closed-loop codec."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from export.training import train_predictor
from tests.training.helpers import assert_runs_end_alike, training_images


def _config(tmp_path: Path, sample: Image.Image) -> Path:
    data = training_images(tmp_path, sample, 5, (64, 64))
    cfg = {
        "name": "tiny-predictor", "seed": 3, "threads": 1,
        "data": {"root": str(data), "n_val": 1, "split_seed": 1, "n_val_used": 1, "val_crop": 32,
                 "val_qualities": [30],
                 "sampler": {"crop": 32, "crops": 2, "gray_prob": 0.5, "q_min": 5, "q_split": 50, "q_max": 95,
                             "low_q_prob": 0.8, "tables": ["jpeg", "mse"]}},
        "model": {"width": 16, "depth": 1},
        "optim": {"lr": 0.001, "weight_decay": 0.0001},
        "schedule": {"total_iters": 4, "warmup_iters": 1, "min_lr": 1e-06},
        "log_every": 1, "val_every": 2, "ckpt_minutes": 5,
    }
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return path


def test_interrupted_predictor_run_ends_where_an_uninterrupted_one_does(tmp_path, sample) -> None:
    cfg = _config(tmp_path, sample)
    train_predictor.main(["--config", str(cfg), "--run-dir", str(tmp_path / "whole")])
    train_predictor.main(["--config", str(cfg), "--run-dir", str(tmp_path / "split"), "--steps", "2"])
    assert torch.load(tmp_path / "split" / "last.pt", weights_only=False)["step"] == 2
    train_predictor.main(["--config", str(cfg), "--run-dir", str(tmp_path / "split")])
    events = assert_runs_end_alike(tmp_path / "whole", tmp_path / "split", 4, [0, 2])
    vals = [e for e in events if "val" in e]
    assert [e["step"] for e in vals] == [2, 4]
    for e in vals:  # both table sets of the sampler, each a real byte count of the codec
        assert set(e["val"]) == {"q30", "q30-mse", "bytes_ratio"}
        assert 0 < e["val"]["q30"]["bytes_ratio"] < 2
    assert (tmp_path / "split" / "best.pt").exists()


def test_a_data_pack_carries_a_run_without_the_images(tmp_path, sample) -> None:
    """What a GPU machine gets (it has the repository, not ../shared): a pack of pre-cut crops, and the
    device chosen by flag (cpu here; the same code runs with --device cuda)."""
    import numpy as np

    from export.data import pack

    cfg_path = _config(tmp_path, sample)
    cfg = json.loads(cfg_path.read_text())
    cfg["data"]["root"] = str(Path(cfg["data"]["root"]).resolve())
    data = pack.build(cfg, crops=6, size=32)
    assert data["crops"].shape == (6, 32, 32, 3)
    assert data["crops"].dtype == np.uint8
    np.savez_compressed(tmp_path / "pack.npz", **data)
    train_predictor.main(
        ["--config", str(cfg_path), "--run-dir", str(tmp_path / "packed"), "--data-pack", str(tmp_path / "pack.npz"),
         "--device", "cpu"]
    )  # fmt: skip
    assert torch.load(tmp_path / "packed" / "last.pt", weights_only=False)["step"] == 4


def test_a_gpu_run_needs_no_jpeglib_and_stops_on_time(tmp_path, sample, monkeypatch) -> None:
    """The lent GPU machines have no jpeglib (the validator's entropy coder): with --skip-validation a packed
    run trains and checkpoints without it, and --max-minutes ends it with a checkpoint."""
    import sys

    import numpy as np

    from export.data import pack

    cfg_path = _config(tmp_path, sample)
    cfg = json.loads(cfg_path.read_text())
    cfg["data"]["root"] = str(Path(cfg["data"]["root"]).resolve())
    np.savez_compressed(tmp_path / "pack.npz", **pack.build(cfg, crops=6, size=32))
    monkeypatch.setitem(sys.modules, "jpeglib", None)  # import jpeglib now fails, as on the GPU machines
    common = ["--config", str(cfg_path), "--data-pack", str(tmp_path / "pack.npz"), "--skip-validation"]
    train_predictor.main([*common, "--run-dir", str(tmp_path / "gpu")])
    assert torch.load(tmp_path / "gpu" / "last.pt", weights_only=False)["step"] == 4
    assert not (tmp_path / "gpu" / "best.pt").exists()
    train_predictor.main([*common, "--run-dir", str(tmp_path / "timed"), "--max-minutes", "0"])
    assert torch.load(tmp_path / "timed" / "last.pt", weights_only=False)["step"] == 1  # one step, then the limit


def test_prefetching_workers_give_the_run_the_serial_sampler_gives(tmp_path, sample) -> None:
    """Batches are a pure function of (seed, step), so coding them ahead in worker processes (what a GPU
    machine needs to keep its network busy) leaves the run exactly as it was."""
    cfg = _config(tmp_path, sample)
    train_predictor.main(["--config", str(cfg), "--run-dir", str(tmp_path / "serial")])
    train_predictor.main(["--config", str(cfg), "--run-dir", str(tmp_path / "workers"), "--sampler-workers", "2"])
    assert_runs_end_alike(tmp_path / "serial", tmp_path / "workers", 4, [0])
