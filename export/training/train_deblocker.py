"""Train the deblocking network; resumable, logged, checkpointed. On the CPU by default; ``--device cuda`` runs the
same code and data on a GPU (a machine without ``../shared`` needs only the pack a pack config names).

Usage (from the repository root)::

    nohup .venv/bin/python -m export.training.train_deblocker --config export/configs/deblock/deblock_v1.json > runs/deblock_v1.out 2>&1 &
    python -m export.training.train_deblocker --config export/configs/deblock/deblock_v21_gpu.json --device cuda \
        --run-dir $OUT/deblock_v21_gpu --max-minutes 8

(``--max-minutes`` ends a run inside a device call's limit with a validated checkpoint; the same command resumes
it from ``last.pt``.)

Writes ``runs/<name>/``: ``last.pt`` (every ``ckpt_minutes`` and at each validation), ``best.pt`` (highest mean
validation gain, Y and RGB averaged), ``log.jsonl`` and ``config.json``. Restarting the same command resumes
from ``last.pt``: model, optimiser, scheduler, step and torch RNG are restored, and batches are a function of
(seed, step), so the schedule (defined by ``total_iters``) continues exactly.

Where a new run's weights come from: ``last.pt`` (resume), else the run's committed float16 snapshot, else
``init`` (another run's weights, a fine-tune), else ``prune`` (a narrower network cut from a shipped ONNX
model, ``export.training.prune``), else ``grow`` (a shipped ONNX model with residual blocks added as the
identity), else random. ``distill`` adds a teacher's restorations of the pack
(``export.data.teacher``) as a second target.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from export.conversion.onnx_weights import read_state_dict
from export.conversion.quantize import KEEP_FLOAT
from export.data.bcnn_pack import PackSampler, merge_packs
from export.data.bcnn_pack import load as load_pack
from export.data.crops import (
    CropSampler,
    SamplerConfig,
    centre_crop,
    degrade,
    list_images,
    load_rgb,
    make_input,
    split_holdout,
)
from export.data.teacher import load_targets
from export.evaluation.metrics import ms_ssim_rgb_db, psnr, rgb_to_y_matlab
from export.networks.deblocker import build_model, count_params
from export.training.checkpoints import load_snapshot, require_model_file, restore_hint
from export.training.losses import ms_ssim, ycbcr_to_rgb
from export.training.prune import describe, output_agreement, prune
from export.training.qat import FakeQuantized
from export.training.records import log
from export.training.schedule import lr_at
from pillow_blockcnn.runtime.jfif import rgb_to_ycbcr_float, to_uint8, ycbcr_to_rgb_float

VAL_QUALITIES = (10, 20, 30, 40)


class Validator:
    """Colour protocol on grid-aligned centre crops of the held-out train images, JPEG'd once up front."""

    def __init__(self, images: list[np.ndarray], crop: int) -> None:
        self.clean = [centre_crop(im, crop) for im in images]
        self.inputs: dict[int, list[np.ndarray]] = {}
        self.base: dict[int, tuple[float, float]] = {}
        for q in VAL_QUALITIES:
            self.inputs[q] = [degrade(c, q, gray=False)[0] for c in self.clean]
            outs = [to_uint8(ycbcr_to_rgb_float(x[:3].transpose(1, 2, 0) * 255.0)) for x in self.inputs[q]]
            self.base[q] = self._scores(outs)

    def baseline(self) -> dict[str, dict[str, float]]:
        """The JPEG decodes' own scores per quality (logged with the run)."""
        return {f"q{q}": {"y": b[0], "rgb": b[1]} for q, b in self.base.items()}

    def _scores(self, outs: list[np.ndarray]) -> tuple[float, float]:
        y = np.mean([psnr(rgb_to_y_matlab(o), rgb_to_y_matlab(c)) for o, c in zip(outs, self.clean)])
        rgb = np.mean([psnr(o, c) for o, c in zip(outs, self.clean)])
        return float(y), float(rgb)

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module) -> dict[str, Any]:
        model.eval()
        res: dict[str, Any] = {}
        gy, grgb = [], []
        for q in VAL_QUALITIES:
            outs = []
            for x in self.inputs[q]:
                y = model(torch.from_numpy(x)[None].to(_device(model)))[0].cpu().numpy()
                outs.append(to_uint8(ycbcr_to_rgb_float(y.transpose(1, 2, 0) * 255.0)))
            sy, srgb = self._scores(outs)
            res[f"q{q}"] = {"gain_y": sy - self.base[q][0], "gain_rgb": srgb - self.base[q][1]}
            gy.append(sy - self.base[q][0])
            grgb.append(srgb - self.base[q][1])
        model.train()
        res["gain_y"], res["gain_rgb"] = float(np.mean(gy)), float(np.mean(grgb))
        return res


