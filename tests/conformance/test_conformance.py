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
    assert any(h.deblock and h.predicted for h in headers)
    assert any(h.deblock and not h.predicted for h in headers)
    assert any(h.width == 65500 for h in headers)
    assert any(h.width * h.height == 1 for h in headers)


def test_a_recommended_restorer_is_run_and_one_this_decoder_lacks_falls_back_to_its_own() -> None:
    """docs/FORMAT.md §7: the last model id of a file whose flag bit 1 is set is a recommendation. A decoder runs
    it when it has it, and its own current restorer when it does not; either way the exact decode underneath is
    the recorded one."""
    from pillow_blockcnn import runtime

    headers = {n: container.read_header(io.BytesIO((HERE / n).read_bytes()))[0] for n in MANIFEST}
    recommended = {n: h.models[-1] for n, h in headers.items() if h.deblock}
    shipped = {m.id for m in runtime.models("deblock")}
    assert any(m in shipped for m in recommended.values())
    assert any(m not in shipped for m in recommended.values())
    for name, model in recommended.items():
        with pillow_blockcnn.open_bcnn(HERE / name) as im:
            im.load()
            ran = im.info["deblocked_with"]
        assert ran == (model if model in shipped else runtime.default_model("deblock", headers[name].tables).id)
