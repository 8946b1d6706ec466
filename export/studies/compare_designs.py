"""Equal-time design comparison for the deblocker: paper-faithful per-block BlockCNN vs the fully convolutional
BlockUNet, and YCbCr vs Lab (the colour space the paper trains in).

Every variant trains from scratch for the same wall-clock budget, on the same data (`export.data.CropSampler`
over ``../shared/data/train`` minus the held-out images), with the same thread count, one after the other, and
is scored by the training run's validator (held-out train images, colour protocol, q10/20/30/40). Nothing here
touches the benchmark sets. Inference speed is measured separately (``--speed``) on a 768x512 input so that it
can be run when the machine is otherwise idle.

Usage::

    python -m export.studies.compare_designs --minutes 10 --threads 1 --out results/studies/design_comparison.json
    python -m export.studies.compare_designs --speed --threads 2 --out results/studies/design_comparison.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from export.data.crops import CropSampler, SamplerConfig, list_images, load_rgb, split_holdout
from export.networks.deblocker import BLOCK, BlockCNN, BlockUNet, count_params
from export.training.train_deblocker import Validator
from pillow_blockcnn.runtime.jfif import rgb_to_ycbcr_float, ycbcr_to_rgb_float

CONFIG = Path("export/configs/deblock/deblock_v1.json")

# ----------------------------------------------------------------------------------------------------------------
# Lab <-> YCbCr (for the colour-space comparison only, never differentiated; the runtime stays in YCbCr)
# ----------------------------------------------------------------------------------------------------------------
_M = torch.tensor([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                   [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float32)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883])
_EPS, _KAPPA = 216 / 24389, 24389 / 27


def _ycc_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """YCbCr/255 (N,3,H,W) -> RGB 0..255 with the training pipeline's own conversion (:mod:`export.colour`)."""
    return torch.from_numpy(ycbcr_to_rgb_float(x.permute(0, 2, 3, 1).numpy() * 255)).permute(0, 3, 1, 2)


def _rgb_to_ycc(rgb: torch.Tensor) -> torch.Tensor:
    """RGB 0..255 (N,3,H,W) -> YCbCr/255, the inverse of :func:`_ycc_to_rgb`."""
    return torch.from_numpy(rgb_to_ycbcr_float(rgb.permute(0, 2, 3, 1).numpy())).permute(0, 3, 1, 2) / 255


def ycc_to_lab(x: torch.Tensor) -> torch.Tensor:
    """YCbCr/255 (N,3,H,W) -> Lab scaled to about 0..1 (L/100, (a+128)/255, (b+128)/255)."""
    c = (_ycc_to_rgb(x) / 255).clamp(0, 1)
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,njhw->nihw", _M, lin) / _WHITE[None, :, None, None]
    f = torch.where(xyz > _EPS, xyz.clamp_min(1e-12) ** (1 / 3), (_KAPPA * xyz + 16) / 116)
    lab_l, lab_a, lab_b = 116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])
    return torch.stack([lab_l / 100, (lab_a + 128) / 255, (lab_b + 128) / 255], 1)


