"""Would a predictor with several hypotheses, one chosen per block and signalled, save bits? A closed-loop estimate.

    python -m export.studies.multi_hypothesis train --heads 1 &   # the control: pred-2 fine-tuned the same way
    python -m export.studies.multi_hypothesis train --heads 4
    python -m export.studies.multi_hypothesis evaluate --heads 1 4 --json results/studies/multi_hypothesis.json

Why: ``pred-2`` is calibrated (``prediction_strength``), and signalled classical modes beside it save about 1%
(``intra_modes``): where the neighbours leave a block's texture ambiguous, one prediction can only hedge. A
network with K output heads trained with a winner-takes-all loss (each block's loss is that of its best head,
plus a small share of the others', so no head dies) learns K complementary guesses; the encoder, which has the
original, picks one per block in its rate-distortion choice and the file says which. The heads share
``pred-2``'s hidden layers (same integer arithmetic; the last layer is K times wider, +3% multiply-adds per
head), so the prediction pass costs about what ``pred-2``'s does.

``train`` starts from ``pred-2``'s snapshot (``export/checkpoints/predict_v2.pt``), copies its output layer
into every head with a little noise, and fine-tunes with quantisation in the loop on ``pred-2``'s data and
rate loss, on the ``balanced`` and ``mse`` tables. ``--heads 1`` is the same fine-tune with one head: the
control that separates the gain of the heads from that of the extra training. ``evaluate`` runs the real
closed loop (:func:`export.studies.intra_modes.code_with_candidates`) on held-out crops and reports each
model's BD-rate (PSNR-RGB before restoration) against ``pred-2``, the heads' side information counted at the
zeroth-order entropy of the chosen head over each plane's predicted blocks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from export.data.bcnn_pack import split
from export.data.crops import centre_crops, list_images, load_rgb, split_holdout
from export.evaluation.bdrate import bd_rates
from export.evaluation.report import emit, machine
from export.networks.int_predictor import IntegerLayer, IntPredictorNet
from export.studies.intra_modes import Candidates, choice_entropies, rd_points
from export.training.checkpoints import snapshot_path
from export.training.records import log
from export.training.schedule import lr_at
from export.training.train_predictor import Sampler, dct_matrix

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "runs" / "multi_hypothesis"
CONFIG = {
    "seed": 20261207,
    "sampler": {"crop": 128, "crops": 8, "gray_prob": 0.1, "q_min": 5, "q_split": 50, "q_max": 95,
                "low_q_prob": 0.8, "tables": ["balanced", "mse"]},
    "optim": {"lr": 2e-4, "weight_decay": 1e-4},
    "schedule": {"total_iters": 1500, "warmup_iters": 50, "min_lr": 1e-6},
    "wta_share": 0.05,
    "head_noise": 0.1,
}


class MultiHeadPredictor(nn.Module):
    """``pred-2``'s network with ``heads`` output layers side by side: ``forward`` gives ``[N, heads, 8, 8]``."""

    def __init__(self, heads: int, width: int = 384, depth: int = 3) -> None:
        super().__init__()
        self.heads = heads
        self.net = IntPredictorNet(width, depth)
        self.net.layers[-1] = IntegerLayer(width, 64 * heads, in_exp=0, last=True)

    def start_from(self, state: dict[str, torch.Tensor], noise: float, generator: torch.Generator) -> None:
        """Every head a copy of the one-head network ``state``'s output layer, plus Gaussian noise of
        ``noise`` times its weights' spread (heads that start equal would stay equal)."""
        state = dict(state)
        last = len(self.net.layers) - 1
        w, b = state[f"layers.{last}.linear.weight"], state[f"layers.{last}.linear.bias"]
        spread = float(w.std())
        jitter = torch.randn((self.heads - 1) * w.shape[0], w.shape[1], generator=generator) * noise * spread
        state[f"layers.{last}.linear.weight"] = torch.cat([w, w.repeat(self.heads - 1, 1) + jitter])
        state[f"layers.{last}.linear.bias"] = b.repeat(self.heads)
        self.net.load_state_dict(state)

    def forward(self, context: torch.Tensor, info: torch.Tensor) -> torch.Tensor:
        a, base = self.net.offsets(context, info)
        return base[:, None, None, None] + a.reshape(-1, self.heads, 8, 8)