def restoration_loss(out: torch.Tensor, target: torch.Tensor, spec: dict[str, Any] | None = None) -> torch.Tensor:
    """The training loss named by the config's ``loss`` entry (default: plain MSE over Y, Cb, Cr, as the paper).

    ``{"kind": "log_mse", "channel_weights": [wy, wcb, wcr]}`` is the mean over samples of log10 of each
    sample's channel-weighted MSE, i.e. minus its PSNR / 10. The benchmarks report the mean PSNR gain over
    images and qualities; pooled MSE lets the large errors of low qualities drown the high-quality samples
    (which is why the MSE-trained models damage nearly perfect JPEGs), while the mean log weighs each sample's
    dB alike. The channel weights say which errors matter: Y-PSNR sees only Y. ``"space": "rgb"`` takes the
    MSE over R, G, B instead (no channel weights): with ``log_mse_msssim`` the loss is then exactly
    −(PSNR-RGB + w · MS-SSIM dB) / 10, the two metrics the compression benchmark reports.
    """
    spec = spec or {"kind": "mse"}
    space = spec.get("space", "ycbcr")
    if space not in ("ycbcr", "rgb"):
        msg = f"unknown loss space {space!r}: use 'ycbcr' (channel-weighted) or 'rgb'"
        raise ValueError(msg)
    if spec["kind"] == "mse" and "channel_weights" not in spec and space == "ycbcr":
        return torch.nn.functional.mse_loss(out, target)  # exactly what deblock_v1/v2 trained with
    if space == "rgb":
        # the error PSNR-RGB measures: the benchmark's metric, not Y-PSNR (which (4, 1, 1) weights serve)
        per_sample = ((ycbcr_to_rgb(out) - ycbcr_to_rgb(target)) ** 2).mean(dim=(1, 2, 3))
    else:
        w = torch.tensor(spec.get("channel_weights", [1.0, 1.0, 1.0]), dtype=out.dtype).view(1, -1, 1, 1)
        w = w / w.mean()
        per_sample = ((out - target) ** 2 * w).mean(dim=(1, 2, 3))
    if spec["kind"] == "mse":
        return per_sample.mean()
    if spec["kind"] == "log_mse":
        return torch.log10(per_sample + float(spec.get("eps", 1e-8))).mean()
    if spec["kind"] == "log_mse_msssim":
        # -(PSNR + w * MS-SSIM dB) / 10 per sample (export/training/losses.py): both benchmark metrics, in dB
        rgb_out, rgb_target = ycbcr_to_rgb(out), ycbcr_to_rgb(target)
        msssim = ms_ssim(rgb_out, rgb_target).mean(dim=1)
        term = torch.log10((1.0 - msssim).clamp_min(1e-6))
        return (torch.log10(per_sample + float(spec.get("eps", 1e-8))) + float(spec.get("msssim_weight", 1.0)) * term).mean()
    msg = f"unknown loss kind {spec['kind']!r}: use 'mse', 'log_mse' or 'log_mse_msssim'"
    raise ValueError(msg)


