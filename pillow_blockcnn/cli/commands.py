"""The ``blockcnn`` commands, on click (needs the ``cli`` extra: ``pip install "pillow-blockcnn[cli]"``).

Only argument handling and printing live here. What a command does to a file
is in :mod:`.conversions` (shared with the process pool of :mod:`.run` and with
:mod:`.ray_batch`), planning in :mod:`.inputs` and :mod:`.plan`, the measuring
in :mod:`.bench`.

Exit codes: 0 everything worked, 1 some files failed (each reported with its
path and the reason), 2 the command line is wrong (nothing was done).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from PIL import Image

from pillow_blockcnn import runtime
from pillow_blockcnn._version import __version__
from pillow_blockcnn.format.limits import CODINGS, DEFAULT_CODING, SUBSAMPLING_NAMES, TABLE_SETS
from pillow_blockcnn.runtime.machine import usable_cores

from . import bench
from .compare import compare as compare_images
from .conversions import ConvertOptions, DeblockOptions, DecodeOptions, EncodeOptions
from .demo import demo as run_demo
from .info import describe_bcnn, info_text
from .inputs import BCNN_EXTENSIONS, PlanError, collect_inputs, output_format, readable_extensions
from .plan import Job, plan_jobs
from .progress import progress, summary
from .run import JobResult, describe_error, run_jobs, write_output

__all__ = ["cli"]

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EXAMPLES = """\b
Examples:
  blockcnn encode photo.png                     writes photo.bcnn beside it
  blockcnn encode photos/ -r -o bcnn/ -q 40 -j 2
  blockcnn encode "shots/*.jpg" -o bcnn/ --ray  the same conversion on Ray
  blockcnn decode bcnn/ -r -o png/
  blockcnn deblock scan.jpg -o scan.png
  blockcnn info photo.bcnn --json
  blockcnn compare photo.png -q 30 -o compare.png
  blockcnn bench kodak/ -q 10 -q 30 -q 75 --markdown results.md
  blockcnn demo

\b
Exit status: 0 all files converted, 1 some failed (each is reported),
2 usage error. Full guide: docs/CLI.md.
"""


# ---------------------------------------------------------------------------
# ---------------------------------------------------------------------------
# the options every batch command shares


def _batch_options(f: F) -> F:
    options = [
        click.argument("inputs", nargs=-1, required=True, metavar="INPUT..."),
        click.option(
            "-o",
            "--output",
            type=click.Path(path_type=Path),
            help="Output folder, or output file for a single input. Default: beside each input.",
        ),
        click.option("-r", "--recursive", is_flag=True, help="Look into subfolders of folder inputs."),
        click.option("--force", is_flag=True, help="Overwrite existing output files."),
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(min=0),
            default=None,
            help="Worker processes (0 = one per core). Default 1; with Ray, one actor per cluster CPU.",
        ),
        click.option(
            "--backend",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help="Where to convert: this machine, or Ray actors (needs the ray extra).",
        ),
        click.option("--ray", "use_ray", is_flag=True, help="Same as --backend ray."),
        click.option(
            "--ray-address",
            default=None,
            help="Ray cluster to join (implies --ray). Default: RAY_ADDRESS, else a local Ray.",
        ),
        click.option("--quiet", is_flag=True, help="No progress bar and no summary; failures are still reported."),
        click.option("-v", "--verbose", is_flag=True, help="Print every converted file."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@dataclass(frozen=True)
class BatchArgs:
    """The options of :func:`_batch_options`, as the batch commands receive them."""

    inputs: tuple[str, ...]
    output: Path | None
    recursive: bool
    force: bool
    jobs: int | None
    backend: str
    use_ray: bool
    ray_address: str | None
    quiet: bool
    verbose: bool

    @property
    def on_ray(self) -> bool:
        return self.use_ray or self.backend == "ray" or self.ray_address is not None

    @property
    def workers(self) -> int:
        """Local worker processes: ``-j 0`` means one per usable core."""
        if self.jobs == 0:
            return usable_cores()
        return self.jobs or 1


def _plan(options: ConvertOptions, args: BatchArgs) -> list[Job]:
    try:
        sources = collect_inputs(args.inputs, options.input_extensions(), recursive=args.recursive)
        return plan_jobs(sources, options, args.output, force=args.force)
    except PlanError as exc:
        raise click.UsageError(str(exc)) from None


def _execute(jobs: list[Job], args: BatchArgs, report: Callable[[JobResult], None]) -> list[JobResult]:
    if not args.on_ray:
        return run_jobs(jobs, workers=args.workers, on_result=report)
    from . import ray_batch

    try:
        return ray_batch.run_jobs(jobs, actors=args.jobs, address=args.ray_address, on_result=report)
    except ray_batch.RayUnavailableError as exc:
        raise click.UsageError(str(exc)) from None
    except ray_batch.RayStartError as exc:
        raise click.ClickException(str(exc)) from None


def _run_batch(
    ctx: click.Context, options: ConvertOptions, args: BatchArgs, before: Callable[[], None] | None = None
) -> None:
    """Plan, check (``before``, after usage errors had their say), run with a progress bar, report, exit 0 or 1."""
    jobs = _plan(options, args)
    if before is not None:
        before()
    bar = progress(len(jobs), options.kind, args.quiet)

    def report(result: JobResult) -> None:
        bar.update()
        if not result.ok:
            bar.write(f"failed: {result.source}: {result.error}")
        elif args.verbose:
            click.echo(f"{result.source} -> {result.target} ({result.bytes_in:,} -> {result.bytes_out:,} bytes)")

    try:
        results = _execute(jobs, args, report)
    finally:
        bar.close()
    if not args.quiet:
        click.echo(summary(options.kind, results), err=True)
    ctx.exit(0 if all(r.ok for r in results) else 1)


# ---------------------------------------------------------------------------
# commands


@click.group(context_settings=CONTEXT, epilog=EXAMPLES)
@click.version_option(__version__, prog_name="pillow-blockcnn")
def cli() -> None:
    """Convert images to and from the learned .bcnn format, remove JPEG artifacts, measure."""


@cli.command(
    epilog="""\b
