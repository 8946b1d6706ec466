"""Prediction tiles: square groups of blocks whose predictions never look across their border.

A plane of ``BY`` x ``BX`` blocks is cut into tiles of ``tile`` x ``tile``
blocks from its top-left corner (the last tile row and column may be smaller);
``tile = 0`` makes the whole plane one tile. A neighbour outside the block's
tile counts as missing, exactly like one outside the plane. Tiles are therefore
independent, and all of them advance together: front ``t`` is every block with
``local x + 2 * local y = t`` in every tile, one batched prediction call. A thin
image (one block high, 8 000 wide) has 8 000 fronts untiled but only ``tile``
fronts of many blocks each when tiled (``docs/FORMAT.md`` §5). Because tiles are
independent, a decoder may also rebuild groups of them on different threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Front", "FrontOrder", "front_order", "tile_fronts"]


@dataclass(frozen=True)
class Front:
    """The blocks of one front: coordinates in the plane and which causal neighbours they may use."""

    by: np.ndarray
    bx: np.ndarray
    #: ``[N, 4]`` bool: above-left, above, above-right, left exist inside the block's tile.
    available: np.ndarray


@dataclass(frozen=True)
class FrontOrder:
    """Every block of a plane in decoding order (by front, then raster order within a front), as flat arrays."""

    by: np.ndarray
    bx: np.ndarray
    available: np.ndarray  # [N, 4] bool, as in Front
    front: np.ndarray  # [N] the block's front t, non-decreasing
    tile: np.ndarray  # [N] the block's tile, numbered in raster order of tiles

    def select(self, keep: np.ndarray) -> FrontOrder:
        """The blocks where ``keep`` (``[N]`` bool, in this order) is true, still in decoding order."""
        return FrontOrder(self.by[keep], self.bx[keep], self.available[keep], self.front[keep], self.tile[keep])

    def bounds(self, fronts: int) -> np.ndarray:
        """``[fronts + 1]``: front ``t``'s blocks are ``bounds[t]:bounds[t + 1]``."""
        return np.searchsorted(self.front, np.arange(fronts + 1))


def front_order(blocks_y: int, blocks_x: int, tile: int) -> FrontOrder:
    """The :class:`FrontOrder` of a ``blocks_y`` x ``blocks_x`` plane with ``tile``-block tiles (0: untiled)."""
    th = blocks_y if tile == 0 else min(tile, blocks_y)
    tw = blocks_x if tile == 0 else min(tile, blocks_x)
    by, bx = np.divmod(np.arange(blocks_y * blocks_x), blocks_x)
    ly, lx = by % th, bx % tw
    width = np.minimum(tw, blocks_x - (bx - lx))  # the width of each block's tile
    top, left, right = ly > 0, lx > 0, lx < width - 1
    available = np.stack([top & left, top, top & right, left], axis=1)
    t = lx + 2 * ly
    order = np.argsort(t, kind="stable")
    tiles = (by // th) * -(-blocks_x // tw) + bx // tw
    return FrontOrder(by[order], bx[order], available[order], t[order], tiles[order])


def tile_fronts(blocks_y: int, blocks_x: int, tile: int) -> list[Front]:
    """The fronts of a ``blocks_y`` x ``blocks_x`` plane with ``tile``-block tiles (0: untiled), in order."""
    order = front_order(blocks_y, blocks_x, tile)
    bounds = np.flatnonzero(np.diff(order.front)) + 1
    return [
        Front(by, bx, available)
        for by, bx, available in zip(
            np.split(order.by, bounds), np.split(order.bx, bounds), np.split(order.available, bounds), strict=True
        )
    ]
