"""Quality per millisecond of deblocker designs on .bcnn decodes: the front a restoration model is chosen from.

    python -m export.studies.restoration_pareto --pack runs/bcnn_pack.npz --minutes 8 --threads 1 \
        --out results/studies/restoration_pareto.json

Each design (a ``BlockUNet`` width/depth) trains from scratch for the same wall-clock budget on the same data
(the pack's training crops: the codec's own decodes, ``export.data.bcnn_pack``), loss and optimiser, one
after the other with the same threads, and is scored by the pack's validator (held-out training images,
default save at q10-40: PSNR-RGB and MS-SSIM gains). Its onnxruntime time per megapixel (float32, random
weights, 768x512, ``--threads``) is measured in the same run. Equal *training time* is the budget that
matters on a CPU machine: a smaller network takes more steps in it. Nothing here touches the benchmark sets.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import torch

from export.data.bcnn_pack import PackSampler, load
from export.networks.deblocker import build_model, count_params
from export.studies.bench_speed import bench
from export.training.schedule import lr_at
from export.training.train_deblocker import PackValidator, restoration_loss
from pillow_blockcnn.runtime.machine import machine

DESIGNS: dict[str, dict[str, Any]] = {
    "unet-64-128-192 (dblk-5's)": {"ch": [64, 128, 192], "enc_blocks": [1, 2, 4], "dec_blocks": [1, 1]},
    "unet-32-64-128": {"ch": [32, 64, 128], "enc_blocks": [1, 2, 3], "dec_blocks": [1, 1]},
    "unet-16-48-128": {"ch": [16, 48, 128], "enc_blocks": [1, 2, 4], "dec_blocks": [1, 1]},
    "unet-16-32-96": {"ch": [16, 32, 96], "enc_blocks": [1, 1, 2], "dec_blocks": [1, 1]},
}
LOSS = {"kind": "log_mse_msssim", "channel_weights": [4.0, 1.0, 1.0], "msssim_weight": 1.0}
SCHEDULE = {"schedule": {"total_iters": 100_000, "warmup_iters": 100, "min_lr": 1e-6}, "optim": {"lr": 1e-3}}


def train(spec: dict[str, Any], sampler: PackSampler, validator: PackValidator, seconds: float) -> dict[str, Any]:
    torch.manual_seed(0)
    model = build_model({"arch": "BlockUNet", **spec})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    step, start = 0, time.time()
    model.train()
    while time.time() - start < seconds:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, SCHEDULE)
        x, t = sampler.batch(step)
        loss = restoration_loss(model(x), t, LOSS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
    val = validator(model)
    return {"steps": step, "params": count_params(model), "gain_rgb": val["gain_rgb"], "gain_y": val["gain_y"],
            "gain_msssim": val["gain_msssim"]}


def markdown(res: dict[str, Any]) -> str:
    lines = [
        (f"Deblocker designs trained from scratch for {res['minutes']} min each on .bcnn decodes, {res['threads']} "
         f"thread(s); {res['date']}, {res['machine']}. Gains on held-out training crops (q10-40); speed: onnxruntime "
         "float32, 768x512."),
        "",
        "| design | parameters | steps | PSNR-RGB gain (dB) | MS-SSIM gain (dB) | s per MP |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in res["designs"].items():
        lines.append(f"| {name} | {r['params']:,} | {r['steps']} | {r['gain_rgb']:+.3f} | {r['gain_msssim']:+.3f} "
                     f"| {r['s_per_mp']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", type=Path, default=Path("runs/bcnn_pack.npz"))
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pack = load(args.pack)
    sampler, validator = PackSampler(pack, 16, seed=20261202), PackValidator(pack)
    res: dict[str, Any] = {"date": str(date.today()), "machine": machine(), "minutes": args.minutes,
                           "threads": args.threads, "pack": str(args.pack), "designs": {}}
    for name, spec in DESIGNS.items():
        if args.only and name not in args.only:
            continue
        row = train(spec, sampler, validator, 60 * args.minutes)
        row["s_per_mp"] = 1 / bench({"arch": "BlockUNet", **spec}, threads=args.threads)["mp_per_s"]
        res["designs"][name] = row
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))
        args.out.with_suffix(".md").write_text(markdown(res))
        print(name, row, flush=True)


if __name__ == "__main__":
    main()
