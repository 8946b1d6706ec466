"""The integer predictor on real contexts: exactness against the plain-integer reference, and speed against
``pred-1`` in the same run.

    python -m export.studies.int_predictor_study --contexts 1000000 --json results/studies/int_predictor.json
    python -m export.studies.int_predictor_study --onnx pillow_blockcnn/models/pred-2.onnx --json ...  # a shipped file

Contexts are every block context of the luma planes of training images (``../shared/data/train``, never the
benchmarks), taken from the images themselves; the check is of arithmetic, which does not care whether the
neighbours were decoded. Without ``--ckpt`` the network has random weights of the trained size (speed does
not depend on the weights; exactness is checked for whatever weights are given); with ``--onnx`` the file
itself is checked, against the integer layers read back from it. The reference here computes
the integer layers with float64 matrix products, exact because every value stays far below 2^53; the test
suite's reference (``tests/int_reference.py``) does the same in int64 on fewer contexts.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from export.conversion.export_int_predictor import int_predictor_graph, integer_layers
from export.data.crops import list_images, load_rgb
from export.evaluation.report import emit, machine
from export.networks.int_predictor import ACT_MAX, IntPredictorNet, accumulator_bound
from pillow_blockcnn.codec.blocks import gather_contexts, wavefronts
from pillow_blockcnn.codec.colour import rgb_to_ycbcr

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "train"


def real_contexts(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` contexts and availabilities from the luma planes of training images, in file order."""
    contexts, available, total = [], [], 0
    for path in list_images(DATA):
        y = rgb_to_ycbcr(load_rgb(path))[0]
        h, w = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
        padded = np.zeros((h + 16, w + 16), dtype=np.uint8)
        padded[8:-8, 8:-8] = y[:h, :w]
        for by, bx in wavefronts(h // 8, w // 8):
            c, a = gather_contexts(padded, by, bx)
            contexts.append(c)
            available.append(a)
            total += len(c)
        if total >= count:
            break
    return np.concatenate(contexts)[:count], np.concatenate(available)[:count]


def reference_inputs(contexts: np.ndarray, available: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
    from tests.int_reference import inputs

    return inputs(contexts, available, quality, False)


def reference_delta(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray, int]]) -> np.ndarray:
    a = x.astype(np.float64)
    for i, (w, b, s) in enumerate(layers):
        acc = a @ w.T.astype(np.float64) + b
        a = np.floor(acc / 2.0**s + 0.5)  # = (acc + 2^(s-1)) >> s for integers
        if i < len(layers) - 1:
            a = np.clip(a, 0, ACT_MAX)
    return a.astype(np.int64)


def _session(data: bytes, threads: int, level: ort.GraphOptimizationLevel) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.graph_optimization_level = threads, level
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def _time(run, reps: int) -> float:
    run()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contexts", type=int, default=1_000_000)
    source = ap.add_mutually_exclusive_group()
    source.add_argument("--ckpt", type=Path, help="an IntPredictorNet checkpoint (default: random weights)")
    source.add_argument("--onnx", type=Path, help="an exported integer predictor (e.g. a packaged model) to check")
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument(
        "--baseline", type=Path, default=Path("/tmp/pred-1.onnx"),
        help="pred-1's ONNX file, retired before release: git show a58f66e:pillow_blockcnn/models/pred-1.onnx > /tmp/pred-1.onnx",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model = IntPredictorNet(width=args.width, depth=args.depth)
    if args.ckpt:
        model.load_state_dict(torch.load(args.ckpt, map_location="cpu", weights_only=False)["model"])
    else:
        with torch.no_grad():
            model.layers[-1].linear.weight.normal_(0, 0.05)
    contexts, available = real_contexts(args.contexts)
    info = np.zeros((4096, 6), dtype=np.float32)
    info[:, :4], info[:, 4] = available[:4096], 0.3
    model.eval()
    with torch.no_grad():  # calibrates the activation steps of an untrained net (a no-op for a checkpoint)
        model(torch.from_numpy(contexts[:4096].astype(np.float32) / 255.0), torch.from_numpy(info))
    if args.onnx:
        data = args.onnx.read_bytes()
        layers = integer_layers(onnx.load_from_string(data))
    else:
        layers = model.integer_layers()
        data = int_predictor_graph(layers).SerializeToString()
    x, _ = reference_inputs(contexts, available, 30)
    expected = reference_delta(x, layers)
    mismatches = {}
    for name, level in (("disable_all", ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
                        ("enable_all", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)):
        for threads in (1, 2):
            session = _session(data, threads, level)
            got = np.concatenate([session.run(None, {"x": x[i : i + 65536].astype(np.float32)})[0]
                                  for i in range(0, len(x), 65536)]).astype(np.int64)
            mismatches[f"{name}, {threads} threads"] = int((got != expected).sum())
    # speed: the same batches through both predictors, inputs prepared as each adapter would
    pred1 = _session(args.baseline.read_bytes(), 2, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    int2 = _session(data, 2, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    speed = {}
    for n in (1, 96, 1000):
        ctx = contexts[:n].astype(np.float32) / 255.0
        inf = np.zeros((n, 6), dtype=np.float32)
        inf[:, :4], inf[:, 4] = available[:n], 0.3
        reps = 2000 if n == 1 else 200
        t1 = _time(lambda ctx=ctx, inf=inf: pred1.run(None, {"context": ctx, "info": inf}), reps)
        t2 = _time(lambda n=n: int2.run(None, {"x": reference_inputs(contexts[:n], available[:n], 30)[0].astype(np.float32)}), reps)
        speed[str(n)] = {"pred-1_us_per_block": 1e6 * t1 / n, "int_us_per_block": 1e6 * t2 / n, "speedup": t1 / t2}
    macs = sum(w.size for w, _, _ in layers)
    emit({
        "contexts": len(x), "source": str(DATA), "weights": str(args.onnx or args.ckpt or "random"),
        "width": args.width, "depth": args.depth, "macs_per_block": macs, "accumulator_bound": accumulator_bound(layers),
        "mismatches": mismatches, "speed_2_threads": speed, "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    }, args.json)


if __name__ == "__main__":
    main()