def distillation_loss(out: torch.Tensor, target: torch.Tensor, teacher: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """The config's restoration loss against the original plus ``distill.weight`` times the log-MSE (same
    channel weights) against the teacher's restoration: the teacher's output is a target the student can
    reach, which the original, behind the information the quantiser destroyed, is not. The teacher term
    measures its error in the same space as the main loss (RGB or weighted YCbCr)."""
    spec = cfg.get("loss") or {"kind": "mse"}
    d = cfg["distill"]
    to_teacher = {"kind": "log_mse", "space": spec.get("space", "ycbcr"),
                  "channel_weights": spec.get("channel_weights", [1.0, 1.0, 1.0])}
    return restoration_loss(out, target, spec) + float(d.get("weight", 1.0)) * restoration_loss(out, teacher, to_teacher)


class PackValidator:
    """The validation crops of a .bcnn data pack (``export.data.bcnn_pack``): gains in Y-PSNR, RGB-PSNR and
    MS-SSIM (RGB mean, dB) over the codec's own decode, per quality and in the mean."""

    def __init__(self, pack: dict[str, np.ndarray]) -> None:
        self.clean, self.decoded = list(pack["val_clean"]), list(pack["val_decoded"])
        self.quality = [int(q) for q in pack["val_quality"]]
        self.base = [self._scores(d, c) for d, c in zip(self.decoded, self.clean)]

    def baseline(self) -> dict[str, dict[str, float]]:
        """The codec's decodes' own mean scores per quality (logged with the run)."""
        out: dict[str, dict[str, float]] = {}
        for q in sorted(set(self.quality)):
            m = np.mean([b for b, bq in zip(self.base, self.quality) if bq == q], axis=0)
            out[f"q{q}"] = {"y": float(m[0]), "rgb": float(m[1]), "msssim": float(m[2])}
        return out

    @staticmethod
    def _scores(out: np.ndarray, clean: np.ndarray) -> tuple[float, float, float]:
        return (psnr(rgb_to_y_matlab(out), rgb_to_y_matlab(clean)), psnr(out, clean), ms_ssim_rgb_db(out, clean))

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module) -> dict[str, Any]:
        model.eval()
        gains: dict[int, list[np.ndarray]] = {}
        for d, c, q, base in zip(self.decoded, self.clean, self.quality, self.base):
            x = make_input(rgb_to_ycbcr_float(d), q)
            y = model(torch.from_numpy(x)[None].to(_device(model)))[0].cpu().numpy()
            out = to_uint8(ycbcr_to_rgb_float(y.transpose(1, 2, 0) * 255.0))
            gains.setdefault(q, []).append(np.subtract(self._scores(out, c), base))
        model.train()
        res: dict[str, Any] = {}
        for q, g in gains.items():
            m = np.mean(g, axis=0)
            res[f"q{q}"] = {"gain_y": float(m[0]), "gain_rgb": float(m[1]), "gain_msssim": float(m[2])}
        for key in ("gain_y", "gain_rgb", "gain_msssim"):
            res[key] = float(np.mean([res[f"q{q}"][key] for q in gains]))
        return res


def selection_score(val: dict[str, Any], cfg: dict[str, Any]) -> float:
    """The validation number ``best.pt`` maximises: ``select`` = "mean" (of the Y and RGB gains, default),
    "y", "rgb", or "rgb_msssim" (RGB-PSNR gain plus MS-SSIM dB gain: both benchmark metrics)."""
    kind = cfg.get("select", "mean")
    if kind == "mean":
        return 0.5 * (val["gain_y"] + val["gain_rgb"])
    if kind == "rgb_msssim":
        return val["gain_rgb"] + val["gain_msssim"]
    return float(val[{"y": "gain_y", "rgb": "gain_rgb"}[kind]])




