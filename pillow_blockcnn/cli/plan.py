"""Planning a batch: each input gets its output path, before anything runs; clashes are refused up front."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .conversions import ConvertOptions
from .inputs import PlanError, Source

__all__ = ["Job", "plan_jobs"]



@dataclass(frozen=True)
class Job:
    """One input file, the file it becomes, and how."""

    source: Path
    target: Path
    options: ConvertOptions
    force: bool = False



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
        msg = f"-o {output} is a file, but several inputs need an output folder"
        raise PlanError(msg)
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
