"""Pixels only: planes and padding (:mod:`.planes`), libjpeg's colour arithmetic (:mod:`.colour`), libjpeg
plane coding (:mod:`.jpeg`), the block order and predictor interface (:mod:`.blocks`), the closed prediction
loop (:mod:`.closed_loop`), alpha (:mod:`.alpha`), whole images (:mod:`.image`), and what kind of picture an
image is (:mod:`.content`).

The codec knows the byte layout (:mod:`pillow_blockcnn.format`) below it and nothing above: it takes a
predictor object and knows no model files.
"""

from __future__ import annotations

from .blocks import BLOCK, CONTEXT, BlockPredictor, NullPredictor
from .content import is_screen_content
from .image import EncodedImage, decode, encode
from .jpeg import quant_table
from .planes import SUBSAMPLING_FACTORS, from_planes, plane_shapes, to_planes
from .quantise import lagrangian

__all__ = [
    "BLOCK",
    "CONTEXT",
    "SUBSAMPLING_FACTORS",
    "BlockPredictor",
    "EncodedImage",
    "NullPredictor",
    "decode",
    "encode",
    "from_planes",
    "is_screen_content",
    "lagrangian",
    "plane_shapes",
    "quant_table",
    "to_planes",
]
