"""Committed float16 snapshots restore a run's weights and its place in the schedule."""

from __future__ import annotations

from pathlib import Path

import torch

from export.networks.predictor import BlockPredictorNet
from export.training import checkpoints as snapshot


def test_snapshot_round_trip(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(snapshot, "SNAPSHOTS", tmp_path / "checkpoints")
    torch.manual_seed(0)
    model = BlockPredictorNet(width=16, depth=1)
    with torch.no_grad():
        model.out.weight.normal_()
    run = tmp_path / "runs" / "demo_run"
    run.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "step": 1234, "best": 0.95, "opt": {}}, run / "last.pt")
    out = snapshot.write_snapshot(run)
    assert out == tmp_path / "checkpoints" / "demo_run.pt"
    fresh = BlockPredictorNet(width=16, depth=1)
    info = snapshot.load_snapshot("demo_run", fresh)
    assert info is not None
    assert info["step"] == 1234
    assert info["best"] == 0.95
    for name, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], value, rtol=1e-3, atol=1e-3)
    assert snapshot.load_snapshot("no_such_run", fresh) is None


def test_a_missing_init_snapshot_is_refused_with_the_command_that_restores_it(tmp_path, monkeypatch) -> None:
    """Snapshots of finished runs live in git history only; a config that starts from one stops with the
    git command that brings it back, instead of training from scratch."""
    import pytest

    from export.training import train_deblocker, train_predictor

    monkeypatch.setattr(snapshot, "SNAPSHOTS", tmp_path / "checkpoints")
    monkeypatch.chdir(tmp_path)  # no runs/<name>/best.pt either
    hint = snapshot.restore_hint("deblock_v6")
    assert "git checkout $(git rev-list -n 1 HEAD -- export/checkpoints/deblock_v6.pt)^" in hint
    with pytest.raises(SystemExit, match=r"git checkout .*deblock_v6\.pt"):
        train_deblocker._warm_start(BlockPredictorNet(width=16, depth=1), "deblock_v6")
    with pytest.raises(SystemExit, match=r"git checkout .*predict_v1\.pt"):
        train_predictor.init_from(BlockPredictorNet(width=16, depth=1), "predict_v1")


def test_a_config_naming_a_retired_model_file_is_refused_with_the_command_that_restores_it(tmp_path, monkeypatch) -> None:
    """Finished runs' configs cut students from, and take int8 ranges from, shipped ONNX files; a model retired
    before release (dblk-6) is in git history only, and such a config says how to bring its file back."""
    import json

    import pytest

    from export.training import train_deblocker

    retired = {entry["id"] for entry in json.loads(Path("pillow_blockcnn/models/manifest.json").read_text())["retired"]}
    assert "dblk-6" in retired
    path = "pillow_blockcnn/models/dblk-6.onnx"
    assert not Path(path).exists()
    with pytest.raises(SystemExit, match=r"config 'prune.onnx': .*git checkout \$\(git rev-list -n 1 HEAD -- "
                       r"pillow_blockcnn/models/dblk-6\.onnx\)\^ -- pillow_blockcnn/models/dblk-6\.onnx"):
        train_deblocker._pruned_start(BlockPredictorNet(width=16, depth=1), {"onnx": path, "model": {}}, None)
    assert snapshot.require_model_file("pillow_blockcnn/models/dblk-9.onnx", "qat.ranges").endswith("dblk-9.onnx")
