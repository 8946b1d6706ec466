"""Batch conversion on Ray: the jobs of :mod:`.plan`, converted by a pool of long-lived actors.

Why actors and not tasks: each actor is a process that keeps its onnxruntime
sessions (:mod:`.runtime` caches them per process), so a model is loaded once
per worker, not once per image.

Why the driver does all file I/O: on a cluster the workers need not see the
driver's disk. The driver reads each input, ships the bytes to an idle actor,
gets the output bytes back and writes them with the same code as the local
path (:func:`.run.finish_job`). The actor runs :func:`.run.convert_bytes`,
the same function a local run uses, so the files are byte-identical. At most
one job per actor is in flight, which bounds the driver's memory to a few
images whatever the batch size.

Needs the ``ray`` extra: ``pip install "pillow-blockcnn[ray]"``. On a cluster,
pillow-blockcnn must be installed on the workers too (or shipped in a
``runtime_env``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from .conversions import ConvertOptions
from .plan import Job
from .run import JobResult, convert_bytes, finish_job, init_worker, read_input

__all__ = ["Converter", "RayStartError", "RayUnavailableError", "run_jobs"]


class RayUnavailableError(ImportError):
    """Ray is not installed; the message says how to get it."""


class RayStartError(RuntimeError):
    """Ray is installed but could not be started or joined."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        msg = 'the Ray back end needs Ray: pip install "pillow-blockcnn[ray]" (or run without --backend ray)'
        raise RayUnavailableError(
            msg
        ) from None
    return ray


class Converter:
    """The actor: converts bytes with :func:`.run.convert_bytes`; its process keeps the model sessions."""

    def __init__(self, threads: int = 1) -> None:
        init_worker(threads)

    def convert(self, options: ConvertOptions, data: bytes) -> tuple[bytes | None, str | None, float]:
        start = time.perf_counter()
        output, error = convert_bytes(options, data)
        return output, error, time.perf_counter() - start


def _actor_count(ray: Any, requested: int | None, jobs: int) -> int:
    if requested is None or requested < 1:
        requested = max(1, int(ray.cluster_resources().get("CPU", 1)))
    return max(1, min(requested, jobs))


def run_jobs(
    jobs: Sequence[Job],
    *,
    actors: int | None = None,
    address: str | None = None,
    on_result: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Run ``jobs`` on Ray with ``actors`` converter actors (default: one per CPU of the cluster).

    Uses the Ray instance this process is already connected to; otherwise
    connects to ``address`` (or ``RAY_ADDRESS``, or starts a local instance)
    and shuts it down at the end. Results arrive in completion order.
    """
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        except Exception as exc:  # (Ray raises many kinds; all mean the same to the user)
            where = f"join the Ray cluster at {address}" if address else "start or join Ray"
            msg = f"could not {where}: {exc}"
            raise RayStartError(msg) from exc
        started = True
    try:
        return _run(ray, jobs, actors, on_result)
    finally:
        if started:
            ray.shutdown()


def _run(
    ray: Any, jobs: Sequence[Job], actors: int | None, on_result: Callable[[JobResult], None] | None
) -> list[JobResult]:
    results: list[JobResult] = []

    def emit(result: JobResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    if not jobs:
        return results
    remote_converter = ray.remote(num_cpus=1)(Converter)
    count = _actor_count(ray, actors, len(jobs))

    def new_actor() -> Any:
        return remote_converter.remote(1)

    idle = [new_actor() for _ in range(count)]
    pending = deque(jobs)
    in_flight: dict[Any, tuple[Any, Job, int, float]] = {}
    try:
        while pending or in_flight:
            while idle and pending:
                job = pending.popleft()
                data, error = read_input(job)
                if data is None:
                    emit(JobResult(job.source, job.target, error))
                    continue
                actor = idle.pop()
                in_flight[actor.convert.remote(job.options, data)] = (actor, job, len(data), time.perf_counter())
            if not in_flight:
                continue
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            actor, job, bytes_in, start = in_flight.pop(ref)
            try:
                output, error, _seconds = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                output, error = None, f"the Ray worker converting it died: {exc}"
                actor = new_actor()
            except ray.exceptions.RayError as exc:
                output, error = None, f"Ray could not convert it: {exc}"
            idle.append(actor)
            emit(finish_job(job, output, error, bytes_in, time.perf_counter() - start))
    finally:
        for actor in idle + [entry[0] for entry in in_flight.values()]:
            ray.kill(actor)
    return results