def make_optimizer(model: torch.nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    o = cfg["optim"]
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[o["kind"]]
    return cls(model.parameters(), lr=o["lr"], weight_decay=o["weight_decay"], betas=tuple(o.get("betas", (0.9, 0.999))))


def save(path: Path, **state: Any) -> None:
    """Atomic save (write then rename) so an interrupted save never corrupts last.pt."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)




def _device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s weights are (validation inputs go there)."""
    return next(model.parameters()).device


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _warm_start(model: torch.nn.Module, run: str) -> None:
    """A new run (own schedule, fresh optimiser) from another run's weights: its ``best.pt`` when this machine
    has it, else its committed float16 snapshot."""
    best = Path("runs") / run / "best.pt"
    if best.exists():
        model.load_state_dict(torch.load(best, map_location="cpu", weights_only=False)["model"])
    elif load_snapshot(run, model) is None:
        msg = f"config 'init': no weights for run {run!r}, neither {best} nor its snapshot: {restore_hint(run)}"
        raise SystemExit(msg)


def _pruned_start(model: torch.nn.Module, spec: dict[str, Any], sampler: CropSampler | PackSampler) -> dict[str, Any]:
    """A new run's weights cut from a shipped model (``export.training.prune``): config ``prune`` =
    ``{"onnx": path, "model": the ONNX model's architecture spec, "batches": how many training batches rank
    its channels}``. Returns the record for the log."""
    weights = read_state_dict(require_model_file(spec["onnx"], "prune.onnx"))
    teacher = build_model(spec["model"])
    teacher.load_state_dict(weights)
    teacher.eval()
    batches = [sampler.batch(10_000_000 + i)[0] for i in range(int(spec.get("batches", 8)))]  # not a training step's batch
    keep = prune(teacher, model, batches)
    return {"from": spec["onnx"], **describe(keep), "start_psnr_vs_teacher_db": round(output_agreement(teacher, model, batches), 2)}


def _grown_start(model: torch.nn.Module, spec: dict[str, Any]) -> dict[str, Any]:
    """A new run's weights from a shipped ONNX model of the same widths and fewer residual blocks: config
    ``grow`` = ``{"onnx": path}``. Every parameter the two share is copied; each residual block the shipped
    model lacks starts as the identity (its second convolution zero), so the run starts at exactly the shipped
    model's output and can only add what the new blocks learn. Returns the record for the log."""
    weights = read_state_dict(require_model_file(spec["onnx"], "grow.onnx"))
    result = model.load_state_dict(weights, strict=False)  # a width that differs is still an error
    new_params = list(result.missing_keys)
    if result.unexpected_keys or any(not k.endswith((".c1.weight", ".c1.bias", ".c2.weight", ".c2.bias")) for k in new_params):
        msg = (f"config 'grow': {spec['onnx']} is not this design with fewer residual blocks (unexpected "
               f"{result.unexpected_keys}, new {new_params})")
        raise SystemExit(msg)
    new_blocks = sorted({k.rsplit(".", 2)[0] for k in new_params})
    with torch.no_grad():
        for name in new_blocks:
            block = model.get_submodule(name)
            block.c2.weight.zero_()
            block.c2.bias.zero_()
    return {"from": spec["onnx"], "new_blocks": new_blocks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this step (smoke tests)")
    ap.add_argument("--run-dir", type=Path, default=None, help="override runs/<name>")
    ap.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda; same code, same data")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="stop after this many minutes of training, with a validated checkpoint (a device call's limit)")
    args = ap.parse_args()
    device = torch.device(args.device)

    cfg = json.loads(args.config.read_text())
    torch.set_num_threads(cfg.get("threads", 2))
    run_dir = args.run_dir or Path("runs") / cfg["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=2))
    seed = cfg["seed"]
    torch.manual_seed(seed)

    d = cfg["data"]
    files = list_images(Path(d["root"]))
    train_files, val_files = split_holdout(files, d["n_val"], d["split_seed"])
    t0 = time.time()
    sampler: CropSampler | PackSampler
    if "pack" in d:  # .bcnn decodes, pre-coded (export.data.bcnn_pack)
        # "pack": one path or a list (training crops concatenated, validation crops of the first); the teacher's
        # "targets" likewise, one file per pack in the same order
        packs = [load_pack(Path(x)) for x in _as_list(d["pack"])]
        pack = packs[0] if len(packs) == 1 else merge_packs(packs)
        teacher = None
        if "distill" in cfg:
            targets = _as_list(cfg["distill"]["targets"])
            if len(targets) != len(packs):
                msg = f"config distill.targets names {len(targets)} teacher files for {len(packs)} packs: one per pack"
                raise SystemExit(msg)
            teacher = np.concatenate([load_targets(Path(t), len(p["clean"])) for t, p in zip(targets, packs)])
        del packs
        sampler, validator = PackSampler(pack, d["sampler"]["batch"], seed, teacher), PackValidator(pack)
    else:  # Pillow JPEGs, coded per batch
        train_imgs = [load_rgb(f) for f in train_files]
        val_imgs = [load_rgb(f) for f in val_files]
        sampler = CropSampler(train_imgs, SamplerConfig(**d["sampler"]), seed)
        validator = Validator(val_imgs, d["val_crop"])

    model = build_model(cfg["model"])
    # channels_last: oneDNN's convolutions run ~10% faster on this CPU (2026-12-01, AMD EPYC, 2 threads); it
    # changes the order of float sums, so it is a config entry and a run keeps one layout from start to end.
    layout = torch.channels_last if cfg.get("channels_last") else torch.contiguous_format
    model = model.to(memory_format=layout)
    # qat: train and validate through the int8 model's rounding (export/training/qat.py); checkpoints stay float models
    qat = FakeQuantized(model, cfg["qat"].get("keep_float", KEEP_FLOAT)) if "qat" in cfg else None
    net = qat if qat is not None else model
    opt = make_optimizer(model, cfg)
    step, best, wall_prev, pruned, grown = 0, -float("inf"), 0.0, None, None
    last = run_dir / "last.pt"
    if last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, best, wall_prev = ck["step"], ck["best"], ck["wall_s"]
        torch.set_rng_state(ck["torch_rng"])
        if qat is not None:
            qat.load_quant_state(ck["qat"])
    elif (snap := load_snapshot(cfg["name"], model)) is not None:
        step, best, wall_prev = snap["step"], snap["best"], snap["wall_s"]
    elif "init" in cfg:
        _warm_start(model, cfg["init"])
    elif "prune" in cfg:
        pruned = _pruned_start(model, cfg["prune"], sampler)
    elif "grow" in cfg:
        grown = _grown_start(model, cfg["grow"])
    if qat is not None and not last.exists() and cfg["qat"].get("ranges"):
        # export.conversion.quantize's int8 model of the starting weights
        qat.load_onnx_ranges(require_model_file(cfg["qat"]["ranges"], "qat.ranges"))
    # To the device after every load (pruning runs its teacher on the CPU). The parameters move in place, so
    # the optimiser keeps them; loading its state again moves a resumed run's moments next to them.
    net.to(device)
    if last.exists():
        opt.load_state_dict(opt.state_dict())
    log_path = run_dir / "log.jsonl"
    log(log_path, event="start", step=step, params=count_params(model), n_train=len(train_files),
        n_train_used=len(sampler.images), n_val=len(val_files), val_images=[f.name for f in val_files],
        val_baseline=validator.baseline(),
        load_s=round(time.time() - t0, 1), resumed=last.exists() or step > 0, init=cfg.get("init"), pruned=pruned, grown=grown,
        device=str(device))

    s = cfg["schedule"]
    total, stop = s["total_iters"], min(s["total_iters"], args.max_steps or s["total_iters"])
    t_start, t_ckpt, losses = time.time(), time.time(), []

    def state(val: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "best": best,
                "wall_s": wall_prev + time.time() - t_start, "torch_rng": torch.get_rng_state(), "config": cfg,
                "val": val or {}, **({"qat": qat.quant_state()} if qat is not None else {})}

    stopping: list[int] = []  # SIGTERM/SIGINT: finish the step, save last.pt, exit (resume loses nothing)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stopping.append(signum))
    model.train()
    while step < stop and not stopping:
        lr = lr_at(step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        x, t, *teacher_out = (b.to(device).contiguous(memory_format=layout) for b in sampler.batch(step))
        out = net(x)
        loss = distillation_loss(out, t, teacher_out[0], cfg) if teacher_out else restoration_loss(out, t, cfg.get("loss"))
        opt.zero_grad(set_to_none=True)
        if torch.isfinite(loss):
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["optim"]["clip_grad_norm"])
            opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % cfg["log_every"] == 0:
            log(log_path, step=step, loss=float(np.mean(losses)), lr=lr, wall_s=round(wall_prev + time.time() - t_start, 1))
            losses = []
        out_of_time = args.max_minutes is not None and time.time() - t_start >= 60 * args.max_minutes
        if step % cfg["val_every"] == 0 or step == stop or out_of_time:
            tv = time.time()
            val = validator(net)
            score = selection_score(val, cfg)
            log(log_path, step=step, val=val, val_s=round(time.time() - tv, 1), lr=lr,
                wall_s=round(wall_prev + time.time() - t_start, 1))
            if score > best:
                best = score
                save(run_dir / "best.pt", **state(val))
            save(last, **state(val))
            t_ckpt = time.time()
        elif time.time() - t_ckpt > 60 * cfg["ckpt_minutes"]:
            save(last, **state())
            t_ckpt = time.time()
        if out_of_time:
            break
    if stopping:
        save(last, **state())
    timed_out = args.max_minutes is not None and step < stop and not stopping
    log(log_path, event="stop", step=step, total_iters=total, signal=stopping[0] if stopping else None,
        max_minutes=args.max_minutes if timed_out else None, wall_s=round(wall_prev + time.time() - t_start, 1))


if __name__ == "__main__":
    main()
