"""An integer-exact block predictor (the candidate for ``pred-2``), trained with quantisation in the loop.

Why: a float predictor inside the closed reconstruction loop rounds differently on other machines, and the
loop spreads a single flipped pixel over later blocks (docs/FORMAT.md §10). This network computes only with
small integers: its arithmetic is exact in float32 (every partial sum stays below 2^24, checked by
:func:`accumulator_bound`), so summation order, SIMD width, FMA, thread count and provider cannot change a
prediction; a plain integer implementation (``tests/int_reference.py``) reproduces it bit for bit.

The arithmetic, in integers (the decoder's definition; ``export.conversion.export_int_predictor`` writes it
as an ONNX graph of Gemm with weights scaled by powers of two, Floor and Clip):

* ``base``: the rounded mean of the 8 pixels above the block (context row 7, columns 8..15) when the block
  above exists, and of the 8 to its left (rows 8..15, column 7) when that exists: ``(sum + n/2) >> log2(n)``
  with n = 8 or 16; 128 when neither exists.
* ``x`` (262 integers): the 4 neighbour blocks (above-left, above, above-right, left; 64 pixels each, row
  major) minus ``base``, 0 where the neighbour does not exist; then 127 x each availability flag, the quality
  (1..100) and 127 x the chroma flag.
* each layer: ``acc = W @ a + B`` (``W`` int8, ``B`` int32), then ``a' = (acc + 2^(s-1)) >> s`` (an arithmetic
  shift, i.e. floor; ``acc << -s`` when s < 0, ``acc`` when s = 0); hidden layers clip ``a'`` to 0..127.
* the block: ``clip(base + a_last, 0, 255)``.

A **luma-guided** network (``guide=True``; docs/FORMAT.md §5.3) takes 320 more integers after those 262: the
guide window of :mod:`pillow_blockcnn.codec.guide` (the decoded luma at chroma resolution: above-left, above,
above-right, left and the co-located block, 64 each, row major) minus ``gbase``, the rounded mean of the
co-located block ``(sum + 32) >> 6``; 0 for a neighbour that is not available, and all 0 for a luma or gray
plane. The first 262 inputs are the unguided network's, so a guided network starts from an unguided one with
zero weights on the new inputs (:func:`widen_for_guide`).

Training keeps float weights and rounds where the integers will (straight-through gradients): weights to
int8 with a power-of-two scale per layer, biases to the accumulator's step, activations to 7 bits with a
power-of-two step per layer calibrated on the first batch. Because every scale is a power of two and every
sum is exact, the float32 forward in eval mode *is* the integer computation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = [
    "GUIDE_INPUTS",
    "INPUTS",
    "IntPredictorNet",
    "IntegerLayer",
    "accumulator_bound",
    "centred_guide",
    "centred_inputs",
    "widen_for_guide",
]

#: 4 neighbour blocks of 64 pixels, then availability x4, quality, chroma flag.
INPUTS = 4 * 64 + 6
#: A luma-guided network's extra inputs: 5 guide blocks of 64 pixels.
GUIDE_INPUTS = 5 * 64
#: Hidden activations are 7-bit unsigned: 0..ACT_MAX.
ACT_MAX = 127
#: int8 weights, symmetric.
WEIGHT_MAX = 127
#: float32 represents every integer below this exactly.
EXACT_LIMIT = 2**24


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    """floor(x + 0.5) forward, identity backward."""
    return x + (torch.floor(x + 0.5) - x).detach()


def centred_inputs(context: torch.Tensor, info: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x [N, 262] integer-valued, base [N] integer-valued) from the codec's inputs (``context`` /255,
    ``info`` = availability x4, quality/100, chroma flag): the definition in the module docstring."""
    pixels = torch.round(context * 255.0)
    avail = info[:, :4].round()
    top, left = avail[:, 1], avail[:, 3]
    total = pixels[:, 7, 8:16].sum(1) * top + pixels[:, 8:16, 7].sum(1) * left
    n = 8 * (top + left)
    shift = torch.where(n > 8, 4.0, 3.0)
    base = torch.where(n > 0, torch.floor((total + n / 2) / 2**shift), torch.full_like(n, 128.0))
    blocks = torch.stack(
        [pixels[:, 0:8, 0:8], pixels[:, 0:8, 8:16], pixels[:, 0:8, 16:24], pixels[:, 8:16, 0:8]], dim=1
    )
    centred = (blocks - base[:, None, None, None]) * avail[:, :, None, None]
    quality = torch.round(info[:, 4:5] * 100.0)
    x = torch.cat([centred.reshape(-1, 256), avail * ACT_MAX, quality, info[:, 5:6].round() * ACT_MAX], dim=1)
    return x, base


