"""Speed of the prediction pass: decode time with ``deblock=False``, one predictor against another, one run.

    git show a58f66e:pillow_blockcnn/models/pred-1.onnx > /tmp/pred-1.onnx   # pred-1, retired before release
    python -m export.evaluation.bench_prediction --models pred-1=/tmp/pred-1.onnx pred-2 \
        --json results/speed/prediction_pred-1_vs_pred-2.json

Machines here differ by 2x between days, so only ratios measured in one run mean anything: the models'
decodes are interleaved (one of each per round, fastest of ``--rounds``). Cases:

* a 768x512 RGB photo from the training set (``../shared/data/train``, the first image at least that large,
  centre crop), saved at quality 30, coded with each model, every block predicted (``force_prediction``), so
  the pass does the same work for both;
* a 1 x 65 000 RGB strip (a thin image: the tiled front order's case), default save;
* the time of the residual decode alone (a plain file of the same photo), to show what prediction adds.

Decoding runs with onnxruntime's default threads (``--threads``; 0 = onnxruntime's choice).
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np

from export.data.crops import centre_crops
from export.evaluation.candidates import details
from export.evaluation.report import emit, machine
from pillow_blockcnn import codec, runtime
from pillow_blockcnn.format import container

#: The PSNR tables, with which the committed results were measured (the default save's until 2026-12-06).
TABLES = "mse"


def _timed_decode(data: bytes, rounds: int, predictor: object | None) -> float:
    parsed = container.read_container(io.BytesIO(data))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        codec.decode(parsed, predictor)  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["pred-1=/tmp/pred-1.onnx", "pred-2"],
        help="packaged ids, or ID=PATH for an ONNX file to register for this run (float, as pred-1 was, or "
        "integer; its metadata says which)",
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    runtime.settings.THREADS = args.threads
    names = []
    for spec in args.models:
        name, _, path = spec.partition("=")
        if path:
            data = Path(path).read_bytes()  # an integer or luma-guided model says so in its metadata
            runtime.register_model(name, "predict", data, tables=("jpeg", "mse", "ssim"), **details(data))
        names.append(name)
    args.models = names
    found = centre_crops(sorted(args.data.glob("*.png")), 512, 768)
    if not found:
        msg = f"no training image of at least 768x512 in {args.data}"
        raise SystemExit(msg)
    photo = found[0]
    strip = np.ascontiguousarray(np.tile(photo[256:257], (1, 85, 1))[:, :65000])
    quality = 30
    plain = container.write_container(codec.encode(photo, "RGB", quality, tables=TABLES).container)
    files = {}
    for model in args.models:
        predictor = runtime.predictor_for(model, quality)
        files[model] = (
            predictor,
            container.write_container(codec.encode(photo, "RGB", quality, predictor=predictor, force_prediction=True, tables=TABLES).container),
            container.write_container(codec.encode(strip, "RGB", quality, predictor=predictor, tables=TABLES).container),
            container.write_container(codec.encode(strip, "RGB", quality, predictor=predictor, force_prediction=True, tables=TABLES).container),
        )
    keys = ("photo_s", "strip_s", "strip_predicted_s")
    times: dict[str, dict[str, float]] = {m: dict.fromkeys(keys, float("inf")) for m in args.models}
    plain_s = float("inf")
    for _ in range(args.rounds):
        plain_s = min(plain_s, _timed_decode(plain, 1, None))
        for model, (predictor, *coded) in files.items():
            for key, data in zip(keys, coded, strict=True):
                times[model][key] = min(times[model][key], _timed_decode(data, 1, predictor))
    for model in args.models:
        times[model]["prediction_pass_s"] = times[model]["photo_s"] - plain_s
    first, last = args.models[0], args.models[-1]
    result = {
        "machine": machine(),
        "threads": args.threads,
        "photo": f"{args.data}: first image >= 768x512, centre crop, quality {quality}, every block predicted",
        "strip": "1 x 65 000 RGB row of that photo, tiled; default save, and every block predicted",
        "plain_decode_s": plain_s,
        "models": times,
        f"photo_decode_speedup_{last}_vs_{first}": times[first]["photo_s"] / times[last]["photo_s"],
        f"prediction_pass_speedup_{last}_vs_{first}": times[first]["prediction_pass_s"] / times[last]["prediction_pass_s"],
    }
    return emit(result, args.json)


if __name__ == "__main__":
    main()
