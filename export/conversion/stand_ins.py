"""The tiny random-weight models the runtime tests use in place of the shipped ones.

    python -m export.conversion.stand_ins --out tests/runtime/models

They are committed (about 250 kB together), so the runtime tests need no torch; ``tests/training`` checks
that the committed files still compute what these torch networks compute. They exercise the plumbing (the
ONNX interface, sessions, tiling, the closed loop), not a model's quality.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from export.conversion.export_int_predictor import export_int_predictor
from export.conversion.export_onnx import export_model
from export.conversion.export_predictor import export_predictor
from export.networks.deblocker import BlockUNet
from export.networks.int_predictor import IntPredictorNet
from export.networks.predictor import BlockPredictorNet

__all__ = [
    "stand_in_deblocker",
    "stand_in_int_predictor",
    "stand_in_predictor",
    "write_stand_ins",
]


def stand_in_deblocker() -> BlockUNet:
    """A BlockUNet with 8 channels per level whose tail is not the identity it starts as (seed 0)."""
    torch.manual_seed(0)
    model = BlockUNet(ch=(8, 8, 8), enc_blocks=(1, 1, 1), dec_blocks=(1, 1)).eval()
    with torch.no_grad():
        model.tail.weight.normal_(0, 0.05)
    return model


def stand_in_predictor() -> BlockPredictorNet:
    """A BlockPredictorNet of width 32 and depth 1 with a random output layer (seed 1)."""
    torch.manual_seed(1)
    model = BlockPredictorNet(width=32, depth=1).eval()
    with torch.no_grad():
        model.out.weight.normal_(0, 0.02)
    return model


def stand_in_int_predictor(guide: bool = False) -> IntPredictorNet:
    """An IntPredictorNet of width 32 and depth 2 with random weights (seed 2; luma-guided, ``guide=True``:
    seed 4, the guide's weights as large as the rest), its activation steps calibrated on random contexts
    (a guided one's on random chroma contexts and guides)."""
    torch.manual_seed(4 if guide else 2)
    model = IntPredictorNet(width=32, depth=2, guide=guide).eval()
    with torch.no_grad():
        model.layers[-1].linear.weight.normal_(0, 0.05)
        for layer in model.layers:
            layer.linear.bias.normal_(0, 0.5)
        context = torch.rand(512, 24, 24)
        context[:, 8:, 8:] = 0
        context[:, 16:] = 0
        chroma = torch.full((512, 1), float(guide))
        info = torch.cat([(torch.rand(512, 4) < 0.7).float(), torch.full((512, 1), 0.3), chroma], 1)
        model(context, info, torch.rand(512, 16, 24) if guide else None)
    return model


def _save_layers(model: IntPredictorNet, path: Path) -> None:
    layers = model.integer_layers()
    np.savez(path, **{f"{name}{i}": value for i, layer in enumerate(layers) for name, value in zip("WBS", layer, strict=True)})


def write_stand_ins(out: Path) -> list[Path]:
    """Export the stand-ins to ``out/test-deblock.onnx``, ``out/test-predict.onnx``, ``out/test-int-predict.onnx``
    and ``out/test-int-guided.onnx`` (the integer ones with their integer layers in ``.npz`` files beside them,
    for the runtime tests' plain-integer reference)."""
    out.mkdir(parents=True, exist_ok=True)
    integer, guided = stand_in_int_predictor(), stand_in_int_predictor(guide=True)
    _save_layers(integer, out / "test-int-predict.npz")
    _save_layers(guided, out / "test-int-guided.npz")
    return [
        export_model(stand_in_deblocker(), out / "test-deblock.onnx"),
        export_predictor(stand_in_predictor(), out / "test-predict.onnx"),
        export_int_predictor(integer, out / "test-int-predict.onnx"),
        export_int_predictor(guided, out / "test-int-guided.onnx"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/runtime/models"))
    for path in write_stand_ins(parser.parse_args(argv).out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
