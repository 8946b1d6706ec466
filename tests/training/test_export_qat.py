"""Quantisation-aware training computes what onnxruntime's int8 model computes, and changes nothing else: the
model's state dict stays the float model's, validation never moves the ranges, gradients pass the rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.conversion import quantize as qz
from export.conversion.export_onnx import export_model, make_session
from export.data.crops import degrade
from export.networks.deblocker import BlockUNet
from export.training.qat import FakeQuantized


def _model() -> BlockUNet:
    torch.manual_seed(0)
    model = BlockUNet(ch=(8, 16, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model


def _batches(sample, qualities=(10, 30, 50)) -> list[np.ndarray]:
    rgb = np.asarray(sample.convert("RGB"))
    crops = [rgb[y : y + 64, x : x + 64] for y in (0, 128, 256) for x in (0, 192)]
    return [np.stack([degrade(c, q, gray=False)[0] for c in crops]) for q in qualities]


def _act_scales(qat: FakeQuantized) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in qat.graph_module.state_dict().items() if k.startswith("act") and k.endswith("fq.scale")}


def test_wrapping_keeps_the_float_model_and_quantises_only_outside_keep_float() -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    qat = FakeQuantized(model, ("head", "enc1", "dec1", "tail"))
    assert model.state_dict().keys() == before.keys()
    assert {"down1", "up2", "enc2.0.c1", "block_in"} <= set(qat.convs)
    assert not any(n.split(".")[0] in ("head", "enc1", "dec1", "tail") for n in qat.convs)
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        assert not torch.equal(qat.eval()(x), model.eval()(x))  # it rounds
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="does not have"):
        FakeQuantized(_model(), ("head", "decoder9"))


def test_weights_round_per_output_channel_as_onnxruntime_does(sample) -> None:
    model = _model()
    qat = FakeQuantized(model, ("head", "tail"))
    qat.train()(torch.from_numpy(_batches(sample)[0]))
    for name, axis in (("down1", 0), ("up1", 1)):  # Conv: weight (out, in, k, k); ConvTranspose: (in, out, k, k)
        w = dict(model.named_modules())[name].weight.detach()
        other = tuple(d for d in range(w.ndim) if d != axis)
        wq = getattr(qat.graph_module, f"q_{name}").wq
        assert torch.allclose(wq.scale, w.abs().amax(dim=other) / 64)


def test_validation_does_not_move_the_ranges_and_training_does(sample) -> None:
    qat = FakeQuantized(_model(), ("head", "tail"))
    x = [torch.from_numpy(b) for b in _batches(sample)]
    qat.train()(x[0])
    before = _act_scales(qat)
    with torch.no_grad():
        qat.eval()(x[1] * 3)
    assert all(torch.equal(v, before[k]) for k, v in _act_scales(qat).items())
    qat.train()(x[1] * 3)
    assert any(not torch.equal(v, before[k]) for k, v in _act_scales(qat).items())


def test_gradients_reach_the_float_weights_through_the_rounding() -> None:
    model = _model()
    FakeQuantized(model, ("head", "tail")).train()(torch.rand(2, 4, 32, 32)).square().mean().backward()
    assert model.enc3[0].c1.weight.grad is not None
    assert model.enc3[0].c1.weight.grad.abs().sum() > 0


def test_with_onnxruntimes_ranges_it_computes_what_the_int8_model_computes(tmp_path, sample) -> None:
    model = _model().eval()
    batches = _batches(sample)
    f = export_model(model, tmp_path / "f.onnx", {"task": "deblock"})
    q = qz.quantize(f, tmp_path / "q.onnx", batches, keep_float=("head", "tail"))
    x = batches[1][:2]
    int8 = make_session(q).run(["y"], {"x": x})[0]
    qat = FakeQuantized(model, ("head", "tail"))
    qat.load_onnx_ranges(q)
    with torch.no_grad():
        flt = model(torch.from_numpy(x)).numpy()
        qat.train()(torch.from_numpy(batches[0] * 3))  # frozen: training batches no longer move them
        sim = qat.eval()(torch.from_numpy(x)).numpy()
    # 5x closer measured (2026-12-02); what is left is rounding flips near ties, amplified downstream
    assert np.abs(sim - int8).mean() < 0.3 * np.abs(flt - int8).mean()
    fresh = FakeQuantized(_model(), ("head", "tail"))
    fresh.load_quant_state(qat.quant_state())  # what last.pt carries
    with torch.no_grad():
        assert np.array_equal(fresh.eval()(torch.from_numpy(x)).numpy(), sim)
    with pytest.raises(ValueError, match="no int8 ranges"):
        FakeQuantized(_model(), ("head",)).load_onnx_ranges(q)  # tail is float in q
