"""The learning-rate schedule every trainer uses: linear warm-up, then cosine decay to ``min_lr``.

Defined by iterations, not time, so a resumed run follows the schedule of an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["lr_at"]


def lr_at(step: int, cfg: dict[str, Any]) -> float:
    """The learning rate at ``step`` for a config with ``optim.lr`` and ``schedule.{warmup_iters, total_iters,
    min_lr}``."""
    s = cfg["schedule"]
    base, warm, total, lo = cfg["optim"]["lr"], s["warmup_iters"], s["total_iters"], s["min_lr"]
    if step < warm:
        return base * (step + 1) / warm
    t = min(1.0, (step - warm) / max(1, total - warm))
    return lo + 0.5 * (base - lo) * (1.0 + math.cos(math.pi * t))
