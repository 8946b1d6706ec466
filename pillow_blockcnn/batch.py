"""Batch conversion shared by the ``blockcnn`` command line, its process pool and its Ray back end.

A batch is *planned* before any work starts: every input file gets its output
path, and a command line that cannot work (a missing input, two inputs that
would write the same file) is refused while nothing has been touched. Then each
job runs on its own in three steps: read the input bytes, convert bytes to
bytes (:meth:`ConvertOptions.convert`), write the output. The conversion is a
pure function of the input bytes and the options, so a local process, a
process pool and a Ray actor (which gets the bytes over the network and sends
the result back, :mod:`.ray_batch`) write byte-identical files.

A job never raises: a file that fails becomes a :class:`JobResult` whose
``error`` says why, and the batch goes on.
"""

from __future__ import annotations

import glob
import io
import multiprocessing
import os
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

from . import container, options, pipeline, runtime
from .artifacts import deblock as deblock_image

__all__ = [
    "ConvertOptions",
    "DeblockOptions",
    "DecodeOptions",
    "EncodeOptions",
    "Job",
    "JobResult",
    "PlanError",
    "Source",
    "collect_inputs",
    "convert_bytes",
    "describe_bcnn",
    "finish_job",
    "output_format",
    "plan_jobs",
    "readable_extensions",
    "run_job",
    "run_jobs",
    "write_output",
]

SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})
BCNN_EXTENSIONS = frozenset({".bcnn"})
#: Output suffix for formats whose first registered extension is not the usual one.
_PREFERRED_SUFFIX = {"JPEG": ".jpg", "TIFF": ".tif", "PNG": ".png"}


class PlanError(ValueError):
    """The command line cannot become a batch (bad input, clashing outputs); nothing has been done yet."""


class OutputExistsError(FileExistsError):
    """The output file is there already and the batch was not told it may replace it."""


# ---------------------------------------------------------------------------
# formats and input files


def readable_extensions() -> frozenset[str]:
    """Extensions of the image formats Pillow can open here (with .bcnn registered)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def _format_suffix(fmt: str) -> str:
    if fmt in _PREFERRED_SUFFIX:
        return _PREFERRED_SUFFIX[fmt]
    return next(ext for ext, f in Image.registered_extensions().items() if f == fmt)


def output_format(name: str) -> tuple[str, str]:
    """A format name or extension ("png", "JPEG", ".tif") -> (Pillow format, output suffix)."""
    Image.init()
    key = name.strip().lstrip(".")
    fmt = key.upper() if key.upper() in Image.SAVE else Image.registered_extensions().get("." + key.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise PlanError(f"unknown output format {name!r}: use a format Pillow writes, such as PNG, TIFF, WEBP or JPEG")
    return fmt, _format_suffix(fmt)


def _format_of_path(path: Path) -> str:
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise PlanError(
            f"cannot tell the output format from {str(path)!r}: give it an extension such as .png, or pass --format"
        )
    return fmt


def _target_format(requested: str | None, target: Path, explicit: bool) -> str:
    """The Pillow format to write: as asked, else from a named output file's extension, else PNG."""
    if requested is not None:
        return output_format(requested)[0]
    return _format_of_path(target) if explicit else "PNG"


@dataclass(frozen=True)
class Source:
    """One input file and where it lands under an output folder (its path below the folder it was found in)."""

    path: Path
    relative: Path
    found: bool = False  # picked from a folder or a pattern, not named on the command line


def _files_in(folder: Path, recursive: bool) -> list[Path]:
    """Files below ``folder``, skipping hidden ones (and hidden folders: .git, editors' and our own .part files)."""
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    visible = (p for p in candidates if not any(part.startswith(".") for part in p.relative_to(folder).parts))
    return sorted(p for p in visible if p.is_file())