Examples:
  blockcnn encode photo.jpg -q 40               photo.bcnn
  blockcnn encode photos/ -r -o out/ -j 2       mirrors photos/ under out/
  blockcnn encode "*.png" -o out/ --force       replace earlier results
"""
)
@click.option(
    "-q", "--quality", type=click.IntRange(1, 100), default=75, show_default=True, help="1..100, JPEG's scale."
)
@click.option(
    "--subsampling",
    type=click.Choice(tuple(SUBSAMPLING_NAMES.values())),
    default="4:2:0",
    show_default=True,
    help="Chroma subsampling.",
)
@click.option(
    "--tables",
    type=click.Choice(list(TABLE_SETS)),
    default=None,
    help="Quantisation tables: 'balanced' tuned for PSNR and MS-SSIM, 'mse' for PSNR, 'ssim' for MS-SSIM (what "
    "eyes prefer), or JPEG's. Default: 'balanced' for photographs, 'mse' for text, graphics and flat colours.",
)
@click.option(
    "--coding",
    type=click.Choice(list(CODINGS)),
    default=DEFAULT_CODING,
    show_default=True,
    help="Entropy coder of the residual: JPEG's arithmetic coder (smaller) or Huffman.",
)
@click.option("--no-predict", is_flag=True, help="Do not use the learned block predictor (plain JPEG-like coding).")
@click.option("--no-deblock", is_flag=True, help="Do not ask decoders to deblock these files.")
@click.option(
    "--keep-metadata",
    is_flag=True,
    help="Keep EXIF and XMP (pixels stay unrotated). Default: apply the EXIF orientation and drop EXIF/XMP.",
)
@_batch_options
@click.pass_context
def encode(
    ctx: click.Context,
    quality: int,
    subsampling: str,
    tables: str | None,
    coding: str,
    no_predict: bool,
    no_deblock: bool,
    keep_metadata: bool,
    **kw: Any,
) -> None:
    """Encode images (any format Pillow reads) as .bcnn.

    INPUT is a file, a folder (its image files; -r for subfolders) or a quoted glob pattern.
    The ICC profile is always kept.
    """
    options = EncodeOptions(
        quality=quality,
        subsampling=subsampling,
        tables=tables,
        coding=coding,
        predict=False if no_predict else None,
        deblock=False if no_deblock else None,
        keep_metadata=keep_metadata,
    )
    _run_batch(ctx, options, BatchArgs(**kw))


@cli.command(
    epilog="""\b
Examples:
  blockcnn decode photo.bcnn                    photo.png
  blockcnn decode photo.bcnn -o photo.tif       format from the extension
  blockcnn decode bcnn/ -r -o png/ --format webp
"""
)
@click.option(
    "--format",
    "fmt",
    default=None,
    help="Output format (PNG, TIFF, WEBP, JPEG, ...). Default: from -o's extension, else PNG.",
)
@click.option("--no-deblock", is_flag=True, help="Skip the deblocking a file recommends (the plain decoded pixels).")
@_batch_options
@click.pass_context
def decode(ctx: click.Context, fmt: str | None, no_deblock: bool, **kw: Any) -> None:
    """Decode .bcnn files to PNG or another format.

    Any format Pillow writes; the file's ICC profile, EXIF and XMP are carried over.
    """
    _run_batch(ctx, DecodeOptions(format=_format(fmt), deblock=not no_deblock), BatchArgs(**kw))


@cli.command(
    epilog="""\b
