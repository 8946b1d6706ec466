"""Batch conversion on a local Ray instance writes the same bytes as the local path.

One small Ray instance (2 CPUs, no dashboard) is shared by the module; the
folder is a few tiny crops of the bundled sample plus a corrupt file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import ray
from click.testing import CliRunner
from PIL import Image

from pillow_blockcnn.cli import conversions, inputs, plan, ray_batch, run
from pillow_blockcnn.cli.commands import cli


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture
def folder(tmp_path: Path, sample: Image.Image) -> Path:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    sample.crop((0, 0, 64, 48)).save(root / "a.png")
    sample.crop((10, 20, 43, 41)).convert("RGBA").save(root / "alpha.png")
    sample.crop((100, 100, 180, 150)).convert("L").save(root / "sub" / "gray.jpg", quality=40)
    (root / "broken.png").write_bytes(b"not an image")
    return root


def _plan(folder: Path, out: Path, options: conversions.ConvertOptions) -> list[plan.Job]:
    sources = inputs.collect_inputs([folder], options.input_extensions(), recursive=True)
    return plan.plan_jobs(sources, options, out)


def _outputs(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_ray_actors_write_the_same_files_as_the_local_path(local_ray, folder: Path, tmp_path: Path) -> None:
    options = conversions.EncodeOptions(quality=40, subsampling="4:4:4")
    local = run.run_jobs(_plan(folder, tmp_path / "local", options))
    remote = ray_batch.run_jobs(_plan(folder, tmp_path / "ray", options), actors=2)

    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")
    assert sorted(_outputs(tmp_path / "ray")) == ["a.bcnn", "alpha.bcnn", os.path.join("sub", "gray.bcnn")]

    def errors(results: list[run.JobResult]) -> dict[str, str | None]:
        return {r.source.name: r.error for r in results}

    assert errors(remote) == errors(local)
    assert errors(remote)["broken.png"]
    assert sum(r.ok for r in remote) == 3


def test_blockcnn_encode_on_ray(local_ray, folder: Path, tmp_path: Path) -> None:
    (folder / "broken.png").unlink()
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["encode", str(folder), "-r", "-o", str(out), "-q", "50", "--ray"])
    assert result.exit_code == 0, result.output
    for name in ("a.png", "alpha.png", "sub/gray.jpg"):
        target = out / Path(name).with_suffix(".bcnn")
        assert target.read_bytes() == conversions.EncodeOptions(quality=50).convert((folder / name).read_bytes())
    # A second run is refused file by file on the driver, before anything reaches an actor.
    result = CliRunner().invoke(cli, ["encode", str(folder), "-r", "-o", str(out), "--backend", "ray"])
    assert result.exit_code == 1
    assert result.stderr.count("exists (pass --force to overwrite)") == 3
