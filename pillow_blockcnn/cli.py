"""Entry point of the ``blockcnn`` command and of ``python -m pillow_blockcnn``.

The commands are built on click, which is an optional extra so that the
library's own dependencies stay Pillow, numpy and onnxruntime. This module
imports nothing optional at import time: without click it still runs, answers
with the one line that says what to install (exit 2), and keeps ``demo``
working, because the README's first command is ``python -m pillow_blockcnn demo``
after a plain ``pip install``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["MISSING_CLICK", "main"]

MISSING_CLICK = (
    'blockcnn: the command line needs click: pip install "pillow-blockcnn[cli]" '
    "(without it only `python -m pillow_blockcnn demo` works)"
)


def _demo_without_click(argv: Sequence[str]) -> int:
    """``demo`` parsed with argparse: the same options as the click command."""
    from . import bench

    parser = argparse.ArgumentParser(
        prog="python -m pillow_blockcnn demo",
        description="Encode and decode the bundled sample image; compare size and PSNR with JPEG.",
    )
    parser.add_argument("-q", "--quality", type=int, default=30, help="1..100 (default 30)")
    parser.add_argument(
        "--out", type=Path, default=Path("blockcnn-demo"), help="output folder (default ./blockcnn-demo)"
    )
    args = parser.parse_args(list(argv))
    if not 1 <= args.quality <= 100:
        parser.error("--quality must be 1..100")
    return bench.demo(args.quality, args.out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns (or exits with) 0 ok, 1 some files failed, 2 usage error."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        from .commands import cli
    except ModuleNotFoundError as exc:
        if exc.name != "click":
            raise
        if args[:1] == ["demo"]:
            return _demo_without_click(args[1:])
        print(MISSING_CLICK, file=sys.stderr)
        return 2
    # click exits with the command's status (standalone mode); the return is for type checkers.
    return cli.main(args=args)


if __name__ == "__main__":
    sys.exit(main())
