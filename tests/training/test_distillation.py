"""A narrow restorer cut from a shipped wide one and distilled from it (export.conversion.onnx_weights,
export.training.prune, export.data.teacher): the ONNX file gives back the network users run, pruning keeps what
carries the output and drops what does not, and a pruned, distilled run trains and resumes like any other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.conversion.export_onnx import export_model
from export.conversion.onnx_weights import read_state_dict
from export.conversion.quantize import quantize
from export.data import bcnn_pack, teacher
from export.networks.deblocker import BlockUNet, build_model
from export.training import train_deblocker as train
from export.training.prune import plan, prune
from tests.training.helpers import train_whole_and_split
from tests.training.test_restoration_data import _tiny_pack, pack_run_config

SMALL = {"arch": "BlockUNet", "ch": [4, 6, 8], "enc_blocks": [1, 1, 1], "dec_blocks": [1, 1]}
WIDE = {"arch": "BlockUNet", "ch": [8, 10, 12], "enc_blocks": [2, 1, 2], "dec_blocks": [1, 2]}


def _random(spec: dict, seed: int) -> BlockUNet:
    torch.manual_seed(seed)
    model = build_model(spec)
    for p in model.parameters():  # the tail is zero-initialised: give every layer weights
        torch.nn.init.normal_(p, std=0.2)
    return model.eval()


def _inputs(n: int = 2) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return [torch.rand(2, 4, 32, 48, generator=g) for _ in range(n)]


def test_float_onnx_weights_read_back_exactly(tmp_path) -> None:
    model = _random(SMALL, 1)
    path = export_model(model, tmp_path / "m.onnx", sample_hw=(32, 48))
    got = read_state_dict(path)
    assert set(got) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(got[k], v), k


def test_int8_onnx_weights_read_back_as_onnxruntime_dequantises_them(tmp_path) -> None:
    model = _random(SMALL, 2)
    path = export_model(model, tmp_path / "m.onnx", sample_hw=(32, 48))
    q = quantize(path, tmp_path / "q.onnx", [x.numpy() for x in _inputs()], keep_float=("head", "tail"))
    got = read_state_dict(q)
    assert set(got) == set(model.state_dict())
    assert torch.equal(got["head.weight"], model.head.weight.detach())  # kept float
    for name in ("enc3.0.c1.weight", "up2.weight", "down1.weight"):  # per output channel, 7-bit: |error| <= step/2
        w = model.state_dict()[name]
        axis = 1 if name.startswith("up") else 0
        step = w.abs().amax(dim=[d for d in range(4) if d != axis], keepdim=True) / 63.5
        err = (got[name] - w).abs()
        assert bool((err <= step / 2 + 1e-6).all()), name
        assert not torch.equal(got[name], w)  # really the int8 values


def _embed(small: BlockUNet, wide: BlockUNet) -> dict[str, list[int]]:
    """Write ``small`` into ``wide`` at chosen channel positions, every other channel and the extra residual
    blocks dead (zero weights), so ``wide`` computes what ``small`` does; returns the positions used."""
    pos = {1: [0, 2, 5, 7], 2: [1, 2, 4, 6, 8, 9], 3: [0, 1, 3, 5, 6, 8, 10, 11]}
    blocks = {"enc1": [1], "enc2": [0], "enc3": [0], "dec2": [0], "dec1": [1]}  # where small's block sits
    inner = {1: [1, 3, 4, 6], 2: [0, 3, 4, 5, 7, 9], 3: [1, 2, 3, 4, 7, 8, 9, 11]}
    level = {"enc1": 1, "dec1": 1, "enc2": 2, "dec2": 2, "enc3": 3}
    with torch.no_grad():
        for p in wide.parameters():
            p.zero_()

        def put(dst, src, out_idx, in_idx, transposed=False) -> None:
            o, i = (1, 0) if transposed else (0, 1)
            w = dst.weight
            idx_o = torch.tensor(out_idx) if out_idx is not None else torch.arange(w.shape[o])
            idx_i = torch.tensor(in_idx) if in_idx is not None else torch.arange(w.shape[i])
            grid = [slice(None)] * 4
            grid[o], grid[i] = idx_o[:, None] if o == 0 else idx_o[None, :], idx_i[None, :] if i == 1 else idx_i[:, None]
            w[tuple(grid)] = src.weight
            dst.bias[idx_o] = src.bias

        put(wide.head, small.head, pos[1], None)
        put(wide.down1, small.down1, pos[2], pos[1])
        put(wide.down2, small.down2, pos[3], pos[2])
        put(wide.block_in, small.block_in, pos[3], None)
        put(wide.up2, small.up2, pos[2], pos[3], transposed=True)
        put(wide.up1, small.up1, pos[1], pos[2], transposed=True)
        put(wide.tail, small.tail, None, pos[1])
        for stage, (b,) in blocks.items():
            lv = level[stage]
            src, dst = getattr(small, stage)[0], getattr(wide, stage)[b]
            put(dst.c1, src.c1, inner[lv], pos[lv])
            put(dst.c2, src.c2, pos[lv], inner[lv])
            for other, blk in enumerate(getattr(wide, stage)):  # the dead blocks still compute something inside
                if other != b:
                    torch.nn.init.normal_(blk.c1.weight, std=0.2)
    return {f"level{k}": v for k, v in pos.items()} | blocks


def test_pruning_keeps_the_channels_and_blocks_that_carry_the_output() -> None:
    small, wide = _random(SMALL, 3), _random(WIDE, 4)
    where = _embed(small, wide)
    xs = _inputs()
    with torch.no_grad():
        assert all(torch.allclose(wide(x), small(x), atol=1e-5) for x in xs)  # the embedding is faithful
    keep = plan(wide, {k: SMALL[k] for k in ("ch", "enc_blocks", "dec_blocks")}, xs)
    for key, want in where.items():
        assert [int(i) for i in keep[key]] == want, key
    student = build_model(SMALL).eval()
    prune(wide, student, xs)
    with torch.no_grad():
        for x in xs:
            assert torch.allclose(student(x), small(x), atol=1e-5)


def test_pruning_to_the_same_design_is_the_identity() -> None:
    wide = _random(WIDE, 6)
    copy = build_model(WIDE).eval()
    prune(wide, copy, _inputs(1))
    for k, v in wide.state_dict().items():
        assert torch.equal(copy.state_dict()[k], v), k


def test_a_student_cannot_be_wider_than_its_teacher() -> None:
    with pytest.raises(ValueError, match="narrower and shallower"):
        prune(_random(SMALL, 7), build_model(WIDE), _inputs(1))


def test_teacher_targets_turn_with_their_crops(sample, tmp_path) -> None:
    pack = bcnn_pack.load(_tiny_pack(tmp_path / "pack.npz", sample))
    with_clean = bcnn_pack.PackSampler(pack, 3, seed=9, teacher=pack["clean"])
    plain = bcnn_pack.PackSampler(pack, 3, seed=9)
    for step in range(4):
        x, t, tt = with_clean.batch(step)
        x0, t0 = plain.batch(step)
        assert torch.equal(x, x0)
        assert torch.equal(t, t0)
        assert torch.equal(tt, t)


def test_distillation_loss_adds_the_log_mse_to_the_teacher() -> None:
    g = torch.Generator().manual_seed(1)
    out, target, teach = (torch.rand(2, 3, 16, 16, generator=g) for _ in range(3))
    cfg = {"loss": {"kind": "log_mse", "channel_weights": [4, 1, 1]}, "distill": {"weight": 0.5}}
    got = train.distillation_loss(out, target, teach, cfg)
    want = train.restoration_loss(out, target, cfg["loss"]) + 0.5 * train.restoration_loss(out, teach, cfg["loss"])
    assert torch.allclose(got, want)
    rgb = {"loss": {"kind": "log_mse", "space": "rgb"}, "distill": {"weight": 0.5}}  # the teacher term in RGB too
    want = train.restoration_loss(out, target, rgb["loss"]) + 0.5 * train.restoration_loss(out, teach, rgb["loss"])
    assert torch.allclose(train.distillation_loss(out, target, teach, rgb), want)


def test_teacher_restorations_are_the_onnx_models_outputs(sample, tmp_path) -> None:
    pack_path = _tiny_pack(tmp_path / "pack.npz", sample)
    onnx_path = export_model(_random(SMALL, 8), tmp_path / "t.onnx", sample_hw=(32, 32))
    out = tmp_path / "teacher.npz"
    teacher.main(["--pack", str(pack_path), "--model", str(onnx_path), "--out", str(out), "--threads", "1"])
    pack = bcnn_pack.load(pack_path)
    targets = teacher.load_targets(out, len(pack["clean"]))
    assert targets.shape == pack["decoded"].shape
    assert targets.dtype == np.uint8
    assert not np.array_equal(targets, pack["decoded"])  # the teacher changed something
    again = teacher.restore(onnx_path, pack["decoded"][1:2], pack["quality"][1:2], threads=1)
    assert np.array_equal(again[0], targets[1])  # crop by crop, as in batches
    with pytest.raises(SystemExit, match="rebuild it"):
        teacher.load_targets(out, len(pack["clean"]) + 1)


def test_pruned_distilled_run_starts_near_its_teacher_and_resumes_exactly(tmp_path, sample, monkeypatch) -> None:
    pack = _tiny_pack(tmp_path / "pack.npz", sample)
    small, wide = _random(SMALL, 10), _random(WIDE, 11)
    _embed(small, wide)  # a teacher whose dead half the cut must find
    with torch.no_grad():  # all but dead: the ONNX exporter merges identical (all-zero) initialisers
        for p in wide.parameters():
            p.add_(1e-7 * torch.randn_like(p))
    onnx_path = export_model(wide, tmp_path / "wide.onnx", sample_hw=(32, 32))
    targets = tmp_path / "teacher.npz"
    teacher.main(["--pack", str(pack), "--model", str(onnx_path), "--out", str(targets), "--threads", "1"])
    cfg = pack_run_config(tmp_path, pack) | {
        "model": SMALL,
        "schedule": {"total_iters": 4, "warmup_iters": 1, "min_lr": 1e-06}, "val_every": 2,
        "loss": {"kind": "log_mse", "channel_weights": [4, 1, 1]},
        "prune": {"onnx": str(onnx_path), "model": WIDE, "batches": 2},
        "distill": {"targets": str(targets), "weight": 1.0},
    }
    events = train_whole_and_split(tmp_path, monkeypatch, cfg)
    start = next(e for e in events if e.get("event") == "start")
    assert start["pruned"]["level1"] == SMALL["ch"][0]
    assert start["pruned"]["enc1"] == [1]
    assert start["pruned"]["start_psnr_vs_teacher_db"] > 60  # the cut is the teacher's live half
    resumed = [e for e in events if e.get("event") == "start"][1]
    assert resumed["pruned"] is None  # a resumed run takes its weights from last.pt, not from a new cut


def test_bench_speed_counts_multiply_adds_and_times_designs_beside_shipped_files(tmp_path) -> None:
    from export.studies import bench_speed

    # dblk-6's design, counted by hand layer by layer in export/NOTES.md ("distilling dblk-6")
    assert bench_speed.macs_per_pixel(bench_speed.parse_design("64,128,192:1,2,4:1,1")) == 145_600
    onnx_path = export_model(_random(SMALL, 12), tmp_path / "s.onnx", sample_hw=(32, 32))
    rows = bench_speed.compare(["4,6,8:1,1,1:1,1"], [onnx_path], "float", threads=1, rounds=1, hw=(64, 96))
    assert [r["model"] for r in rows] == ["4,6,8:1,1,1:1,1", str(onnx_path)]
    assert rows[0]["macs_per_pixel"] == bench_speed.macs_per_pixel(SMALL)
    assert rows[1]["macs_per_pixel"] is None
    assert all(r["median_s"] > 0 for r in rows)


def test_two_packs_train_as_one_with_their_teachers_and_the_first_packs_validation(tmp_path, sample, monkeypatch) -> None:
    first, second = _tiny_pack(tmp_path / "a.npz", sample), _tiny_pack(tmp_path / "b.npz", sample.rotate(90))
    onnx_path = export_model(_random(SMALL, 12), tmp_path / "t.onnx", sample_hw=(32, 32))
    for name, pack in (("ta.npz", first), ("tb.npz", second)):
        teacher.main(["--pack", str(pack), "--model", str(onnx_path), "--out", str(tmp_path / name), "--threads", "1"])
    packs = [bcnn_pack.load(first), bcnn_pack.load(second)]
    merged = bcnn_pack.merge_packs(packs)
    assert len(merged["clean"]) == 8
    assert np.array_equal(merged["decoded"][4:], packs[1]["decoded"])
    assert merged["val_clean"] is packs[0]["val_clean"]
    cfg = pack_run_config(tmp_path, first) | {
        "model": SMALL,
        "schedule": {"total_iters": 4, "warmup_iters": 1, "min_lr": 1e-06}, "val_every": 2,
        "distill": {"targets": [str(tmp_path / "ta.npz"), str(tmp_path / "tb.npz")], "weight": 1.0},
    }
    cfg["data"]["pack"] = [str(first), str(second)]
    events = train_whole_and_split(tmp_path, monkeypatch, cfg)
    assert any("val" in e for e in events)
    cfg["distill"]["targets"] = [str(tmp_path / "ta.npz")]  # one teacher file too few
    (tmp_path / "x").mkdir()
    with pytest.raises(SystemExit, match="one per pack"):
        train_whole_and_split(tmp_path / "x", monkeypatch, cfg)
