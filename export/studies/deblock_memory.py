"""Peak memory of deblocking a 12-megapixel picture under three allocator set-ups (NOTES: "malloc's heap").

Why: the 12 MP decode's peak varied 563-623 MB between runs, and dblk-6's tiles allocate and free tens of
megabytes each; with onnxruntime's arena off, glibc's dynamic mmap threshold then keeps freed blocks in the
heap. This study deblocks a tiled 3000x4000 copy of the bundled parrots sample with dblk-9 (dblk-6 when it
was written: the same network) in a *fresh process
per mode* (peak RSS is per process) and prints base and peak RSS:

- ``shipped``: the runtime's sessions (arena on, each run shrinks it: ``sessions.run_options``);
- ``arena-off``: what shipped before 2026-12-04: the arena off, runs without options;
- ``mmap4mb``: ``arena-off`` with glibc's threshold fixed; run it as
  ``MALLOC_MMAP_THRESHOLD_=4194304 python -m export.studies.deblock_memory mmap4mb`` (the environment must be
  set before the interpreter starts).

Usage: ``python -m export.studies.deblock_memory shipped|arena-off|mmap4mb`` (about 130 s each on 2 cores).
"""

from __future__ import annotations

import resource
import sys
import time
from importlib import resources

import numpy as np
from PIL import Image

from pillow_blockcnn.runtime import deblocker, registry


class _PlainSession:
    """An onnxruntime session run without options (the arena-off set-up never shrank anything)."""

    def __init__(self, session) -> None:
        self._session = session

    def get_inputs(self):
        return self._session.get_inputs()

    def get_providers(self):
        return self._session.get_providers()

    def run(self, outputs, feed, _options=None):
        return self._session.run(outputs, feed)


def _install_arena_off_sessions() -> None:
    import onnxruntime as ort

    def model_session(model_id: str, threads: int | None = None) -> _PlainSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False
        session = ort.InferenceSession(
            registry.model_bytes(model_id), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return _PlainSession(session)

    deblocker.model_session = model_session


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "shipped"
    if mode not in ("shipped", "arena-off", "mmap4mb"):
        msg = f"unknown mode {mode!r}: use shipped, arena-off or mmap4mb"
        raise SystemExit(msg)
    sample = resources.files("pillow_blockcnn") / "samples" / "parrots.png"
    with resources.as_file(sample) as path:
        tile = np.asarray(Image.open(path).convert("RGB"))
    reps = (-(-3000 // tile.shape[0]), -(-4000 // tile.shape[1]), 1)
    big = np.ascontiguousarray(np.tile(tile, reps)[:3000, :4000])
    if mode in ("arena-off", "mmap4mb"):
        _install_arena_off_sessions()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    deblocker.deblock_array(big, 30, "dblk-9")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{mode} base MB {base:.0f} peak MB {peak:.0f} s {time.perf_counter() - start:.1f}", flush=True)


if __name__ == "__main__":
    main()