def collect_inputs(
    inputs: Iterable[str | Path], extensions: frozenset[str], *, recursive: bool = False
) -> list[Source]:
    """Expand files, folders and glob patterns into input files, in a stable order, each once.

    A file named on the command line is always taken, whatever its name: the
    user asked for it. Folders and patterns pick only files whose extension is
    in ``extensions`` (so a README in a photo folder is not "a failed image").
    """
    sources: list[Source] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = [p for p in _files_in(path, recursive) if p.suffix.lower() in extensions]
            sources.extend(Source(p, p.relative_to(path), found=True) for p in found)
        elif path.is_file():
            sources.append(Source(path, Path(path.name)))
        elif glob.has_magic(str(item)):
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=True))
            files = [m for m in matches if m.is_file() and m.suffix.lower() in extensions]
            if not files:
                raise PlanError(f"pattern {str(item)!r} matches no {_describe(extensions)} files")
            sources.extend(Source(p, Path(p.name), found=True) for p in files)
        else:
            raise PlanError(f"no such file or folder: {str(item)!r}")
    unique: dict[Path, Source] = {}
    for source in sources:
        unique.setdefault(source.path.resolve(), source)
    if not unique:
        hint = "" if recursive else "; pass --recursive to look into subfolders"
        raise PlanError(f"no {_describe(extensions)} files found in {', '.join(map(str, inputs))}{hint}")
    return list(unique.values())


def _describe(extensions: frozenset[str]) -> str:
    shown = sorted(extensions)
    return "/".join(shown) if len(shown) <= 4 else "image"


# ---------------------------------------------------------------------------
# what one job does to the bytes


def _open_image(data: bytes) -> Image.Image:
    """``Image.open`` on bytes, with an error that does not name a BytesIO object."""
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnidentifiedImageError("not an image file Pillow can read (unknown format or damaged)") from None


def _save_bytes(image: Image.Image, fmt: str, metadata: dict[str, Any], **params: Any) -> bytes:
    """Save to bytes, carrying ICC/EXIF/XMP over; Pillow's writers ignore the keys they cannot store."""
    out = io.BytesIO()
    kept = {key: value for key, value in metadata.items() if key in ("icc_profile", "exif", "xmp") and value}
    image.save(out, fmt, **kept, **params)
    return out.getvalue()


