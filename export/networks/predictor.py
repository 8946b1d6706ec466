"""The block predictor: four decoded causal neighbours in, one 8x8 block out.

It is the paper's compression BlockCNN with the input restricted to what the
decoder has (above-left, above, above-right and left of the 24x24 window) and
sized for a CPU: a per-block network over full 24x24 feature maps costs
seconds per image here, so the neighbours are read as 256 numbers at block
resolution and mapped by a residual MLP (what a stride-8 "patchify" conv
followed by 1x1 layers computes). The prediction is made relative to the mean
of the pixels that border the block, so the network learns structure, not
brightness.

Interface (matches ``pillow_blockcnn/runtime/predictor.py``): ``context`` ``[N, 24, 24]``
in 0..1, ``info`` ``[N, 6]`` (availability x4, quality/100, chroma flag) ->
``block`` ``[N, 8, 8]`` in pixel units (0..255 scale, unrounded).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

INFO = 6


class _ResidualMLP(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.a = nn.Linear(width, width)
        self.b = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.leaky_relu(self.a(x), 0.1))


class BlockPredictorNet(nn.Module):
    """Causal block predictor; ``width`` and ``depth`` (residual MLP blocks) size it."""

    def __init__(self, width: int = 512, depth: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(4 * 64 + INFO, width)
        self.body = nn.Sequential(*[_ResidualMLP(width) for _ in range(depth)])
        self.out = nn.Linear(width, 64)
        nn.init.zeros_(self.out.weight)  # starts as "predict the border mean"
        nn.init.zeros_(self.out.bias)

    def forward(self, context: torch.Tensor, info: torch.Tensor) -> torch.Tensor:
        n = context.shape[0]
        avail = info[:, :4]
        top_row = context[:, 7, 8:16]  # last row of the block above
        left_col = context[:, 8:16, 7]  # last column of the block to the left
        weight_top, weight_left = avail[:, 1:2], avail[:, 3:4]
        total = 8 * (weight_top + weight_left)
        border = (top_row.sum(1, keepdim=True) * weight_top + left_col.sum(1, keepdim=True) * weight_left)
        base = torch.where(total > 0, border / total.clamp(min=1), torch.full_like(total, 0.5))  # [N, 1]
        blocks = torch.stack(
            [context[:, 0:8, 0:8], context[:, 0:8, 8:16], context[:, 0:8, 16:24], context[:, 8:16, 0:8]], dim=1
        )  # [N, 4, 8, 8]
        centred = (blocks - base[:, :, None, None]) * avail[:, :, None, None]
        x = torch.cat([centred.reshape(n, 256), info], dim=1)
        h = self.body(F.leaky_relu(self.inp(x), 0.1))
        delta = self.out(F.leaky_relu(h, 0.1)).reshape(n, 8, 8)
        return (base[:, :, None] + delta) * 255.0
