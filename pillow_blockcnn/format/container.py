"""The byte layout of a ``.bcnn`` file: signature, header, chunks, checksums.

This module is pure bytes on purpose: no numpy, no onnxruntime, no Pillow. A
second decoder can be written from ``docs/FORMAT.md`` alone, and this module is
the executable form of that document. Everything that looks at pixels lives in
:mod:`pillow_blockcnn.codec`; the limits every layer checks are :mod:`.limits`.

Layout (all integers big-endian)::

    file   = SIGNATURE chunk*            (HEAD first, END last)
    chunk  = length:u32 type:4 ASCII bytes payload[length] crc32(type+payload):u32

A chunk whose type starts with an upper-case letter is *critical*: a decoder
that does not know it must refuse the file. Lower-case types are *ancillary*
and are skipped when unknown (the rule PNG uses).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from .limits import CODINGS, DEFAULT_CODING, MAX_DIMENSION, SUBSAMPLING_NAMES, TABLE_SETS, check_quality

__all__ = [
    "FORMAT_VERSION",
    "MAX_DIMENSION",
    "MODES",
    "SIGNATURE",
    "BcnnFormatError",
    "ChunkSpan",
    "Container",
    "Header",
    "chunk_spans",
    "PlanePayload",
    "read_container",
    "read_header",
    "write_container",
]

#: Eight bytes, PNG-style: a non-ASCII first byte (catches 7-bit transfers),
#: the name, and CR LF SUB (catch line-ending translation and ``type`` on DOS).
SIGNATURE = b"\x89BCNN\r\n\x1a"
#: The version of this document's layout; a decoder refuses others. Version 1 (pillow-blockcnn 0.1, a
#: pre-release) is no longer read: its pixel-domain residual and float predictor are gone (docs/FORMAT.md §11).
FORMAT_VERSION = 2
#: Mode code in the header -> Pillow mode, and the number of coded planes of each.
MODES: dict[int, str] = {1: "L", 3: "RGB", 4: "RGBA"}
_MODE_CODES = {mode: code for code, mode in MODES.items()}

FLAG_PREDICTED = 0x01
FLAG_DEBLOCK = 0x02
_KNOWN_FLAGS = FLAG_PREDICTED | FLAG_DEBLOCK
#: Header codes of the entropy coders (:data:`~.limits.CODINGS`): 0 = Huffman, 1 = arithmetic.
_CODING_CODES = {"huffman": 0, "arithmetic": 1}
_CODING_NAMES = {code: name for name, code in _CODING_CODES.items()}

# Chunk types. Upper-case first letter = critical.
HEAD = b"HEAD"
PLANE = b"PLAN"
ALPHA = b"ALPH"
END = b"END "
EXIF = b"exif"
ICC = b"iccp"
XMP = b"xmpd"
_METADATA = {EXIF: "exif", ICC: "icc_profile", XMP: "xmp"}

_CHUNK_HEAD = struct.Struct(">I4s")
# version, width, height, mode, flags, quality, subsampling, tables, coding, tile, n_models
_HEAD_FIXED = struct.Struct(">BIIBBBBBBBB")
_PLANE_HEAD = struct.Struct(">BI")  # DC step override (0 = the table's), block-mode map length
#: No chunk of a valid file comes near this; it bounds what a reader allocates
#: before the CRC can be checked (2**31 - 1, as PNG caps its lengths).
MAX_CHUNK_LENGTH = 2**31 - 1
_MODEL_ID_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_.")


class BcnnFormatError(OSError):
    """The bytes claim to be .bcnn but break the format: the message says where."""


class _ChunkTruncated(BcnnFormatError):
    """The file ends inside a chunk; ``kind`` and ``partial`` keep what was there."""

    def __init__(self, message: str, kind: bytes | None = None, partial: bytes = b"") -> None:
        super().__init__(message)
        self.kind = kind
        self.partial = partial


@dataclass(frozen=True)
class Header:
    """What a decoder must know before it touches pixel data."""

    width: int
    height: int
    mode: str
    quality: int
    subsampling: int = 2
    predicted: bool = False
    deblock: bool = False
    models: tuple[str, ...] = ()
    tables: str = "jpeg"
    coding: str = DEFAULT_CODING
    #: Prediction tile side in blocks, 1..255; 0 = each plane is one tile (docs/FORMAT.md §5).
    tile: int = 0
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.tables not in TABLE_SETS:
            msg = f"quantisation tables {self.tables!r} are unknown; use one of {TABLE_SETS}"
            raise BcnnFormatError(msg)
        if self.coding not in CODINGS:
            msg = f"entropy coding {self.coding!r} is unknown; use one of {CODINGS}"
            raise BcnnFormatError(msg)
        if isinstance(self.tile, bool) or not isinstance(self.tile, int) or not 0 <= self.tile <= 255:
            msg = f"tile size {self.tile!r} is invalid: an integer 0..255 (blocks; 0 = untiled)"
            raise BcnnFormatError(msg)
        if self.mode not in _MODE_CODES:
            msg = f"mode {self.mode!r} cannot be stored; .bcnn holds L, RGB or RGBA"
            raise BcnnFormatError(msg)
        if not (1 <= self.width <= 2**32 - 1 and 1 <= self.height <= 2**32 - 1):
            msg = f"image size {self.width}x{self.height} is out of range"
            raise BcnnFormatError(msg)
        check_quality(self.quality, BcnnFormatError)
        if self.subsampling not in SUBSAMPLING_NAMES:
            msg = f"subsampling code {self.subsampling} is unknown (0, 1 or 2)"
            raise BcnnFormatError(msg)
        if len(self.models) > 255:
            msg = "a file can name at most 255 models"
            raise BcnnFormatError(msg)
        for model_id in self.models:
            raw = model_id.encode("ascii", "replace")
            if not 1 <= len(raw) <= 64 or not set(raw) <= _MODEL_ID_CHARS:
                msg = f"model id {model_id!r} is not 1..64 of [a-z0-9-_.]"
                raise BcnnFormatError(msg)

    @property
    def planes(self) -> int:
        """Number of PLAN chunks: one per colour plane (alpha has its own chunk)."""
        return 1 if self.mode == "L" else 3

    @property
    def has_alpha(self) -> bool:
        return self.mode == "RGBA"

    def to_bytes(self) -> bytes:
        flags = (FLAG_PREDICTED if self.predicted else 0) | (FLAG_DEBLOCK if self.deblock else 0)
        out = [
            _HEAD_FIXED.pack(
                self.version,
                self.width,
                self.height,
                _MODE_CODES[self.mode],
                flags,
                self.quality,
                self.subsampling,
                TABLE_SETS.index(self.tables),
                _CODING_CODES[self.coding],
                self.tile,
                len(self.models),
            )
        ]
        for model_id in self.models:
            raw = model_id.encode("ascii")
            out.append(bytes([len(raw)]) + raw)
        return b"".join(out)

    @classmethod
    def from_bytes(cls, payload: bytes) -> Header:
        if not payload:
            msg = "HEAD chunk is empty"
            raise BcnnFormatError(msg)
        if payload[0] == 1:
            msg = (
                "format version 1 was written by pillow-blockcnn 0.1, a pre-release, and is no longer read "
                f"(this decoder reads version {FORMAT_VERSION}); re-encode the image from its original"
            )
            raise BcnnFormatError(msg)
        if payload[0] != FORMAT_VERSION:
            msg = (
                f"format version {payload[0]} is not supported (this decoder reads version {FORMAT_VERSION}); "
                "upgrade pillow-blockcnn"
            )
            raise BcnnFormatError(msg)
        if len(payload) < _HEAD_FIXED.size:
            msg = f"HEAD chunk is {len(payload)} bytes, needs at least {_HEAD_FIXED.size}"
            raise BcnnFormatError(msg)
        fields = _HEAD_FIXED.unpack_from(payload)
        version, width, height, mode, flags, quality, subsampling, tables, coding, tile, n_models = fields
        if tables >= len(TABLE_SETS):
            msg = f"quantisation table set code {tables} is unknown (0..{len(TABLE_SETS) - 1})"
            raise BcnnFormatError(msg)
        if coding not in _CODING_NAMES:
            msg = f"entropy coding code {coding} is unknown (0 = Huffman, 1 = arithmetic)"
            raise BcnnFormatError(msg)
        if mode not in MODES:
            msg = f"mode code {mode} is unknown"
            raise BcnnFormatError(msg)
        if flags & ~_KNOWN_FLAGS:
            msg = f"header flags 0x{flags:02x} use bits this decoder does not know"
            raise BcnnFormatError(msg)
        pos = _HEAD_FIXED.size
        models = []
        for _ in range(n_models):
            if pos >= len(payload):
                msg = "HEAD chunk ends inside its model list"
                raise BcnnFormatError(msg)
            n = payload[pos]
            raw = payload[pos + 1 : pos + 1 + n]
            if len(raw) != n:
                msg = "HEAD chunk ends inside a model id"
                raise BcnnFormatError(msg)
            models.append(raw.decode("ascii", "replace"))
            pos += 1 + n
        if pos != len(payload):
            msg = f"HEAD chunk has {len(payload) - pos} unexpected trailing bytes"
            raise BcnnFormatError(msg)
        return cls(
            width=width,
            height=height,
            mode=MODES[mode],
            quality=quality,
            subsampling=subsampling,
            predicted=bool(flags & FLAG_PREDICTED),
            deblock=bool(flags & FLAG_DEBLOCK),
            models=tuple(models),
            tables=TABLE_SETS[tables],
            coding=_CODING_NAMES[coding],
            tile=tile,
            version=version,
        )


@dataclass
class Container:
    """A whole file: the header, the coded planes (opaque here) and metadata."""

    header: Header
    planes: list[bytes] = field(default_factory=list)
    alpha: bytes | None = None
    exif: bytes | None = None
    icc_profile: bytes | None = None
    xmp: bytes | None = None
    #: Set when the file ended early and the reader was asked to keep what was there.
    truncated: bool = False

    def metadata(self) -> dict[str, bytes]:
        """The metadata present, keyed the way Pillow names it in ``Image.info``."""
        items = {"exif": self.exif, "icc_profile": self.icc_profile, "xmp": self.xmp}
        return {key: value for key, value in items.items() if value is not None}


@dataclass(frozen=True)
class PlanePayload:
    """The parts of a ``PLAN`` payload (docs/FORMAT.md §4): DC step override, block-mode map, residual."""

    dc_step: int  # 0: the quantisation table's own DC step; 1..255 replaces it for this plane
    modes: bytes
    residual: bytes

    def to_bytes(self) -> bytes:
        return _PLANE_HEAD.pack(self.dc_step, len(self.modes)) + self.modes + self.residual

    @classmethod
    def from_bytes(cls, payload: bytes) -> PlanePayload:
        if len(payload) < _PLANE_HEAD.size:
            msg = "PLAN chunk is shorter than its DC step and block-mode length fields"
            raise BcnnFormatError(msg)
        dc_step, n = _PLANE_HEAD.unpack_from(payload)
        if len(payload) < _PLANE_HEAD.size + n:
            msg = f"PLAN chunk is {len(payload)} bytes, shorter than its {n}-byte block-mode map"
            raise BcnnFormatError(msg)
        start = _PLANE_HEAD.size
        return cls(dc_step, payload[start : start + n], payload[start + n :])


def _chunk(kind: bytes, payload: bytes) -> bytes:
    if len(payload) > MAX_CHUNK_LENGTH:
        msg = f"{kind.decode()} chunk of {len(payload)} bytes exceeds {MAX_CHUNK_LENGTH}"
        raise BcnnFormatError(msg)
    crc = zlib.crc32(payload, zlib.crc32(kind))
    return _CHUNK_HEAD.pack(len(payload), kind) + payload + struct.pack(">I", crc)


def write_container(container: Container) -> bytes:
    """Serialise ``container``; metadata goes before pixel data so ``Image.open`` reads it cheaply."""
    header = container.header
    if len(container.planes) != header.planes:
        msg = f"mode {header.mode} needs {header.planes} planes, got {len(container.planes)}"
        raise BcnnFormatError(msg)
    if (container.alpha is not None) != header.has_alpha:
        msg = f"mode {header.mode} {'needs' if header.has_alpha else 'cannot have'} an alpha plane"
        raise BcnnFormatError(msg)
    parts = [SIGNATURE, _chunk(HEAD, header.to_bytes())]
    for kind, key in _METADATA.items():
        value = getattr(container, key)
        if value is not None:
            parts.append(_chunk(kind, value))
    parts.extend(_chunk(PLANE, plane) for plane in container.planes)
    if container.alpha is not None:
        parts.append(_chunk(ALPHA, container.alpha))
    parts.append(_chunk(END, b""))
    return b"".join(parts)


def _remaining(fp: BinaryIO) -> int:
    pos = fp.tell()
    end = fp.seek(0, 2)
    fp.seek(pos)
    return end - pos


def _read_exact(fp: BinaryIO, n: int, what: str, kind: bytes | None = None) -> bytes:
    # Never ask read() for more than the file holds: CPython allocates the requested
    # size up front, so a forged length would cost gigabytes before the EOF is seen.
    data = fp.read(min(n, _remaining(fp)))
    if len(data) != n:
        msg = f"file is truncated: {what} needs {n} bytes, {len(data)} left"
        raise _ChunkTruncated(msg, kind, data)
    return data


def _read_chunk(fp: BinaryIO) -> tuple[bytes, bytes]:
    length, kind = _CHUNK_HEAD.unpack(_read_exact(fp, _CHUNK_HEAD.size, "a chunk header"))
    name = kind.decode("latin-1")
    if not all(0x20 <= c < 0x7F for c in kind) or not kind[:1].isalpha():
        msg = f"chunk type {kind!r} is not a valid chunk name: the file is corrupt"
        raise BcnnFormatError(msg)
    if length > MAX_CHUNK_LENGTH:
        msg = f"{name} chunk claims {length} bytes, more than any valid chunk"
        raise BcnnFormatError(msg)
    payload = _read_exact(fp, length, f"the {name} chunk", kind)
    try:
        (crc,) = struct.unpack(">I", _read_exact(fp, 4, f"the CRC of the {name} chunk"))
    except _ChunkTruncated as cut:
        raise _ChunkTruncated(str(cut), kind, payload) from None
    if crc != zlib.crc32(payload, zlib.crc32(kind)):
        msg = f"{name} chunk fails its CRC-32 check: the file is corrupt"
        raise BcnnFormatError(msg)
    return kind, payload


def _check_signature(fp: BinaryIO) -> None:
    if fp.read(len(SIGNATURE)) != SIGNATURE:
        msg = "not a .bcnn file (signature mismatch)"
        raise BcnnFormatError(msg)


def read_header(fp: BinaryIO, allow_truncated: bool = False) -> tuple[Header, dict[str, bytes]]:
    """Read the header and the metadata that precedes the pixel data; leave ``fp`` at the first data chunk.

    Pillow calls this from ``Image.open``: it reads no pixel data, so opening a
    file costs a few hundred bytes of I/O whatever the image size. With
    ``allow_truncated`` a file that ends after the header still opens.
    """
    _check_signature(fp)
    kind, payload = _read_chunk(fp)
    if kind != HEAD:
        msg = f"first chunk is {kind!r}, expected HEAD"
        raise BcnnFormatError(msg)
    header = Header.from_bytes(payload)
    metadata: dict[str, bytes] = {}
    while True:
        start = fp.tell()
        try:
            _length, kind = _CHUNK_HEAD.unpack(_read_exact(fp, _CHUNK_HEAD.size, "a chunk header"))
            if kind in (PLANE, ALPHA, END) or kind[:1].isupper():
                fp.seek(start)
                return header, metadata
            fp.seek(start)
            kind, payload = _read_chunk(fp)
        except _ChunkTruncated:
            if not allow_truncated:
                raise
            fp.seek(start)
            return header, metadata
        _store_metadata(metadata, kind, payload)


def _store_metadata(metadata: dict[str, bytes], kind: bytes, payload: bytes) -> None:
    key = _METADATA.get(kind)
    if key is None:
        return  # unknown ancillary chunk: skipped, as the format requires
    if key in metadata:
        msg = f"{kind.decode()} chunk appears twice"
        raise BcnnFormatError(msg)
    metadata[key] = payload


def read_container(fp: BinaryIO, allow_truncated: bool = False) -> Container:
    """Read and validate a whole file; every chunk's CRC is checked, every rule enforced.

    With ``allow_truncated`` a file that ends early (Pillow's
    ``LOAD_TRUNCATED_IMAGES``) returns what is there, marked ``truncated``: the
    planes read so far and the unchecked start of a plane or alpha chunk cut
    off mid-way. Everything before the cut is still CRC-checked.
    """
    header, metadata = read_header(fp, allow_truncated)
    container = Container(header=header)
    for key, value in metadata.items():
        setattr(container, key, value)
    seen_end = False
    while not seen_end:
        try:
            kind, payload = _read_chunk(fp)
        except _ChunkTruncated as cut:
            if not allow_truncated:
                raise
            container.truncated = True
            if cut.kind == PLANE and len(container.planes) < header.planes and container.alpha is None:
                container.planes.append(cut.partial)
            elif cut.kind == ALPHA and header.has_alpha and container.alpha is None:
                container.alpha = cut.partial
            return container
        name = kind.decode("latin-1")
        if kind == PLANE:
            if container.alpha is not None:
                msg = "PLAN chunk after the ALPH chunk"
                raise BcnnFormatError(msg)
            if len(container.planes) == header.planes:
                msg = f"more than the {header.planes} PLAN chunks mode {header.mode} has"
                raise BcnnFormatError(msg)
            container.planes.append(payload)
        elif kind == ALPHA:
            if not header.has_alpha:
                msg = f"ALPH chunk in a mode {header.mode} file"
                raise BcnnFormatError(msg)
            if container.alpha is not None:
                msg = "ALPH chunk appears twice"
                raise BcnnFormatError(msg)
            container.alpha = payload
        elif kind == END:
            if payload:
                msg = "END chunk must be empty"
                raise BcnnFormatError(msg)
            seen_end = True
        elif kind == HEAD:
            msg = "HEAD chunk appears twice"
            raise BcnnFormatError(msg)
        elif kind[:1].isupper():
            msg = f"unknown critical chunk {name!r}: this file needs a newer pillow-blockcnn to decode"
            raise BcnnFormatError(
                msg
            )
        elif kind in _METADATA:
            key = _METADATA[kind]
            if getattr(container, key) is not None:
                msg = f"{name} chunk appears twice"
                raise BcnnFormatError(msg)
            setattr(container, key, payload)
    if len(container.planes) != header.planes:
        msg = f"file has {len(container.planes)} PLAN chunks, mode {header.mode} needs {header.planes}"
        raise BcnnFormatError(msg)
    if header.has_alpha and container.alpha is None:
        msg = "RGBA file has no ALPH chunk"
        raise BcnnFormatError(msg)
    return container


@dataclass(frozen=True)
class ChunkSpan:
    """Where one chunk sits in a file: its type, the offset of its length field, and its payload length."""

    type: str
    offset: int
    length: int


def chunk_spans(fp: BinaryIO) -> tuple[list[ChunkSpan], int]:
    """Every chunk from ``HEAD`` to ``END `` (each one's framing and CRC checked) and the count of trailing bytes
    after ``END ``: the file's layout as ``blockcnn info`` shows it, read by the same rules as the decoder."""
    _check_signature(fp)
    spans = []
    while True:
        offset = fp.tell()
        kind, payload = _read_chunk(fp)
        spans.append(ChunkSpan(kind.decode("latin-1"), offset, len(payload)))
        if kind == END:
            return spans, _remaining(fp)
