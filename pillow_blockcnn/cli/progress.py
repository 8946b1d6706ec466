"""What a batch shows while it runs: a progress bar on a terminal, failures as they happen, a summary."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tqdm import tqdm

from .run import JobResult

__all__ = ["Bar", "progress", "size_text", "summary"]


class Bar:
    """A tqdm bar on stderr, shown only on a terminal: logs and pipes get the report lines alone."""

    def __init__(self, total: int, description: str, quiet: bool) -> None:
        self._bar = tqdm(
            total=total,
            desc=description,
            unit="file",
            file=sys.stderr,
            disable=quiet or not sys.stderr.isatty(),
            leave=False,
            dynamic_ncols=True,
        )

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def write(self, message: str) -> None:
        self._bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()


def progress(total: int, description: str, quiet: bool) -> Bar:
    """A bar for ``total`` files (hidden when ``quiet`` or when stderr is not a terminal)."""
    return Bar(total, description, quiet)


def size_text(n: int) -> str:
    """Bytes for people: 812 B, 4.8 kB, 1.2 MB."""
    if n < 1000:
        return f"{n} B"
    value = n / 1000
    for unit in ("kB", "MB"):
        if value < 999.95:  # what would print as 1000.0 moves up a unit
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def summary(kind: str, results: Sequence[JobResult]) -> str:
    done = [r for r in results if r.ok]
    failed = len(results) - len(done)
    line = f"{kind}: {len(done)} of {len(results)} files converted"
    if done:
        line += f" ({size_text(sum(r.bytes_in for r in done))} -> {size_text(sum(r.bytes_out for r in done))})"
    if failed:
        line += f", {failed} failed"
    return line
