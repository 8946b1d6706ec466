"""Test helpers shared across test modules."""

from __future__ import annotations

import numpy as np


class MeanEdgePredictor:
    """A deterministic, non-learned predictor: the mean of the pixels bordering the block above and to the left.

    It exercises the closed loop exactly as a learned model would (contexts in,
    uint8 blocks out) without needing a model file.
    """

    model_ids: tuple[str, ...] = ("test-mean-edge",)

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, contexts: np.ndarray, available: np.ndarray, plane: int) -> np.ndarray:
        self.calls.append(len(contexts))
        top = contexts[:, 7, 8:16].astype(np.int64).sum(axis=1) * available[:, 1]
        left = contexts[:, 8:16, 7].astype(np.int64).sum(axis=1) * available[:, 3]
        n = 8 * (available[:, 1].astype(np.int64) + available[:, 3])
        mean = np.where(n > 0, (top + left + n // 2) // np.maximum(n, 1), 128)
        return np.broadcast_to(mean[:, None, None], (len(contexts), 8, 8)).astype(np.uint8)


def register_models(monkeypatch, models: dict[str, tuple[str, bytes]], sha_override: dict[str, str] | None = None):
    """Install stand-in models in the runtime registry: ``{id: (task, onnx bytes)}``.

    The registry's own sha256 check still runs; ``sha_override`` gives an entry
    a wrong hash to test that check. The newest entry of a task is its default.
    """
    import dataclasses

    from export.candidates import entries_for
    from pillow_blockcnn import runtime

    entries, files = entries_for(
        {model_id: (task, data, ["jpeg", "mse"]) for model_id, (task, data) in models.items()}
    )
    for model_id, sha in (sha_override or {}).items():
        entries[model_id] = dataclasses.replace(entries[model_id], sha256=sha)
    monkeypatch.setattr(runtime, "_manifest", lambda: entries)
    monkeypatch.setattr(runtime, "_read_packaged", lambda name: files[name])
    runtime.clear_sessions()
    return entries


def assert_runs_end_alike(whole, split, steps: int, starts: list[int]) -> list[dict]:
    """Two training run directories end at the same step with identical weights, and ``split`` was started at
    ``starts``; returns ``split``'s log records for further checks."""
    import json

    import torch

    a = torch.load(whole / "last.pt", weights_only=False)
    b = torch.load(split / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == steps
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    events = [json.loads(line) for line in (split / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e.get("event") == "start"] == starts
    return events


def training_images(tmp_path, sample, n: int, size: tuple[int, int]):
    """``n`` overlapping ``size`` (width, height) crops of ``sample`` as PNGs in ``tmp_path/data``: a training
    data root for the trainers' smoke runs."""
    data = tmp_path / "data"
    data.mkdir()
    w, h = size
    for i in range(n):
        sample.crop((i * 40, i * 20, i * 40 + w, i * 20 + h)).save(data / f"im{i}.png")
    return data
