"""Where a decode's time goes, and which way of using the cores pays: the measurements behind the threaded
prediction pass (export/NOTES.md, "The prediction pass on every core").

    python -m export.studies.decode_threads --json results/studies/decode_threads.json

Training images only (``../shared/data/train``: the first image at least 768x512, centre crop, q30). One run,
one machine, best of ``--rounds``:

* ``products``: ``pred-2``'s network on a front-sized batch (48 blocks): one call on 1 and on 2 onnxruntime
  threads, two 24-block calls at once on one thread each; and the same 48-block product as ``MatMulInteger``
  (u8 activations, s8 weights: exact by construction) against the float Gemm it replaces;
* ``prediction_pass``: decode time with ``deblock=False`` minus a plain file's, every block predicted, with
  the decoder's tiles on one worker (onnxruntime's threads) and on one worker per core (one-thread sessions),
  at 768x512 and 1536x1536, and the share of it spent in ``session.run``;
* ``deblock_tiles``: four 704x704 tiles through a restorer one after another on two onnxruntime threads, and
  two at a time on one thread each;
* ``shares``: the share of ``session.run`` in ``deblock()`` of a 480x320 JPEG (q20, ``dblk-5``) and in a
  768x512 default save (the predictor's calls).
"""

from __future__ import annotations

import argparse
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

import pillow_blockcnn
from export.conversion.export_int_predictor import integer_layers
from export.data.crops import centre_crops
from export.evaluation.report import emit, machine
from pillow_blockcnn import codec, runtime
from pillow_blockcnn.format import container
from pillow_blockcnn.runtime import registry, sessions

#: The PSNR tables, with which the committed results were measured (the default save's until 2026-12-06).
TABLES = "mse"


