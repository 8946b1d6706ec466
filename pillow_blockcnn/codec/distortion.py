"""The squared error of whole images, in bands of rows: exact, and without image-sized temporaries.

Why here: the encoder's image-level decisions (predicted or plain, deblock or not) compare whole decoded
images with the original; an ``int64`` difference of a 12-megapixel RGB image is 274 MB, so the sum is taken
a band at a time. :mod:`pillow_blockcnn.metrics` re-exports it for the pipeline and the benchmarks.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sse"]


def sse(a: np.ndarray, b: np.ndarray, rows: int = 256) -> int:
    """Exact sum of squared differences of two equally shaped integer images, ``rows`` rows at a time."""
    total = 0
    for r in range(0, a.shape[0], rows):
        d = (a[r : r + rows].astype(np.int64) - b[r : r + rows]).ravel()
        total += int(d @ d)
    return total