class ConvertOptions(Protocol):
    """What a subcommand does to one file; picklable, so it travels to worker processes and Ray actors."""

    kind: ClassVar[str]
    tag: ClassVar[str]

    @property
    def suffix(self) -> str: ...

    def input_extensions(self) -> frozenset[str]: ...

    def for_target(self, target: Path, explicit: bool) -> ConvertOptions: ...

    def convert(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class EncodeOptions:
    """``blockcnn encode``: any image Pillow reads -> .bcnn.

    Without ``keep_metadata`` the EXIF orientation is applied to the pixels and
    EXIF/XMP are dropped (they can hold GPS positions; a stored orientation
    without its EXIF would show the picture sideways). The ICC profile is always
    kept: without it the colours lose their meaning.
    """

    quality: int = 75
    subsampling: str = "4:2:0"
    tables: str = "mse"
    predict: bool | None = None
    deblock: bool | None = None
    keep_metadata: bool = False

    kind: ClassVar[str] = "encode"
    tag: ClassVar[str] = "encoded"

    @property
    def suffix(self) -> str:
        return ".bcnn"

    def input_extensions(self) -> frozenset[str]:
        return readable_extensions() - BCNN_EXTENSIONS

    def for_target(self, target: Path, explicit: bool) -> EncodeOptions:
        return self

    def convert(self, data: bytes) -> bytes:
        with _open_image(data) as im:
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                raise ValueError(
                    f"this {im.format} file holds {frames} frames and .bcnn stores one: extract the frame first"
                )
            icc = im.info.get("icc_profile")
            if self.keep_metadata:
                frame, exif, xmp = im, im.info.get("exif"), im.info.get("xmp")
            else:
                frame, exif, xmp = ImageOps.exif_transpose(im), None, None
            out = io.BytesIO()
            frame.save(
                out,
                "BCNN",
                quality=self.quality,
                subsampling=self.subsampling,
                tables=self.tables,
                predict=self.predict,
                deblock=self.deblock,
                icc_profile=icc,
                exif=exif,
                xmp=xmp,
            )
            return out.getvalue()


@dataclass(frozen=True)
class DecodeOptions:
    """``blockcnn decode``: .bcnn -> PNG (or any format Pillow writes), with the file's metadata."""

    format: str | None = None  # None: from the output file's extension, PNG for generated names
    deblock: bool = True

    kind: ClassVar[str] = "decode"
    tag: ClassVar[str] = "decoded"

    @property
    def suffix(self) -> str:
        return output_format(self.format or "PNG")[1]

    def input_extensions(self) -> frozenset[str]:
        return BCNN_EXTENSIONS

    def for_target(self, target: Path, explicit: bool) -> DecodeOptions:
        return replace(self, format=_target_format(self.format, target, explicit))

    def convert(self, data: bytes) -> bytes:
        if not data.startswith(container.SIGNATURE):
            raise ValueError("not a .bcnn file (the BCNN signature is missing)")
        # Image.open checks the header against the size limits before anything is allocated.
        with Image.open(io.BytesIO(data), formats=["BCNN"]):
            pass
        parsed = container.read_container(io.BytesIO(data))
        pixels = pipeline.decode_pixels(parsed, deblock=self.deblock)
        header = parsed.header
        image = Image.frombytes(header.mode, (header.width, header.height), pixels.tobytes())
        return _save_bytes(image, self.format or "PNG", parsed.metadata())


@dataclass(frozen=True)
class DeblockOptions:
    """``blockcnn deblock``: JPEG -> artifact-free PNG, or a high-quality JPEG.

    ``quality`` overrides the JPEG quality read from the file's quantisation
    tables; it is required for inputs that are not JPEG files (a screenshot of
    a JPEG, say).
    """

    quality: int | None = None
    format: str | None = None
    jpeg_quality: int = 95
    model: str | None = None

    kind: ClassVar[str] = "deblock"
    tag: ClassVar[str] = "deblocked"

    @property
    def suffix(self) -> str:
        return output_format(self.format or "PNG")[1]

    def input_extensions(self) -> frozenset[str]:
        return JPEG_EXTENSIONS

    def for_target(self, target: Path, explicit: bool) -> DeblockOptions:
        return replace(self, format=_target_format(self.format, target, explicit))

    def convert(self, data: bytes) -> bytes:
        with _open_image(data) as im:
            if self.quality is None and not getattr(im, "quantization", None):
                raise ValueError(
                    f"this is a {im.format} file, not a JPEG, so its JPEG quality is unknown: pass --quality 1..100"
                )
            restored = deblock_image(im, self.quality, model=self.model)
            fmt = self.format or "PNG"
            params: dict[str, Any] = {}
            if fmt == "JPEG":
                # 4:4:4 keeps the restored colour edges that 4:2:0 would blur again.
                params = {"quality": self.jpeg_quality, "subsampling": 0, "optimize": True}
            return _save_bytes(restored, fmt, dict(im.info), **params)


# ---------------------------------------------------------------------------
# planning


@dataclass(frozen=True)
class Job:
    """One input file, the file it becomes, and how."""

    source: Path
    target: Path
    options: ConvertOptions
    force: bool = False


@dataclass(frozen=True)
class JobResult:
    """What happened to one job; ``error`` is None on success, else a sentence for the user."""

    source: Path
    target: Path
    error: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def _output_is_folder(output: Path, sources: Sequence[Source]) -> bool:
    return (
        output.is_dir()
        or str(output).endswith(("/", os.sep))
        or len(sources) > 1
        or any(source.found for source in sources)
    )


def _default_target(source: Path, folder: Path, options: ConvertOptions) -> Path:
    target = folder / (source.stem + options.suffix)
    if target.resolve() == source.resolve():
        # Never replace the input by a generated name: photo.jpg -> photo.deblocked.jpg.
        target = folder / f"{source.stem}.{options.tag}{options.suffix}"
    return target


def plan_jobs(
    sources: Sequence[Source], options: ConvertOptions, output: Path | None = None, *, force: bool = False
) -> list[Job]:
    """Give each source its target.

    ``output`` None writes next to each input; a folder (existing, ending in a
    slash, or implied by several inputs, a folder input or a pattern) receives
    the outputs, mirroring the layout below the folders they came from; else
    it is the one output file.
    """
    if output is not None and not _output_is_folder(output, sources):
        (source,) = sources
        return [Job(source.path, output, options.for_target(output, explicit=True), force)]
    if output is not None and output.exists() and not output.is_dir():
        raise PlanError(f"-o {output} is a file, but several inputs need an output folder")
    jobs = []
    for source in sources:
        folder = source.path.parent if output is None else output / source.relative.parent
        target = _default_target(source.path, folder, options)
        jobs.append(Job(source.path, target, options.for_target(target, explicit=False), force))
    _refuse_clashes(jobs)
    return jobs


def _refuse_clashes(jobs: Sequence[Job]) -> None:
    seen: dict[Path, Path] = {}
    clashes = []
    for job in jobs:
        key = job.target.resolve()
        if key in seen:
            clashes.append(f"{seen[key]} and {job.source} would both write {job.target}")
        seen.setdefault(key, job.source)
    if clashes:
        more = f" (and {len(clashes) - 3} more)" if len(clashes) > 3 else ""
        raise PlanError("; ".join(clashes[:3]) + more + ": rename the inputs or convert them into separate folders")


# ---------------------------------------------------------------------------
# running


def describe_error(exc: BaseException) -> str:
    """The part of an exception a user can act on; the type name only where the message needs it."""
    message = str(exc)
    if isinstance(exc, (OSError, ValueError)) and message:
        return message
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def convert_bytes(options: ConvertOptions, data: bytes) -> tuple[bytes | None, str | None]:
    """Run one conversion; returns (output, None) or (None, reason). The step local and Ray workers share."""
    try:
        return options.convert(data), None
    except Exception as exc:  # noqa: BLE001  (one bad file must not stop the batch)
        return None, describe_error(exc)


def refusal(job: Job) -> str | None:
    """Why a job must not run (its output exists and --force was not given), checked before any work."""
    if not job.force and job.target.exists():
        return f"{job.target} exists (pass --force to overwrite)"
    return None


def write_output(target: Path, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``target``; never a half-written file in place of a good one.

    Without ``force`` the file is created exclusively, so a file that appeared
    since planning is not replaced. With ``force`` the bytes go to a temporary
    file beside the target, which then replaces it in one rename.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part") if force else target
    try:
        with open(temporary, "xb") as handle:  # only open() raises FileExistsError: nothing of ours to remove
            handle.write(data)
    except FileExistsError:
        raise OutputExistsError(f"{target} exists (pass --force to overwrite)") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if force:
        try:
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def finish_job(job: Job, output: bytes | None, error: str | None, bytes_in: int, seconds: float) -> JobResult:
    """Write a converted job's output and say how it went."""
    if error is None and output is not None:
        try:
            write_output(job.target, output, force=job.force)
        except OSError as exc:
            error = describe_error(exc)
    return JobResult(job.source, job.target, error, bytes_in, len(output or b"") if error is None else 0, seconds)


def read_input(job: Job) -> tuple[bytes | None, str | None]:
    """The input bytes, or the reason they cannot be had (refused target, unreadable file)."""
    reason = refusal(job)
    if reason is not None:
        return None, reason
    try:
        return job.source.read_bytes(), None
    except OSError as exc:
        return None, f"cannot read it: {exc.strerror or exc}"


def run_job(job: Job) -> JobResult:
    """Read, convert, write one file; never raises."""
    start = time.perf_counter()
    data, error = read_input(job)
    if data is None:
        return JobResult(job.source, job.target, error)
    output, error = convert_bytes(job.options, data)
    return finish_job(job, output, error, len(data), time.perf_counter() - start)


def threads_per_worker(workers: int) -> int:
    """onnxruntime threads each worker may use so that workers x threads fits the machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def init_worker(threads: int) -> None:
    """Worker start-up: cap onnxruntime threads unless the user set PILLOW_BLOCKCNN_THREADS."""
    if not os.environ.get("PILLOW_BLOCKCNN_THREADS"):
        options.update(threads=threads)


def run_jobs(
    jobs: Sequence[Job], *, workers: int = 1, on_result: Callable[[JobResult], None] | None = None
) -> list[JobResult]:
    """Run ``jobs`` here (``workers`` 1) or in a pool of processes; results in completion order.

    Worker processes are *spawned*, not forked: a fork taken while onnxruntime
    threads hold locks can deadlock the child.
    """
    results: list[JobResult] = []

    def emit(result: JobResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            emit(run_job(job))
        return results
    n = min(workers, len(jobs))
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(n, mp_context=context, initializer=init_worker, initargs=(threads_per_worker(n),))
    try:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                emit(future.result())
            except Exception as exc:  # noqa: BLE001  (a worker that died fails its jobs, not the batch)
                emit(JobResult(job.source, job.target, f"worker process failed: {describe_error(exc)}"))
    finally:
        # On Ctrl-C, drop the queued jobs instead of finishing the whole batch first.
        pool.shutdown(wait=True, cancel_futures=True)
    return results


# ---------------------------------------------------------------------------
# inspection (blockcnn info)

_CHUNK_HEAD = struct.Struct(">I4s")


def _chunk_table(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """(type, offset, length) of every chunk up to END, and the count of bytes after it.

    Only called on data :func:`container.read_container` accepted, so the
    framing is known to be sound.
    """
    chunks = []
    pos = len(container.SIGNATURE)
    while True:
        length, kind = _CHUNK_HEAD.unpack_from(data, pos)
        chunks.append({"type": kind.decode("latin-1"), "offset": pos, "length": length})
        pos += _CHUNK_HEAD.size + length + 4
        if kind == container.END:
            return chunks, len(data) - pos


def _model_entries(header: container.Header) -> list[dict[str, Any]]:
    deblock_id = header.models[-1] if header.deblock and header.models else None
    entries = []
    for index, model_id in enumerate(header.models):
        role = "deblock" if deblock_id is not None and index == len(header.models) - 1 else "predict"
        try:
            runtime.model_info(model_id)
            installed = True
        except runtime.ModelError:
            installed = False
        entries.append({"id": model_id, "role": role, "installed": installed})
    return entries


def describe_bcnn(data: bytes) -> dict[str, Any]:
    """Everything ``blockcnn info`` shows about a .bcnn file, as plain JSON-able values.

    The whole file is validated first (every CRC, every rule), so a damaged
    file is reported as damaged instead of being half-described.
    """
    parsed = container.read_container(io.BytesIO(data))
    header = parsed.header
    chunks, trailing = _chunk_table(data)
    return {
        "bytes": len(data),
        "version": header.version,
        "width": header.width,
        "height": header.height,
        "mode": header.mode,
        "quality": header.quality,
        "subsampling": container.SUBSAMPLINGS[header.subsampling],
        "tables": header.tables,
        "predicted": header.predicted,
        "deblock": header.deblock,
        "bpp": 8 * len(data) / (header.width * header.height),
        "models": _model_entries(header),
        "chunks": chunks,
        "trailing_bytes": trailing,
        "metadata": {key: len(value) for key, value in parsed.metadata().items()},
    }