def _best(fn: Callable[[], object], rounds: int) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _session(data: bytes, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = threads, 1, 3
    so.enable_cpu_mem_arena = False
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def _concurrently(fn: Callable[[], object], count: int) -> None:
    threads = [threading.Thread(target=fn) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _integer_matmul_layer(w: np.ndarray) -> bytes:
    """One ``MatMulInteger`` (u8 x s8 -> int32) of ``w`` ``[out, in]``, the exact-integer alternative."""
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "W"], ["y"])], "mmi",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, ["N", w.shape[1]])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["N", w.shape[0]])],
        [numpy_helper.from_array(w.T.astype(np.int8), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _float_gemm_layer(w: np.ndarray) -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["a", "W"], ["y"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", w.shape[1]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", w.shape[0]])],
        [numpy_helper.from_array(w.T.astype(np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def products(rounds: int) -> dict[str, float]:
    data = registry.model_bytes("pred-2")
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (48, 262)).astype(np.float32)
    one, two = _session(data, 1), _session(data, 2)
    reps = 40
    loop = lambda s, batch: [s.run(None, {"x": batch}) for _ in range(reps)]  # noqa: E731
    hidden = integer_layers(onnx.load_from_string(data))[1][0]  # [384, 384]
    a = rng.integers(0, 128, (48, hidden.shape[1]))
    mmi, gemm = _session(_integer_matmul_layer(hidden), 2), _session(_float_gemm_layer(hidden), 2)
    return {
        "network_48_blocks_1_thread_ms": 1e3 * _best(lambda: loop(one, x), rounds) / reps,
        "network_48_blocks_2_threads_ms": 1e3 * _best(lambda: loop(two, x), rounds) / reps,
        "network_2x24_blocks_at_once_1_thread_each_ms": 1e3 * _best(lambda: _concurrently(lambda: loop(one, x[:24]), 2), rounds) / reps,
        "matmulinteger_48x384x384_ms": 1e3 * _best(lambda: [mmi.run(None, {"a": a.astype(np.uint8)}) for _ in range(reps)], rounds) / reps,
        "float_gemm_48x384x384_ms": 1e3 * _best(lambda: [gemm.run(None, {"a": a.astype(np.float32)}) for _ in range(reps)], rounds) / reps,
    }


class _Timed:
    """A session whose ``run`` adds its time to ``total`` (every thread's)."""

    def __init__(self, inner: ort.InferenceSession) -> None:
        self.inner, self.total, self._lock = inner, 0.0, threading.Lock()

    def run(self, *args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        out = self.inner.run(*args, **kwargs)
        with self._lock:
            self.total += time.perf_counter() - start
        return out

    def get_inputs(self) -> object:
        return self.inner.get_inputs()


def prediction_pass(photo: np.ndarray, rounds: int) -> dict[str, dict[str, float]]:
    big = np.tile(photo, (3, 2, 1))[:1536, :1536]
    out = {}
    for name, pixels in (("768x512", photo), ("1536x1536", big)):
        threaded = runtime.predictor_for("pred-2", 30)
        serial = runtime.predictor_for("pred-2", 30)
        serial.concurrency = 1  # the tiles on one worker, the session on onnxruntime's threads
        data = container.write_container(codec.encode(pixels, "RGB", 30, predictor=serial, force_prediction=True, tables=TABLES).container)
        plain = container.read_container(io.BytesIO(container.write_container(codec.encode(pixels, "RGB", 30, tables=TABLES).container)))
        parsed = container.read_container(io.BytesIO(data))
        times = {"plain": float("inf"), "one_worker": float("inf"), "one_worker_per_core": float("inf")}
        for _ in range(rounds):  # interleaved
            times["plain"] = min(times["plain"], _once(lambda: codec.decode(plain)))
            times["one_worker"] = min(times["one_worker"], _once(lambda s=serial: codec.decode(parsed, s)))
            times["one_worker_per_core"] = min(
                times["one_worker_per_core"], _once(lambda p=threaded: codec.decode(parsed, p))
            )
        timed = _Timed(serial._session)
        serial._session = timed
        codec.decode(parsed, serial)
        out[name] = {
            "pass_one_worker_s": times["one_worker"] - times["plain"],
            "pass_one_worker_per_core_s": times["one_worker_per_core"] - times["plain"],
            "workers": threaded.concurrency,
            "session_run_share_one_worker": timed.total / times["one_worker"],
        }
    return out


def deblock_tiles(photo_704: np.ndarray, rounds: int) -> dict[str, dict[str, float]]:
    x = np.empty((1, 4, 704, 704), np.float32)
    x[0, :3] = photo_704.transpose(2, 0, 1) / 255.0
    x[0, 3] = 0.3
    out = {}
    for model in ("dblk-9", "dblk-7"):
        data = registry.model_bytes(model)
        two, one = _session(data, 2), _session(data, 1)
        name = two.get_inputs()[0].name
        out[model] = {
            "four_tiles_in_turn_2_threads_s": _best(lambda s=two: [s.run(None, {name: x}) for _ in range(4)], rounds),
            "four_tiles_two_at_once_1_thread_each_s": _best(
                lambda s=one: _concurrently(lambda: [s.run(None, {name: x}) for _ in range(2)], 2), rounds
            ),
        }
    return out


def shares(photo: np.ndarray, small: np.ndarray) -> dict[str, float]:
    buf = io.BytesIO()
    Image.fromarray(small).save(buf, "JPEG", quality=20)
    jpeg = Image.open(io.BytesIO(buf.getvalue()))
    jpeg.load()
    pillow_blockcnn.deblock(jpeg, model="dblk-5")
    from pillow_blockcnn.runtime import deblocker

    real = deblocker.model_session
    timed = _Timed(real("dblk-5"))
    deblocker.model_session = lambda _id: timed
    try:
        start = time.perf_counter()
        pillow_blockcnn.deblock(jpeg, model="dblk-5")
        deblock_share = timed.total / (time.perf_counter() - start)
    finally:
        deblocker.model_session = real
    predictor = runtime.predictor_for("pred-2", 30)
    codec.encode(photo, "RGB", 30, predictor=predictor, tables=TABLES)
    timed_predictor = _Timed(predictor._session)
    predictor._session = timed_predictor
    start = time.perf_counter()
    codec.encode(photo, "RGB", 30, predictor=predictor, tables=TABLES)
    save_s = time.perf_counter() - start
    return {
        "deblock_dblk-5_session_run_share": deblock_share,
        "save_768x512_s": save_s,
        "save_768x512_predictor_session_run_s": timed_predictor.total,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    files = sorted(args.data.glob("*.png"))
    photo = centre_crops(files, 512, 768)[0]
    small = centre_crops(files, 320, 480)[0]
    photo_704 = centre_crops(files, 704, 704)[0]
    sessions.clear_sessions()
    return emit({
        "machine": machine(), "date": time.strftime("%Y-%m-%d"), "data": str(args.data),
        "products": products(args.rounds),
        "prediction_pass": prediction_pass(photo, args.rounds),
        "deblock_tiles": deblock_tiles(photo_704, max(1, args.rounds // 3)),
        "shares": shares(photo, small),
    }, args.json)


if __name__ == "__main__":
    main()
