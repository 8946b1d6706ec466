"""Shapes, the identity start, the colour transform and one training step of both networks."""

from __future__ import annotations

import numpy as np
import torch

from export.networks.deblocker import BlockCNN, BlockUNet, build_model, count_params
from pillow_blockcnn.runtime.jfif import gray_to_ycbcr_float, rgb_to_ycbcr_float, to_uint8, ycbcr_to_rgb_float


def test_colour_roundtrip_and_gray() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    ycc = rgb_to_ycbcr_float(rgb)
    assert np.array_equal(to_uint8(ycbcr_to_rgb_float(ycc)), rgb)
    g = gray_to_ycbcr_float(np.full((2, 2), 77, np.uint8))
    assert np.allclose(g[..., 0], 77)
    assert np.allclose(g[..., 1:], 128)
    assert np.allclose(rgb_to_ycbcr_float(np.full((1, 1, 3), 200, np.uint8)), [[[200, 128, 128]]], atol=1e-3)


def test_blockcnn_smoke() -> None:
    torch.manual_seed(0)
    model = BlockCNN(in_ch=4, ch=16, n_convs=2, n_blocks=2)
    x, t = torch.rand(8, 4, 24, 24), torch.rand(8, 3, 8, 8)
    assert model(x).shape == (8, 3, 8, 8)
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=1e-4)
    losses = []
    for _ in range(5):
        loss = torch.nn.functional.mse_loss(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_unet_shapes_and_identity_start() -> None:
    model = build_model({"arch": "BlockUNet", "ch": [8, 16, 24], "enc_blocks": [1, 1, 1], "dec_blocks": [1, 1]})
    assert isinstance(model, BlockUNet)
    assert count_params(model) > 0
    x = torch.rand(2, 4, 40, 64)
    y = model(x)
    assert y.shape == (2, 3, 40, 64)
    assert torch.equal(y, x[:, :3])  # zero-initialised tail: the untrained net returns its input
