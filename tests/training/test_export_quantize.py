"""int8 quantisation of a deblocker: calibrated on the training split only, the named layers left in float, the
result close to the float network and carrying the float model's metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from export.conversion import quantize as qz
from export.conversion.export_onnx import export_model, make_session
from export.data.crops import degrade, list_images, split_holdout
from export.networks.deblocker import BlockUNet


@pytest.fixture(scope="module")
def float_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = BlockUNet(ch=(8, 16, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return export_model(model.eval(), tmp_path_factory.mktemp("q") / "f.onnx", {"task": "deblock"})


def _inputs(sample, qualities=(10, 30, 50, 80)) -> list[np.ndarray]:
    rgb = np.asarray(sample.convert("RGB"))
    crops = [rgb[y : y + 64, x : x + 64] for y in (0, 128, 256) for x in (0, 192, 384)]
    return [np.stack([degrade(c, q, gray=False)[0] for c in crops]) for q in qualities]


def test_quantized_model_is_close_to_the_float_one_and_keeps_named_layers_float(tmp_path, float_model, sample):
    out = qz.quantize(float_model, tmp_path / "q.onnx", _inputs(sample), keep_float=("head", "tail"))
    proto = onnx.load(str(out))
    ops = [n.op_type for n in proto.graph.node]
    assert "QuantizeLinear" in ops
    assert "DequantizeLinear" in ops
    produced_by_dq = {o for n in proto.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    initializers = {i.name for i in proto.graph.initializer}
    convs = {n.name: n for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")}
    float_convs = [n for n in convs.values() if n.input[1] in initializers]
    assert sorted(n.input[1] for n in float_convs) == ["head.weight", "tail.weight"]
    assert all(n.input[1] in produced_by_dq for n in convs.values() if n not in float_convs)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["task"] == "deblock"
    assert "int8" in meta["precision"]
    assert "head, tail" in meta["precision"]

    x = _inputs(sample, qualities=(20,))[0][:2]
    ref = make_session(float_model).run(["y"], {"x": x})[0]
    got = make_session(out).run(["y"], {"x": x})[0]
    residual = np.abs(ref - x[:, :3]).mean()  # what the network changes
    assert np.abs(got - ref).mean() < 0.1 * residual
    assert not np.array_equal(got, ref)  # it really is another computation


def test_unknown_float_module_is_refused(tmp_path, float_model, sample):
    with pytest.raises(ValueError, match="no convolution"):
        qz.quantize(float_model, tmp_path / "q.onnx", _inputs(sample)[:1], keep_float=("head", "decoder9"))


def test_calibration_crops_come_from_the_training_split_only(tmp_path, sample, monkeypatch):
    root = tmp_path / "train"
    root.mkdir()
    for i in range(6):
        sample.crop((i * 20, 0, i * 20 + 96, 80)).save(root / f"img{i}.png")
    sampler = {"crop": 32, "batch": 3, "gray_prob": 0.5, "q_min": 5, "q_split": 50, "q_max": 95, "low_q_prob": 0.8}
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": {"root": str(root), "n_val": 2, "split_seed": 3, "sampler": sampler}}))
    loaded: list[str] = []
    real_load = qz.load_rgb
    monkeypatch.setattr(qz, "load_rgb", lambda p: loaded.append(Path(p).name) or real_load(p))
    batches = qz.calibration_batches(config, 2)
    train, val = split_holdout(list_images(root), 2, 3)
    assert sorted(loaded) == sorted(p.name for p in train)
    assert not {p.name for p in val} & set(loaded)
    assert [b.shape for b in batches] == [(3, 4, 32, 32)] * 2
    np.testing.assert_array_equal(batches[1], qz.calibration_batches(config, 2)[1])  # reproducible


def test_calibration_reads_one_pack_or_several_as_the_trainer(tmp_path, sample):
    from tests.training.test_restoration_data import _tiny_pack

    one, two = _tiny_pack(tmp_path / "a.npz", sample), _tiny_pack(tmp_path / "b.npz", sample)
    for pack in (str(one), [str(one), str(two)]):
        config = tmp_path / "c.json"
        config.write_text(json.dumps({"data": {"pack": pack, "sampler": {"batch": 3}}}))
        batches = qz.calibration_batches(config, 2)
        assert [b.shape[:2] for b in batches] == [(3, 4)] * 2  # Y, Cb, Cr and the quality plane
        np.testing.assert_array_equal(batches[1], qz.calibration_batches(config, 2)[1])


def test_weights_only_model_carries_the_int8_weights_and_float_activations(tmp_path, float_model, sample):
    from onnx import numpy_helper

    q = qz.quantize(float_model, tmp_path / "q.onnx", _inputs(sample), keep_float=("head", "tail"))
    w = qz.weights_only(float_model, q, tmp_path / "w.onnx")
    before = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(float_model)).graph.initializer}
    after = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(w)).graph.initializer}
    qarrays = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(q)).graph.initializer}
    assert np.array_equal(after["head.weight"], before["head.weight"])  # kept float: untouched
    name = next(n for n in before if n.endswith(".weight") and f"{n}_quantized" in qarrays)
    scale = qarrays[f"{name}_scale"].reshape(-1, *[1] * (before[name].ndim - 1))
    assert np.allclose(after[name], qarrays[f"{name}_quantized"] * scale)
    assert not np.array_equal(after[name], before[name])
    assert np.abs(after[name] - before[name]).max() <= scale.max() / 2 + 1e-7  # rounding, nothing else
    assert [n.op_type for n in onnx.load(str(w)).graph.node] == [n.op_type for n in onnx.load(str(float_model)).graph.node]


def test_weights_only_refuses_a_model_that_is_not_int8(tmp_path, float_model):
    with pytest.raises(ValueError, match="not an int8 QDQ version"):
        qz.weights_only(float_model, float_model, tmp_path / "w.onnx")


def test_calibration_percentile_sets_the_activation_ranges_and_is_recorded(tmp_path, float_model, sample):
    from onnx import numpy_helper

    def input_scale(path: Path) -> float:
        arrays = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
        return float(max(v for k, v in arrays.items() if k.endswith("_scale") and v.ndim == 0 and "weight" not in k))

    batches = _inputs(sample)
    wide = qz.quantize(float_model, tmp_path / "a.onnx", batches, keep_float=("head", "tail"))
    narrow = qz.quantize(float_model, tmp_path / "b.onnx", batches, keep_float=("head", "tail"), percentile=99.0)
    assert input_scale(narrow) < input_scale(wide)
    meta = {p.key: p.value for p in onnx.load(str(narrow)).metadata_props}
    assert "99th-percentile" in meta["precision"]
