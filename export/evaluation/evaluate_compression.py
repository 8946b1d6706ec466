"""Rate-distortion sweep of .bcnn against Pillow's codecs on a folder of images (Kodak by default).

Every number goes through the public API (``Image.save`` / ``Image.open``), the way users meet the codecs.
Bits per pixel count the whole file, headers included. Each codec is swept over its own quality grid (chosen
to span about 0.1-1.5 bpp on Kodak), each point is scored with PSNR-RGB and SSIM-RGB, and every codec gets a
BD-rate against JPEG. The full run, as recorded in ``results/``::

    python -m export.evaluation.evaluate_compression --json results/compression/kodak_compression.json \
        --markdown results/compression/kodak_compression.md --plot results/compression/kodak_rd.png

Codec settings, and why:

* JPEG: Pillow/libjpeg-turbo, 4:2:0, ``optimize=True`` (optimised Huffman tables). The fair anchor: .bcnn
  also optimises its tables, and any JPEG encoder can.
* WebP: ``method=6``, libwebp's slowest, best-compressing mode (Pillow's default is its fastest, method 0).
* AVIF: libavif/aom, 4:2:0, ``speed=6``: Pillow's and libavif's default, so what users get, at 0.2-0.35 s per
  Kodak image on one thread. The whole sweep stays a few minutes; speed 8 was 3x faster for ~1% more bits in
  a spot check (kodim01, q60), so the choice hardly moves the BD-rate.
* JPEG XL: pillow-jxl-plugin (libjxl), ``effort=7`` (libjxl's default).
* Every encoder and decoder runs on one thread (``max_threads=1``, ``num_threads=1``, .bcnn's onnxruntime
  ``threads=1``), so the times compare codecs rather than how well each one spreads over cores.

A .bcnn combination whose model is not packaged, and a Pillow codec this installation lacks, is reported as
unavailable (a printed note and an entry in the JSON), never replaced by something else.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image, features

import pillow_blockcnn
from export.evaluation.bdrate import Method, bd_rate, overlap, select_up_to
from export.evaluation.candidates import installed, parse_spec
from export.evaluation.metrics import ms_ssim_rgb_db, psnr, ssim
from pillow_blockcnn import options as bcnn_options
from pillow_blockcnn.cli.bench import pillow_saver
from pillow_blockcnn.runtime import settings as bcnn_settings
from pillow_blockcnn.runtime.machine import machine

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "kodak"
ANCHOR = "jpeg"
#: The codec every Pillow 13 user already has: BD-rates against JPEG compare each codec with JPEG over its own
#: shared PSNR interval, so two codecs' numbers can cover different intervals; the head-to-head table against
#: this one compares them over the interval they share.
HEAD_TO_HEAD = "avif"
BD_MAX_BPP = 1.0
BD_METHODS: tuple[Method, ...] = ("cubic", "pchip")

Saver = Callable[[Image.Image, int], bytes]

# Quality grids: each spans roughly 0.1-1.5 bpp on Kodak for its own codec (quality scales are not comparable
# across codecs), with enough points at or below 1 bpp (>= 6) for the BD-rate fits.
JPEG_GRID = (3, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80)
WEBP_GRID = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 85)
# AVIF starts low (q 0 and 5, about 0.05-0.08 bpp) as JPEG's and .bcnn's grids do: a BD-rate against JPEG is
# taken over the PSNR interval the two curves share, so a grid that stops early leaves the low-rate end, where
# the modern codecs gain most, out of AVIF's number and in the others'.
AVIF_GRID = (0, 5, 10, 20, 30, 40, 50, 55, 60, 65, 70, 75)
JXL_GRID = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 85)


@dataclass(frozen=True)
class Codec:
    """One encoder configuration, its default quality sweep, and how to tell whether it can run here."""

    name: str
    description: str
    save: Saver
    qualities: tuple[int, ...]
    unavailable: Callable[[], str | None]  # None when usable, else the reason it is not


def _bcnn_unavailable(predict: bool | str, deblock: bool | str, tables: str) -> Callable[[], str | None]:
    """Probe with a real save: the plugin refuses a combination whose model is not packaged."""

    def probe() -> str | None:
        try:
            Image.new("RGB", (16, 16)).save(io.BytesIO(), "BCNN", predict=predict, deblock=deblock, tables=tables)
        except (ValueError, OSError) as exc:
            return str(exc)
        return None

    return probe


def _feature_unavailable(feature: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        return None if features.check(feature) else f"this Pillow build has no {feature} support"

    return probe


def _jxl_unavailable() -> str | None:
    try:
        importlib.import_module("pillow_jxl")  # registers the JXL format with Pillow on import
    except ImportError:
        return "pillow-jxl-plugin is not installed (pip install 'pillow-jxl-plugin>=1.3.8')"
    return None


def _bcnn(name: str, predict: bool | str, deblock: bool | str, tables: str = "jpeg") -> Codec:
    description = f".bcnn 4:2:0, predict={predict}, deblock={deblock}, tables={tables}"
    saver = pillow_saver("BCNN", predict=predict, deblock=deblock, tables=tables)
    return Codec(name, description, saver, JPEG_GRID, _bcnn_unavailable(predict, deblock, tables))


CODECS: dict[str, Codec] = {
    c.name: c
    for c in [
        _bcnn("bcnn-plain", predict=False, deblock=False),
        _bcnn("bcnn-deblock", predict=False, deblock=True),
        _bcnn("bcnn-predict", predict=True, deblock=False),
        _bcnn("bcnn-predict-deblock", predict=True, deblock=True),
        _bcnn("bcnn-plain-mse", predict=False, deblock=False, tables="mse"),
        _bcnn("bcnn-deblock-mse", predict=False, deblock=True, tables="mse"),
        _bcnn("bcnn-predict-mse", predict=True, deblock=False, tables="mse"),
        _bcnn("bcnn-predict-deblock-mse", predict=True, deblock=True, tables="mse"),
        _bcnn("bcnn-plain-ssim", predict=False, deblock=False, tables="ssim"),
        _bcnn("bcnn-predict-deblock-ssim", predict=True, deblock=True, tables="ssim"),
        _bcnn("bcnn-predict-deblock-balanced", predict=True, deblock=True, tables="balanced"),
        # the fast restorer, recommended where it helps (save(deblock="dblk-7"), as the default decides)
        _bcnn("bcnn-predict-dblk-7-mse", predict=True, deblock="dblk-7", tables="mse"),
        # the middle restorer (save(deblock="dblk-8")): between dblk-7 and dblk-6 in speed and quality
        _bcnn("bcnn-predict-dblk-8-mse", predict=True, deblock="dblk-8", tables="mse"),
        # the unguided predictor in place of the default (save(predict="pred-2")), the rest as the default
        _bcnn("bcnn-pred-2-deblock-mse", predict="pred-2", deblock=True, tables="mse"),
        Codec(
            "jpeg",
            "Pillow JPEG (libjpeg-turbo) 4:2:0, optimize=True",
            pillow_saver("JPEG", optimize=True, subsampling="4:2:0"),
            JPEG_GRID,
            _feature_unavailable("jpg"),
        ),
        Codec(
            "webp",
            "Pillow WebP (libwebp), method=6",
            pillow_saver("WEBP", method=6),
            WEBP_GRID,
            _feature_unavailable("webp"),
        ),
        Codec(
            "avif",
            "Pillow AVIF (libavif, aom encoder), 4:2:0, speed=6, max_threads=1",
            pillow_saver("AVIF", speed=6, subsampling="4:2:0", max_threads=1),
            AVIF_GRID,
            _feature_unavailable("avif"),
        ),
        Codec(
            "jxl",
            "JPEG XL via pillow-jxl-plugin (libjxl), effort=7, num_threads=1",
            pillow_saver("JXL", effort=7, num_threads=1),
            JXL_GRID,
            _jxl_unavailable,
        ),
    ]
}


@contextlib.contextmanager
def fixed_decoder_settings() -> Iterator[None]:
    """One decoder thread everywhere, and .bcnn's deblocking on; the previous settings come back afterwards.

    Decoder options are module globals (Pillow's AVIF plugin, pillow-jxl-plugin, pillow_blockcnn's options),
    as ``Image.open`` cannot carry options; encoders get theirs per call instead. Deblocking is forced on so
    that ``PILLOW_BLOCKCNN_DEBLOCK=0`` in the environment cannot silently turn ``bcnn-*-deblock`` into its
    plain counterpart.
    """
    saved: list[tuple[object, str, object]] = []

    def set_attr(module: object, attr: str, value: object) -> None:
        saved.append((module, attr, getattr(module, attr)))
        setattr(module, attr, value)

    set_attr(bcnn_settings, "THREADS", 1)
    set_attr(bcnn_options, "DEBLOCK", True)
    with contextlib.suppress(ImportError):  # Pillow < 11.2 has no AVIF plugin at all
        from PIL import AvifImagePlugin

        set_attr(AvifImagePlugin, "DEFAULT_MAX_THREADS", 1)
    if "pillow_jxl" in sys.modules:
        set_attr(sys.modules["pillow_jxl"].JpegXLImagePlugin, "DECODE_THREADS", 0)  # 0: no parallelism
    try:
        yield
    finally:
        for module, attr, value in reversed(saved):
            setattr(module, attr, value)


def versions() -> dict[str, str | None]:
    """Versions of everything that produced a number: codec libraries change bitstreams between releases."""

    def dist(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    avif_codecs = None
    if features.check("avif"):
        from PIL import _avif

        avif_codecs = _avif.codec_versions()
    return {
        "pillow": Image.__version__,
        "pillow_blockcnn": pillow_blockcnn.__version__,
        "numpy": np.__version__,
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "libwebp": features.version("webp"),
        "libavif": features.version("avif"),
        "avif_codecs": avif_codecs,
        "pillow_jxl_plugin": dist("pillow-jxl-plugin"),
        "onnxruntime": dist("onnxruntime"),
    }


def ssim_rgb(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004, 11x11 Gaussian) per RGB channel, averaged: the usual 'SSIM on RGB'."""
    return float(np.mean([ssim(a[..., c], b[..., c]) for c in range(a.shape[-1])]))


