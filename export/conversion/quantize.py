"""Float ONNX deblocker -> int8 (QDQ) ONNX deblocker for onnxruntime's CPU provider, calibrated on training crops.

Usage::

    python -m export.conversion.quantize --model runs/deblock_v3/best.onnx --out pillow_blockcnn/models/dblk-4.onnx

Why: the deblocker is compute-bound (90% of its time in Conv, at about the CPU's float throughput), so the
only ways to a faster model are fewer multiply-adds or cheaper ones. On a 2-core AVX2 machine (2026-12-01,
AMD EPYC) int8 convolutions run the BlockUNet 1.4x faster with the full-resolution layers kept in float, and
1.75x with everything quantised.

What stays float (``--keep-float``, by parameter-name prefix): the layers at half resolution next to the
pixels (``head``, ``enc1``, ``dec1``, ``tail``). They are a quarter of the multiply-adds, but they write the
restored detail itself: quantising some or all of them cost 0.02-0.06 dB of the 1.55 dB gain on the held-out
training crops, quantising only the 1/4 and 1/8 levels cost 0.007 dB (``results/quantization/quantization_dblk-3.md``).

How: static quantisation (activations' ranges calibrated once, so inference does no range search), weights
int8 per output channel with ``reduce_range`` (7-bit: onnxruntime's AVX2 u8s8 kernels add pairs of products in
int16, which 8-bit weights can overflow; 7-bit ones cannot, so every x86 kernel computes the same integers),
activations uint8 with the 99.999th-percentile range. Calibration inputs are batches of the training sampler
(the training split of ``--config``, never its held-out images and never the benchmarks), at the training
qualities, colour and gray.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx

from export.data.crops import CropSampler, SamplerConfig, list_images, load_rgb, split_holdout

KEEP_FLOAT = ("head", "enc1", "dec1", "tail")
CALIBRATION_SEED = 20261201
PERCENTILE = 99.999  # of each activation's histogram; 99.99-99.999 measured best (export/NOTES.md)


def calibration_batches(config: Path, n_batches: int, seed: int = CALIBRATION_SEED) -> list[np.ndarray]:
    """``n_batches`` batches of the training sampler of ``config`` (training split only), as network inputs:
    Pillow JPEGs, or the codec's own decodes for a config trained on a data pack (``data.pack``)."""
    cfg = json.loads(Path(config).read_text())
    data = cfg["data"]
    if "pack" in data:
        from export.data.bcnn_pack import PackSampler, load, merge_packs

        paths = [data["pack"]] if isinstance(data["pack"], str) else data["pack"]  # one pack or several, as the trainer
        packs = [load(Path(p)) for p in paths]
        sampler = PackSampler(packs[0] if len(packs) == 1 else merge_packs(packs), data["sampler"]["batch"], seed)
        return [sampler.batch(step)[0].numpy() for step in range(n_batches)]
    train, _ = split_holdout(list_images(Path(data["root"])), data["n_val"], data["split_seed"])
    sampler = CropSampler([load_rgb(f) for f in train], SamplerConfig(**data["sampler"]), seed)
    return [sampler.batch(step)[0].numpy() for step in range(n_batches)]


def float_nodes(model: onnx.ModelProto, modules: Iterable[str]) -> list[str]:
    """Names of the Conv/ConvTranspose nodes whose weight belongs to one of ``modules`` (by parameter-name
    prefix); a module with no convolution in ``model`` is an error, not a silent no-op."""
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose") and len(n.input) > 1]
    owned = {m: [n.name for n in convs if n.input[1].startswith(f"{m}.")] for m in modules}
    missing = [m for m, nodes in owned.items() if not nodes]
    if missing:
        msg = f"--keep-float names modules with no convolution in the model: {missing}"
        raise ValueError(msg)
    return [name for nodes in owned.values() for name in nodes]


def quantize(src: Path, out: Path, batches: list[np.ndarray], keep_float: Iterable[str] = KEEP_FLOAT,
             percentile: float = PERCENTILE) -> Path:
    """Write the int8 QDQ version of ``src`` to ``out`` (one file), keeping ``src``'s metadata and recording how
    it was quantised; convolutions of the ``keep_float`` modules stay float."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    keep_float = tuple(keep_float)
    proto = onnx.load(str(src))
    excluded = float_nodes(proto, keep_float)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {proto.graph.input[0].name: x}

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                        calibrate_method=CalibrationMethod.Percentile, op_types_to_quantize=["Conv", "ConvTranspose"],
                        nodes_to_exclude=excluded, extra_options={"CalibPercentile": percentile})
    q = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    meta["precision"] = ("int8 QDQ: weights per channel (7-bit range), activations uint8 "
                         f"({percentile:g}th-percentile calibration, {sum(len(b) for b in batches)} training crops); "
                         f"float: {', '.join(keep_float)}")
    del q.metadata_props[:]
    for key, value in meta.items():
        entry = q.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(q)
    onnx.save(q, str(out))
    return out


def weights_only(src: Path, quantized: Path, out: Path) -> Path:
    """``src`` with the weights of every convolution ``quantized`` runs in int8 replaced by their dequantised
    int8 values, activations left float: what int8 weights alone cost, so that a quantised model's loss can be
    split into its weight and activation parts (``export/NOTES.md``, "int8 quantisation")."""
    from onnx import numpy_helper

    q = onnx.load(str(quantized))
    arrays = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    dequantised = {}
    for node in q.graph.node:
        w = arrays.get(node.input[0])
        if node.op_type == "DequantizeLinear" and w is not None and w.dtype == np.int8:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [1] * w.ndim
            shape[axis] = -1
            dequantised[node.input[0].removesuffix("_quantized")] = w.astype(np.float32) * arrays[node.input[1]].reshape(shape)
    model = onnx.load(str(src))
    names = {i.name for i in model.graph.initializer}
    if not dequantised or not set(dequantised) <= names:
        msg = (
            f"{quantized} is not an int8 QDQ version of {src}: its int8 weights "
                         f"{sorted(set(dequantised) - names)[:3] or 'are missing'} have no float counterpart"
        )
        raise ValueError(msg)
    for init in model.graph.initializer:
        if init.name in dequantised:
            init.CopyFrom(numpy_helper.from_array(dequantised[init.name].astype(np.float32), init.name))
    onnx.save(model, str(out))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="float ONNX deblocker (export.conversion.export_onnx)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", type=Path, default=Path("export/configs/deblock/deblock_v1.json"),
                    help="training config whose training split and sampler give the calibration crops")
    ap.add_argument("--batches", type=int, default=4, help="calibration batches of the config's sampler")
    ap.add_argument("--keep-float", default=",".join(KEEP_FLOAT),
                    help="comma-separated module names whose convolutions stay float ('' for none)")
    ap.add_argument("--percentile", type=float, default=PERCENTILE, help="activation range: this percentile")
    ap.add_argument("--weights-only", type=Path, default=None, metavar="INT8",
                    help="instead: write --model with INT8's dequantised weights, activations float")
    args = ap.parse_args()
    if args.weights_only is not None:
        weights_only(args.model, args.weights_only, args.out)
        print(f"wrote {args.out}: {args.model} with the int8 weights of {args.weights_only}")
        return
    keep = [p for p in args.keep_float.split(",") if p]
    quantize(args.model, args.out, calibration_batches(args.config, args.batches), keep, args.percentile)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), float: {keep or 'none'}")


if __name__ == "__main__":
    main()
