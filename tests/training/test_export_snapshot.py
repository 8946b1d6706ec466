"""Committed float16 snapshots restore a run's weights and its place in the schedule."""

from __future__ import annotations

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
