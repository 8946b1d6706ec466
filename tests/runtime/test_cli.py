"""The ``blockcnn`` command line, end to end.

Every subcommand runs at least once as users run it, in a subprocess through
``python -m pillow_blockcnn`` or the installed ``blockcnn`` script; the rest
goes through click's CliRunner in this process (fast, and the only way to use
a monkeypatched stand-in deblocking model). Images are small crops of the
bundled sample, so the whole file stays well under a minute on busy cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import pillow_blockcnn
from pillow_blockcnn import runtime
from pillow_blockcnn.cli import compare, conversions, inputs, plan
from pillow_blockcnn.cli.commands import cli
from pillow_blockcnn.metrics import psnr
from tests.conftest import save_bytes
from tests.helpers import register_models, stand_in

SCRIPT = Path(sys.executable).parent / ("blockcnn.exe" if os.name == "nt" else "blockcnn")


def run(*args: str, cwd: Path, script: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the command line in a fresh process, as a user would."""
    command = [str(SCRIPT), *args] if script else [sys.executable, "-m", "pillow_blockcnn", *args]
    return subprocess.run(command, check=False, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tree(tmp_path: Path, sample: Image.Image) -> Path:
    """in/a.png, in/sub/b.jpg, a corrupt in/broken.png and a notes.txt that is not an image."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    sample.crop((0, 0, 64, 48)).save(folder / "a.png")
    sample.crop((100, 100, 180, 150)).save(folder / "sub" / "b.jpg", quality=30)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG")
    (folder / "notes.txt").write_text("not an image")
    return folder


def bcnn_of(path: Path, **params: object) -> bytes:
    with Image.open(path) as im:
        return save_bytes(im, **params)


# ---------------------------------------------------------------------------
# subprocess: every subcommand as users run it


def test_encode_folder_converts_all_but_the_corrupt_file_and_reports_it(tree: Path) -> None:
    out = tree.parent / "out"
    proc = run("encode", str(tree), "-r", "-o", str(out), "-q", "40", "-j", "2", cwd=tree.parent, script=True)
    assert proc.returncode == 1, proc.stderr
    assert (out / "a.bcnn").read_bytes() == bcnn_of(tree / "a.png", quality=40)
    assert (out / "sub" / "b.bcnn").read_bytes() == bcnn_of(tree / "sub" / "b.jpg", quality=40)
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a.bcnn", "b.bcnn"]
    assert f"failed: {tree / 'broken.png'}: " in proc.stderr
    assert "notes.txt" not in proc.stderr  # folders pick image files only
    assert "2 of 3 files converted" in proc.stderr
    assert "1 failed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_nothing_is_overwritten_without_force(tree: Path) -> None:
    target = tree / "a.bcnn"
    target.write_bytes(b"keep me")
    proc = run("encode", str(tree / "a.png"), "-q", "80", cwd=tree)
    assert proc.returncode == 1
    assert "exists (pass --force to overwrite)" in proc.stderr
    assert target.read_bytes() == b"keep me"
    proc = run("encode", str(tree / "a.png"), "-q", "80", "--force", cwd=tree)
    assert proc.returncode == 0, proc.stderr
    assert target.read_bytes() == bcnn_of(tree / "a.png", quality=80)
    assert [p.name for p in tree.iterdir() if p.name.endswith(".part")] == []


def test_decode_folder_to_png(tree: Path) -> None:
    bcnn = tree.parent / "bcnn"
    (bcnn / "sub").mkdir(parents=True)
    (bcnn / "a.bcnn").write_bytes(bcnn_of(tree / "a.png", quality=50))
    (bcnn / "sub" / "b.bcnn").write_bytes(bcnn_of(tree / "sub" / "b.jpg", quality=50))
    proc = run("decode", str(bcnn), "-r", "-o", str(tree.parent / "png"), cwd=tree.parent)
    assert proc.returncode == 0, proc.stderr
    for name in ("a", "sub/b"):
        with Image.open(tree.parent / "png" / f"{name}.png") as png, Image.open(bcnn / f"{name}.bcnn") as im:
            assert png.format == "PNG"
            np.testing.assert_array_equal(np.asarray(png), np.asarray(im))


def test_info_json_describes_header_chunks_and_metadata(tmp_path: Path, sample: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x010F] = "pillow-blockcnn tests"  # Make
    path = tmp_path / "meta.bcnn"
    sample.crop((0, 0, 160, 96)).save(
        path, quality=35, subsampling="4:2:2", tables="mse", icc_profile=b"icc" * 10, exif=exif
    )
    proc = run("info", str(path), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    size = path.stat().st_size
    assert info["file"] == str(path)
    assert info["bytes"] == size
    assert (info["width"], info["height"], info["mode"]) == (160, 96, "RGB")
    assert (info["quality"], info["subsampling"], info["predicted"], info["deblock"]) == (35, "4:2:2", True, True)
    assert info["tables"] == "mse"
    assert info["bpp"] == pytest.approx(8 * size / (160 * 96))
    assert info["models"] == [  # the packaged defaults for these tables, prediction first
        {"id": runtime.default_model("predict", "mse").id, "role": "predict", "installed": True},
        {"id": runtime.default_model("deblock", "mse").id, "role": "deblock", "installed": True},
    ]
    assert info["metadata"] == {"exif": len(exif.tobytes()), "icc_profile": 30}
    assert [c["type"] for c in info["chunks"]] == ["HEAD", "exif", "iccp", "PLAN", "PLAN", "PLAN", "END "]
    assert 8 + sum(12 + c["length"] for c in info["chunks"]) == size
    assert info["trailing_bytes"] == 0


def test_compare_writes_labelled_panels_of_the_documented_size(tmp_path: Path, sample: Image.Image) -> None:
    sample.crop((200, 100, 296, 164)).save(tmp_path / "orig.png")
    proc = run("compare", "orig.png", "-q", "30", "--crop", "8,8,48,32", "--scale", "2", "-o", "cmp.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "JPEG q" in proc.stdout
    assert ".bcnn q30" in proc.stdout
    with Image.open(tmp_path / "cmp.png") as im:
        assert im.format == "PNG"
        assert im.size == (3 * 48 * 2 + 4 * compare.GAP, compare.LABEL + 32 * 2 + 2 * compare.GAP) == (320, 112)


def test_bench_measures_a_folder(tmp_path: Path, sample: Image.Image) -> None:
    (tmp_path / "imgs").mkdir()
    sample.crop((0, 0, 64, 64)).save(tmp_path / "imgs" / "one.png")
    sample.crop((64, 64, 128, 112)).save(tmp_path / "imgs" / "two.png")
    proc = run(
        "bench", "imgs", "-q", "30", "--codec", "bcnn-plain", "--codec", "jpeg", "--json", "r.json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "| bcnn-plain | 30 |" in proc.stdout
    assert "| jpeg | 30 |" in proc.stdout
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["images"] == ["one.png", "two.png"]
    assert result["failed"] == {}
    plain, jpeg = result["summary"]
    assert (plain["codec"], jpeg["codec"], plain["images"]) == ("bcnn-plain", "jpeg", 2)
    # JPEG's tables and quantiser steps, coded with arithmetic coding and rate-distortion choices: about the
    # same PSNR in far fewer bytes.
    assert plain["psnr_rgb"] > jpeg["psnr_rgb"] - 1.0
    assert plain["bpp"] < 0.85 * jpeg["bpp"]


def test_demo_runs_from_the_script(tmp_path: Path) -> None:
    proc = run("demo", "--out", "demo", "-q", "20", cwd=tmp_path, script=True)
    assert proc.returncode == 0, proc.stderr
    assert "PSNR-RGB" in proc.stdout
    assert ".bcnn" in proc.stdout
    assert "JPEG" in proc.stdout
    assert (tmp_path / "demo" / "parrots.bcnn").stat().st_size > 0
    with Image.open(tmp_path / "demo" / "parrots.decoded.png") as im:
        assert im.size == (512, 384)


def test_deblock_with_the_packaged_model_improves_a_jpeg(tmp_path: Path, sample: Image.Image) -> None:
    original = sample.crop((128, 64, 256, 160))
    original.save(tmp_path / "photo.jpg", quality=15)
    proc = run("deblock", "photo.jpg", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "photo.png") as restored, Image.open(tmp_path / "photo.jpg") as jpeg:
        assert restored.size == original.size
        reference = np.asarray(original)
        assert psnr(np.asarray(restored), reference) > psnr(np.asarray(jpeg), reference) + 0.3


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    proc = run("encode", "missing.png", cwd=tmp_path, script=True)
    assert proc.returncode == 2
    assert "no such file or folder: 'missing.png'" in proc.stderr


def test_a_plain_install_has_everything_the_console_script_needs(tmp_path: Path) -> None:
    # The blockcnn script is installed by every install, so what it imports must be a plain dependency.
    from importlib.metadata import requires

    plain = {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in requires("pillow-blockcnn") or [] if "extra ==" not in r}
    assert {"click", "tqdm"} <= plain
    proc = run("--help", cwd=tmp_path, script=True)
    assert proc.returncode == 0, proc.stderr
    assert "encode" in proc.stdout


# ---------------------------------------------------------------------------
# in process (CliRunner): options and edge cases


def invoke(*args: str, cwd: Path) -> object:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def test_help_has_examples() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output
    for command in ("encode", "decode", "deblock", "info", "compare", "bench"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0, command
        assert "Examples:" in result.output, command


def test_bad_options_are_usage_errors(tree: Path) -> None:
    assert invoke("encode", "in/a.png", "-q", "0", cwd=tree.parent).exit_code == 2
    assert invoke("decode", "in", "--format", "nope", cwd=tree.parent).exit_code == 2
    result = invoke("encode", "in/a.png", "-o", "out.xyz", "--subsampling", "4:1:1", cwd=tree.parent)
    assert result.exit_code == 2
    result = invoke("encode", "in/*.tif", cwd=tree.parent)
    assert result.exit_code == 2
    assert "matches no" in result.output
    result = invoke("deblock", "in/missing.jpg", cwd=tree.parent)  # usage errors come before the model check
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_clashing_outputs_are_refused_before_any_work(tree: Path) -> None:
    Image.open(tree / "a.png").save(tree / "a.jpg")
    result = invoke("encode", "in/a.png", "in/a.jpg", "-o", "out", cwd=tree.parent)
    assert result.exit_code == 2
    assert "would both write" in result.output
    assert not (tree.parent / "out").exists()


def test_glob_and_single_output_file_and_format_from_extension(tree: Path) -> None:
    result = invoke("encode", "in/**/*.jpg", "-o", "globbed", cwd=tree.parent)
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tree.parent / "globbed").iterdir()] == ["b.bcnn"]
    result = invoke("decode", "globbed/b.bcnn", "-o", "b.tif", cwd=tree.parent)
    assert result.exit_code == 0, result.output
    with Image.open(tree.parent / "b.tif") as im:
        assert im.format == "TIFF"
        assert im.size == (80, 50)


def test_info_text_and_damaged_file(tree: Path) -> None:
    good = tree / "good.bcnn"
    good.write_bytes(bcnn_of(tree / "a.png", quality=60))
    damaged = bytearray(good.read_bytes())
    damaged[-30] ^= 0xFF  # inside the last PLAN payload (END is the last 12 bytes)
    (tree / "damaged.bcnn").write_bytes(bytes(damaged))
    result = invoke("info", "good.bcnn", "damaged.bcnn", cwd=tree)
    assert result.exit_code == 1
    assert "64x48 RGB" in result.stdout
    assert "quality 60" in result.stdout
    assert "PLAN" in result.stdout
    assert "tables balanced" in result.stdout
    assert "damaged.bcnn: PLAN chunk fails its CRC-32 check" in result.stderr


def test_encode_applies_exif_orientation_unless_metadata_is_kept(tmp_path: Path, sample: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    sample.crop((0, 0, 40, 24)).save(tmp_path / "turned.jpg", exif=exif, quality=90)
    assert invoke("encode", "turned.jpg", cwd=tmp_path).exit_code == 0
    with Image.open(tmp_path / "turned.bcnn") as im:
        assert im.size == (24, 40)
        assert "exif" not in im.info
    result = invoke("encode", "turned.jpg", "--keep-metadata", "-o", "kept.bcnn", cwd=tmp_path)
    assert result.exit_code == 0
    with Image.open(tmp_path / "kept.bcnn") as im:
        assert im.size == (40, 24)
        assert im.getexif()[0x0112] == 6


def test_encode_tables_option(tmp_path: Path, sample: Image.Image) -> None:
    sample.crop((0, 0, 64, 48)).save(tmp_path / "a.png")
    assert invoke("encode", "a.png", "--tables", "mse", cwd=tmp_path).exit_code == 0
    with Image.open(tmp_path / "a.bcnn") as im:
        assert im.info["tables"] == "mse"
    assert invoke("encode", "a.png", "--tables", "ijg", "--force", cwd=tmp_path).exit_code == 2


def test_closest_jpeg_is_the_nearest_size(sample: Image.Image) -> None:
    image = sample.crop((0, 0, 96, 64))
    target = len(save_bytes(image, quality=30))
    quality, data = compare.closest_jpeg(image, target)
    sizes = {q: len(compare._jpeg_bytes(image, q, 2)) for q in range(1, 101)}
    assert len(data) == sizes[quality]
    assert abs(sizes[quality] - target) == min(abs(s - target) for s in sizes.values())


def test_plan_names_outputs_without_replacing_inputs(tree: Path) -> None:
    jpeg = tree / "sub" / "b.jpg"
    options = conversions.DeblockOptions(format="JPEG")
    (job,) = plan.plan_jobs(inputs.collect_inputs([jpeg], inputs.JPEG_EXTENSIONS), options)
    assert job.target == tree / "sub" / "b.deblocked.jpg"
    (job,) = plan.plan_jobs(inputs.collect_inputs([jpeg], inputs.JPEG_EXTENSIONS), conversions.DeblockOptions())
    assert job.target == tree / "sub" / "b.png"
    assert job.options.format == "PNG"


# ---------------------------------------------------------------------------
# deblock with a stand-in model (tests/runtime/models/test-deblock.onnx, registered for the test): in process

MODEL_ID = "test-deblock"


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch):
    entries = register_models(monkeypatch, {MODEL_ID: ("deblock", stand_in("test-deblock"))})
    yield entries
    runtime.clear_sessions()


def test_deblock_command_with_a_stand_in_model(registry, tree: Path) -> None:
    jpeg = tree / "sub" / "b.jpg"
    result = invoke("deblock", str(jpeg), cwd=tree)
    assert result.exit_code == 0, result.output
    with Image.open(jpeg) as im:
        expected = np.asarray(pillow_blockcnn.deblock(im))  # quality read from the tables, as the command does
        assert not np.array_equal(expected, np.asarray(im))
    with Image.open(tree / "sub" / "b.png") as png:
        np.testing.assert_array_equal(np.asarray(png), expected)

    result = invoke("deblock", str(jpeg), "--format", "jpeg", "--quality", "10", cwd=tree)
    assert result.exit_code == 0, result.output
    with Image.open(tree / "sub" / "b.deblocked.jpg") as out, Image.open(jpeg) as im:
        assert out.format == "JPEG"
        assert out.size == im.size
        assert psnr(np.asarray(out), np.asarray(pillow_blockcnn.deblock(im, quality=10))) > 35

    result = invoke("deblock", str(jpeg), "--model", "no-such-model", cwd=tree)
    assert result.exit_code == 2
    assert "installed: test-deblock" in result.output

    # A PNG carries no quantisation tables: its JPEG quality must be given.
    result = invoke("deblock", "a.png", "-o", "a.out.png", cwd=tree)
    assert result.exit_code == 1
    assert "pass --quality" in result.stderr
    assert invoke("deblock", "a.png", "-o", "a.out.png", "--quality", "30", cwd=tree).exit_code == 0
