"""The byte layout: header fields, chunk rules, checksums and overhead."""

from __future__ import annotations

import io
import struct
import zlib

import pytest

from pillow_blockcnn.format import container
from pillow_blockcnn.format.container import BcnnFormatError, Container, Header


def _file(**header: object) -> Container:
    fields: dict[str, object] = {"width": 10, "height": 7, "mode": "RGB", "quality": 40}
    fields.update(header)
    h = Header(**fields)  # type: ignore[arg-type]
    return Container(header=h, planes=[b"p%d" % i for i in range(h.planes)], alpha=b"a" if h.has_alpha else None)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, out = len(container.SIGNATURE), []
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", len(payload), kind) + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _rebuild(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return container.SIGNATURE + b"".join(_chunk(k, p) for k, p in chunks)


@pytest.mark.parametrize(
    "fields",
    [
        {"mode": "L"},
        {"mode": "RGBA", "predicted": True, "deblock": True, "models": ("predict-y-1", "deblock-2")},
        {"width": 2**32 - 1, "height": 1, "quality": 1, "subsampling": 0},
        {"quality": 100, "subsampling": 1},
    ],
)
def test_header_round_trip(fields: dict) -> None:
    original = _file(**fields)
    parsed = container.read_container(io.BytesIO(container.write_container(original)))
    assert parsed == original


def test_metadata_round_trips_byte_exact_and_precedes_pixel_data() -> None:
    c = _file()
    c.exif, c.icc_profile, c.xmp = b"Exif\x00\x00MM\x00*", bytes(range(256)) * 3, b"<x:xmpmeta/>"
    data = container.write_container(c)
    kinds = [k for k, _ in _chunks(data)]
    assert kinds[:4] == [b"HEAD", b"exif", b"iccp", b"xmpd"]
    assert kinds[-1] == b"END "
    fp = io.BytesIO(data)
    _, metadata = container.read_header(fp)
    assert metadata == {"exif": c.exif, "icc_profile": c.icc_profile, "xmp": c.xmp}
    assert data[fp.tell() + 4 : fp.tell() + 8] == b"PLAN"  # read_header stops before pixel data
    assert container.read_container(io.BytesIO(data)) == c


def test_overhead_of_an_rgb_file_without_metadata_is_under_100_bytes() -> None:
    c = _file()
    data = container.write_container(c)
    overhead = len(data) - sum(len(p) for p in c.planes)
    assert overhead < 100


def test_unknown_ancillary_chunk_is_skipped_unknown_critical_is_refused() -> None:
    chunks = _chunks(container.write_container(_file()))
    with_ancillary = chunks[:2] + [(b"zzzz", b"future data")] + chunks[2:]
    assert container.read_container(io.BytesIO(_rebuild(with_ancillary))) == _file()
    with_critical = chunks[:2] + [(b"ZZZZ", b"future data")] + chunks[2:]
    with pytest.raises(BcnnFormatError, match="unknown critical chunk 'ZZZZ'"):
        container.read_container(io.BytesIO(_rebuild(with_critical)))


def test_crc_failure_names_the_chunk() -> None:
    data = bytearray(container.write_container(_file()))
    data[-20] ^= 0x01  # inside the last PLAN payload or its CRC
    with pytest.raises(BcnnFormatError, match="CRC-32"):
        container.read_container(io.BytesIO(bytes(data)))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: [c[0], c[1], c[1]] + c[2:], "PLAN|more than"),
        (lambda c: [c[0]] + c[2:], "PLAN chunks"),
        (lambda c: c[:-1], "truncated"),
        (lambda c: [c[0], c[0]] + c[1:], "HEAD chunk appears twice"),
        (lambda c: c[1:], "first chunk"),
        (lambda c: c[:-1] + [(b"END ", b"x")], "END chunk must be empty"),
        (lambda c: [c[0], (b"exif", b"1"), (b"exif", b"2")] + c[1:], "exif chunk appears twice"),
        (lambda c: c[:-1] + [(b"ALPH", b"a"), c[-1]], "ALPH chunk in a mode RGB"),
    ],
)
def test_structural_rules(edit, message: str) -> None:
    chunks = _chunks(container.write_container(_file()))
    with pytest.raises(BcnnFormatError, match=message):
        container.read_container(io.BytesIO(_rebuild(edit(chunks))))


@pytest.mark.parametrize(
    ("payload_edit", "message"),
    [
        (lambda p: bytes([3]) + p[1:], "format version 3 is not supported"),
        (lambda p: bytes([1]) + p[1:], "version 1 was written by pillow-blockcnn 0.1"),
        (lambda p: p[:13] + bytes([7]) + p[14:], "table set code 7"),
        (lambda p: p[:14] + bytes([2]) + p[15:], "entropy coding code 2"),
        (lambda p: p[:9] + bytes([2]) + p[10:], "mode code 2"),
        (lambda p: p[:10] + bytes([0x80]) + p[11:], "flags"),
        (lambda p: p[:11] + bytes([0]) + p[12:], "quality 0"),
        (lambda p: p[:11] + bytes([101]) + p[12:], "quality 101"),
        (lambda p: p[:12] + bytes([3]) + p[13:], "subsampling code 3"),
        (lambda p: p[:1] + b"\x00\x00\x00\x00" + p[5:], "out of range"),
        (lambda p: p[:16] + bytes([1]), "model list"),
        (lambda p: p + b"\x00", "trailing"),
        (lambda p: p[:5], "needs at least"),
    ],
)
def test_header_field_validation(payload_edit, message: str) -> None:
    chunks = _chunks(container.write_container(_file()))
    chunks[0] = (b"HEAD", payload_edit(chunks[0][1]))
    with pytest.raises(BcnnFormatError, match=message):
        container.read_container(io.BytesIO(_rebuild(chunks)))


def test_model_ids_are_validated_on_write() -> None:
    with pytest.raises(BcnnFormatError, match="model id"):
        Header(width=1, height=1, mode="L", quality=50, models=("../../etc/passwd",))


def test_signature_mismatch() -> None:
    with pytest.raises(BcnnFormatError, match="signature"):
        container.read_header(io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * 40))


def test_overhead_with_the_shipped_model_ids_is_under_100_bytes() -> None:
    from pillow_blockcnn import runtime

    ids = tuple(m.id for m in runtime.models("predict")[-1:] + runtime.models("deblock")[-1:])
    c = _file(predicted=True, deblock=True, models=ids)
    assert len(container.write_container(c)) - sum(len(p) for p in c.planes) < 100
