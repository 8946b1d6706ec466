"""Quantisation-aware fine-tuning: train the deblocker through the rounding its int8 version will do.

Why: ``export.conversion.quantize`` costs about 0.006 dB of held-out Y gain, and 0.005 of it is the rounding of the
activations, which no calibration setting takes back (``results/interim/quantization_parts_deblock_v4.md``).
A network that has seen that rounding during training can learn to be insensitive to it.

What is simulated is what onnxruntime's QDQ graph from ``export.conversion.quantize`` computes. For every Conv /
ConvTranspose outside ``keep_float``: its weights rounded to int8 per output channel in the 7-bit range
(symmetric, scale max|w|/64); its input tensor rounded to uint8 (asymmetric, per tensor) *for every consumer of
that tensor*, because onnxruntime inserts one shared Quantize/Dequantize pair, so a residual block's skip
connection adds the rounded value too; its output rounded to uint8 the same way. The graph is the model traced
by ``torch.fx`` (it shares the model's modules and parameters); rounding has a straight-through gradient
(``torch.ao.quantization.FakeQuantize``).

Activation ranges are either read from an int8 model ``export.conversion.quantize`` made of the starting weights
(``load_onnx_ranges``: its percentile-calibrated scales and zero points, frozen, so training rounds exactly
where onnxruntime will) or moving averages of each tensor's min/max over training batches. They never move in
eval mode, so validation images never touch them. The model's own state dict stays the plain float model's:
``best.pt`` is exported and quantised like any other checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn
from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver
from torch.nn import functional as F


class _ActivationQuant(nn.Module):
    """uint8 fake quantisation of one tensor; its range learns only in training mode and unless frozen."""

    def __init__(self) -> None:
        super().__init__()
        self.fq = FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8,
                               qscheme=torch.per_tensor_affine)
        self.register_buffer("frozen", torch.zeros(1, dtype=torch.uint8))

    def freeze(self, scale: float, zero_point: int) -> None:
        self.fq.scale.copy_(torch.tensor([scale]))
        self.fq.zero_point.copy_(torch.tensor([zero_point], dtype=torch.int32))
        self.frozen.fill_(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.fq.observer_enabled[0] = int(self.training and not self.frozen.item())
        return self.fq(x)


def _weight_fq(ch_axis: int) -> FakeQuantize:
    # averaging_constant 1: the range of the weights as they are now, as the exported model will have them
    return FakeQuantize(observer=MovingAveragePerChannelMinMaxObserver, averaging_constant=1.0, quant_min=-64,
                        quant_max=64, dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=ch_axis)


class _QuantConv(nn.Module):
    """A convolution of the model run with fake-quantised weights (the module itself, not a copy)."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d) -> None:
        super().__init__()
        self.conv = conv
        self.wq = _weight_fq(1 if isinstance(conv, nn.ConvTranspose2d) else 0)  # output channels, as onnxruntime

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, w = self.conv, self.wq(self.conv.weight)
        if isinstance(c, nn.ConvTranspose2d):
            return F.conv_transpose2d(x, w, c.bias, c.stride, c.padding, c.output_padding, c.groups, c.dilation)
        return c._conv_forward(x, w, c.bias)


class FakeQuantized(nn.Module):
    """``model`` as its int8 QDQ version computes it; call it instead of ``model`` to train or validate."""

    def __init__(self, model: nn.Module, keep_float: Iterable[str]) -> None:
        super().__init__()
        keep = tuple(keep_float)
        modules = dict(model.named_modules())
        unknown = [k for k in keep if not any(_within(n, (k,)) for n in modules)]
        if unknown:
            msg = f"qat keep_float names modules the model does not have: {unknown}"
            raise ValueError(msg)
        self.convs = [n for n, m in modules.items()
                      if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and not _within(n, keep)]
        if not self.convs:
            msg = "qat: every convolution is kept float, nothing would be quantised"
            raise ValueError(msg)
        gm = fx.symbolic_trace(model)
        graph = gm.graph
        quantised: dict[fx.Node, fx.Node] = {}

        def quantise(node: fx.Node) -> fx.Node:
            """The rounded version of ``node``'s tensor, inserted once and used by all its consumers."""
            if node in quantised.values():  # already the rounded tensor (it feeds a second convolution)
                return node
            if node not in quantised:
                name = f"act{len(quantised)}"
                gm.add_submodule(name, _ActivationQuant())
                with graph.inserting_after(node):
                    q = graph.call_module(name, (node,))
                node.replace_all_uses_with(q, delete_user_cb=lambda user: user is not q)
                quantised[node] = q
            return quantised[node]

        self.inputs: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        for node in list(graph.nodes):
            if node.op != "call_module" or node.target not in self.convs:
                continue
            conv, node.target = str(node.target), f"q_{str(node.target).replace('.', '_')}"
            gm.add_submodule(node.target, _QuantConv(modules[conv]))
            self.inputs[conv] = str(quantise(node.args[0]).target)
            self.outputs[conv] = str(quantise(node).target)
        graph.lint()
        gm.recompile()
        self.graph_module = gm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph_module(x)

    def load_onnx_ranges(self, int8_model: str | Path) -> None:
        """Take every quantised convolution's input and output scale and zero point from ``int8_model`` (a QDQ
        model of the same weights, from ``export.conversion.quantize`` with the same ``keep_float``) and freeze them."""
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(str(int8_model)).graph
        arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        producer = {o: n for n in graph.node for o in n.output}
        quantizer = {n.input[0]: n for n in graph.node if n.op_type == "QuantizeLinear"}
        found = set()
        for node in graph.node:
            weight = producer.get(node.input[1]) if node.op_type in ("Conv", "ConvTranspose") else None
            name = weight.input[0].removesuffix(".weight_quantized") if weight is not None else None
            dq_in = producer.get(node.input[0]) if name in self.inputs else None
            if dq_in is None or dq_in.op_type != "DequantizeLinear" or node.output[0] not in quantizer:
                continue
            for act, qdq in ((self.inputs[name], dq_in), (self.outputs[name], quantizer[node.output[0]])):
                getattr(self.graph_module, act).freeze(float(arrays[qdq.input[1]]), int(arrays[qdq.input[2]]))
            found.add(name)
        missing = sorted(set(self.convs) - found)
        if missing:
            msg = (
                f"{int8_model} has no int8 ranges for {missing[:3]}: quantise the starting weights "
                             "with export.conversion.quantize and the same keep_float"
            )
            raise ValueError(msg)

    def quant_state(self) -> dict[str, Any]:
        """The ranges (and whether each is frozen), for ``last.pt``: a resumed run rounds where it left off."""
        return {k: v for k, v in self.graph_module.state_dict().items() if _is_quant_key(k)}

    def load_quant_state(self, state: dict[str, Any]) -> None:
        missing, unexpected = self.graph_module.load_state_dict(state, strict=False)
        if unexpected or any(_is_quant_key(k) for k in missing):
            msg = "the checkpoint's fake-quantisers do not match this model's quantised convolutions"
            raise ValueError(msg)


def _within(name: str, modules: tuple[str, ...]) -> bool:
    """``name`` is one of ``modules`` or inside one (by module-name prefix, as ``export.conversion.quantize`` matches)."""
    return any(name == m or name.startswith(f"{m}.") for m in modules)


def _is_quant_key(key: str) -> bool:
    """A state-dict key of the fake-quantisers (not of the model weights ``_QuantConv`` shares)."""
    return key.startswith(("act", "q_")) and not key.endswith((".conv.weight", ".conv.bias"))
