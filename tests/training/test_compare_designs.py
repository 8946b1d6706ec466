"""The design comparison's plumbing: the per-block wrapper and the Lab conversion must be exact, or the
comparison would measure wrapper errors instead of designs."""

from __future__ import annotations

import torch

from export.networks.deblocker import BlockCNN
from export.studies.compare_designs import PerBlock, centre_blocks, lab_to_ycc, windows, ycc_to_lab
from pillow_blockcnn.runtime.jfif import rgb_to_ycbcr_float


class _Centre(torch.nn.Module):
    """A 'network' that returns the centre block of its 24x24 window unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :3, 8:16, 8:16]


def test_windows_and_targets_line_up() -> None:
    x = torch.rand(2, 3, 40, 56)
    win, tgt = windows(x), centre_blocks(x)
    assert win.shape == (2 * 3 * 5, 3, 24, 24)
    assert tgt.shape == (2 * 3 * 5, 3, 8, 8)
    assert torch.equal(win[:, :, 8:16, 8:16], tgt)


def test_per_block_wrapper_reassembles_the_image() -> None:
    x = torch.rand(1, 4, 32, 48)
    out = PerBlock(_Centre(), chunk=5)(x)  # type: ignore[arg-type]
    assert torch.equal(out, x[:, :3])


def test_per_block_wrapper_runs_the_paper_network() -> None:
    out = PerBlock(BlockCNN(in_ch=4, ch=8, n_convs=1, n_blocks=1).eval())(torch.rand(1, 4, 16, 24))
    assert out.shape == (1, 3, 16, 24)


def test_lab_round_trip() -> None:
    rgb = torch.rand(1, 8, 8, 3) * 255
    ycc = torch.from_numpy(rgb_to_ycbcr_float(rgb.numpy())).permute(0, 3, 1, 2) / 255
    lab = ycc_to_lab(ycc)
    assert lab.min() > -0.05
    assert lab.max() < 1.05
    assert torch.allclose(lab_to_ycc(lab), ycc, atol=1e-3)
    white = ycc_to_lab(torch.tensor([1.0, 0.5019608, 0.5019608]).reshape(1, 3, 1, 1))
    assert torch.allclose(white.flatten(), torch.tensor([1.0, 128 / 255, 128 / 255]), atol=2e-3)
