"""Running a batch: read, convert, write each job, here or in a pool of processes; never a half-written file."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from pillow_blockcnn import options
from pillow_blockcnn.runtime.machine import usable_cores

from .conversions import ConvertOptions
from .plan import Job

__all__ = [
    "JobResult",
    "OutputExistsError",
    "convert_bytes",
    "describe_error",
    "finish_job",
    "init_worker",
    "read_input",
    "refusal",
    "run_job",
    "run_jobs",
    "threads_per_worker",
    "write_output",
]


class OutputExistsError(FileExistsError):
    """The output file is there already and the batch was not told it may replace it."""



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
    except Exception as exc:
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
        msg = f"{target} exists (pass --force to overwrite)"
        raise OutputExistsError(msg) from None
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
    return max(1, usable_cores() // max(1, workers))


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
            except Exception as exc:
                emit(JobResult(job.source, job.target, f"worker process failed: {describe_error(exc)}"))
    finally:
        # On Ctrl-C, drop the queued jobs instead of finishing the whole batch first.
        pool.shutdown(wait=True, cancel_futures=True)
    return results
