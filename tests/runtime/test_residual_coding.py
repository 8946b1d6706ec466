"""Residual coding v2: libjpeg's exact inverse DCT, the rate-distortion quantiser, block modes and tiles."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pillow_blockcnn.codec import jpeg, quantise
from pillow_blockcnn.codec.block_modes import BlockModeError, decode_modes, encode_modes
from pillow_blockcnn.codec.blocks import wavefronts
from pillow_blockcnn.codec.closed_loop import code_predicted, decode_predicted_planes
from pillow_blockcnn.codec.dct import fdct, islow_idct, islow_idct_reference, range_limit
from pillow_blockcnn.codec.quantise import (
    IDCT_RANGE,
    block_bits,
    lagrangian,
    quantise_blocks,
    reconstruct,
    trellis_levels,
)
from pillow_blockcnn.codec.tiles import front_order, tile_fronts
from tests.helpers import MeanEdgePredictor, assert_trellis_finds_the_optimum, trellis_cost


def _libjpeg_decode(levels: np.ndarray, qtable: np.ndarray, coding: str) -> np.ndarray:
    """Levels ``[BY, BX, 8, 8]`` coded by libjpeg (jpeglib) and decoded by Pillow's libjpeg, as blocks."""
    by, bx = levels.shape[:2]
    payload = jpeg.write_levels(levels, qtable.ravel().tolist(), coding, (8 * by, 8 * bx))
    plane = jpeg.decode_plane(payload, 8 * bx, 8 * by, qtable.ravel().tolist(), coding)
    return plane.reshape(by, 8, bx, 8).transpose(0, 2, 1, 3)


@pytest.mark.parametrize("coding", ["arithmetic", "huffman"])
@pytest.mark.parametrize("seed", range(3))
def test_the_numpy_islow_idct_is_libjpegs_bit_for_bit(coding, seed) -> None:
    """The encoder's reconstruction (:func:`quantise.reconstruct`) is what Pillow's libjpeg decodes, for
    photo-like residuals, sparse random levels and the extreme in-range blocks."""
    rng = np.random.default_rng(seed)
    qtable = rng.integers(1, 80, (8, 8))
    residual = np.clip(np.cumsum(rng.normal(0, 25, (24 * 32, 8, 8)), axis=2), -255, 255)
    levels = np.rint(fdct(residual) / qtable).astype(np.int64)
    sparse = rng.integers(-12, 13, levels.shape) * (rng.random(levels.shape) < 0.15)
    levels = np.concatenate([levels, sparse])
    outputs = islow_idct(levels * qtable)
    keep = ((outputs >= IDCT_RANGE[0]) & (outputs <= IDCT_RANGE[1])).all(axis=(1, 2))
    assert keep.sum() >= 1024
    levels = levels[keep][:1024].reshape(32, 32, 8, 8)
    expected = reconstruct(levels.reshape(-1, 8, 8), qtable).reshape(levels.shape)
    np.testing.assert_array_equal(_libjpeg_decode(levels, qtable, coding), expected)


def test_the_matrix_form_of_the_idct_is_the_butterfly_form() -> None:
    """``islow_idct`` (two integer matrix products) against libjpeg's butterflies written out, on levels far
    outside what a file holds too: the passes are linear with integer coefficients, so they must agree."""
    rng = np.random.default_rng(7)
    dequantised = rng.integers(-4000, 4001, (2000, 8, 8)) * (rng.random((2000, 8, 8)) < 0.4)
    np.testing.assert_array_equal(islow_idct(dequantised), islow_idct_reference(dequantised))


def test_range_limit_is_a_level_shift_and_clamp_inside_the_idct_range() -> None:
    x = np.arange(IDCT_RANGE[0], IDCT_RANGE[1] + 1)
    np.testing.assert_array_equal(range_limit(x), np.clip(x + 128, 0, 255))


def test_the_quantiser_never_leaves_the_range_libjpeg_decodes_exactly() -> None:
    rng = np.random.default_rng(4)
    target = rng.choice([0, 255], (500, 8, 8))  # checkerboards of extremes against a far-off offset
    prediction = 255 - target
    qtable = np.ones((8, 8), dtype=np.int64)
    q = quantise_blocks(target, prediction, qtable, lagrangian(qtable))
    out = islow_idct(q.levels * qtable)
    assert out.min() >= IDCT_RANGE[0]
    assert out.max() <= IDCT_RANGE[1]


