"""The 8x8 DCT: a float forward transform for the encoder, libjpeg's exact integer inverse for both sides.

The encoder may compute coefficients any way it likes (they are its choice, and
the file stores them). What it must know exactly is what the decoder's libjpeg
will make of them, because the closed prediction loop predicts the next blocks
from those pixels. :func:`islow_idct` is libjpeg's ``jpeg_idct_islow``
(``jidctint.c``, the "accurate integer" method Pillow decodes with) followed by
its ``range_limit`` table, in numpy int64, vectorised over blocks;
``tests/runtime/test_dct.py`` checks it against Pillow's libjpeg bit for bit.
The arithmetic is written out in ``docs/FORMAT.md`` §4.2.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ZIGZAG", "fdct", "islow_idct", "islow_idct_reference", "range_limit"]

#: Position in natural order of the k-th coefficient in zig-zag order (T.81 Figure A.6).
ZIGZAG = np.array(
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ]
)  # fmt: skip


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    m = np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16) / 2
    m[0] /= np.sqrt(2)
    return m


#: Orthonormal DCT-II basis: T.81's F(u, v) = M f M^T, with C(0) = 1/sqrt(2).
_M = _dct_matrix()


def fdct(blocks: np.ndarray) -> np.ndarray:
    """T.81's forward DCT of ``[N, 8, 8]`` level-shifted samples, float64 (natural order, not yet quantised)."""
    return _M @ blocks.astype(np.float64) @ _M.T


_CONST_BITS = 13
_PASS1_BITS = 2
_F0298 = 2446
_F0390 = 3196
_F0541 = 4433
_F0765 = 6270
_F0899 = 7373
_F1175 = 9633
_F1501 = 12299
_F1847 = 15137
_F1961 = 16069
_F2053 = 16819
_F2562 = 20995
_F3072 = 25172


def _butterfly(v: list[np.ndarray], even_shift_in: int) -> list[np.ndarray]:
    """One 1-D pass of ``jpeg_idct_islow`` on the eight inputs ``v`` (before descaling)."""
    z2, z3 = v[2], v[6]
    z1 = (z2 + z3) * _F0541
    tmp2 = z1 - z3 * _F1847
    tmp3 = z1 + z2 * _F0765
    tmp0 = (v[0] + v[4]) << even_shift_in
    tmp1 = (v[0] - v[4]) << even_shift_in
    tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
    tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2

    t0, t1, t2, t3 = v[7], v[5], v[3], v[1]
    z1, z2, z3, z4 = t0 + t3, t1 + t2, t0 + t2, t1 + t3
    z5 = (z3 + z4) * _F1175
    t0, t1, t2, t3 = t0 * _F0298, t1 * _F2053, t2 * _F3072, t3 * _F1501
    z1, z2 = z1 * -_F0899, z2 * -_F2562
    z3, z4 = z3 * -_F1961 + z5, z4 * -_F0390 + z5
    t0 = t0 + z1 + z3
    t1 = t1 + z2 + z4
    t2 = t2 + z2 + z3
    t3 = t3 + z1 + z4
    return [tmp10 + t3, tmp11 + t2, tmp12 + t1, tmp13 + t0, tmp13 - t0, tmp12 - t1, tmp11 - t2, tmp10 - t3]


def _descale(x: np.ndarray, n: int) -> np.ndarray:
    return (x + (1 << (n - 1))) >> n


def islow_idct_reference(dequantised: np.ndarray) -> np.ndarray:
    """:func:`islow_idct` computed as libjpeg writes it, butterfly by butterfly (kept to check the fast form)."""
    c = dequantised.astype(np.int64)
    # Pass 1: columns (index 1 is the row u), results scaled up by 2^PASS1_BITS.
    cols = _butterfly([c[:, u, :] for u in range(8)], _CONST_BITS)
    work = np.stack([_descale(x, _CONST_BITS - _PASS1_BITS) for x in cols], axis=1)
    # Pass 2: rows.
    rows = _butterfly([work[:, :, v] for v in range(8)], _CONST_BITS)
    return np.stack([_descale(x, _CONST_BITS + _PASS1_BITS + 3) for x in rows], axis=2)


def _pass_matrix() -> np.ndarray:
    """The integer matrix of one butterfly pass: each pass is linear with integer coefficients, and libjpeg
    rounds only after it (DESCALE), so ``A @ v`` in exact integers is the pass."""
    eye = np.eye(8, dtype=np.int64)
    return np.stack(_butterfly([eye[k] for k in range(8)], _CONST_BITS), axis=0)


_A = _pass_matrix()  # [out, in]


def islow_idct(dequantised: np.ndarray) -> np.ndarray:
    """libjpeg's ISLOW inverse DCT of ``[N, 8, 8]`` dequantised coefficients (natural order, integers).

    Returns the descaled outputs *before* the level shift and clamping, int64; :func:`range_limit` turns
    them into samples. Computed as two exact integer matrix products (:func:`_pass_matrix`), equal to
    :func:`islow_idct_reference` (tested) and much faster in numpy.
    """
    c = dequantised.astype(np.int64)
    work = _descale(np.einsum("ik,nkj->nij", _A, c), _CONST_BITS - _PASS1_BITS)
    return _descale(np.einsum("nik,jk->nij", work, _A), _CONST_BITS + _PASS1_BITS + 3)


def _range_table() -> np.ndarray:
    """libjpeg's post-IDCT ``range_limit`` table, indexed by ``output & 1023`` (``jdmaster.c``)."""
    table = np.zeros(1024, dtype=np.uint8)
    table[:128] = np.arange(128, 256)
    table[128:512] = 255
    table[896:] = np.arange(128)
    return table


_RANGE = _range_table()


def range_limit(outputs: np.ndarray) -> np.ndarray:
    """Samples (uint8) from :func:`islow_idct` outputs: level shift by 128 and clamp, as libjpeg's table does
    (exactly ``clip(x + 128, 0, 255)`` for outputs in -512..511, which every coded residual stays within)."""
    return _RANGE[outputs & 1023]
