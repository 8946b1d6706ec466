"""The alpha plane: lossless, each row as differences to its left neighbour (mod 256), then zlib
(``docs/FORMAT.md`` §6)."""

from __future__ import annotations

import zlib

import numpy as np

from ..format.container import BcnnFormatError

__all__ = ["decode_alpha", "encode_alpha"]


def encode_alpha(alpha: np.ndarray) -> bytes:
    """``ALPH`` payload of a uint8 ``[H, W]`` alpha plane: method 0, row differences, zlib."""
    filtered = np.diff(alpha, axis=1, prepend=np.uint8(0)).astype(np.uint8)
    return b"\x00" + zlib.compress(filtered.tobytes(), 9)


def decode_alpha(payload: bytes | None, height: int, width: int, truncated: bool) -> np.ndarray:
    """Inverse of :func:`encode_alpha`; a truncated file gets opaque pixels where alpha is missing.

    Inflation is limited to exactly ``height * width`` bytes, so a forged stream cannot make it allocate more.
    """
    size = height * width
    raw = b""
    if payload is None and not truncated:
        msg = "RGBA file has no alpha plane"
        raise BcnnFormatError(msg)
    if payload:
        if payload[:1] != b"\x00":
            msg = f"alpha method {payload[:1]!r} is unknown (expected 0: zlib of row differences)"
            raise BcnnFormatError(msg)
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(payload[1:], size)
        except zlib.error as exc:
            if not truncated:
                msg = f"alpha plane is corrupt: {exc}"
                raise BcnnFormatError(msg) from None
        if not truncated and (len(raw) != size or inflater.unconsumed_tail or not inflater.eof):
            msg = f"alpha plane holds the wrong number of bytes for {width}x{height}"
            raise BcnnFormatError(msg)
    filtered = np.zeros(size, dtype=np.uint8)
    filtered[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    alpha = np.cumsum(filtered.reshape(height, width), axis=1, dtype=np.uint8)
    alpha.reshape(-1)[len(raw) :] = 255  # truncated: what never arrived is opaque
    return alpha
