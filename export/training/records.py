"""A training run's log: one JSON record per line in ``runs/<name>/log.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["log"]


def log(path: Path, **rec: Any) -> None:
    """Append one JSON record (opened per record, so a killed run never leaves a half-buffered log)."""
    with path.open("a") as fh:
        fh.write(json.dumps(rec) + "\n")
