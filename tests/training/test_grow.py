"""A run grown from a shipped model starts at exactly that model's output."""

from __future__ import annotations

import pytest
import torch

from export.networks.deblocker import BlockUNet
from export.training import train_deblocker


def test_added_residual_blocks_start_as_the_identity(monkeypatch) -> None:
    torch.manual_seed(0)
    shipped = BlockUNet(ch=(8, 16, 24), enc_blocks=(1, 1, 2), dec_blocks=(1, 1))
    with torch.no_grad():
        shipped.tail.weight.normal_(std=0.1)  # a trained tail, so the output is not the input
    monkeypatch.setattr(train_deblocker, "read_state_dict", lambda path: shipped.state_dict())
    monkeypatch.setattr(train_deblocker, "require_model_file", lambda path, key: path)
    grown = BlockUNet(ch=(8, 16, 24), enc_blocks=(1, 1, 4), dec_blocks=(1, 1))
    record = train_deblocker._grown_start(grown, {"onnx": "shipped.onnx"})
    assert record["new_blocks"] == ["enc3.2", "enc3.3"]
    x = torch.rand(2, 4, 32, 48)
    with torch.no_grad():
        assert torch.equal(grown(x), shipped(x))
        assert grown.enc3[2].c1.weight.abs().sum() > 0  # the new blocks can learn: only their output is zero

    wider = BlockUNet(ch=(8, 16, 32), enc_blocks=(1, 1, 4), dec_blocks=(1, 1))
    with pytest.raises(RuntimeError, match="size mismatch"):
        train_deblocker._grown_start(wider, {"onnx": "shipped.onnx"})
