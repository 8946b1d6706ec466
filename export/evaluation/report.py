"""Writing a measurement: printed for the reader, saved as JSON where asked, with where it was measured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pillow_blockcnn.runtime.machine import machine

__all__ = ["emit", "machine"]


def emit(result: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """Print ``result`` as JSON and, when ``path`` is given, write it there (folders created)."""
    text = json.dumps(result, indent=1)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return result