Examples:
  blockcnn deblock scan.jpg                     scan.png
  blockcnn deblock scan.jpg --format jpeg       scan.deblocked.jpg at quality 95
  blockcnn deblock shot.png --quality 20        not a JPEG file: say its quality
"""
)
@click.option(
    "-q",
    "--quality",
    type=click.IntRange(1, 100),
    default=None,
    help="JPEG quality the input was saved with. Default: read from the file.",
)
@click.option(
    "--format", "fmt", default=None, help="Output format (PNG, JPEG, ...). Default: from -o's extension, else PNG."
)
@click.option(
    "--jpeg-quality", type=click.IntRange(1, 100), default=95, show_default=True, help="Quality of JPEG output."
)
@click.option("--model", default=None, help="Deblocking model id. Default: the newest packaged one.")
@_batch_options
@click.pass_context
def deblock(
    ctx: click.Context, quality: int | None, fmt: str | None, jpeg_quality: int, model: str | None, **kw: Any
) -> None:
    """Remove JPEG artifacts (JPEG -> PNG or JPEG).

    Writes PNG by default, or a high-quality JPEG (4:4:4). The JPEG quality of
    each input is read from its quantisation tables unless --quality is given.
    """
    options = DeblockOptions(quality=quality, format=_format(fmt), jpeg_quality=jpeg_quality, model=model)
    _run_batch(ctx, options, BatchArgs(**kw), before=lambda: _require_deblock_model(model))


def _format(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return output_format(name)[0]
    except PlanError as exc:
        raise click.BadParameter(str(exc), param_hint="--format") from None


def _require_deblock_model(model: str | None) -> None:
    """Fail once, before the batch, instead of once per file, when no model can run."""
    installed = [m.id for m in runtime.models("deblock")]
    if model is None and runtime.default_model("deblock", "jpeg", restores="jpeg") is None:
        msg = (
            f"pillow-blockcnn {__version__} ships no deblocking model yet (see the README's status table); "
            "install a release that includes one"
        )
        raise click.ClickException(
            msg
        )
    if model is not None and model not in installed:
        msg = f"no deblocking model {model!r} in this installation (installed: {', '.join(installed) or 'none'})"
        raise click.BadParameter(
            msg,
            param_hint="--model",
        )


@cli.command(
    epilog="""\b
Examples:
  blockcnn info photo.bcnn
  blockcnn info bcnn/ -r --json | jq .bpp        one JSON object per line
"""
)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-r", "--recursive", is_flag=True, help="Look into subfolders of folder inputs.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file and line (JSON Lines).")
@click.pass_context
def info(ctx: click.Context, inputs: Sequence[str], recursive: bool, as_json: bool) -> None:
    """Show header, chunks, models and metadata of .bcnn files.

    Every chunk is validated first; a damaged file is reported (exit 1).
    """
    try:
        sources = collect_inputs(inputs, BCNN_EXTENSIONS, recursive=recursive)
    except PlanError as exc:
        raise click.UsageError(str(exc)) from None
    failed = 0
    for source in sources:
        try:
            details = {"file": str(source.path)} | describe_bcnn(source.path.read_bytes())
        except Exception as exc:
            click.echo(f"failed: {source.path}: {describe_error(exc)}", err=True)
            failed += 1
            continue
        click.echo(json.dumps(details) if as_json else info_text(details))
    ctx.exit(1 if failed else 0)


class _Crop(click.ParamType):
    name = "X,Y,W,H"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, int, int, int]:
        if isinstance(value, tuple):
            return value
        try:
            x, y, w, h = (int(part) for part in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not X,Y,W,H (four integers, e.g. 64,32,128,96)", param, ctx)
        return x, y, w, h


@cli.command(
    epilog="""\b
Examples:
  blockcnn compare photo.png -q 30                      photo.compare.png
  blockcnn compare photo.png --bcnn photo.bcnn --crop 200,100,96,64 --scale 4 -o c.png

