"""Which blocks of a plane are predicted: a map of one bit per block, coded by an adaptive binary range coder.

The encoder decides per block whether prediction pays (:mod:`.closed_loop`);
in a photograph nearly every block is predicted, in a screenshot the blocks
of text and hard edges are not. The map costs little because neighbouring
blocks decide alike: each bit is coded with a probability that adapts within
one of four contexts (left and above bits), in raster order.

The coder is LZMA's binary range coder (11-bit probabilities, adaptation
shift 5, 32-bit range, carry propagation through a cached byte), chosen
because it is small, integer-only and widely re-implemented; ``docs/FORMAT.md``
§5.1 specifies it. A plane's map is preceded by one byte: 0 = no block is
predicted, 1 = every block is, 2 = the coded map follows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ALL_PLAIN", "ALL_PREDICTED", "MIXED", "BlockModeError", "decode_modes", "encode_modes"]

ALL_PLAIN = 0
ALL_PREDICTED = 1
MIXED = 2

_PROB_BITS = 11
_PROB_ONE = 1 << _PROB_BITS
_MOVE_BITS = 5
_TOP = 1 << 24
_MASK32 = 0xFFFFFFFF


class BlockModeError(ValueError):
    """A block-mode map is damaged (wrong kind byte, or the coded bits run out)."""


def _contexts(bits: np.ndarray) -> np.ndarray:
    """Each block's context, ``left + 2 * above`` (0 outside the plane), from the ``[BY, BX]`` 0/1 ``bits``."""
    ctx = np.zeros_like(bits)
    ctx[:, 1:] += bits[:, :-1]
    ctx[1:, :] += 2 * bits[:-1, :]
    return ctx


def _range_encode(contexts: list[int], bits: list[int]) -> bytes:
    """LZMA's binary range encoder with its cached carry byte (docs/FORMAT.md §5.1 decodes it): one decision
    per ``(context, bit)``. Written as one loop over plain ints, as the decoder is: it runs once per block."""
    probs = [_PROB_ONE // 2] * 4
    low, rng, cache, cache_size = 0, _MASK32, 0, 1
    out = bytearray()

    def shift_low() -> None:
        nonlocal low, cache, cache_size
        if low < 0xFF000000 or low > _MASK32:
            carry = low >> 32
            temp = cache
            while True:
                out.append((temp + carry) & 0xFF)
                temp = 0xFF
                cache_size -= 1
                if cache_size == 0:
                    break
            cache = (low >> 24) & 0xFF
        cache_size += 1
        low = (low & 0x00FFFFFF) << 8

    for ctx, bit in zip(contexts, bits):
        p = probs[ctx]
        bound = (rng >> _PROB_BITS) * p
        if bit:
            low += bound
            rng -= bound
            probs[ctx] = p - (p >> _MOVE_BITS)
        else:
            rng = bound
            probs[ctx] = p + ((_PROB_ONE - p) >> _MOVE_BITS)
        while rng < _TOP:
            rng = (rng << 8) & _MASK32
            shift_low()
    for _ in range(5):
        shift_low()
    return bytes(out)


def encode_modes(modes: np.ndarray) -> bytes:
    """The coded map of ``modes`` (``[BY, BX]`` bool, True = predicted)."""
    modes = np.asarray(modes, dtype=bool)
    if not modes.any():
        return bytes([ALL_PLAIN])
    if modes.all():
        return bytes([ALL_PREDICTED])
    bits = modes.astype(np.int8)
    return bytes([MIXED]) + _range_encode(_contexts(bits).ravel().tolist(), bits.ravel().tolist())


def decode_modes(data: bytes, blocks_y: int, blocks_x: int) -> np.ndarray:
    """Inverse of :func:`encode_modes` for a plane of ``blocks_y`` x ``blocks_x`` blocks."""
    if not data:
        msg = "block-mode map is empty"
        raise BlockModeError(msg)
    kind = data[0]
    if kind == ALL_PLAIN:
        return np.zeros((blocks_y, blocks_x), dtype=bool)
    if kind == ALL_PREDICTED:
        return np.ones((blocks_y, blocks_x), dtype=bool)
    if kind != MIXED:
        msg = f"block-mode map kind {kind} is unknown (0, 1 or 2)"
        raise BlockModeError(msg)
    return _decode_mixed(data[1:], blocks_y, blocks_x)


def _decode_mixed(data: bytes, blocks_y: int, blocks_x: int) -> np.ndarray:
    """LZMA's binary range decoder over the map (docs/FORMAT.md §5.1), one decision per block in raster
    order. Written as one loop over plain ints and lists: it runs once per block (280 000 times for a
    12-megapixel image), where numpy scalars and method calls cost microseconds each."""
    if len(data) < 5:
        msg = "block-mode map is shorter than the range coder's 5-byte start"
        raise BlockModeError(msg)
    probs = [_PROB_ONE // 2] * 4
    rng, code, pos, end = _MASK32, int.from_bytes(data[1:5], "big"), 5, len(data)
    rows = []
    above = [0] * blocks_x
    for _ in range(blocks_y):
        row = [0] * blocks_x
        left = 0
        for x in range(blocks_x):
            ctx = left + 2 * above[x]
            p = probs[ctx]
            bound = (rng >> _PROB_BITS) * p
            if code < bound:
                rng = bound
                probs[ctx] = p + ((_PROB_ONE - p) >> _MOVE_BITS)
                left = 0
            else:
                code -= bound
                rng -= bound
                probs[ctx] = p - (p >> _MOVE_BITS)
                left = row[x] = 1
            while rng < _TOP:
                if pos >= end:
                    msg = "block-mode map is truncated"
                    raise BlockModeError(msg)
                rng = (rng << 8) & _MASK32
                code = ((code << 8) | data[pos]) & _MASK32
                pos += 1
        rows.append(row)
        above = row
    return np.array(rows, dtype=bool).reshape(blocks_y, blocks_x)
