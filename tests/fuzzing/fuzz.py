"""Mutation fuzzer for the .bcnn decoder, through ``Image.open`` + ``load()``.

Run a long campaign with ``python -m tests.fuzzing.fuzz --cases 20000 --json results/resources/fuzz.json``;
``tests/fuzzing/test_fuzz.py`` runs a bounded one in the suite.

Each case mutates a valid file and classifies what Pillow does with it:

* ``identical``: decodes to the original pixels (e.g. garbage after ``END``);
* ``changed``: decodes to other pixels: allowed only for mutations that rewrite
  checksums (a different but well-formed file), a failure otherwise, because
  CRC-32 must catch payload corruption;
* ``clean``: ``UnidentifiedImageError``/``OSError``/``SyntaxError`` at open,
  ``OSError`` at load, ``DecompressionBombError``;
* ``unclean``: any other exception (a failure), or a case slower than the
  time limit (a hang, a failure).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

import pillow_blockcnn  # registers the format

SIGNATURE_LEN = 8
EXTREMES = [0, 1, 2**31 - 1, 2**31, 2**32 - 1]
CLEAN_AT_OPEN = (OSError, SyntaxError, Image.DecompressionBombError)
CLEAN_AT_LOAD = (OSError, Image.DecompressionBombError)


def corpus() -> list[bytes]:
    """Valid files of every mode and layout: the seeds mutations start from."""
    with resources.as_file(resources.files("pillow_blockcnn") / "samples" / "parrots.png") as path, Image.open(path) as im:
        base = im.convert("RGB").crop((200, 100, 261, 143))
    files = []
    for image, params in [
        (base, {"quality": 50}),
        (base.convert("L"), {"quality": 20}),
        (base.convert("RGBA"), {"quality": 80, "exif": b"Exif\x00\x00MM\x00*", "icc_profile": b"icc" * 9, "xmp": b"<x/>"}),
        (base, {"quality": 5, "subsampling": "4:4:4"}),
        (base.resize((1, 1)), {"quality": 95, "subsampling": "4:2:2"}),
    ]:
        out = io.BytesIO()
        image.save(out, "BCNN", deblock=False, **params)
        files.append(out.getvalue())
    return files


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, out = SIGNATURE_LEN, []
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def _build(data: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(struct.pack(">I4s", len(p), k) + p + struct.pack(">I", zlib.crc32(k + p)) for k, p in chunks)
    return data[:SIGNATURE_LEN] + body


# Raw mutations: checksums are left alone, so anything that decodes must decode to the original.
def flip_bit(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def insert(rng: random.Random, data: bytes) -> bytes:
    pos = rng.randrange(len(data) + 1)
    return data[:pos] + rng.randbytes(rng.randint(1, 64)) + data[pos:]


def duplicate_range(rng: random.Random, data: bytes) -> bytes:
    start = rng.randrange(len(data))
    end = min(len(data), start + rng.randint(1, 256))
    pos = rng.randrange(len(data) + 1)
    return data[:pos] + data[start:end] + data[pos:]


def delete_range(rng: random.Random, data: bytes) -> bytes:
    start = rng.randrange(len(data))
    return data[:start] + data[start + rng.randint(1, 256) :]


def extreme_length(rng: random.Random, data: bytes) -> bytes:
    offsets = [SIGNATURE_LEN]
    for _kind, payload in _chunks(data):
        offsets.append(offsets[-1] + 12 + len(payload))
    pos = rng.choice(offsets[:-1])
    return data[:pos] + struct.pack(">I", rng.choice(EXTREMES)) + data[pos + 4 :]


# Structural mutations: checksums are rewritten, so a different, well-formed file may decode.
def extreme_header(rng: random.Random, data: bytes) -> bytes:
    chunks = _chunks(data)
    head = bytearray(chunks[0][1])
    field_ = rng.choice(["width", "height", "both", "byte"])
    if field_ in ("width", "both"):
        head[1:5] = struct.pack(">I", rng.choice(EXTREMES))
    if field_ in ("height", "both"):
        head[5:9] = struct.pack(">I", rng.choice(EXTREMES))
    if field_ == "byte":
        head[rng.choice([0, 9, 10, 11, 12, 13])] = rng.choice([0, 1, 2, 3, 4, 5, 100, 101, 127, 128, 255])
    chunks[0] = (b"HEAD", bytes(head))
    return _build(data, chunks)


def reorder_chunks(rng: random.Random, data: bytes) -> bytes:
    chunks = _chunks(data)
    rng.shuffle(chunks)
    return _build(data, chunks)


def repeat_chunk(rng: random.Random, data: bytes) -> bytes:
    chunks = _chunks(data)
    i = rng.randrange(len(chunks))
    chunks.insert(rng.randrange(len(chunks) + 1), chunks[i])
    return _build(data, chunks)


def drop_chunk(rng: random.Random, data: bytes) -> bytes:
    chunks = _chunks(data)
    del chunks[rng.randrange(len(chunks))]
    return _build(data, chunks)


def corrupt_payload(rng: random.Random, data: bytes) -> bytes:
    """Damage a plane or alpha payload and fix its CRC: this reaches libjpeg and zlib."""
    chunks = _chunks(data)
    targets = [i for i, (k, p) in enumerate(chunks) if k in (b"PLAN", b"ALPH") and p]
    i = rng.choice(targets)
    kind, payload = chunks[i]
    b = bytearray(payload)
    for _ in range(rng.randint(1, 8)):
        b[rng.randrange(len(b))] = rng.randrange(256)
    if rng.random() < 0.3:
        b = b[: rng.randrange(len(b))]
    chunks[i] = (kind, bytes(b))
    return _build(data, chunks)


RAW: list[Callable[[random.Random, bytes], bytes]] = [
    flip_bit, truncate, insert, duplicate_range, delete_range, extreme_length,
]  # fmt: skip
STRUCTURAL: list[Callable[[random.Random, bytes], bytes]] = [
    extreme_header, reorder_chunks, repeat_chunk, drop_chunk, corrupt_payload,
]  # fmt: skip


@dataclass
class Report:
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_mutation: dict[str, Counter] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    slowest_s: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    def as_dict(self) -> dict:
        return {
            "cases": self.cases,
            "outcomes": dict(self.outcomes),
            "by_mutation": {k: dict(v) for k, v in sorted(self.by_mutation.items())},
            "failures": self.failures[:50],
            "failed": self.failed,
            "slowest_case_s": round(self.slowest_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


def _decode(data: bytes) -> tuple[str, np.ndarray | None]:
    try:
        im = Image.open(io.BytesIO(data))
    except CLEAN_AT_OPEN:
        return "clean", None
    try:
        with im:
            im.load()
            return "decoded", np.asarray(im)
    except CLEAN_AT_LOAD:
        return "clean", None


def run(cases: int, seed: int = 0, time_limit_s: float = 5.0, seeds: list[bytes] | None = None) -> Report:
    """Fuzz ``cases`` mutations of ``seeds`` (default: :func:`corpus`)."""
    rng = random.Random(seed)
    seeds = seeds if seeds is not None else corpus()
    originals = [_decode(d)[1] for d in seeds]
    report = Report()
    for case in range(cases):
        which = rng.randrange(len(seeds))
        mutation = rng.choice(RAW + STRUCTURAL)
        data = mutation(rng, seeds[which])
        start = time.perf_counter()
        try:
            status, pixels = _decode(data)
        except Exception as exc:
            status, pixels = f"unclean:{type(exc).__name__}: {exc}"[:300], None
        elapsed = time.perf_counter() - start
        report.slowest_s = max(report.slowest_s, elapsed)
        if status == "decoded":
            original = originals[which]
            same = pixels is not None and original is not None and pixels.shape == original.shape and np.array_equal(pixels, original)
            status = "identical" if same else "changed"
            if status == "changed" and mutation in RAW:
                status = "unclean:silent corruption"
        if elapsed > time_limit_s:
            status = f"unclean:slow ({elapsed:.1f} s)"
        kind = status.split(":")[0] if status.startswith("unclean") else status
        report.outcomes[kind] += 1
        report.by_mutation.setdefault(mutation.__name__, Counter())[kind] += 1
        if kind == "unclean":
            report.failures.append({"case": case, "seed_file": which, "mutation": mutation.__name__, "what": status})
        report.cases += 1
    report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    report = run(args.cases, args.seed)
    result = report.as_dict() | {
        "seed": args.seed,
        "wall_s": round(time.perf_counter() - start, 1),
        "date": time.strftime("%Y-%m-%d"),
        "pillow": Image.__version__,
        "pillow_blockcnn": pillow_blockcnn.__version__,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
