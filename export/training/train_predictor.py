"""Train the block predictor on what the decoder will see: decoded neighbours, original targets.

    nohup python -m export.training.train_predictor --config export/configs/predict/predict_v1.json > runs/predict_v1.out 2>&1 &

On a GPU machine, with a data pack carried there (``python -m export.data.pack --out runs/pack.npz``)::

    python -m export.training.train_predictor --config export/configs/predict/predict_v2.json \
        --device cuda --data-pack runs/pack.npz --run-dir $OUT/predict_v2 --skip-validation --max-minutes 8 \
        --sampler-workers 14

(The lent machines have no ``jpeglib``, whose libjpeg codes the validator's planes, so the run skips the
closed-loop validation there and checkpoints instead; ``--max-minutes`` ends it, with a checkpoint, inside
a device call's limit. The checkpoint is validated afterwards where the package's encoder runs.)

Each step draws crops from ``train/`` (the same held-out split as the
deblocker), codes their planes (Y, and Cb/Cr subsampled 4:2:0, or gray) with
the package's own plain plane coding (format version 2) at a random quality, and asks the network
for every block given its four decoded causal neighbours (the package's
``gather_contexts``: identical masking to the codec).

Loss: the residual's DCT (JPEG's orthonormal 8x8 DCT) divided by the
quantisation step of its coefficient, under a Huber penalty. The bits JPEG
spends on a coefficient grow with |c / Q|, so this is a rate proxy: low
frequencies, quantised finely, matter most. Validation codes held-out images
with the real closed-loop codec and reports bytes saved at equal quality.
Resumes from ``runs/<name>/last.pt``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from export.data.crops import list_images, load_rgb, predictor_validation_images, split_holdout
from export.networks.int_predictor import INPUTS, IntPredictorNet, widen_for_guide
from export.networks.predictor import BlockPredictorNet
from export.training.checkpoints import load_snapshot, restore_hint, snapshot_path
from export.training.records import log
from export.training.schedule import lr_at
from pillow_blockcnn import codec
from pillow_blockcnn.codec import colour, jpeg
from pillow_blockcnn.codec.blocks import BLOCK, gather_contexts
from pillow_blockcnn.codec.closed_loop import code_plain
from pillow_blockcnn.codec.guide import GUIDE_ROWS, guide_plane, guide_windows
from pillow_blockcnn.metrics import psnr

REPO = Path(__file__).resolve().parents[2]
RATE_PER_DB = 1.25


def dct_matrix() -> torch.Tensor:
    k = np.arange(8)
    d = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    return torch.tensor(d, dtype=torch.float32)


def plane_samples(
    plane: np.ndarray, quality: int, chroma: bool, tables: str = "jpeg", luma: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Contexts, availability, guide windows, targets and quantisation steps for every block of one plane,
    and (key ``recon``, not a batch field) what plain coding decodes it to. ``luma``: for a chroma plane, the
    decoded Y plane its guide comes from (4:2:0); without it the guide windows are 0."""
    qtable = jpeg.quant_table(quality, chroma, tables)
    recon = code_plain(plane, np.asarray(qtable).reshape(8, 8)).recon  # what plain coding decodes to
    bordered = np.zeros((recon.shape[0] + 2 * BLOCK, recon.shape[1] + 2 * BLOCK), dtype=np.uint8)
    bordered[BLOCK:-BLOCK, BLOCK:-BLOCK] = recon
    by, bx = np.meshgrid(np.arange(plane.shape[0] // BLOCK), np.arange(plane.shape[1] // BLOCK), indexing="ij")
    by, bx = by.ravel(), bx.ravel()
    contexts, available = gather_contexts(bordered, by, bx)
    targets = plane.reshape(plane.shape[0] // 8, 8, plane.shape[1] // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    n = len(by)
    info = np.zeros((n, 6), dtype=np.float32)
    info[:, :4] = available
    info[:, 4] = quality / 100.0
    info[:, 5] = float(chroma)
    steps = np.broadcast_to(np.asarray(qtable, np.float32).reshape(1, 8, 8), (n, 8, 8))
    if luma is not None:
        guide = guide_windows(guide_plane(luma, plane.shape, (2, 2)), by, bx)
    else:
        guide = np.zeros((n, GUIDE_ROWS, 3 * BLOCK), dtype=np.uint8)
    return {"context": contexts, "info": info, "guide": guide, "target": targets, "steps": steps, "recon": recon}


class Sampler:
    """Batches as a pure function of (seed, step): a resumed run sees the same data."""

    def __init__(self, images: list[np.ndarray], cfg: dict[str, Any], seed: int) -> None:
        self.images = [im for im in images if min(im.shape[:2]) >= cfg["crop"]]
        self.cfg, self.seed = cfg, seed

    def quality(self, rng: np.random.Generator) -> int:
        c = self.cfg
        if rng.random() < c["low_q_prob"]:
            return int(rng.integers(c["q_min"], c["q_split"] + 1))
        return int(rng.integers(c["q_split"] + 1, c["q_max"] + 1))

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        return _as_tensors(self.arrays(step))

    def arrays(self, step: int) -> dict[str, np.ndarray]:
        """Step ``step``'s batch as numpy arrays (what a prefetching worker process sends back)."""
        rng = np.random.default_rng([self.seed, step])
        size, parts = self.cfg["crop"], []
        for _ in range(self.cfg["crops"]):
            img = self.images[int(rng.integers(len(self.images)))]
            y0 = int(rng.integers(0, img.shape[0] - size + 1))
            x0 = int(rng.integers(0, img.shape[1] - size + 1))
            crop = np.rot90(img[y0 : y0 + size, x0 : x0 + size], int(rng.integers(4)))
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            crop = np.ascontiguousarray(crop)
            q = self.quality(rng)
            table_sets = self.cfg.get("tables", ["jpeg"])
            tables = table_sets[int(rng.integers(len(table_sets)))]
            ycc = colour.rgb_to_ycbcr(crop)
            if rng.random() < self.cfg["gray_prob"]:
                parts.append(plane_samples(ycc[0], q, chroma=False, tables=tables))
                continue
            luma = plane_samples(ycc[0], q, chroma=False, tables=tables)
            parts.append(luma)
            for c in (1, 2):
                chroma = colour.downsample(ycc[c], (2, 2))
                parts.append(plane_samples(chroma, q, chroma=True, tables=tables, luma=luma["recon"]))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "recon"}


def _as_tensors(out: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {
        "context": torch.from_numpy(out["context"].astype(np.float32) / 255.0),
        "info": torch.from_numpy(out["info"]),
        "guide": torch.from_numpy(out["guide"].astype(np.float32) / 255.0),
        "target": torch.from_numpy(out["target"].astype(np.float32)),
        "steps": torch.from_numpy(np.ascontiguousarray(out["steps"])),
    }


_worker_sampler: Sampler | None = None


def _start_worker(sampler: Sampler) -> None:
    global _worker_sampler  # one sampler per worker process, set once by the pool
    _worker_sampler = sampler


def _worker_arrays(step: int) -> dict[str, np.ndarray]:
    assert _worker_sampler is not None
    return _worker_sampler.arrays(step)


class Prefetcher:
    """Batches ``start``, ``start + 1``, ... computed ahead by ``workers`` processes, handed out in order.

    Why: a batch codes its planes in numpy on one core, which on a GPU machine takes longer than the network's
    step. A batch is a pure function of (seed, step), so the batches, and the run, are those of the serial
    sampler; at most ``2 * workers`` wait in memory.
    """

    def __init__(self, sampler: Sampler, workers: int, start: int, end: int) -> None:
        import multiprocessing

        self.pool = multiprocessing.get_context("spawn").Pool(workers, _start_worker, (sampler,))
        self.pending: dict[int, Any] = {}
        self.next_step, self.end, self.depth = start, end, 2 * workers

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        while self.next_step < min(step + self.depth, self.end):
            self.pending[self.next_step] = self.pool.apply_async(_worker_arrays, (self.next_step,))
            self.next_step += 1
        return _as_tensors(self.pending.pop(step).get())

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.terminate()


def rate_loss(pred: torch.Tensor, target: torch.Tensor, steps: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    residual = target - pred
    coeffs = d @ residual @ d.T
    return F.huber_loss(coeffs / steps, torch.zeros_like(coeffs), delta=1.0)


class TorchPredictor:
    """The network behind the codec's BlockPredictor interface (validation runs the real closed loop)."""

    model_ids = ("training",)

    def __init__(self, model: BlockPredictorNet | IntPredictorNet, quality: int) -> None:
        self.model, self.quality = model, quality
        self.device = next(model.parameters()).device
        self.guided = bool(getattr(model, "guide", False))

    @torch.no_grad()
    def predict(
        self, contexts: np.ndarray, available: np.ndarray, plane: int | np.ndarray, guide: np.ndarray | None = None
    ) -> np.ndarray:
        info = np.zeros((len(contexts), 6), dtype=np.float32)
        info[:, :4] = available
        info[:, 4] = self.quality / 100.0
        info[:, 5] = np.asarray(plane) > 0
        context = torch.from_numpy(contexts.astype(np.float32) / 255.0).to(self.device)
        extra = {}
        if self.guided and guide is not None:
            extra["guide"] = torch.from_numpy(guide.astype(np.float32) / 255.0).to(self.device)
        out = self.model(context, torch.from_numpy(info).to(self.device), **extra)
        return np.clip(np.rint(out.cpu().numpy()), 0, 255).astype(np.uint8)


def validate(
    model: BlockPredictorNet, images: list[np.ndarray], qualities: list[int], table_sets: list[str]
) -> dict[str, Any]:
    """Closed-loop coding of held-out crops: bytes and PSNR with the predictor against without.

    ``bytes_ratio`` (the selection metric) is the mean effective ratio: bytes at equal PSNR.
    """
    model.eval()
    res: dict[str, Any] = {}
    ratios = []
    for q, tables in ((q, t) for t in table_sets for q in qualities):
        plain_bytes = pred_bytes = 0
        plain_psnr, pred_psnr = [], []
        for img in images:
            plain = codec.encode(img, "RGB", q, tables=tables, reconstruct=True)
            pred = codec.encode(
                img, "RGB", q, tables=tables, predictor=TorchPredictor(model, q), reconstruct=True, force_prediction=True
            )
            plain_bytes += sum(len(p) for p in plain.container.planes)
            pred_bytes += sum(len(p) for p in pred.container.planes)
            plain_psnr.append(psnr(plain.reconstruction, img))
            pred_psnr.append(psnr(pred.reconstruction, img))
        ratio = pred_bytes / plain_bytes
        delta = float(np.mean(pred_psnr) - np.mean(plain_psnr))
        # Bytes at equal PSNR, to first order: on JPEG's Kodak curve 1 dB costs about 25% rate
        # (q10 -> q30: 0.256 -> 0.610 bpp for 26.67 -> 30.49 dB), so a PSNR loss is charged as rate.
        effective = ratio * RATE_PER_DB ** (-delta)
        ratios.append(effective)
        res[f"q{q}" if tables == "jpeg" else f"q{q}-{tables}"] = {
            "bytes_ratio": ratio,
            "psnr_delta": delta,
            "effective_ratio": effective,
        }
    res["bytes_ratio"] = float(np.mean(ratios))
    model.train()
    return res




def init_from(model: torch.nn.Module, name: str) -> None:
    """Start ``model`` from the committed snapshot ``export/checkpoints/<name>.pt`` (a config's ``"init"``);
    an unguided snapshot starts a luma-guided network with zero weights on the guide inputs, i.e. as the
    unguided predictor it fine-tunes."""
    if not snapshot_path(name).exists():
        msg = f"config 'init': {restore_hint(name)}"
        raise SystemExit(msg)
    snap = torch.load(snapshot_path(name), map_location="cpu", weights_only=False)
    state = {k: v.float() if v.is_floating_point() else v for k, v in snap["model"].items()}
    if getattr(model, "guide", False) and state["layers.0.linear.weight"].shape[1] == INPUTS:
        state = widen_for_guide(state)
    model.load_state_dict(state)


def build_predictor(spec: dict[str, Any]) -> torch.nn.Module:
    """The network a config's ``model`` names: ``arch`` ``"BlockPredictorNet"`` (float, ``pred-1``; the
    default) or ``"IntPredictorNet"`` (integer-exact, trained through its rounding), with its size options."""
    spec = dict(spec)
    arch = spec.pop("arch", "BlockPredictorNet")
    networks = {"BlockPredictorNet": BlockPredictorNet, "IntPredictorNet": IntPredictorNet}
    if arch not in networks:
        msg = f"model arch {arch!r} is unknown; use one of {sorted(networks)}"
        raise ValueError(msg)
    return networks[arch](**spec)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    ap.add_argument("--run-dir", type=Path, default=None, help="override runs/<name>")
    ap.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda; same code, same data")
    ap.add_argument(
        "--data-pack", type=Path, default=None, help="an export.data.pack .npz instead of ../shared (GPU machines)"
    )
    ap.add_argument(
        "--skip-validation",
        action="store_true",
        help="no closed-loop validation (it needs jpeglib, which GPU machines lack): checkpoint at its steps instead",
    )
    ap.add_argument(
        "--sampler-workers",
        type=int,
        default=0,
        help="processes that code batches ahead (0: in the training process); the batches are the same",
    )
    ap.add_argument(
        "--max-minutes", type=float, default=None, help="stop, with a checkpoint, after this many minutes of training"
    )
    args = ap.parse_args(argv)
    cfg = json.loads(args.config.read_text())
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    device = torch.device(args.device)
    run = args.run_dir or REPO / "runs" / cfg["name"]
    run.mkdir(parents=True, exist_ok=True)
    if args.data_pack is not None:
        pack = np.load(args.data_pack, allow_pickle=True)
        sampler = Sampler(list(pack["crops"]), cfg["data"]["sampler"], cfg["seed"])
        val_images = list(pack["val"])
        val_files: list[Path] = []
    else:
        files = list_images((REPO / cfg["data"]["root"]).resolve())
        train_files, val_files = split_holdout(files, cfg["data"]["n_val"], cfg["data"]["split_seed"])
        sampler = Sampler([load_rgb(p) for p in train_files], cfg["data"]["sampler"], cfg["seed"])
        val_images = predictor_validation_images(val_files[: cfg["data"]["n_val_used"]], cfg["data"]["val_crop"])
    model = build_predictor(cfg["model"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["optim"]["lr"], weight_decay=cfg["optim"]["weight_decay"])
    step, best = 0, float("inf")
    if (run / "last.pt").exists():
        ck = torch.load(run / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, best = ck["step"], ck["best"]
    elif (snap := load_snapshot(cfg["name"], model)) is not None:
        step, best = snap["step"], snap["best"]
    elif "init" in cfg:
        init_from(model, cfg["init"])
    d = dct_matrix().to(device)
    log_path = run / "log.jsonl"
    log(log_path, event="start", step=step, config=cfg, val_images=[p.name for p in val_files])
    (run / "config.json").write_text(json.dumps(cfg, indent=1))
    end = cfg["schedule"]["total_iters"] if args.steps is None else min(cfg["schedule"]["total_iters"], step + args.steps)
    source = (
        Prefetcher(sampler, args.sampler_workers, step, end)
        if args.sampler_workers > 0
        else contextlib.nullcontext(sampler)
    )
    t0, last_ckpt, running = time.time(), time.time(), []
    with source as batches:
        while step < end:
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg)
            batch = {k: v.to(device) for k, v in batches.batch(step).items()}
            extra = {"guide": batch["guide"]} if getattr(model, "guide", False) else {}
            pred = model(batch["context"], batch["info"], **extra)
            loss = rate_loss(pred, batch["target"], batch["steps"], d)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            running.append(loss.item())
            if step % cfg["log_every"] == 0:
                log(log_path, step=step, loss=float(np.mean(running)), lr=lr_at(step, cfg), wall_s=round(time.time() - t0, 1))
                running = []
            at_end = step == end or (args.max_minutes is not None and time.time() - t0 >= 60 * args.max_minutes)
            if not args.skip_validation and (step % cfg["val_every"] == 0 or at_end):
                val = validate(model, val_images, cfg["data"]["val_qualities"], cfg["data"]["sampler"].get("tables", ["jpeg"]))
                log(log_path, step=step, val=val, wall_s=round(time.time() - t0, 1))
                if val["bytes_ratio"] < best:
                    best = val["bytes_ratio"]
                    torch.save({"model": model.state_dict(), "config": cfg, "step": step, "val": val}, run / "best.pt")
            checkpoint_step = step % cfg["val_every"] == 0 or at_end
            if checkpoint_step or time.time() - last_ckpt > 60 * cfg["ckpt_minutes"]:
                state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "best": best, "config": cfg}
                torch.save(state, run / "last.tmp")
                os.replace(run / "last.tmp", run / "last.pt")
                last_ckpt = time.time()
            if at_end:
                break


if __name__ == "__main__":
    main()
