"""Small, committed training snapshots, so a run survives losing the machine that trained it.

``runs/`` (full checkpoints with optimiser state, ~50 MB) is not committed. At the
end of a working session the current weights go to
``export/checkpoints/<run>.pt`` in float16 (a few MB) with the step they were
taken at; a trainer that finds no ``runs/<run>/last.pt`` starts from that
snapshot instead of from scratch, at the same step of the same schedule (with a
fresh optimiser, whose moments rebuild within a few hundred steps).

    python -m export.training.checkpoints runs/deblock_v1 runs/predict_v1
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

SNAPSHOTS = Path(__file__).resolve().parents[1] / "checkpoints"  # export/checkpoints/


def snapshot_path(name: str) -> Path:
    return SNAPSHOTS / f"{name}.pt"


def write_snapshot(run_dir: Path) -> Path:
    """``run_dir/last.pt`` -> ``export/checkpoints/<run name>.pt`` (float16 weights, step, best score)."""
    ck = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)
    weights = {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()}
    out = snapshot_path(run_dir.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": weights, "step": ck["step"], "best": ck["best"], "wall_s": ck.get("wall_s", 0.0)}, out)
    return out


def history_command(path: str) -> str:
    """The git command that brings back ``path`` (relative to the repository) as it was just before the
    commit that removed it."""
    return f"git checkout $(git rev-list -n 1 HEAD -- {path})^ -- {path}"


def restore_hint(name: str) -> str:
    """What to tell a user whose run needs ``name``'s snapshot when the working tree lacks it: snapshots of
    finished runs are kept in git history only (``export/checkpoints/README.md``), and this restores one."""
    path = f"export/checkpoints/{name}.pt"
    return (
        f"{path} is not in the working tree (snapshots of finished runs are kept in git history only, "
        f"export/checkpoints/README.md); restore it with: {history_command(path)}"
    )


def require_model_file(path: str, key: str) -> str:
    """``path`` when it exists; otherwise stop with the command that restores it. A config names shipped ONNX
    files to cut a student from or to take int8 ranges from, and models retired before release (the manifest's
    ``retired`` list) are kept in git history only, so a finished run's config may name one that is gone."""
    if not Path(path).exists():
        msg = (
            f"config {key!r}: {path} is not in the working tree (models retired before release are kept in git "
            f"history only, pillow_blockcnn/models/manifest.json 'retired'); restore it with: {history_command(path)}"
        )
        raise SystemExit(msg)
    return path


def load_snapshot(name: str, model: torch.nn.Module) -> dict[str, Any] | None:
    """Load ``name``'s snapshot into ``model`` (float32); returns its step/best/wall_s, or None if there is none."""
    path = snapshot_path(name)
    if not path.exists():
        return None
    snap = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in snap["model"].items()})
    return {"step": snap["step"], "best": snap["best"], "wall_s": snap.get("wall_s", 0.0)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding last.pt")
    for run in parser.parse_args(argv).runs:
        out = write_snapshot(run)
        print(f"{run} -> {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