def _timed(fn: Callable[[], object], repeat: int) -> tuple[object, float]:
    """Result of ``fn`` and its fastest time in ms over ``repeat`` runs (the minimum filters out load spikes)."""
    best = float("inf")
    result: object = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, 1000.0 * best


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def measure(codec: Codec, original: Image.Image, reference: np.ndarray, quality: int, repeat: int) -> dict:
    """One RD point of one image: size, distortion and speed, all through Image.save / Image.open."""
    data, encode_ms = _timed(lambda: codec.save(original, quality), repeat)
    assert isinstance(data, bytes)
    decoded, decode_ms = _timed(lambda: _decode(data), repeat)
    assert isinstance(decoded, np.ndarray)
    if decoded.shape != reference.shape:
        msg = f"{codec.name} q={quality} decoded to {decoded.shape}, expected {reference.shape}"
        raise RuntimeError(msg)
    return {
        "codec": codec.name,
        "quality": quality,
        "bytes": len(data),
        "bpp": 8 * len(data) / (reference.shape[0] * reference.shape[1]),
        "psnr_rgb": psnr(decoded, reference),
        "ssim_rgb": ssim_rgb(decoded, reference),
        "ms_ssim_db": ms_ssim_rgb_db(decoded, reference),
        "encode_ms": encode_ms,
        "decode_ms": decode_ms,
    }