def lab_to_ycc(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`ycc_to_lab` (unclipped YCbCr/255 of the clipped RGB)."""
    fy = (lab[:, 0] * 100 + 16) / 116
    fx = fy + (lab[:, 1] * 255 - 128) / 500
    fz = fy - (lab[:, 2] * 255 - 128) / 200
    f = torch.stack([fx, fy, fz], 1)
    xyz = torch.where(f**3 > _EPS, f**3, (116 * f - 16) / _KAPPA) * _WHITE[None, :, None, None]
    lin = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_M), xyz).clamp(0, 1)
    c = torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin.clamp_min(1e-12) ** (1 / 2.4) - 0.055)
    return _rgb_to_ycc(c * 255)


# ----------------------------------------------------------------------------------------------------------------
# Whole-image wrappers, so the one validator scores every variant the same way
# ----------------------------------------------------------------------------------------------------------------
class PerBlock(nn.Module):
    """Runs a 24x24 -> 8x8 BlockCNN over every block of an image (edge-replicated border), as the paper does."""

    def __init__(self, net: BlockCNN, chunk: int = 4096) -> None:
        super().__init__()
        self.net, self.chunk = net, chunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        win = windows(F.pad(x, (BLOCK,) * 4, mode="replicate"))
        out = torch.cat([self.net(win[i : i + self.chunk]) for i in range(0, len(win), self.chunk)])
        by, bx = h // BLOCK, w // BLOCK
        out = out.reshape(n, by, bx, -1, BLOCK, BLOCK).permute(0, 3, 1, 4, 2, 5)
        return out.reshape(n, -1, h, w)


class InLab(nn.Module):
    """YCbCr/255 + quality in, YCbCr/255 out, with the wrapped network working in Lab."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lab_to_ycc(self.net(torch.cat([ycc_to_lab(x[:, :3]), x[:, 3:]], 1)))


def windows(x: torch.Tensor) -> torch.Tensor:
    """(N,C,H,W) -> (N*by*bx, C, 24, 24): every 24x24 window at stride 8 (a block and its 8 neighbours)."""
    c = x.shape[1]
    u = x.unfold(2, 3 * BLOCK, BLOCK).unfold(3, 3 * BLOCK, BLOCK)  # N,C,by,bx,24,24
    return u.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, 3 * BLOCK, 3 * BLOCK)


def centre_blocks(t: torch.Tensor) -> torch.Tensor:
    """Targets matching :func:`windows` of the unpadded crop: the inner blocks, (N*(by-2)*(bx-2), C, 8, 8)."""
    c = t.shape[1]
    u = t.unfold(2, BLOCK, BLOCK).unfold(3, BLOCK, BLOCK)[:, :, 1:-1, 1:-1]
    return u.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, BLOCK, BLOCK)


# ----------------------------------------------------------------------------------------------------------------
# Variants
# ----------------------------------------------------------------------------------------------------------------
def variants(unet_kwargs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        # The paper's network at a CPU-trainable width: 2 plain convs, 4 conv-BN-LReLU-conv-BN residual blocks,
        # Adam lr 1e-3 with (coupled) weight decay 1e-4, MSE, 24x24 in, 8x8 out.
        "blockcnn_paper_ycbcr": {"make": lambda: BlockCNN(in_ch=4, ch=64, n_convs=2, n_blocks=4),
                                 "per_block": True, "lab": False, "optim": torch.optim.Adam, "windows": 256},
        "blockunet_ycbcr": {"make": lambda: BlockUNet(**unet_kwargs), "per_block": False, "lab": False,
                            "optim": torch.optim.AdamW},
        "blockunet_lab": {"make": lambda: BlockUNet(**unet_kwargs), "per_block": False, "lab": True,
                          "optim": torch.optim.AdamW},
    }