\b
The image is 3 panels (original, JPEG, .bcnn), each W*scale wide, with 8 px
gaps and a 32 px label band: width 3*W*scale + 32, height H*scale + 48.
"""
)
@click.argument("original", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--bcnn",
    "bcnn_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The .bcnn file to show. Default: encode ORIGINAL at --quality.",
)
@click.option(
    "-q",
    "--quality",
    type=click.IntRange(1, 100),
    default=30,
    show_default=True,
    help="Quality to encode ORIGINAL at when --bcnn is not given.",
)
@click.option("--crop", type=_Crop(), default=None, help="Region to show. Default: a centred 128x128 box.")
@click.option(
    "--scale",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Zoom (nearest neighbour, so blocks stay visible).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PNG to write. Default: ORIGINAL's name + .compare.png.",
)
@click.option("--force", is_flag=True, help="Overwrite the output file.")
def compare(
    original: Path,
    bcnn_path: Path | None,
    quality: int,
    crop: tuple[int, int, int, int] | None,
    scale: int,
    output: Path | None,
    force: bool,
) -> None:
    """JPEG and .bcnn at equal file size, side by side.

    Writes a PNG of three crops: the original, Pillow's JPEG at the quality whose
    file size is closest to the .bcnn file's, and the .bcnn, each labelled with
    its quality, size and PSNR (over the whole image).
    """
    output = output or original.with_name(original.stem + ".compare.png")
    if output.suffix.lower() != ".png":
        msg = "compare writes PNG (a lossy format would add artifacts of its own): name it *.png"
        raise click.BadParameter(
            msg, param_hint="-o"
        )
    if output.exists() and not force:
        msg = f"{output} exists (pass --force to overwrite)"
        raise click.ClickException(msg)
    try:
        with Image.open(original) as im:
            image = im.convert("RGB")
        data = bcnn_path.read_bytes() if bcnn_path else bench.CODECS["bcnn"].save(image, quality)
        result = compare_images(image, data, crop, scale)
        png = io.BytesIO()
        result.image.save(png, "PNG")
        write_output(output, png.getvalue(), force=force)
    except (OSError, ValueError) as exc:
        raise click.ClickException(describe_error(exc)) from None
    click.echo(
        f"wrote {output}: JPEG q{result.jpeg_quality} {result.jpeg_bytes:,} bytes {result.jpeg_psnr:.2f} dB, "
        f".bcnn q{result.bcnn_quality} {result.bcnn_bytes:,} bytes {result.bcnn_psnr:.2f} dB"
    )


@cli.command(
    name="bench",
    epilog="""\b
Examples:
  blockcnn bench kodak/ -q 10 -q 30 -q 75
  blockcnn bench kodak/ --codec bcnn-plain --codec jpeg --json r.json --markdown r.md
""",
)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-r", "--recursive", is_flag=True, help="Look into subfolders of folder inputs.")
@click.option(
    "-q",
    "--quality",
    "qualities",
    type=click.IntRange(1, 100),
    multiple=True,
    help="Quality to measure (repeat). Default: 10, 30, 75.",
)
@click.option(
    "--codec",
    "codecs",
    type=click.Choice(list(bench.CODECS)),
    multiple=True,
    help="Codec to measure (repeat). Default: bcnn and jpeg.",
)
@click.option("--against", default="jpeg", show_default=True, help="Codec the table's relative columns compare with.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N images (smoke runs).")
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write all rows as JSON here."
)
@click.option(
    "--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the table here."
)
@click.option("--force", is_flag=True, help="Overwrite the --json/--markdown files.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def bench_command(
    ctx: click.Context,
    inputs: Sequence[str],
    recursive: bool,
    qualities: tuple[int, ...],
    codecs: tuple[str, ...],
    against: str,
    limit: int | None,
    json_path: Path | None,
    markdown_path: Path | None,
    force: bool,
    quiet: bool,
) -> None:
    """Measure .bcnn against JPEG on your images.

    Bits per pixel, PSNR, encode and decode time per codec and quality: the same
    measurement as export/evaluate_compression.py. Run it on an idle machine for
    meaningful times. Images that cannot be read are reported and left out (exit 1).
    """
    for path in (json_path, markdown_path):
        if path is not None and path.exists() and not force:
            msg = f"{path} exists (pass --force to overwrite)"
            raise click.ClickException(msg)
    try:
        sources = collect_inputs(inputs, readable_extensions() - BCNN_EXTENSIONS, recursive=recursive)
    except PlanError as exc:
        raise click.UsageError(str(exc)) from None
    images = [s.path for s in sources][:limit]
    bar = progress(len(images), "bench", quiet)

    def report(path: Path, reason: str | None) -> None:
        bar.update()
        if reason is not None:
            bar.write(f"failed: {path}: {reason}")

    try:
        result = bench.evaluate(images, codecs or ("bcnn", "jpeg"), qualities or (10, 30, 75), on_image=report)
    finally:
        bar.close()
    table = bench.markdown(result, against=against, title=", ".join(inputs))
    click.echo(table, nl=False)
    for path, text in ((json_path, json.dumps(result, indent=1) + "\n"), (markdown_path, table)):
        if path is not None:
            write_output(path, text.encode("utf-8"), force=force)
    ctx.exit(1 if result["failed"] else 0)


@cli.command()
@click.option("-q", "--quality", type=click.IntRange(1, 100), default=30, show_default=True, help="1..100.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("blockcnn-demo"),
    show_default=True,
    help="Output folder.",
)
def demo(quality: int, out: Path) -> None:
    """Encode the bundled sample; compare with JPEG.

    Writes parrots.bcnn and its decoded PNG, and prints size and PSNR next to
    Pillow's JPEG at the same quality.
    """
    run_demo(quality, out, echo=click.echo)
