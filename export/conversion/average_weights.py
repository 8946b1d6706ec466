"""Average the weights of checkpoints of one architecture into a new checkpoint (a "model soup").

Usage::

    python -m export.conversion.average_weights runs/deblock_v3/best.pt runs/deblock_v4/best.pt --out runs/soup/best.pt

Why: two fine-tunes from the same start sit in one basin of the loss, and the mean of their weights is often
better than either (Wortsman et al., 2022, "Model soups"), at no inference cost. Whether it is better here is
decided on the held-out training crops (``export.evaluation.validate_deblock``), like any other candidate.

The output is a checkpoint ``export.conversion.export_onnx`` reads: the first input's config, ``step`` = the largest
step, and ``averaged_from`` naming the inputs. Float tensors are averaged (``weights`` gives their weights,
default equal); integer buffers (BatchNorm's ``num_batches_tracked``) are taken from the first checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch


def average_states(states: list[dict[str, torch.Tensor]], weights: list[float] | None = None) -> dict[str, torch.Tensor]:
    """Weighted mean of state dicts with identical keys and shapes (an error names the first mismatch)."""
    if not states:
        msg = "average_states needs at least one state dict"
        raise ValueError(msg)
    weights = weights or [1.0] * len(states)
    if len(weights) != len(states) or min(weights) < 0 or sum(weights) <= 0:
        msg = f"need one non-negative weight per checkpoint with a positive sum, got {weights}"
        raise ValueError(msg)
    total = float(sum(weights))
    first = states[0]
    for i, s in enumerate(states[1:], start=2):
        if s.keys() != first.keys():
            diff = sorted(set(s) ^ set(first))
            msg = f"checkpoint {i} has different parameters from the first: {diff[:5]}"
            raise ValueError(msg)
        for k, v in s.items():
            if v.shape != first[k].shape:
                msg = f"checkpoint {i}: {k} has shape {tuple(v.shape)}, the first has {tuple(first[k].shape)}"
                raise ValueError(msg)
    out: dict[str, torch.Tensor] = {}
    for k, v in first.items():
        if v.is_floating_point():
            out[k] = sum(w / total * s[k].double() for w, s in zip(weights, states)).to(v.dtype)
        else:
            out[k] = v.clone()
    return out


def average_checkpoints(paths: list[Path], weights: list[float] | None = None) -> dict[str, Any]:
    cks = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    archs = [ck["config"]["model"] for ck in cks]
    if any(a != archs[0] for a in archs[1:]):
        msg = f"checkpoints of different architectures cannot be averaged: {archs}"
        raise ValueError(msg)
    return {"model": average_states([ck["model"] for ck in cks], weights), "config": cks[0]["config"],
            "step": max(int(ck["step"]) for ck in cks), "averaged_from": [str(p) for p in paths],
            "averaging_weights": weights or [1.0] * len(paths)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--weights", type=float, nargs="*", default=None, help="one per checkpoint (default: equal)")
    args = ap.parse_args()
    ck = average_checkpoints(args.checkpoints, args.weights)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, args.out)
    print(f"wrote {args.out}: mean of {len(args.checkpoints)} checkpoints, weights {ck['averaging_weights']}")


if __name__ == "__main__":
    main()
