"""What this machine offers: usable cores (one definition for sessions, batch workers and reports) and a
one-line description for every measurement the project writes down."""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["machine", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and ``taskset`` restrict), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def machine() -> str:
    """CPU model, its widest vector unit, usable cores and Python: enough to say where a number was measured.

    The vector unit is named because "2 cores" is not a speed: the same deblocker ran 0.90 MP/s on the 2-core
    Xeon of 2026-11-25 and 0.38 MP/s on the 2-core AVX2 EPYC of 2026-12-01 (export/NOTES.md)."""
    model, simd = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                simd = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags), "")
                break
    except OSError:
        pass
    return f"{model}{f' ({simd})' if simd else ''}, {usable_cores()} cores, Python {platform.python_version()}"