@pytest.mark.parametrize("value", [0, 1, 37, 128, 200, 254, 255])
@pytest.mark.parametrize("quality", [5, 20, 50, 90])
def test_flat_black_and_white_blocks_come_back_exact(value, quality) -> None:
    """Clamp-aware DC choice: a flat block at 0 or 255 is exact at any quality; any flat block is within half
    a DC step (step / 16 levels) plus rounding."""
    qtable = np.asarray(jpeg.quant_table(quality, chroma=False, tables="mse")).reshape(8, 8)
    block = np.full((1, 8, 8), value)
    q = quantise_blocks(block, 128, qtable, lagrangian(qtable))
    error = np.abs(q.decoded.astype(int) - value).max()
    if value in (0, 255):
        assert error == 0
    assert error <= qtable[0, 0] / 16 + 1


@pytest.mark.parametrize(
    "modes",
    [
        np.zeros((3, 5), bool),
        np.ones((4, 2), bool),
        np.random.default_rng(0).random((37, 41)) < 0.8,
        np.random.default_rng(1).random((1, 8188)) < 0.5,
        np.random.default_rng(2).random((300, 300)) < 0.997,  # long runs of near-certain bits: 0xFF bytes, carries
        np.random.default_rng(3).random((300, 300)) < 0.004,
        np.eye(6, dtype=bool),
    ],
)
def test_block_modes_round_trip(modes) -> None:
    data = encode_modes(modes)
    np.testing.assert_array_equal(decode_modes(data, *modes.shape), modes)
    if modes.all() or not modes.any():
        assert len(data) == 1


def test_a_mostly_predicted_map_costs_little() -> None:
    modes = np.ones((64, 96), bool)
    modes[10:14, 20:60] = False  # a line of text
    assert len(encode_modes(modes)) < 64 * 96 / 8 / 10


@pytest.mark.parametrize(
    ("data", "message"), [(b"", "empty"), (b"\x07", "kind 7"), (b"\x02\x00\x01", "shorter"), (b"\x02\x00\x00\x00\x00\x00", "truncated")]
)
def test_damaged_block_modes_say_what_is_wrong(data, message) -> None:
    with pytest.raises(BlockModeError, match=message):
        decode_modes(data, 40, 40)


@pytest.mark.parametrize(("blocks_y", "blocks_x", "tile"), [(5, 7, 0), (5, 7, 2), (9, 20, 4), (1, 300, 64), (3, 1, 1)])
def test_tile_fronts_visit_every_block_once_after_its_neighbours_in_its_tile(blocks_y, blocks_x, tile) -> None:
    done = np.full((blocks_y, blocks_x), -1)
    th, tw = (blocks_y, blocks_x) if tile == 0 else (tile, tile)
    for t, front in enumerate(tile_fronts(blocks_y, blocks_x, tile)):
        for y, x, avail in zip(front.by, front.bx, front.available, strict=True):
            assert done[y, x] == -1
            for i, (dy, dx) in enumerate(((-1, -1), (-1, 0), (-1, 1), (0, -1))):
                ny, nx = y + dy, x + dx
                inside = 0 <= ny < blocks_y and 0 <= nx < blocks_x and ny // th == y // th and nx // tw == x // tw
                assert avail[i] == inside
                if inside:
                    assert 0 <= done[ny, nx] < t
            done[y, x] = t
    assert (done >= 0).all()


def test_one_tile_is_the_plain_wavefront_order() -> None:
    fronts = tile_fronts(6, 9, 0)
    for front, (by, bx) in zip(fronts, wavefronts(6, 9), strict=True):
        assert sorted(zip(front.by.tolist(), front.bx.tolist())) == sorted(zip(by.tolist(), bx.tolist()))


def test_tiles_make_a_thin_image_a_few_wide_fronts() -> None:
    assert len(tile_fronts(1, 8125, 0)) == 8125
    fronts = tile_fronts(1, 8125, 64)
    assert len(fronts) == 64
    assert len(fronts[0].by) == 127