def centred_guide(guide: torch.Tensor, info: torch.Tensor) -> torch.Tensor:
    """The guide inputs [N, 320] (integer-valued) from guide windows ``guide`` [N, 16, 24] / 255 and the
    codec's ``info``: the definition in the module docstring."""
    pixels = torch.round(guide * 255.0)
    avail = info[:, :4].round()
    chroma = info[:, 5].round()
    own = pixels[:, 8:16, 8:16]
    gbase = torch.floor((own.sum((1, 2)) + 32) / 64)
    blocks = torch.stack(
        [pixels[:, 0:8, 0:8], pixels[:, 0:8, 8:16], pixels[:, 0:8, 16:24], pixels[:, 8:16, 0:8], own], dim=1
    )
    mask = torch.cat([avail, torch.ones_like(avail[:, :1])], dim=1) * chroma[:, None]
    return ((blocks - gbase[:, None, None, None]) * mask[:, :, None, None]).reshape(-1, GUIDE_INPUTS)


class IntegerLayer(nn.Module):
    """A linear layer whose weights, bias and output are rounded to the integers the decoder computes with.

    ``in_exp``/``out_exp``: an activation's float value is its integer times 2^exp. The weight exponent
    ``k`` (float weight = int / 2^k) is the largest that keeps every weight within ±127.
    """

    def __init__(self, fin: int, fout: int, in_exp: int, last: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(fin, fout)
        self.in_exp = in_exp
        self.last = last
        self.register_buffer("out_exp", torch.tensor(0 if last else -100, dtype=torch.int64))  # -100: uncalibrated

    def weight_exp(self) -> int:
        peak = float(self.linear.weight.detach().abs().max())
        return math.floor(math.log2(WEIGHT_MAX / peak)) if peak > 0 else 0

    def integers(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(W int8 [fout, fin], B int64 [fout], shift s): the layer as the decoder computes it."""
        k = self.weight_exp()
        w = torch.clamp(torch.floor(self.linear.weight.detach() * 2.0**k + 0.5), -WEIGHT_MAX, WEIGHT_MAX)
        b = torch.floor(self.linear.bias.detach() * 2.0 ** (k - self.in_exp) + 0.5)
        shift = int(self.out_exp) - self.in_exp + k
        return w.numpy().astype(np.int64), b.numpy().astype(np.int64), shift

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        k = self.weight_exp()
        w = torch.clamp(_round_ste(self.linear.weight * 2.0**k), -WEIGHT_MAX, WEIGHT_MAX) * 2.0**-k
        acc_step = 2.0 ** (self.in_exp - k)
        b = _round_ste(self.linear.bias / acc_step) * acc_step
        y = a @ w.T + b
        if int(self.out_exp) == -100:  # calibrate: the output step that puts the 99.9th percentile near the top
            peak = float(torch.quantile(y.detach().clamp(min=0).flatten()[:200_000], 0.999)) or 1.0
            self.out_exp.fill_(math.ceil(math.log2(peak / ACT_MAX)))
        step = 2.0 ** int(self.out_exp)
        q = _round_ste(y / step)
        if not self.last:
            q = torch.clamp(q, 0, ACT_MAX)
        return q * step


@dataclass(frozen=True)
class _Spec:
    width: int
    depth: int


class IntPredictorNet(nn.Module):
    """262 integers -> ``depth`` hidden layers of ``width`` 7-bit activations -> 64 pixel offsets from ``base``.

    The same ``forward(context, info)`` as :class:`export.networks.predictor.BlockPredictorNet`, so the same
    trainer and closed-loop validation train it.
    """

    def __init__(self, width: int = 384, depth: int = 3, guide: bool = False) -> None:
        super().__init__()
        self.spec = _Spec(width, depth)
        self.guide = guide
        layers = [IntegerLayer(INPUTS + (GUIDE_INPUTS if guide else 0), width, in_exp=0)]
        for _ in range(depth - 1):
            layers.append(IntegerLayer(width, width, in_exp=0))  # in_exp fixed up once calibrated
        layers.append(IntegerLayer(width, 64, in_exp=0, last=True))
        self.layers = nn.ModuleList(layers)
        nn.init.zeros_(self.layers[-1].linear.weight)  # starts as "predict the border mean"
        nn.init.zeros_(self.layers[-1].linear.bias)
        with torch.no_grad():
            self.layers[-1].linear.weight.normal_(0, 1e-4)  # a non-zero peak, so its weight exponent is defined

    def _chain_exponents(self) -> None:
        for prev, layer in zip(self.layers[:-1], self.layers[1:], strict=True):
            layer.in_exp = int(prev.out_exp)

    def offsets(
        self, context: torch.Tensor, info: torch.Tensor, guide: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the last layer's output [N, outputs], ``base`` [N]): what :meth:`forward` adds up into blocks. A
        network whose last layer is wider (several predictions per block, ``export.studies.multi_hypothesis``)
        shapes the output its own way. ``guide``: a luma-guided network's guide windows [N, 16, 24] / 255
        (``None``: all luma planes)."""
        x, base = centred_inputs(context, info)
        if self.guide:
            extra = centred_guide(guide, info) if guide is not None else x.new_zeros(len(x), GUIDE_INPUTS)
            x = torch.cat([x, extra], dim=1)
        a = x
        for layer in self.layers:
            a = layer(a)
            self._chain_exponents()
        return a, base

    def forward(self, context: torch.Tensor, info: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """``guide``: a luma-guided network's guide windows [N, 16, 24] / 255 (``None``: all luma planes)."""
        a, base = self.offsets(context, info, guide)
        return base[:, None, None] + a.reshape(-1, 8, 8)

    def integer_layers(self) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """Every layer's (W, B, shift), first to last."""
        self._chain_exponents()
        return [layer.integers() for layer in self.layers]


def widen_for_guide(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An unguided network's state dict as a guided one's: zero weights on the guide inputs, so the guided
    network starts by predicting exactly what the unguided one does."""
    state = dict(state)
    w = state["layers.0.linear.weight"]
    state["layers.0.linear.weight"] = torch.cat([w, w.new_zeros(w.shape[0], GUIDE_INPUTS)], dim=1)
    return state


def accumulator_bound(layers: list[tuple[np.ndarray, np.ndarray, int]]) -> int:
    """The largest |acc| any layer can reach for any input: the proof that float32 computes it exactly
    (must be below 2^24). Inputs are bounded by 255 (centred pixels and the quality), hidden activations by
    127, and each layer's bound uses the previous layer's largest possible output. The rounding half
    ``2^(s-1)``, which the graph adds with the bias, counts too."""
    worst, peak = 0, 255
    for i, (w, b, shift) in enumerate(layers):
        acc = int((np.abs(w).sum(axis=1) * peak + np.abs(b)).max()) + (1 << (shift - 1) if shift > 0 else 0)
        worst = max(worst, acc)
        peak = ACT_MAX if i < len(layers) - 1 else (acc >> max(shift, 0)) + 1
    return worst
