"""export.conversion.average_weights: the mean of checkpoints, loadable by the ONNX exporter, and refusals that say why."""

from __future__ import annotations

import pytest
import torch

from export.conversion.average_weights import average_checkpoints, average_states
from export.conversion.export_onnx import load_checkpoint
from export.networks.deblocker import build_model

SPEC = {"arch": "BlockUNet", "ch": [8, 8, 8], "enc_blocks": [1, 1, 1], "dec_blocks": [1, 1]}


def _checkpoint(path, seed: int, step: int, spec: dict = SPEC):
    torch.manual_seed(seed)
    model = build_model(spec)
    torch.save({"model": model.state_dict(), "config": {"name": f"run{seed}", "model": spec}, "step": step}, path)
    return model.state_dict()


def test_mean_of_two_checkpoints_exports(tmp_path) -> None:
    a = _checkpoint(tmp_path / "a.pt", 1, 100)
    b = _checkpoint(tmp_path / "b.pt", 2, 300)
    ck = average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"], [3.0, 1.0])
    assert ck["step"] == 300
    assert ck["averaging_weights"] == [3.0, 1.0]
    name = next(k for k, v in a.items() if v.is_floating_point())
    torch.testing.assert_close(ck["model"][name], 0.75 * a[name] + 0.25 * b[name])
    assert not torch.equal(ck["model"][name], a[name])
    torch.save(ck, tmp_path / "soup.pt")
    model, loaded = load_checkpoint(tmp_path / "soup.pt")
    assert loaded["averaged_from"] == [str(tmp_path / "a.pt"), str(tmp_path / "b.pt")]
    torch.testing.assert_close(model.state_dict()[name], ck["model"][name])


def test_equal_weights_of_identical_states_change_nothing() -> None:
    torch.manual_seed(0)
    state = build_model(SPEC).state_dict()
    mean = average_states([state, state, state])
    for k, v in state.items():
        torch.testing.assert_close(mean[k], v)


def test_refuses_mismatched_checkpoints(tmp_path) -> None:
    _checkpoint(tmp_path / "a.pt", 1, 1)
    _checkpoint(tmp_path / "wide.pt", 1, 1, {**SPEC, "ch": [8, 8, 16]})
    with pytest.raises(ValueError, match="different architectures"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "wide.pt"])
    torch.manual_seed(0)
    small, wide = build_model(SPEC).state_dict(), build_model({**SPEC, "ch": [8, 8, 16]}).state_dict()
    with pytest.raises(ValueError, match="shape"):
        average_states([small, wide])
    with pytest.raises(ValueError, match="different parameters"):
        average_states([small, {k: v for k, v in small.items() if k != next(iter(small))}])
    with pytest.raises(ValueError, match="one non-negative weight per checkpoint"):
        average_states([small, small], [1.0])
    with pytest.raises(ValueError, match="at least one"):
        average_states([])
