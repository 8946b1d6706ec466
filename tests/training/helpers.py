"""Helpers of the training tests: smoke-run data and the check that a cut-up run ends like a whole one."""

from __future__ import annotations


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


def train_whole_and_split(tmp_path, monkeypatch, cfg: dict, split_at: int = 2) -> list[dict]:
    """Train ``cfg`` (written to ``tmp_path/cfg.json``) once whole and once stopped at ``split_at`` and resumed,
    check the two end alike (:func:`assert_runs_end_alike`) and return the split run's log records."""
    import json
    import sys

    from export.training import train_deblocker

    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    for run, extra in (("whole", []), ("split", ["--max-steps", str(split_at)]), ("split", [])):
        monkeypatch.setattr(sys, "argv", ["train", "--config", str(path), "--run-dir", str(tmp_path / run), *extra])
        train_deblocker.main()
    return assert_runs_end_alike(tmp_path / "whole", tmp_path / "split", cfg["schedule"]["total_iters"], [0, split_at])


def training_images(tmp_path, sample, n: int, size: tuple[int, int]):
    """``n`` overlapping ``size`` (width, height) crops of ``sample`` as PNGs in ``tmp_path/data``: a training
    data root for the trainers' smoke runs."""
    data = tmp_path / "data"
    data.mkdir()
    w, h = size
    for i in range(n):
        sample.crop((i * 40, i * 20, i * 40 + w, i * 20 + h)).save(data / f"im{i}.png")
    return data
