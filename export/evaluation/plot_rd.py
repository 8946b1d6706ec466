"""Rate-distortion plot: our measured curves beside published Kodak anchors (CompressAI-style JSON files).

Left panel: PSNR-RGB vs bpp, ours (solid, markers) with the published curves (dashed: classical codecs,
dotted: learned codecs). Right panel: MS-SSIM (RGB, dB: -10 log10(1 - MS-SSIM)) vs bpp, ours with the published
curves that give an RGB MS-SSIM (``ms-ssim-rgb``; files with only ``ms-ssim`` may average channels differently
and are left out). Usage::

    python -m export.evaluation.plot_rd results/compression/kodak_compression.json --out results/compression/kodak_rd.png
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window: runs on servers and in tests

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

DEFAULT_ANCHORS = Path(__file__).resolve().parents[3] / "shared" / "anchors" / "kodak"


@dataclass(frozen=True)
class Anchor:
    """A published curve: its file in the anchors folder, its label and colour, whether the codec is learned."""

    file: str
    label: str
    colour: str  # fixed per curve, away from the tab10 colours our own curves use
    learned: bool = False


# Only files whose name and description say unambiguously what they are; the JPEG curve is Pillow's default
# (no optimize, 4:2:0: its bpp match a local no-optimize run exactly), so it lies above our optimised anchor.
ANCHORS = (
    Anchor("jpeg.json", "JPEG, published (Pillow, no optimize)", "#555555"),
    Anchor("webp.json", "WebP, published (Pillow default)", "#9acd32"),
    Anchor("jpeg2000.json", "JPEG 2000 (ffmpeg)", "#b8860b"),
    Anchor("bpg_444_x265_ycbcr.json", "BPG 4:4:4 (x265)", "#00bcd4"),
    Anchor("hm.json", "HEVC (HM)", "#4682b4"),
    Anchor("av1.json", "AV1", "#ff69b4"),
    Anchor("vtm.json", "VVC (VTM)", "#000080"),
    Anchor("paper-bmshj2018-factorized.json", "Ballé 2018 factorized", "#8b4513", learned=True),
    Anchor("paper-bmshj2018-hyperprior.json", "Ballé 2018 hyperprior", "#6a5acd", learned=True),
    Anchor("paper-mbt2018.json", "Minnen 2018 (joint)", "#008080", learned=True),
    Anchor("compressai-cheng2020-anchor_mse_cpu.json", "Cheng 2020 (CompressAI)", "#000000", learned=True),
)


def load_anchor(path: Path, metric: str = "psnr-rgb") -> tuple[list[float], list[float]] | None:
    """(bpp, ``metric``) of one CompressAI-style file, sorted by rate (``ms-ssim-rgb`` on the dB scale); None
    when it has no such curve."""
    results = json.loads(path.read_text())["results"]
    if metric not in results:
        return None
    values = results[metric]
    if metric == "ms-ssim-rgb":
        values = [-10.0 * math.log10(max(1.0 - v, 1e-10)) for v in values]
    points = sorted(zip(results["bpp"], values))
    return [p[0] for p in points], [p[1] for p in points]


def _our_curves(result: dict, metric: str) -> dict[str, tuple[list[float], list[float]]]:
    """Mean points per codec, in the order the run listed its codecs, each sorted by rate."""
    curves: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in result["codecs"]}
    for s in sorted(result["summary"], key=lambda s: s["bpp"]):
        rate, value = curves.setdefault(s["codec"], ([], []))
        rate.append(s["bpp"])
        value.append(s[metric])
    return curves


def _plot_ours(ax: Axes, curves: dict[str, tuple[list[float], list[float]]]) -> list:
    colours = plt.get_cmap("tab10").colors
    return [
        ax.plot(*curve, "-o", color=colours[i % 10], lw=2.2, ms=4, mec="k", mew=0.4, label=f"{name} (this run)")[0]
        for i, (name, curve) in enumerate(curves.items())
    ]


def _plot_anchors(ax: Axes, anchors_dir: Path, metric: str = "psnr-rgb") -> list:
    lines = []
    for anchor in ANCHORS:
        path = anchors_dir / anchor.file
        curve = load_anchor(path, metric) if path.is_file() else None
        if curve is not None:
            style = ":" if anchor.learned else "--"
            lines += ax.plot(*curve, style, color=anchor.colour, lw=1.3, label=anchor.label)
    return lines


def _fit_limits(ax: Axes, lines: list, x_max: float) -> None:
    """Clip to our bpp range and scale y to what is visible there (anchors run on to 4+ bpp and 45 dB)."""
    ys = [y for line in lines for x, y in zip(line.get_xdata(), line.get_ydata()) if 0 <= x <= x_max]
    if ys:
        pad = 0.03 * (max(ys) - min(ys) or 1.0)
        ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.set_xlim(0, x_max)


def _psnr_panel(ax: Axes, result: dict, anchors_dir: Path, x_max: float, bd_max_bpp: float | None) -> None:
    published = _plot_anchors(ax, anchors_dir)
    ours = _plot_ours(ax, _our_curves(result, "psnr_rgb"))
    _fit_limits(ax, published + ours, x_max)
    if bd_max_bpp is not None:
        ax.axvline(bd_max_bpp, color="0.6", lw=0.8)
        ax.text(bd_max_bpp, 0.02, " BD-rate range ends", transform=ax.get_xaxis_transform(), color="0.4", fontsize=7)
    if published:
        ax.add_artist(ax.legend(handles=published, fontsize=7, loc="upper left", title="published", title_fontsize=7))
    ax.legend(handles=ours, fontsize=7, loc="lower right")
    ax.set_ylabel("PSNR-RGB (dB)")
    ax.set_title("PSNR-RGB: this run and published Kodak results")


def _ms_ssim_panel(ax: Axes, result: dict, anchors_dir: Path, x_max: float) -> None:
    published = _plot_anchors(ax, anchors_dir, "ms-ssim-rgb")
    ours = _plot_ours(ax, _our_curves(result, "ms_ssim_db"))
    _fit_limits(ax, published + ours, x_max)
    if published:
        ax.add_artist(ax.legend(handles=published, fontsize=7, loc="upper left", title="published", title_fontsize=7))
    ax.legend(handles=ours, fontsize=7, loc="lower right")
    ax.set_ylabel("MS-SSIM, RGB (dB)")
    ax.set_title("MS-SSIM (dB): this run and published Kodak results")


def plot_rd(result: dict, out: Path, anchors_dir: Path = DEFAULT_ANCHORS, bd_max_bpp: float | None = 1.0) -> Path:
    """Write the two-panel RD figure for an evaluate_compression result; missing anchor files are skipped."""
    x_max = 1.05 * max(s["bpp"] for s in result["summary"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6.5))
    _psnr_panel(left, result, anchors_dir, x_max, bd_max_bpp)
    _ms_ssim_panel(right, result, anchors_dir, x_max)
    for ax in (left, right):
        ax.set_xlabel("bits per pixel (whole file)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"Kodak, {len(result['images'])} images, {result['date']}, {result['machine']}", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", type=Path, help="JSON written by export.evaluation.evaluate_compression --json")
    parser.add_argument("--out", type=Path, default=Path("results/compression/kodak_rd.png"))
    parser.add_argument("--anchors", type=Path, default=DEFAULT_ANCHORS, help="folder of CompressAI-style JSON")
    args = parser.parse_args(argv)
    return plot_rd(json.loads(args.result.read_text()), args.out, args.anchors)


if __name__ == "__main__":
    main()
