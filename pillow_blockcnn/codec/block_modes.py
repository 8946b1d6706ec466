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


class _Encoder:
    def __init__(self) -> None:
        self.low, self.range, self.cache, self.cache_size = 0, _MASK32, 0, 1
        self.out = bytearray()

    def _shift_low(self) -> None:
        if self.low < 0xFF000000 or self.low > _MASK32:
            carry = self.low >> 32
            temp = self.cache
            while True:
                self.out.append((temp + carry) & 0xFF)
                temp = 0xFF
                self.cache_size -= 1
                if self.cache_size == 0:
                    break
            self.cache = (self.low >> 24) & 0xFF
        self.cache_size += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    def bit(self, probs: list[int], ctx: int, bit: int) -> None:
        p = probs[ctx]
        bound = (self.range >> _PROB_BITS) * p
        if bit:
            self.low += bound
            self.range -= bound
            probs[ctx] = p - (p >> _MOVE_BITS)
        else:
            self.range = bound
            probs[ctx] = p + ((_PROB_ONE - p) >> _MOVE_BITS)
        while self.range < _TOP:
            self.range = (self.range << 8) & _MASK32
            self._shift_low()

    def finish(self) -> bytes:
        for _ in range(5):
            self._shift_low()
        return bytes(self.out)


def _context(modes: np.ndarray, y: int, x: int) -> int:
    left = int(modes[y, x - 1]) if x > 0 else 0
    above = int(modes[y - 1, x]) if y > 0 else 0
    return left + 2 * above


def encode_modes(modes: np.ndarray) -> bytes:
    """The coded map of ``modes`` (``[BY, BX]`` bool, True = predicted)."""
    modes = np.asarray(modes, dtype=bool)
    if not modes.any():
        return bytes([ALL_PLAIN])
    if modes.all():
        return bytes([ALL_PREDICTED])
    encoder, probs = _Encoder(), [_PROB_ONE // 2] * 4
    for y in range(modes.shape[0]):
        for x in range(modes.shape[1]):
            encoder.bit(probs, _context(modes, y, x), int(modes[y, x]))
    return bytes([MIXED]) + encoder.finish()


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
