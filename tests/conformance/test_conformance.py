"""Decode every conformance file and compare its pixels (before deblocking) with the recorded sha256.

These files are what a second implementation of docs/FORMAT.md is checked against; they are regenerated
only on purpose (``python -m tests.conformance.generate``).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

import pillow_blockcnn
from pillow_blockcnn.format import container, limits
from tests.runtime.test_format_spec import spec_decode

HERE = Path(__file__).parent
MANIFEST = json.loads((HERE / "manifest.json").read_text())


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_file_decodes_to_its_recorded_pixels(name) -> None:
    entry = MANIFEST[name]
    with pillow_blockcnn.open_bcnn(HERE / name, deblock=False) as im:
        assert [im.mode, *im.size] == [entry["mode"], *entry["size"]]
        assert im.info["predicted"] == entry["predicted"]
        digest = hashlib.sha256(im.tobytes()).hexdigest()
    assert digest == entry["sha256"]


@pytest.mark.parametrize("name", sorted(n for n, e in MANIFEST.items() if not e["predicted"]))
def test_the_documents_decoder_agrees_on_the_unpredicted_files(name) -> None:
    data = (HERE / name).read_bytes()
    assert hashlib.sha256(np.ascontiguousarray(spec_decode(data)).tobytes()).hexdigest() == MANIFEST[name]["sha256"]


def test_the_suite_covers_the_format() -> None:
    headers = [container.read_header(io.BytesIO((HERE / n).read_bytes()))[0] for n in MANIFEST]
    assert {h.mode for h in headers} == {"L", "RGB", "RGBA"}
    assert {h.subsampling for h in headers if h.mode != "L"} == {0, 1, 2}
    assert {h.tables for h in headers} == set(limits.TABLE_SETS)
    assert {h.coding for h in headers} == {"arithmetic", "huffman"}
    assert {h.tile for h in headers if h.predicted} >= {0, 2, 64}
    kinds = set()
    for name in MANIFEST:
        parsed = container.read_container(io.BytesIO((HERE / name).read_bytes()))
        kinds |= {container.PlanePayload.from_bytes(p).modes[0] for p in parsed.planes}
        kinds |= {"fine-dc" for p in parsed.planes if container.PlanePayload.from_bytes(p).dc_step}
    assert kinds >= {0, 1, 2, "fine-dc"}
    assert any(h.width == 65500 for h in headers)
    assert any(h.width * h.height == 1 for h in headers)
