"""Structured pruning of a trained BlockUNet into a narrower, shallower one: the start of a distilled run.

Why: a narrow design trained from scratch on two CPU cores stays far below the wide one (``deblock_v9``,
16-32-96, flattened 0.45 dB short of ``dblk-6`` after 20 000 iterations), because the wide network's quality
is the product of a long lineage of runs. Keeping the wide network's most active channels and residual blocks
hands the student most of that lineage; fine-tuning (with the wide network as teacher) recovers what the
removed channels carried.

What is kept, measured on a few training batches through the teacher:
* per level (1/2, 1/4, 1/8 resolution), the channels of the residual stream with the largest mean magnitude
  over every tensor of that stream (each tensor normalised by its own mean, so no one tensor dominates); the
  same channels throughout the level, since the encoder stream, the skip connection and the decoder stream add;
* per residual stage, the blocks whose update is largest relative to their input, in their original order;
* per kept block, the inner channels with the largest mean activation times the norm of the weights that read
  them (their first-order contribution to the block's output).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from export.networks.deblocker import BlockUNet, _ResBlock

# the residual stages of each level and the layers that write that level's stream
_LEVEL_STAGES = {1: ("enc1", "dec1"), 2: ("enc2", "dec2"), 3: ("enc3",)}
_LEVEL_WRITERS = {1: ("head", "up1"), 2: ("down1", "up2"), 3: ("down2",)}
_STAGE_LEVEL = {stage: level for level, stages in _LEVEL_STAGES.items() for stage in stages}


class _Stats:
    """Running per-channel mean magnitudes collected by forward hooks."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, key: str, t: torch.Tensor) -> None:
        m = t.detach().abs().mean(dim=(0, 2, 3))
        self.sums[key] = self.sums.get(key, 0) + m
        self.counts[key] = self.counts.get(key, 0) + 1

    def mean(self, key: str) -> torch.Tensor:
        return self.sums[key] / self.counts[key]


@torch.no_grad()
def _collect(teacher: BlockUNet, batches: list[torch.Tensor]) -> _Stats:
    stats = _Stats()
    hooks = []
    for level, names in _LEVEL_WRITERS.items():
        for name in names:
            hooks.append(getattr(teacher, name).register_forward_hook(
                lambda m, i, o, k=f"stream{level}/{name}": stats.add(k, F.leaky_relu(o, 0.1))))

    def block_out(key: str, level: int, x: torch.Tensor, out: torch.Tensor) -> None:
        stats.add(f"stream{level}/{key}", out)
        stats.add(f"update/{key}", (out - x).abs().mean(dim=1, keepdim=True) / x.abs().mean().clamp_min(1e-12))

    for stage, level in _STAGE_LEVEL.items():
        for b, block in enumerate(getattr(teacher, stage)):
            key = f"{stage}.{b}"
            hooks.append(block.register_forward_hook(lambda m, i, o, k=key, lv=level: block_out(k, lv, i[0], o)))
            hooks.append(block.c1.register_forward_hook(
                lambda m, i, o, k=key: stats.add(f"inner/{k}", F.leaky_relu(o, 0.1))))
    teacher.eval()
    for x in batches:
        teacher(x)
    for h in hooks:
        h.remove()
    return stats


def _top(score: torch.Tensor, n: int) -> torch.Tensor:
    if n > score.numel():
        msg = f"cannot keep {n} of {score.numel()} channels or blocks: a pruned student must be narrower and shallower"
        raise ValueError(msg)
    return torch.sort(torch.argsort(score, descending=True)[:n]).values