@pytest.mark.parametrize(("blocks_y", "blocks_x", "tile"), [(5, 7, 0), (9, 20, 4), (10, 3, 2)])
def test_front_order_numbers_tiles_in_raster_order(blocks_y, blocks_x, tile) -> None:
    order = front_order(blocks_y, blocks_x, tile)
    th, tw = (blocks_y, blocks_x) if tile == 0 else (tile, tile)
    assert np.array_equal(order.tile, (order.by // th) * -(-blocks_x // tw) + order.bx // tw)
    assert (np.diff(order.front) >= 0).all()
    bounds = order.bounds(int(order.front[-1]) + 1)
    assert [int(b - a) for a, b in zip(bounds[:-1], bounds[1:])] == [len(f.by) for f in tile_fronts(blocks_y, blocks_x, tile)]


class _ThreadCountingPredictor(MeanEdgePredictor):
    """The mean-edge predictor, declared safe to call from ``concurrency`` threads; it records which threads
    called it."""

    def __init__(self, concurrency: int) -> None:
        super().__init__()
        self.concurrency = concurrency
        self.threads: set[threading.Thread] = set()

    def predict(self, contexts: np.ndarray, available: np.ndarray, plane: int | np.ndarray) -> np.ndarray:
        # the Thread objects, not their idents: a thread that has finished may pass its ident on to the next
        self.threads.add(threading.current_thread())
        return super().predict(contexts, available, plane)


def test_tiles_shared_among_threads_decode_what_one_thread_does(sample) -> None:
    """Tiles never look across their borders, so rebuilding them on several threads is the same computation."""
    pixels = np.asarray(sample.convert("L").crop((0, 0, 200, 136)), dtype=np.uint8)
    table = np.asarray(jpeg.quant_table(30, chroma=False, tables="mse"), dtype=np.int64).reshape(8, 8)
    coded = code_predicted(pixels, table, MeanEdgePredictor(), 0, 4)
    assert 0 < coded.modes.mean() < 1  # a mixed map: plain blocks are skipped, predicted ones rebuilt
    rng = np.random.default_rng(1)
    residuals = [rng.integers(0, 256, (136, 200), dtype=np.uint8), rng.integers(0, 256, (64, 200), dtype=np.uint8)]
    modes = [coded.modes, coded.modes[:8]]
    results = {}
    for workers in (1, 2, 5):
        predictor = _ThreadCountingPredictor(workers)
        results[workers] = decode_predicted_planes(residuals, modes, predictor, [0, 1], 4, workers=workers)
        assert len(predictor.threads) == workers  # one thread per group of tiles (49 tiles here)
    for decoded in (results[2], results[5]):
        for plane, plane_1 in zip(decoded, results[1], strict=True):
            np.testing.assert_array_equal(plane, plane_1)


def test_a_failure_on_a_worker_thread_reaches_the_caller() -> None:
    class Broken(_ThreadCountingPredictor):
        def predict(self, contexts, available, plane):
            return super().predict(contexts, available, plane).astype(np.int16)  # not uint8

    residual = np.full((64, 200), 128, dtype=np.uint8)
    with pytest.raises(TypeError, match="expected uint8"):
        decode_predicted_planes([residual], [np.ones((8, 25), dtype=bool)], Broken(2), [0], 4, workers=2)


def test_a_lambda_map_weighs_each_block_on_its_own(sample) -> None:
    """code_plain/code_predicted take one lambda per block: a map of the plane's lambda changes nothing, and
    a huge lambda on one half of the plane drops that half's detail only."""
    from pillow_blockcnn.codec.closed_loop import code_plain
    from pillow_blockcnn.codec.quantise import activity_weights

    pixels = np.asarray(sample.convert("L").crop((0, 0, 128, 64)), dtype=np.int64)
    table = np.asarray(jpeg.quant_table(50, chroma=False, tables="mse"), dtype=np.int64).reshape(8, 8)
    lam = lagrangian(table)
    same = code_plain(pixels, table, lam=np.full((8, 16), lam))
    np.testing.assert_array_equal(same.levels, code_plain(pixels, table, lam=lam).levels)
    heavy = np.full((8, 16), lam)
    heavy[:, 8:] = 1e9
    split = code_plain(pixels, table, lam=heavy)
    np.testing.assert_array_equal(split.levels[:, :8], same.levels[:, :8])
    ac = split.levels[:, 8:].copy()
    ac[..., 0, 0] = 0
    assert not ac.any()
    assert same.levels[:, 8:, 1:, :].any()
    predicted = code_predicted(pixels, table, MeanEdgePredictor(), 0, 4, lam=np.full((8, 16), lam))
    np.testing.assert_array_equal(predicted.levels, code_predicted(pixels, table, MeanEdgePredictor(), 0, 4, lam=lam).levels)
    assert activity_weights(pixels, 0.0) == 1.0
    weights = activity_weights(pixels, 0.5)
    assert weights.shape == (8, 16)
    assert np.isclose(np.log(weights).mean(), 0)


@pytest.mark.parametrize("offset_kind", ["plain", "predicted"])
def test_quantising_in_batches_gives_the_levels_of_one_call(monkeypatch, offset_kind) -> None:
    """Large planes are quantised BATCH_BLOCKS at a time (bounded memory); each block's decision is its own,
    so every field must equal a single call's, with per-block lambdas and DC references sliced along."""
    from pillow_blockcnn.codec import quantise

    rng = np.random.default_rng(7)
    n = 1000
    target = rng.integers(0, 256, (n, 8, 8))
    offset = 128 if offset_kind == "plain" else rng.integers(0, 256, (n, 8, 8)).astype(np.uint8)
    qtable = np.array(jpeg.quant_table(30, chroma=False, tables="mse")).reshape(8, 8)
    lam = lagrangian(qtable) * rng.uniform(0.5, 2.0, n)
    reference = rng.integers(-20, 20, n)
    whole = quantise_blocks(target, offset, qtable, lam, dc_reference=reference)
    monkeypatch.setattr(quantise, "BATCH_BLOCKS", 96)
    batched = quantise_blocks(target, offset, qtable, lam, dc_reference=reference)
    for field in ("levels", "decoded", "sse", "bits"):
        np.testing.assert_array_equal(getattr(batched, field), getattr(whole, field))


def test_the_trellis_finds_the_rate_models_optimum_by_exhaustive_search() -> None:
    assert_trellis_finds_the_optimum(trellis_levels, block_bits, seed=11, n=64)


def test_the_trellis_is_never_worse_than_rounding_or_the_dead_zone_under_the_model() -> None:
    rng = np.random.default_rng(12)
    qtable = np.asarray(jpeg.quant_table(50, chroma=False, tables="mse")).reshape(8, 8)
    ratio = rng.laplace(0, 2.0, (300, 8, 8)) / np.sqrt(1 + np.add.outer(np.arange(8), np.arange(8)))
    for lam in (0.0, lagrangian(qtable), 10 * lagrangian(qtable)):
        trellis = trellis_cost(ratio, trellis_levels(ratio, qtable, lam), qtable, lam, block_bits)
        for other in (np.rint(ratio), np.sign(ratio) * np.floor(np.abs(ratio) + 0.33)):
            assert (trellis <= trellis_cost(ratio, other, qtable, lam, block_bits) + 1e-9).all()


def test_with_the_trellis_blocks_cost_no_more_than_without_it(monkeypatch) -> None:
    """The trellis (a study option, off in files) is one more candidate: each block's J on its decoded samples
    never rises."""
    rng = np.random.default_rng(13)
    qtable = np.asarray(jpeg.quant_table(20, chroma=False, tables="mse")).reshape(8, 8)
    target = np.clip(128 + np.cumsum(rng.normal(0, 6, (400, 8, 8)), axis=2), 0, 255).astype(np.int64)
    lam = lagrangian(qtable)
    monkeypatch.setattr(quantise, "TRELLIS", False)
    without = quantise_blocks(target, 128, qtable, lam)
    monkeypatch.setattr(quantise, "TRELLIS", True)
    with_trellis = quantise_blocks(target, 128, qtable, lam)
    assert (with_trellis.cost(lam) <= without.cost(lam) + 1e-9).all()
    assert (with_trellis.cost(lam) < without.cost(lam)).any()
