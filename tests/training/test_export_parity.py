"""ONNX export of the deblocking network: one self-contained file, dynamic N/H/W, matches torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch

from export.conversion.export_onnx import export_model, make_session, parity_check
from export.networks.deblocker import BlockCNN, BlockUNet, FlipEnsemble


def _random_unet() -> BlockUNet:
    torch.manual_seed(0)
    model = BlockUNet(ch=(8, 16, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1))
    for p in model.parameters():  # the tail is zero-initialised; make the whole net non-trivial
        torch.nn.init.normal_(p, std=0.1)
    return model.eval()


def test_unet_export_parity(tmp_path: Path) -> None:
    model = _random_unet()
    path = export_model(model, tmp_path / "m.onnx", {"task": "deblock", "pad_multiple": "8"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no external .data file
    proto = onnx.load(str(path))
    assert {p.key: p.value for p in proto.metadata_props}["task"] == "deblock"
    assert [i.name for i in proto.graph.input] == ["x"]
    assert [o.name for o in proto.graph.output] == ["y"]
    assert parity_check(model, path, shapes=((1, 32, 48), (3, 56, 24))) < 1e-4


def test_flip_ensemble_exports_and_commutes_with_mirroring(tmp_path: Path) -> None:
    net = _random_unet()
    model = FlipEnsemble(net).eval()
    path = export_model(model, tmp_path / "e.onnx")
    assert parity_check(model, path, shapes=((1, 32, 48), (2, 24, 40))) < 1e-4
    x = torch.rand(1, 4, 32, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y, y_mirror, single = model(x), model(x.flip(3)), net(x)
    torch.testing.assert_close(y_mirror, y.flip(3), atol=1e-5, rtol=0)  # the ensemble has no left or right
    assert not torch.allclose(y, single, atol=1e-3)  # and it is not the single network


def test_unet_onnx_loads_from_bytes(tmp_path: Path) -> None:
    import onnxruntime as ort

    path = export_model(_random_unet(), tmp_path / "m.onnx")
    sess = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
    y = sess.run(["y"], {"x": np.zeros((1, 4, 16, 40), np.float32)})[0]
    assert y.shape == (1, 3, 16, 40)
    assert make_session(path).get_providers() == ["CPUExecutionProvider"]


def test_blockcnn_batchnorm_folded_export(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = BlockCNN(in_ch=4, ch=8, n_convs=1, n_blocks=1)
    model.train()
    model(torch.rand(4, 4, 24, 24))  # populate BN running statistics
    model.eval()
    x = torch.rand(2, 4, 24, 24)
    with torch.no_grad():
        ref = model(x).numpy()
    path = export_model(model, tmp_path / "b.onnx", sample_hw=(24, 24))
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "BatchNormalization" not in ops
    got = make_session(path).run(["y"], {"x": x.numpy()})[0]
    assert np.abs(ref - got).max() < 1e-4