def available_codecs(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Split the requested codecs into those that run here and those that cannot (with the reason)."""
    usable, missing = [], {}
    for name in names:
        reason = CODECS[name].unavailable()
        if reason is None:
            usable.append(name)
        else:
            missing[name] = reason
            print(f"note: {name} unavailable, skipped: {reason}", file=sys.stderr)
    return usable, missing


def summarise(rows: list[dict], grids: dict[str, tuple[int, ...]]) -> list[dict]:
    """Mean over images per (codec, quality): per-image PSNR is averaged in dB, as CompressAI's anchors do."""
    summary = []
    for name, grid in grids.items():
        for quality in grid:
            sel = [r for r in rows if r["codec"] == name and r["quality"] == quality]
            keys = ("bpp", "psnr_rgb", "ssim_rgb", "ms_ssim_db", "encode_ms", "decode_ms")
            summary.append(
                {"codec": name, "quality": quality, "images": len(sel)}
                | {k: float(np.mean([r[k] for r in sel])) for k in keys}
            )
    return summary


#: Distortion metrics every BD-rate is reported on: PSNR-RGB, and MS-SSIM (RGB mean) on the dB scale.
METRICS = ("psnr_rgb", "ms_ssim_db")


def bd_rates(summary: list[dict], anchor: str = ANCHOR, max_bpp: float = BD_MAX_BPP) -> dict[str, dict]:
    """BD-rate (log-bpp) of every codec against the anchor on each of :data:`METRICS`, on mean points up to
    ``max_bpp``. Keys ``bd_rate_{method}_pct`` are PSNR-RGB (as before), ``ms_ssim_bd_rate_{method}_pct``
    MS-SSIM. A codec whose curve cannot be compared gets the reason instead of a number.
    """

    def curve(name: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        pts = [s for s in summary if s["codec"] == name]
        return select_up_to([s["bpp"] for s in pts], [s[metric] for s in pts], max_bpp)

    if not any(s["codec"] == anchor for s in summary):
        return {}
    out: dict[str, dict] = {}
    for name in dict.fromkeys(s["codec"] for s in summary if s["codec"] != anchor):
        entry: dict[str, object] = {"anchor": anchor}
        for metric in METRICS:
            if metric not in summary[0]:
                continue
            prefix = "" if metric == "psnr_rgb" else "ms_ssim_"
            ref_rate, ref_q = curve(anchor, metric)
            rate, quality = curve(name, metric)
            entry |= {"points": int(rate.size), "anchor_points": int(ref_rate.size)}
            try:
                for method in BD_METHODS:
                    entry[f"{prefix}bd_rate_{method}_pct"] = bd_rate(ref_rate, ref_q, rate, quality, method=method)
                entry[f"{prefix or 'psnr_'}interval_db"] = list(overlap(ref_q, quality))
            except ValueError as exc:
                entry[f"{prefix}error"] = str(exc)
        if "psnr_interval_db" not in entry and "error" in entry:
            entry = {"anchor": anchor, "error": entry["error"]}
        out[name] = entry
    return out


def evaluate(images: list[Path], codecs: list[str], qualities: list[int] | None = None, repeat: int = 1) -> dict:
    """Sweep every available codec over its grid (or ``qualities``) on every image; summary, BD-rates, context."""
    usable, missing = available_codecs(codecs)
    grids = {name: tuple(qualities) if qualities else CODECS[name].qualities for name in usable}
    rows = []
    started = time.perf_counter()
    with fixed_decoder_settings():
        for path in images:
            with Image.open(path) as im:
                reference = np.asarray(im.convert("RGB"))
            original = Image.fromarray(reference)  # no metadata: every codec codes the same pixels only
            for name in usable:
                for quality in grids[name]:
                    rows.append({"image": path.name} | measure(CODECS[name], original, reference, quality, repeat))
            print(f"{path.name}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    summary = summarise(rows, grids)
    return {
        "date": date.today().isoformat(),
        "machine": machine(),
        "versions": versions(),
        "wall_s": time.perf_counter() - started,
        "images": [p.name for p in images],
        "codecs": {n: CODECS[n].description for n in usable},
        "qualities": {n: list(g) for n, g in grids.items()},
        "unavailable": missing,
        "protocol": {
            "bpp": "whole file incl. headers, 8*bytes/(width*height)",
            "psnr_rgb": "10*log10(255^2/MSE) over R, G, B of the decoded 8-bit image; mean of per-image dB",
            "ms_ssim_db": "MS-SSIM (Wang et al. 2003, 5 scales) per R, G, B, averaged, as -10*log10(1 - MS-SSIM)",
            "ssim_rgb": "SSIM (Wang et al. 2004: 11x11 Gaussian sigma 1.5, K1=0.01, K2=0.03, valid region) "
            "per R, G, B channel, averaged",
            "times": f"ms, one thread, fastest of {repeat} run(s), decode includes Image.open and convert('RGB')",
            "bd_rate": f"against {ANCHOR}, log-bpp vs PSNR-RGB, mean points with bpp <= {BD_MAX_BPP}, "
            "over the shared PSNR interval; 'cubic' (least-squares cubic, VCEG-M33) is the reported value, "
            "'pchip' (piecewise cubic Hermite, JCTVC/JVET practice) alongside",
        },
        "summary": summary,
        **scores(summary),
        "per_image": rows,
    }


def score_key(anchor: str) -> str:
    """Where a result keeps its BD-rates against ``anchor``: ``bd_rate`` for :data:`ANCHOR` (as always),
    ``bd_rate_vs_<anchor>`` for another."""
    return "bd_rate" if anchor == ANCHOR else f"bd_rate_vs_{anchor}"


def scores(summary: list[dict]) -> dict[str, dict]:
    """BD-rates against :data:`ANCHOR` and, when it ran, head to head against :data:`HEAD_TO_HEAD`."""
    out = {score_key(ANCHOR): bd_rates(summary)}
    if any(s["codec"] == HEAD_TO_HEAD for s in summary):
        out[score_key(HEAD_TO_HEAD)] = bd_rates(summary, anchor=HEAD_TO_HEAD)
    return out


def _points_table(result: dict) -> list[str]:
    lines = [
        "| codec | q | bpp | PSNR-RGB (dB) | MS-SSIM (dB) | SSIM-RGB | encode ms | decode ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in result["summary"]:
        lines.append(
            f"| {s['codec']} | {s['quality']} | {s['bpp']:.3f} | {s['psnr_rgb']:.2f} | {s.get('ms_ssim_db', float('nan')):.2f} | "
            f"{s['ssim_rgb']:.4f} | {s['encode_ms']:.0f} | {s['decode_ms']:.0f} |"
        )
    return lines


def _bd_table(result: dict, anchor: str = ANCHOR) -> list[str]:
    key = score_key(anchor)
    if not result.get(key):
        return [f"No BD-rates: the anchor ({anchor}) was not part of this run."]
    lines = [
        (
            f"BD-rate against {anchor} (PSNR-RGB and MS-SSIM, points up to {BD_MAX_BPP:g} bpp; negative = fewer "
            "bits for the same quality, over the quality interval the two curves share). The reported value is "
            "the least-squares cubic fit (VCEG-M33, as CompressAI and most papers); the piecewise cubic (pchip, "
            "JCTVC/JVET practice) is shown beside it."
        ),
        "",
        (
            "| codec | BD-rate PSNR-RGB (cubic) | (pchip) | BD-rate MS-SSIM (cubic) | (pchip) | PSNR interval (dB) "
            "| points ≤ 1 bpp |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in result[key].items():
        if "psnr_interval_db" not in e:
            lines.append(f"| {name} | – | – | – | – | {e.get('error', '')} | – |")
            continue
        lo, hi = e["psnr_interval_db"]
        ms = [e.get(f"ms_ssim_bd_rate_{m}_pct") for m in ("cubic", "pchip")]
        ms_text = [f"{v:+.1f}%" if v is not None else "–" for v in ms]
        lines.append(
            f"| {name} | {e['bd_rate_cubic_pct']:+.1f}% | {e['bd_rate_pchip_pct']:+.1f}% | {ms_text[0]} | "
            f"{ms_text[1]} | {lo:.2f}–{hi:.2f} | {e['points']} |"
        )
    return lines


def markdown(result: dict) -> str:
    """The summary as markdown: context, codec settings, mean RD points, BD-rates, unavailable codecs."""
    v = result["versions"]
    lines = [
        (
            f"{_data_name(Path(result.get('data', DEFAULT_DATA)))}, {len(result['images'])} images, mean per quality; "
            f"{result['date']}, {result['machine']}, "
            f"Pillow {v['pillow']} (libjpeg-turbo {v['libjpeg_turbo']}, libwebp {v['libwebp']}, "
            f"libavif {v['libavif']} [{v['avif_codecs']}]), pillow-jxl-plugin {v['pillow_jxl_plugin']}; "
            f"wall time {result['wall_s']:.0f} s."
        ),
        "",
        *[f"- `{name}`: {desc}" for name, desc in result["codecs"].items()],
        *[f"- `{name}`: unavailable ({why})" for name, why in result["unavailable"].items()],
        *[
            f"- merged: {', '.join(m['codecs'])} from `{m['file']}` ({m['date']}, {m['machine']})"
            for m in result.get("merged_from", [])
        ],
        "",
        *_points_table(result),
        "",
        *_bd_table(result),
        *(["", *_bd_table(result, HEAD_TO_HEAD)] if score_key(HEAD_TO_HEAD) in result else []),
    ]
    return "\n".join(lines) + "\n"


def merge_runs(runs: list[dict], names: list[str]) -> dict:
    """One result from several sweeps of the same images: the first run's context, every run's codecs (a
    codec measured again in a later run takes that run's points). Lets a codec's grid be extended without
    sweeping the others again."""
    result = dict(runs[0])
    for run, name in zip(runs[1:], names[1:]):
        if run["images"] != result["images"]:
            msg = f"{name} measured other images than {names[0]}: runs can only be merged on the same images"
            raise SystemExit(msg)
        redone = set(run["codecs"])
        for key in ("codecs", "qualities"):  # a codec keeps its place (and its colour in the plots)
            result[key] = {k: run[key][k] if k in redone else v for k, v in result[key].items()} | run[key]
        order = {codec: i for i, codec in enumerate(result["codecs"])}
        for key in ("summary", "per_image"):
            rows = [r for r in result[key] if r["codec"] not in redone] + run[key]
            result[key] = sorted(rows, key=lambda r: order[r["codec"]])  # stable: qualities keep their order
    if len(runs) > 1:
        result["merged_from"] = [
            {"file": name, "date": run["date"], "machine": run["machine"], "codecs": list(run["codecs"])}
            for run, name in zip(runs, names)
        ]
    return result


def _data_name(folder: Path) -> str:
    """The data set's name for the tables' titles: Kodak, LIVE1, ... (the folder's name otherwise)."""
    known = {"kodak": "Kodak", "live1": "LIVE1", "classic5": "Classic5"}
    return known.get(folder.name.lower(), folder.name)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of PNG images (default: Kodak)")
    parser.add_argument("--codecs", nargs="+", default=list(CODECS), choices=list(CODECS))
    parser.add_argument(
        "--qualities", nargs="+", type=int, default=None, help="one grid for every codec (default: per-codec grids)"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (smoke runs)")
    parser.add_argument("--repeat", type=int, default=1, help="time each encode/decode N times, keep the fastest")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="RD plot (PNG) beside the published anchors")
    parser.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="TASK=PATH[:TABLES]",
        help="evaluate an unshipped ONNX model as if it were packaged, e.g. deblock=runs/d.onnx:jpeg (repeatable)",
    )
    parser.add_argument(
        "--rescore", type=Path, nargs="+", default=None, metavar="JSON",
        help="no sweep: recompute the BD-rates and tables from earlier runs' JSON on the same images (a codec "
        "in a later file replaces its points from an earlier one)",
    )
    args = parser.parse_args(argv)
    if args.rescore is not None:
        result = merge_runs([json.loads(path.read_text()) for path in args.rescore], [str(p) for p in args.rescore])
        result |= scores(result["summary"])
        result.setdefault("data", str(args.data))  # runs from before "data" was recorded: say it with --data
    else:
        images = sorted(args.data.glob("*.png"))[: args.limit]
        if not images:
            parser.error(f"no PNG images in {args.data}")
        candidates = dict(parse_spec(spec) for spec in args.candidate)
        with installed(candidates):
            result = evaluate(images, args.codecs, args.qualities, max(1, args.repeat))
        result["candidates"] = {k: {"task": t, "tables": tb} for k, (t, _, tb) in candidates.items()}
        result["data"] = str(args.data)
    table = markdown(result)
    print(table)
    for path, text in ((args.json, json.dumps(result, indent=1) + "\n"), (args.markdown, table)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.plot is not None:
        from .plot_rd import plot_rd  # matplotlib only when a plot is asked for

        plot_rd(result, args.plot, bd_max_bpp=BD_MAX_BPP)
    return result


if __name__ == "__main__":
    main()
