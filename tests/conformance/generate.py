"""Write the conformance files: small .bcnn files covering the format, each with the sha256 of its pixels.

    python -m tests.conformance.generate     # rewrites tests/conformance/*.bcnn and manifest.json

Every mode, subsampling, table set, entropy coder, tile layout and block-mode kind, the fine DC step, a
recommended restorer (one this package ships and one no decoder ships), the libjpeg frame cut at 65 500 and
the smallest images. The digests are of the decoded pixels *before* deblocking (``Image.open(f)`` with
deblocking off, ``tobytes()``), which every conforming decoder must reproduce exactly (docs/FORMAT.md §10).
Regenerate only when the format or a shipped prediction model changes on purpose: from 1.0 on, these files
must decode the same forever.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from export.evaluation.content_battery import battery
from pillow_blockcnn import codec, runtime
from pillow_blockcnn.format import container

HERE = Path(__file__).parent


def _cases(predictor_id: str) -> list[tuple[str, str, np.ndarray, str, dict]]:
    b = battery()
    photo, shot = b["photo-like"], b["screenshot"][:96, :160]
    mixed = np.concatenate([photo[:96, :96], shot[:, :96]], axis=1)  # half photo, half text: mixed block modes
    gray = np.ascontiguousarray(photo[..., 1])
    strip = np.tile(np.arange(0, 256, dtype=np.uint8), 256)[:65500][None, :]
    return [
        ("gray-plain-jpeg-arith", "gray, plain, JPEG tables, arithmetic", gray[:29, :37], "L",
         {"quality": 50, "tables": "jpeg"}),
        ("rgb420-plain-mse-huffman", "4:2:0, plain, PSNR tables, Huffman", photo, "RGB",
         {"quality": 20, "coding": "huffman"}),
        ("rgb422-plain-jpeg", "4:2:2, plain, JPEG tables", photo[:45, :61], "RGB",
         {"quality": 75, "subsampling": 1, "tables": "jpeg"}),
        ("rgb444-plain-q90", "4:4:4, plain, quality 90", photo[:40, :40], "RGB", {"quality": 90, "subsampling": 0}),
        ("rgb420-plain-ssim", "4:2:0, plain, MS-SSIM tables", photo[:48, :72], "RGB", {"quality": 45, "tables": "ssim"}),
        ("rgba420-plain", "RGBA, plain, lossless alpha", np.dstack([photo[:33, :50], gray[:33, :50]]), "RGBA",
         {"quality": 40}),
        ("rgb420-predicted-tile64", "predicted, mixed block modes, 64-block tiles", mixed, "RGB",
         {"quality": 30, "predictor": predictor_id, "tile": 64}),
        ("gray-predicted-tile2", "predicted, every block, 2-block tiles", gray[:48, :64], "L",
         {"quality": 35, "predictor": predictor_id, "tile": 2, "force_prediction": True}),
        ("rgb444-predicted-untiled", "predicted, every block, one tile, 4:4:4", photo[:64, :96], "RGB",
         {"quality": 60, "subsampling": 0, "predictor": predictor_id, "tile": 0, "force_prediction": True}),
        ("rgb420-predicted-huffman", "predicted, Huffman, JPEG tables", photo[:64, :80], "RGB",
         {"quality": 25, "tables": "jpeg", "coding": "huffman", "predictor": predictor_id,
          "force_prediction": True}),
        ("rgb420-predicted-balanced", "predicted, the tables tuned for both metrics", photo[:56, :88], "RGB",
         {"quality": 20, "tables": "balanced", "predictor": predictor_id, "force_prediction": True}),
        ("rgb420-fine-dc", "flat areas: the fine DC step", b["colour-blocks"], "RGB", {"quality": 10}),
        ("rgb420-predicted-deblock", "predicted, a restorer recommended (flag bit 1, two model ids)",
         photo[:40, :56], "RGB", {"quality": 15, "predictor": predictor_id, "force_prediction": True,
                                  "deblock_model": "dblk-9"}),
        ("gray-plain-deblock-unknown", "a restorer recommended that no decoder ships (§7: run your own)",
         gray[:24, :40], "L", {"quality": 30, "deblock_model": "x-restorer-not-shipped"}),
        ("gray-thin-predicted", "1 x 300, predicted across 64-block tiles", gray[:1, :1].repeat(300, axis=1) + np.arange(300, dtype=np.uint8)[None] // 4,
         "L", {"quality": 50, "predictor": predictor_id, "force_prediction": True}),
        ("rgb-1x1", "the smallest image", b["tiny-1x1"], "RGB", {"quality": 75}),
        ("gray-65500x1", "the libjpeg frame cut (a 65 504 plane in a 65 500 frame)", strip, "L", {"quality": 80}),
    ]


def main() -> None:
    manifest = {}
    for name, description, pixels, mode, params in _cases("pred-2"):
        params = dict(params)
        params.setdefault("tables", "mse")  # the files that name no table set were written with the PSNR tables
        predictor = params.pop("predictor", None)
        if predictor is not None:
            params["predictor"] = runtime.predictor_for(predictor, params["quality"])
        pixels = np.ascontiguousarray(pixels)
        encoded = codec.encode(pixels, mode, reconstruct=True, **params)
        data = container.write_container(encoded.container)
        (HERE / f"{name}.bcnn").write_bytes(data)
        header = encoded.container.header
        manifest[f"{name}.bcnn"] = {
            "description": description,
            "mode": header.mode,
            "size": [header.width, header.height],
            "predicted": header.predicted,
            "models": list(header.models),
            "sha256": hashlib.sha256(np.ascontiguousarray(encoded.reconstruction).tobytes()).hexdigest(),
        }
        print(name, len(data), "bytes", header)
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
