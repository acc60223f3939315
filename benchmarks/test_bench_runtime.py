"""The runtime at phone resolution, stage by stage, and the alpha upsamplers on the real images.

Run with ``make bench`` (``--benchmark-enable``); in normal runs the project's ``--benchmark-disable``
makes each benchmark execute once as a smoke test. No wall-clock time is asserted.

The photo is a synthetic 12-megapixel (4000×3000) portrait: textured background with small highlights,
an elliptical subject whose rim is a band of hair-like strands. The model is the ``mobile`` config with
random weights (its speed does not depend on the weights) on the PyTorch backend at long side 512, the
phone export's size. The stages after the model use the synthetic ground-truth alpha, so their cost
reflects a realistic band of partly transparent pixels rather than a random network's output.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from adamatting.checkpoint import save_checkpoint
from adamatting.config import get_config
from adamatting.model import build_model
from benchmarks.portrait import H, W, synthetic_portrait, time_bokeh_pipeline
from benchmarks.upsampling import compare_upsamplers, downsample, format_table
from calib_data.io import read_alpha, read_rgb
from calib_data.splits import alphamatting_dev_dir
from calib_data.trimaps import trimap_from_mask
from runtime.bokeh import composite
from runtime.foreground import estimate_foreground
from runtime.lens_blur import DEFAULT_STRENGTH, lens_blur
from runtime.matter import Matter
from runtime.upsample import upsample_alpha

# 12-megapixel stages take 0.02-1 s a call: five rounds after one warm-up keep a single slow round of a
# shared machine (seen: +80 % on one of three) from moving the median that --benchmark-compare-fail checks.
ROUNDS = {"rounds": 5, "iterations": 1, "warmup_rounds": 1}


@pytest.fixture(scope="module")
def portrait():
    """(photo uint8 (H, W, 3), alpha float32 (H, W)) — about 4 % of the pixels partly transparent."""
    return synthetic_portrait(H, W)


@pytest.fixture(scope="module")
def matter(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bench") / "mobile-random.pt"
    save_checkpoint(path, build_model(get_config("mobile")).eval())
    return Matter.from_artifact(path)


@pytest.fixture(scope="module")
def model_inputs(matter, portrait):
    photo, alpha = portrait
    photo01 = photo.astype(np.float32) / 255.0
    box = matter.letterbox((H, W))
    small = box.resize_image(photo01)
    trimap = trimap_from_mask(alpha > 0.5, 16)
    return photo01, small, box, box.model_inputs(small, box.resize_trimap(trimap))


def test_stage_model(benchmark, matter, model_inputs):
    *_, inputs = model_inputs
    alpha, prob = benchmark.pedantic(matter.backend.run, inputs, **ROUNDS)
    assert alpha.shape == (1, 1, *inputs[0].shape[-2:]) == (1, 1, *matter.input_size)


def test_stage_trimap_from_mask(benchmark, portrait):
    mask = (portrait[1] > 0.5).astype(np.uint8) * 255
    trimap = benchmark.pedantic(trimap_from_mask, (mask, 16), **ROUNDS)
    assert trimap.shape == (H, W)


@pytest.mark.parametrize("method", ["guided", "bilinear"])
def test_stage_upsample(benchmark, model_inputs, portrait, method):
    photo01, small, _, _ = model_inputs
    alpha_small = cv2.resize(portrait[1], small.shape[1::-1], interpolation=cv2.INTER_AREA)
    alpha = benchmark.pedantic(upsample_alpha, (alpha_small, photo01, small), {"method": method}, **ROUNDS)
    assert alpha.shape == (H, W)


def test_stage_foreground(benchmark, portrait):
    mask, fg, _ = benchmark.pedantic(estimate_foreground, portrait, **ROUNDS)
    benchmark.extra_info["partly_transparent_fraction"] = float(mask.mean())
    assert fg.shape == (mask.sum(), 3)


def test_stage_blur(benchmark, portrait):
    photo, alpha = portrait
    mask, _, bg = estimate_foreground(photo, alpha)
    out = benchmark.pedantic(lens_blur, (photo, alpha, DEFAULT_STRENGTH), {"background": (mask, bg)}, **ROUNDS)
    assert out.shape == photo.shape


def test_stage_composite(benchmark, portrait):
    photo, alpha = portrait
    mask, fg, bg = estimate_foreground(photo, alpha)
    background = lens_blur(photo, alpha, DEFAULT_STRENGTH, background=(mask, bg))
    out = benchmark.pedantic(composite, (photo, alpha, background, mask, fg), **ROUNDS)
    assert np.array_equal(out[alpha >= 1], photo[alpha >= 1])


def test_bokeh_end_to_end(benchmark, matter, portrait):
    """Matter.predict (mask → trimap, model, guided upsampling), then render_bokeh; seconds per stage in
    extra_info. The renderer gets the synthetic alpha: a random network's alpha is partly transparent
    almost everywhere, which would time a worst case no trained model produces."""
    photo, alpha = portrait

    def run():
        return time_bokeh_pipeline(matter, photo, alpha)

    timings = benchmark.pedantic(run, **ROUNDS)
    benchmark.extra_info.update({f"{k}_s": v for k, v in timings.items()})
    print("\n" + "\n".join(f"  {k:<11} {v * 1000:8.1f} ms" for k, v in timings.items()))
    assert {"segment", "trimap", "model", "upsample", "foreground", "blur", "composite"} <= set(timings)


@pytest.mark.skipif(not alphamatting_dev_dir().is_dir(), reason=f"{alphamatting_dev_dir()} not found")
def test_upsamplers_on_real_images(benchmark):
    """Quality table (guided RGB must beat bilinear), and the guided upsampler's speed on one image."""
    rows = compare_upsamplers(factor=4)
    print("\n" + format_table(rows))
    by = {r["method"]: r for r in rows}
    assert by["guided rgb"]["SAD all"] < by["bilinear"]["SAD all"]
    assert by["guided rgb"]["Grad band"] < by["bilinear"]["Grad band"]
    benchmark.extra_info["table"] = rows
    photo = read_rgb(alphamatting_dev_dir() / "input" / "GT03.png")
    alpha = read_alpha(alphamatting_dev_dir() / "gt" / "GT03.png")
    benchmark(upsample_alpha, downsample(alpha, 4), photo, downsample(photo, 4))
