"""Network definitions.

* :class:`BlockCNN` is the paper-faithful per-block network (24x24 crop -> 8x8 centre block). It is kept for
  comparison and as a smoke-tested reference; it is not shipped because restoring an image needs one forward
  pass per 8x8 block over overlapping crops (9x redundant input, no sharing between neighbouring blocks).
* :class:`BlockUNet` is the shipped, fully convolutional design: it restores every block of an image in one pass
  and keeps the 8x8 block prior by construction (see its docstring).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

BLOCK = 8  # JPEG block size; BlockUNet input H and W must be multiples of this.


# --------------------------------------------------------------------------------------------------------------
# Paper-faithful per-block network
# --------------------------------------------------------------------------------------------------------------
class _BNResBlock(nn.Module):
    """Paper residual block: conv-BN-LeakyReLU(0.1)-conv-BN plus identity."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(ch),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class BlockCNN(nn.Module):
    """BlockCNN (paper Fig. 3): a 24x24 crop (block + its 8 neighbours) in, the 8x8 centre block out.

    A few plain convs, then residual blocks, then a conv to ``out_ch``; the centre 8x8 of the output is the
    predicted artifact, added to the centre of the input (residual learning, as in the paper).

    Args:
        in_ch: input channels (3 for YCbCr; a 4th quality channel is allowed, the residual uses the first 3).
        out_ch: restored channels.
        ch: feature width.
        n_convs: plain 3x3 convs before the residual blocks.
        n_blocks: residual blocks.
    """

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ch: int = 64, n_convs: int = 2, n_blocks: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_ch
        for _ in range(n_convs):
            layers += [nn.Conv2d(c, ch, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
            c = ch
        layers += [_BNResBlock(ch) for _ in range(n_blocks)]
        layers += [nn.Conv2d(ch, out_ch, 3, padding=1)]
        self.net = nn.Sequential(*layers)
        self.out_ch = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, in_ch, 24, 24) -> (N, out_ch, 8, 8) restored centre block."""
        r = self.net(x)[:, :, BLOCK : 2 * BLOCK, BLOCK : 2 * BLOCK]
        return x[:, : self.out_ch, BLOCK : 2 * BLOCK, BLOCK : 2 * BLOCK] + r


# --------------------------------------------------------------------------------------------------------------
# Shipped fully convolutional design
# --------------------------------------------------------------------------------------------------------------
class _ResBlock(nn.Module):
    """conv-LeakyReLU-conv plus identity. No BatchNorm: nothing to fold at export, and batch statistics of small
    CPU batches would be noisy."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(F.leaky_relu(self.c1(x), 0.1))


def _stage(ch: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[_ResBlock(ch) for _ in range(n)])


class BlockUNet(nn.Module):
    """Fully convolutional deblocker with an explicit 8x8 block level.

    Input ``(N, 4, H, W)``: Y, Cb, Cr (JFIF full range, /255) and a constant quality map (quality/100); H and W
    multiples of 8, with the image's 8x8 JPEG grid starting at (0, 0). Output ``(N, 3, H, W)``: restored YCbCr/255
    (input YCbCr + predicted artifact, i.e. a global residual).

    Levels (why):
      * 1/2 resolution (pixel-unshuffle by 2): the full-resolution detail at a quarter of the cost.
      * 1/4 resolution: intermediate context.
      * 1/8 resolution = one pixel per JPEG block: this is where the block prior lives. The level also receives
        the input pixel-unshuffled by 8 (every channel is one position inside the block), so each block sees its
        own 64 pixels explicitly, and 3x3 convs here see the block and its 8 neighbours, as BlockCNN does.
    Down-sampling is a 2x2 stride-2 conv and up-sampling a 2x2 stride-2 transposed conv, both aligned to the
    grid, so the decoder's weights depend on the position inside the block (4x4 distinct positions at 1/2
    resolution, 8x8 after the final pixel shuffle): the per-position artifact statistics of the paper's Fig. 2.
    """

    def __init__(
        self,
        in_ch: int = 4,
        out_ch: int = 3,
        ch: tuple[int, int, int] = (64, 128, 192),
        enc_blocks: tuple[int, int, int] = (1, 2, 4),
        dec_blocks: tuple[int, int] = (1, 1),
    ) -> None:
        super().__init__()
        c1, c2, c3 = ch
        self.out_ch = out_ch
        self.head = nn.Conv2d(in_ch * 4, c1, 3, padding=1)
        self.enc1 = _stage(c1, enc_blocks[0])
        self.down1 = nn.Conv2d(c1, c2, 2, stride=2)
        self.enc2 = _stage(c2, enc_blocks[1])
        self.down2 = nn.Conv2d(c2, c3, 2, stride=2)
        self.block_in = nn.Conv2d(in_ch * BLOCK * BLOCK, c3, 1)
        self.enc3 = _stage(c3, enc_blocks[2])
        self.up2 = nn.ConvTranspose2d(c3, c2, 2, stride=2)
        self.dec2 = _stage(c2, dec_blocks[0])
        self.up1 = nn.ConvTranspose2d(c2, c1, 2, stride=2)
        self.dec1 = _stage(c1, dec_blocks[1])
        self.tail = nn.Conv2d(c1, out_ch * 4, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as the identity (output = JPEG input)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.leaky_relu(self.head(F.pixel_unshuffle(x, 2)), 0.1)
        s1 = self.enc1(a)
        s2 = self.enc2(F.leaky_relu(self.down1(s1), 0.1))
        b = F.leaky_relu(self.down2(s2) + self.block_in(F.pixel_unshuffle(x, BLOCK)), 0.1)
        b = self.enc3(b)
        d2 = self.dec2(F.leaky_relu(self.up2(b), 0.1) + s2)
        d1 = self.dec1(F.leaky_relu(self.up1(d2), 0.1) + s1)
        r = F.pixel_shuffle(self.tail(d1), 2)
        return x[:, : self.out_ch] + r


class FlipEnsemble(nn.Module):
    """The mean of ``model`` on the image and on its mirror image, mirrored back (a two-member self-ensemble).

    A JPEG mirrored left-right is still a JPEG on the same 8x8 grid when the width is a multiple of 8 (the
    runtime pads to one), and training saw flips, so the second pass is an independent estimate of the same
    restoration. It costs twice the time and, through onnxruntime, about twice the peak memory (measured in
    ``export/NOTES.md``), which is why the shipped models are single networks.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.model(x) + self.model(x.flip(3)).flip(3))


ARCHS: dict[str, type[nn.Module]] = {"BlockCNN": BlockCNN, "BlockUNet": BlockUNet}


def build_model(spec: dict[str, Any]) -> nn.Module:
    """Build a model from a config dict ``{"arch": name, **kwargs}`` (lists are turned into tuples)."""
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items() if k != "arch"}
    return ARCHS[spec["arch"]](**kwargs)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
