"""The bytes of a .bcnn file: the container layout (:mod:`.container`) and the limits every layer checks
(:mod:`.limits`). Pure Python, importing nothing else of the package: ``docs/FORMAT.md`` in executable form."""

from __future__ import annotations

from .container import (
    FORMAT_VERSION,
    SIGNATURE,
    BcnnFormatError,
    Container,
    Header,
    read_container,
    read_header,
    write_container,
)
from .limits import MAX_DIMENSION

__all__ = [
    "FORMAT_VERSION",
    "MAX_DIMENSION",
    "SIGNATURE",
    "BcnnFormatError",
    "Container",
    "Header",
    "read_container",
    "read_header",
    "write_container",
]
