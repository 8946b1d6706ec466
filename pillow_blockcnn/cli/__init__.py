"""The ``blockcnn`` command line: a client of the public API like any other.

Click declarations live in :mod:`.commands`; what they drive is split by
concern: :mod:`.inputs` (files, folders, patterns, formats), :mod:`.plan`
(outputs for inputs), :mod:`.conversions` (what a job does to the bytes),
:mod:`.run` (local workers, safe writes), :mod:`.ray_batch` (Ray actors),
:mod:`.progress`, :mod:`.info`, :mod:`.bench`, :mod:`.compare` and :mod:`.demo`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; exits 0 ok, 1 some files failed, 2 usage error."""
    from .commands import cli

    # click exits with the command's status (standalone mode); the return is for type checkers.
    return cli.main(args=list(sys.argv[1:] if argv is None else argv))