def plan(teacher: BlockUNet, student_spec: dict[str, Any], batches: list[torch.Tensor]) -> dict[str, Any]:
    """Which channels and blocks of ``teacher`` the student of ``student_spec`` keeps (indices into the
    teacher's): ``{"level1": idx, ..., "enc3": [block indices], "enc3.0": inner idx, ...}``."""
    stats = _collect(teacher, batches)
    ch = student_spec["ch"]
    n_blocks = {"enc1": student_spec["enc_blocks"][0], "enc2": student_spec["enc_blocks"][1],
                "enc3": student_spec["enc_blocks"][2], "dec2": student_spec["dec_blocks"][0],
                "dec1": student_spec["dec_blocks"][1]}
    keep: dict[str, Any] = {}
    for level in _LEVEL_STAGES:
        keys = [k for k in stats.sums if k.startswith(f"stream{level}/")]
        score = sum(stats.mean(k) / stats.mean(k).mean().clamp_min(1e-12) for k in keys)
        keep[f"level{level}"] = _top(score, ch[level - 1])
    for stage, n in n_blocks.items():
        blocks = getattr(teacher, stage)
        score = torch.tensor([float(stats.mean(f"update/{stage}.{b}")) for b in range(len(blocks))])
        keep[stage] = [int(b) for b in _top(score, n)]
        width = ch[_STAGE_LEVEL[stage] - 1]
        for b in keep[stage]:
            contribution = stats.mean(f"inner/{stage}.{b}") * blocks[b].c2.weight.detach().pow(2).sum(dim=(0, 2, 3)).sqrt()
            keep[f"{stage}.{b}"] = _top(contribution, width)
    return keep


def _conv(dst: nn.Conv2d | nn.ConvTranspose2d, src: nn.Conv2d | nn.ConvTranspose2d,
          out_idx: torch.Tensor | None, in_idx: torch.Tensor | None) -> None:
    w = src.weight.detach()
    o_axis, i_axis = (1, 0) if isinstance(src, nn.ConvTranspose2d) else (0, 1)
    if out_idx is not None:
        w = w.index_select(o_axis, out_idx)
    if in_idx is not None:
        w = w.index_select(i_axis, in_idx)
    dst.weight.copy_(w)
    b = src.bias.detach()
    dst.bias.copy_(b if out_idx is None else b[out_idx])


@torch.no_grad()
def prune(teacher: BlockUNet, student: BlockUNet, batches: list[torch.Tensor]) -> dict[str, Any]:
    """Fill ``student`` (a BlockUNet no wider and no deeper than ``teacher`` at every level) with the kept part
    of ``teacher``'s weights; returns the plan (kept indices) for the record."""
    spec = {"ch": [student.head.out_channels, student.down1.out_channels, student.down2.out_channels],
            "enc_blocks": [len(student.enc1), len(student.enc2), len(student.enc3)],
            "dec_blocks": [len(student.dec2), len(student.dec1)]}
    keep = plan(teacher, spec, batches)
    k1, k2, k3 = (keep[f"level{level}"] for level in _LEVEL_STAGES)
    _conv(student.head, teacher.head, k1, None)
    _conv(student.down1, teacher.down1, k2, k1)
    _conv(student.down2, teacher.down2, k3, k2)
    _conv(student.block_in, teacher.block_in, k3, None)
    _conv(student.up2, teacher.up2, k2, k3)
    _conv(student.up1, teacher.up1, k1, k2)
    _conv(student.tail, teacher.tail, None, k1)
    for stage, level in _STAGE_LEVEL.items():
        stream = keep[f"level{level}"]
        for dst, b in zip(getattr(student, stage), keep[stage]):
            src: _ResBlock = getattr(teacher, stage)[b]
            inner = keep[f"{stage}.{b}"]
            _conv(dst.c1, src.c1, inner, stream)
            _conv(dst.c2, src.c2, stream, inner)
    return {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in keep.items()}


def describe(keep: dict[str, Any]) -> dict[str, Any]:
    """A short record of a plan for the training log: widths and the kept blocks."""
    return {k: (len(v) if k.startswith("level") else v) for k, v in keep.items() if "." not in k} | {
        "inner_widths": {k: len(v) for k, v in keep.items() if "." in k}}


def output_agreement(teacher: nn.Module, student: nn.Module, batches: list[torch.Tensor]) -> float:
    """PSNR (dB, on the /255 scale) of the student's output against the teacher's on ``batches``."""
    with torch.no_grad():
        mse = np.mean([float(F.mse_loss(student(x), teacher(x))) for x in batches])
    return float(10 * np.log10(1.0 / max(mse, 1e-20)))