def head_losses(pred: torch.Tensor, target: torch.Tensor, steps: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``[N, heads]``: each head's rate proxy on each block (the trainer's Huber on the residual's DCT / step)."""
    coeffs = d @ (target[:, None] - pred) @ d.T
    return F.huber_loss(coeffs / steps[:, None], torch.zeros_like(coeffs), delta=1.0, reduction="none").mean((2, 3))


def train(heads: int, steps: int | None, threads: int) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(CONFIG["seed"])
    RUN.mkdir(parents=True, exist_ok=True)
    ckpt, log_path = RUN / f"k{heads}.pt", RUN / f"k{heads}.jsonl"
    files = list_images((REPO / "../shared/data/train").resolve())
    train_files, _ = split_holdout(files, 24, 1234)
    sampler = Sampler([load_rgb(p) for p in train_files], CONFIG["sampler"], CONFIG["seed"])
    model = MultiHeadPredictor(heads)
    cfg = {"optim": CONFIG["optim"], "schedule": CONFIG["schedule"]}
    opt = torch.optim.AdamW(model.parameters(), lr=CONFIG["optim"]["lr"], weight_decay=CONFIG["optim"]["weight_decay"])
    step = 0
    if ckpt.exists():
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        step = saved["step"]
    else:
        snap = torch.load(snapshot_path("predict_v2"), map_location="cpu", weights_only=False)
        state = {k: v.float() if v.is_floating_point() else v for k, v in snap["model"].items()}
        model.start_from(state, CONFIG["head_noise"], torch.Generator().manual_seed(CONFIG["seed"]))
    d = dct_matrix()
    end = CONFIG["schedule"]["total_iters"] if steps is None else min(CONFIG["schedule"]["total_iters"], step + steps)
    share = CONFIG["wta_share"] if heads > 1 else 0.0
    t0, running, wins = time.time(), [], torch.zeros(heads)
    while step < end:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        batch = sampler.batch(step)
        losses = head_losses(model(batch["context"], batch["info"]), batch["target"], batch["steps"], d)
        best = losses.min(dim=1)
        loss = ((1 - share) * best.values + share * losses.mean(dim=1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        running.append(float(best.values.detach().mean()))
        wins += torch.bincount(best.indices, minlength=heads)
        if step % 50 == 0 or step == end:
            log(log_path, step=step, best_loss=float(np.mean(running)), wins=(wins / wins.sum()).round(decimals=3).tolist(),
                wall_s=round(time.time() - t0, 1))
            running, wins = [], torch.zeros(heads)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, RUN / f"k{heads}.tmp")
            os.replace(RUN / f"k{heads}.tmp", ckpt)


def head_candidates(model: MultiHeadPredictor, quality: int) -> Candidates:
    """The closed loop's candidates: every head's prediction, computed from the neighbours the codec gathers."""

    def candidates(neighbours: np.ndarray, available: np.ndarray, index: int, net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(neighbours)
        blocks = neighbours.reshape(n, 4, 8, 8) * available[:, :, None, None]
        context = np.zeros((n, 24, 24), dtype=np.float32)
        context[:, 0:8, 0:8], context[:, 0:8, 8:16] = blocks[:, 0], blocks[:, 1]
        context[:, 0:8, 16:24], context[:, 8:16, 0:8] = blocks[:, 2], blocks[:, 3]
        info = np.zeros((n, 6), dtype=np.float32)
        info[:, :4] = available
        info[:, 4] = quality / 100.0
        info[:, 5] = float(index > 0)
        with torch.no_grad():
            out = model(torch.from_numpy(context / 255.0), torch.from_numpy(info)).numpy()
        cands = np.clip(out, 0, 255).astype(np.uint8).transpose(1, 0, 2, 3)
        return np.ascontiguousarray(cands), np.ones((model.heads, n), dtype=bool)

    return candidates


def with_main(main: MultiHeadPredictor, heads: MultiHeadPredictor, quality: int) -> Candidates:
    """The one-head model ``main``'s prediction as candidate 0, then every head of ``heads``."""
    first, rest = head_candidates(main, quality), head_candidates(heads, quality)

    def candidates(neighbours: np.ndarray, available: np.ndarray, index: int, net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, ua = first(neighbours, available, index, net)
        b, ub = rest(neighbours, available, index, net)
        return np.concatenate([a, b]), np.concatenate([ua, ub])

    return candidates


def boundary_rule(cands: np.ndarray, residuals: np.ndarray, neighbours: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Decoder-side derivation: for the residual coded against each candidate k, the candidate j whose rebuilt
    block ``clip(P_j + R_k - 128)`` continues the rebuilt neighbours most smoothly (the squared second difference
    across the top and left borders, where those neighbours exist; ties to the lowest j)."""
    n = neighbours.reshape(-1, 4, 8, 8).astype(np.int64)
    above, left = n[:, 1], n[:, 3]
    rebuilt = np.clip(cands[None].astype(np.int64) + residuals[:, None].astype(np.int64) - 128, 0, 255)  # [k, j, N, 8, 8]
    top = (rebuilt[..., 0, :] - 2 * above[:, 7, :] + above[:, 6, :]) ** 2
    side = (rebuilt[..., :, 0] - 2 * left[:, :, 7] + left[:, :, 6]) ** 2
    score = top.sum(-1) * available[:, 1] + side.sum(-1) * available[:, 3]  # [k, j, N]
    return score.argmin(axis=1)


def _load(k: int) -> tuple[MultiHeadPredictor, int]:
    saved = torch.load(RUN / f"k{k}.pt", map_location="cpu", weights_only=False)
    model = MultiHeadPredictor(k)
    model.load_state_dict(saved["model"])
    return model.eval(), saved["step"]


def evaluate(heads: list[int], images_n: int, size: tuple[int, int], qualities: list[int], mode_bits: float,
             out: Path | None, side_info: bool = True, main: int | None = None, derive: bool = False) -> dict:
    """Each model's BD-rate against ``pred-2``; ``side_info=False``: the heads' choices counted free (a bound).
    ``main``: the one-head model ``k{main}`` is candidate 0, free in the RD choice, and each model's heads
    follow it at ``mode_bits`` each (a main prediction with alternatives the encoder picks where they pay).
    ``derive``: no choice is stored; the decoder derives it by :func:`boundary_rule`."""
    torch.set_num_threads(1)
    _, held_out = split()
    images = centre_crops(held_out, *size, count=images_n, either_orientation=True)
    start = time.perf_counter()
    base = [rd_points(im, qualities, "pred-2", "balanced", None, 0.0, 0, ("net",))[0] for im in images]
    result: dict = {"machine": machine(), "images": len(images), "size": list(size), "qualities": qualities,
                    "tables": "balanced", "mode_bits": mode_bits, "side_info": side_info and not derive, "main": main, "derive": derive, "config": CONFIG,
                    "models": {}}
    for k in heads:
        model, step = _load(k)
        names = tuple(f"head{i}" for i in range(k))
        if main is None:
            chooser, free, bits = (lambda q, m=model: head_candidates(m, q)), None, mode_bits * (k > 1)
        else:
            first = _load(main)[0]
            chooser, free, bits, names = (lambda q, m=model: with_main(first, m, q)), 0, mode_bits, ("main", *names)
        curves, usage, pairs = [], dict.fromkeys(names, 0), np.zeros((len(names), len(names)), dtype=np.int64)
        for im in images:
            pts, used, pair_counts = rd_points(im, qualities, "pred-2", "balanced", chooser, 0.0 if derive else bits,
                                               free, names, side_info and not derive, boundary_rule if derive else None)
            curves.append(pts)
            usage = {c: usage[c] + used[c] for c in names}
            pairs += pair_counts
        per_image = bd_rates(base, curves)
        result["models"][f"k{k}"] = {"step": step, "bd_rate_mean_pct": round(float(np.mean(per_image)), 3),
                                     "bd_rate_per_image_pct": [round(b, 2) for b in per_image], "usage": usage,
                                     "choice_entropy": choice_entropies(pairs)}
        print(f"k{k}", json.dumps(result["models"][f"k{k}"]), flush=True)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return emit(result, out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--heads", type=int, required=True)
    t.add_argument("--steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    t.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("evaluate")
    e.add_argument("--heads", type=int, nargs="+", required=True)
    e.add_argument("--images", type=int, default=8)
    e.add_argument("--size", type=int, nargs=2, default=(256, 384))
    e.add_argument("--qualities", type=int, nargs="+", default=[10, 20, 30, 40, 60])
    e.add_argument("--mode-bits", type=float, default=None, help="bits the RD choice charges a head (default log2 K)")
    e.add_argument("--free-choices", action="store_true", help="count the heads' choices as free: the bound")
    e.add_argument("--derive", action="store_true", help="store no choice: the decoder derives it (boundary_rule)")
    e.add_argument("--main", type=int, default=None, help="the one-head model k<MAIN> as a free candidate 0")
    e.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.command == "train":
        train(args.heads, args.steps, args.threads)
    else:
        bits = args.mode_bits if args.mode_bits is not None else math.log2(max(args.heads))
        evaluate(args.heads, args.images, tuple(args.size), args.qualities, bits, args.json, not args.free_choices,
                 args.main, args.derive)


if __name__ == "__main__":
    main()
