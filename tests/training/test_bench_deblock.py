"""The deblocking speed benchmark measures every model it is given through deblock() and leaves the decoder
options as it found them."""

from __future__ import annotations

from export.evaluation import bench_deblock
from pillow_blockcnn import options, runtime


def test_bench_times_each_model_and_restores_the_options() -> None:
    model = runtime.default_model("deblock").id
    before = options.current()
    res = bench_deblock.bench([model], threads=1, reps=2)
    assert options.current() == before
    r = res[model]
    assert 0 < r["best_s"] <= r["median_s"]
    assert r["mp_per_s"] == 768 * 512 / 1e6 / r["median_s"]
    assert r["file_mb"] > 0


def test_reference_image_is_a_768x512_jpeg() -> None:
    im = bench_deblock.reference_jpeg()
    assert im.format == "JPEG"
    assert im.size == (768, 512)
    assert im.mode == "RGB"
    assert im.quantization