def train_variant(name: str, v: dict[str, Any], sampler: CropSampler, validator: Validator, seconds: float,
                  seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    net = v["make"]()
    opt = v["optim"](net.parameters(), lr=1e-3, weight_decay=1e-4)
    rng = torch.Generator().manual_seed(seed)
    step, blocks, t0 = 0, 0, time.time()
    net.train()
    while time.time() - t0 < seconds:
        for g in opt.param_groups:
            g["lr"] = 1e-3 * min(1.0, (step + 1) / 100)  # short warm-up, then constant: equal for every variant
        x, t = sampler.batch(step)
        if v["lab"]:
            x, t = torch.cat([ycc_to_lab(x[:, :3]), x[:, 3:]], 1), ycc_to_lab(t)
        if v["per_block"]:
            win, tgt = windows(x), centre_blocks(t)
            pick = torch.randperm(len(win), generator=rng)[: v["windows"]]
            x, t = win[pick], tgt[pick]
            blocks += len(pick)
        else:
            blocks += x.shape[0] * (x.shape[2] // BLOCK) * (x.shape[3] // BLOCK)
        loss = F.mse_loss(net(x), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
    train_s = time.time() - t0
    model: nn.Module = PerBlock(net) if v["per_block"] else net
    if v["lab"]:
        model = InLab(model)
    tv = time.time()
    val = validator(model)
    rec = {"params": count_params(net), "steps": step, "train_s": round(train_s, 1),
           "blocks_seen": blocks, "blocks_per_s": round(blocks / train_s, 1), "val": val,
           "val_s": round(time.time() - tv, 1)}
    print(name, json.dumps({k: rec[k] for k in ("params", "steps", "blocks_per_s")}),
          f"gain_y {val['gain_y']:+.3f} gain_rgb {val['gain_rgb']:+.3f}", flush=True)
    return rec


@torch.no_grad()
def speed(unet_kwargs: dict[str, Any], repeats: int = 3) -> dict[str, Any]:
    """Median seconds for a 768x512 YCbCr+quality input through each design, in torch (inference mode)."""
    x = torch.rand(1, 4, 512, 768)
    out = {}
    for name, model in (("blockcnn_paper", PerBlock(BlockCNN(in_ch=4, ch=64, n_convs=2, n_blocks=4).eval())),
                        ("blockunet", BlockUNet(**unet_kwargs).eval())):
        model(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
        s = statistics.median(times)
        out[name] = {"s_per_768x512": round(s, 3), "mp_per_s": round(768 * 512 / 1e6 / s, 3)}
        print(name, out[name], flush=True)
    return out


def to_markdown(res: dict[str, Any]) -> str:
    """The comparison as a table (one row per variant), plus the inference speeds when measured."""
    lines = ["# Deblocker design comparison (`python -m export.studies.compare_designs`)", ""]
    tr = res.get("training", {})
    if tr:
        any_rec = next(iter(tr.values()))
        lines += [(f"Equal training time, {any_rec['minutes']:g} min per variant from scratch, {any_rec['machine']}, "
                  f"{any_rec['date']}. Validation: held-out training images (not a benchmark set), colour "
                  "protocol, mean gain over JPEG at q10/20/30/40."), "",
                  "| variant | params | steps | blocks/s in training | gain Y (dB) | gain RGB (dB) |",
                  "|---|---|---|---|---|---|"]
        for name, r in tr.items():
            lines.append(f"| {name} | {r['params']:,} | {r['steps']} | {r['blocks_per_s']:,.0f} | "
                         f"{r['val']['gain_y']:+.3f} | {r['val']['gain_rgb']:+.3f} |")
    if "speed" in res:
        sp = res["speed"]
        lines += ["", f"Inference, torch, 768x512 RGB-sized input, {sp['machine']}, {sp['date']}:", "",
                  "| design | s per image | MP/s |", "|---|---|---|"]
        lines += [f"| {k} | {v['s_per_768x512']} | {v['mp_per_s']} |" for k, v in sp.items() if isinstance(v, dict)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per variant")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None, help="variant names (default: all)")
    ap.add_argument("--speed", action="store_true", help="measure inference speed instead of training")
    ap.add_argument("--report", action="store_true", help="only rewrite the markdown table from --out")
    ap.add_argument("--out", type=Path, default=Path("results/studies/design_comparison.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = json.loads(CONFIG.read_text())
    unet_kwargs = {k: tuple(v) for k, v in cfg["model"].items() if k != "arch"}
    res = json.loads(args.out.read_text()) if args.out.exists() else {}
    meta = {"date": date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch threads", "torch": torch.__version__}
    if args.report:
        pass
    elif args.speed:
        res["speed"] = {**meta, **speed(unet_kwargs)}
    else:
        d = cfg["data"]
        train_files, val_files = split_holdout(list_images(Path(d["root"])), d["n_val"], d["split_seed"])
        sc = SamplerConfig(**d["sampler"])
        validator = Validator([load_rgb(f) for f in val_files], d["val_crop"])
        imgs = [load_rgb(f) for f in train_files]
        res.setdefault("training", {})
        for name, v in variants(unet_kwargs).items():
            if args.only and name not in args.only:
                continue
            # The per-block net consumes 256 windows a step: two crops give 392 to draw from.
            sampler = CropSampler(imgs, replace(sc, batch=2) if v["per_block"] else sc, cfg["seed"])
            rec = train_variant(name, v, sampler, validator, 60 * args.minutes, cfg["seed"])
            res["training"][name] = {**meta, "minutes": args.minutes, **rec}
            args.out.write_text(json.dumps(res, indent=2) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(to_markdown(res))


if __name__ == "__main__":
    main()
