"""onnxruntime sessions, built once per (model bytes, providers, threads) and shared.

This is the only module that imports onnxruntime, and it does so lazily, so
``import pillow_blockcnn`` (which every Pillow-based app pays for) stays cheap.
``InferenceSession.run`` is safe to call from several threads at once.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from . import settings
from .registry import ModelError, model_bytes, model_info

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["EXACT_CUDA_OPTIONS", "clear_sessions", "provider_entries", "providers", "run_options", "session"]

#: CUDA provider options under which an integer-arithmetic model computes its integers exactly: in full float32
#: every sum below 2^24 is exact in any order, so cuBLAS's and cuDNN's choice of algorithm cannot change a
#: result (docs/FORMAT.md §5.2). TF32 (the provider's default) keeps 11 significant bits of each operand, which
#: an integer model's operands (at most 8) never exceed, so it would be exact too; it is switched off all the
#: same, so that exactness never rests on how a provider rounds its operands (docs/FORMAT.md §10).
EXACT_CUDA_OPTIONS: dict[str, str] = {"use_tf32": "0", "cudnn_conv_algo_search": "DEFAULT"}


def providers() -> tuple[str, ...]:
    """Providers sessions are built with: the configured ones, else CUDA when onnxruntime offers it, then CPU."""
    import onnxruntime as ort

    if settings.PROVIDERS is not None:
        return settings.PROVIDERS
    available = ort.get_available_providers()
    return tuple(p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available)


_lock = threading.Lock()
_sessions: dict[tuple[str, str, tuple[str, ...], int], onnxruntime.InferenceSession] = {}


def provider_entries(wanted: tuple[str, ...], exact: bool) -> list[str | tuple[str, dict[str, str]]]:
    """onnxruntime's ``providers=`` list for ``wanted``: CUDA with :data:`EXACT_CUDA_OPTIONS` for a model
    whose integers must come out exact."""
    return [(p, dict(EXACT_CUDA_OPTIONS)) if exact and p == "CUDAExecutionProvider" else p for p in wanted]


def session(model_id: str, threads: int | None = None) -> onnxruntime.InferenceSession:
    """The shared session for ``model_id`` under the current provider and thread settings (``threads``:
    this many intra-op threads instead of ``settings.THREADS``, for callers that run several calls at once).

    Prediction runs inside the closed reconstruction loop, so a prediction model may use CUDA only when its
    arithmetic is integer (manifest ``"arithmetic": "integer"``): it then runs with TF32 off and
    deterministic compute, and gives the CPU's integers (tested where a GPU is present). A float predictor
    stays on the CPU unless providers were set explicitly: a GPU's last-bit differences would drift the
    decoded pixels (docs/FORMAT.md §10).
    """
    import onnxruntime as ort

    info = model_info(model_id)
    wanted = providers()
    exact = info.task == "predict" and info.details.get("arithmetic") == "integer"
    if settings.PROVIDERS is None and info.task == "predict" and not exact:
        wanted = ("CPUExecutionProvider",)
    threads = settings.THREADS if threads is None else threads
    key = (model_id, info.sha256, wanted, threads)
    with _lock:
        cached = _sessions.get(key)
        if cached is not None:
            return cached
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.use_deterministic_compute = exact
        so.log_severity_level = 3
        # The arena stays on for every model: a restorer's runs then give its free chunks back at their end
        # (:func:`run_options`), where without the arena each tile's tensors came from malloc's heap, whose
        # fragments kept their pages (a 12-megapixel decode peaked at 563-623 MB instead of 397-401 MB,
        # export/NOTES.md "Deblocking tiles in onnxruntime's arena").
        so.enable_cpu_mem_arena = True
        sess = ort.InferenceSession(model_bytes(model_id), sess_options=so, providers=provider_entries(wanted, exact))
        # onnxruntime falls back to CPU with only a log line when CUDA fails to load. In automatic mode
        # that fallback is what we want; providers the user asked for by name must really run.
        missing = [p for p in wanted if p not in sess.get_providers()]
        if missing and settings.PROVIDERS is not None:
            msg = f"onnxruntime could not start providers {missing} (it runs {sess.get_providers()})"
            raise ModelError(msg)
        _sessions[key] = sess
        return sess


_shrinking: dict[bool, onnxruntime.RunOptions] = {}


def run_options(sess: onnxruntime.InferenceSession) -> onnxruntime.RunOptions:
    """Run options that return the session's free arena memory to the system when a run ends.

    Why: a restorer's tile allocates hundreds of megabytes of activations; an arena that kept them would hold
    the largest tile's for the life of the session, and malloc without an arena fragments. Shrinking at the end
    of each run keeps a decode's peak at about one tile's activations, for about 5% of the restoration's time.
    """
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in sess.get_providers()
    with _lock:
        options = _shrinking.get(cuda)
        if options is None:
            options = ort.RunOptions()
            options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0;gpu:0" if cuda else "cpu:0")
            _shrinking[cuda] = options
        return options


def clear_sessions() -> None:
    """Drop cached sessions (after changing providers or threads they are rebuilt on next use anyway; this
    frees their memory)."""
    with _lock:
        _sessions.clear()
