"""calib_data: compositing, trimaps, file I/O, dataset readers, cached sets and the ``adamat calib build`` CLI.

Everything runs on tiny arrays and files made in ``tmp_path``; the real alphamatting.com folders of
../shared/data are read (never copied) when present, and their tests skip otherwise. Only one test
(foreground estimation) calls pymatting, whose numba functions compile on first use (up to a minute).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from adamat.cli import main as cli_main
from calib_data import sets, synth
from calib_data.compositing import composite, fit_background
from calib_data.io import (
    check_same_size,
    read_alpha,
    read_rgb,
    read_rgba,
    read_trimap,
    write_image,
)
from calib_data.readers import (
    AdobeDIMReader,
    AlphaMattingReader,
    RGBACutoutReader,
    estimate_alpha_closed_form,
    estimate_foreground,
    list_images,
)
from calib_data.sets import (
    CompositedSet,
    SetConfig,
    build_set,
    cache_key,
    set_statistics,
)
from calib_data.splits import (
    alphamatting_dev_dir,
    alphamatting_test_dir,
    shared_data_dir,
)
from calib_data.synth import ForegroundPool, Synthesizer
from calib_data.trimaps import (
    eroded_trimap,
    gt_trimap_classes,
    random_trimap,
    trimap_from_mask,
    trimap_to_classes,
    validation_trimap,
)
from common.errors import DataError
from common.image_files import check_trimap, to_uint8
from common.outputs import atomic_path

# ------------------------------------------------------------------------------------------ helpers

def rand_u8(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path: Path, arr: np.ndarray) -> Path:
    """Write an 8-bit gray / RGB / RGBA array with PIL (RGB order: independent of OpenCV's BGR)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def soft_disc(h: int, w: int, radius: float, soft: float = 4.0) -> np.ndarray:
    """A centred disc: α = 1 inside, 0 outside, a linear ramp ``soft`` px wide across the rim."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    d = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    return np.clip((radius - d) / soft + 0.5, 0.0, 1.0).astype(np.float32)


def vertical_edge(h: int = 40, w: int = 64) -> np.ndarray:
    """α = 1 in columns 0..31, 0.5 in column 32, 0 from column 33 on."""
    a = np.zeros((h, w), np.float32)
    a[:, :32], a[:, 32] = 1.0, 0.5
    return a


def assert_data_error(excinfo, path: Path, *words: str) -> None:
    """The DataError names the file and says what is wrong."""
    msg = str(excinfo.value)
    assert str(path) in msg, msg
    for word in words:
        assert word in msg, msg


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def tiny_config(**changes) -> SetConfig:
    base = dict(name="tiny", count=3, size=(64, 64), seed=7, trimap="random", bg_sources=("procedural",))
    return SetConfig(**{**base, **changes}).validated()


TINY_TOML = """\
name = "tiny"
count = 3
size = [64, 64]
seed = 7
trimap = "random"

[foregrounds]
procedural = 1.0

[backgrounds]
sources = ["procedural"]
"""


def real_folder(d: Path) -> Path:
    if not d.is_dir():
        pytest.skip(f"{d} not found: the real alphamatting.com images are not available here")
    return d


@pytest.fixture(scope="module")
def dev_dir() -> Path:
    return real_folder(alphamatting_dev_dir())


@pytest.fixture(scope="module")
def test_dir() -> Path:
    return real_folder(alphamatting_test_dir())


# -------------------------------------------------------------------------------------- compositing

def test_composite_is_alpha_blend_in_float32_exactly():
    rng = np.random.default_rng(0)
    fg, bg = rng.random((8, 9, 3)), rng.random((8, 9, 3))          # float64 inputs
    alpha = rng.random((8, 9))
    alpha[0], alpha[1] = 0.0, 1.0
    out = composite(fg, bg, alpha)
    assert out.dtype == np.float32 and out.shape == (8, 9, 3)
    f32 = lambda x: x.astype(np.float32)
    a = f32(alpha)[..., None]
    assert np.array_equal(out, a * f32(fg) + (np.float32(1) - a) * f32(bg))   # float32 arithmetic, nothing else
    assert np.array_equal(out[0], f32(bg[0])) and np.array_equal(out[1], f32(fg[1]))
    # a concrete pixel: 0.25·0.8 + 0.75·0.2 = 0.35
    one = composite(np.full((1, 1, 3), 0.8), np.full((1, 1, 3), 0.2), np.full((1, 1), 0.25))
    assert np.allclose(one, 0.35, atol=1e-7)


def test_composite_round_uint8_rounds_like_the_adobe_script():
    fg, bg = np.ones((1, 3, 3), np.float32), np.zeros((1, 3, 3), np.float32)
    alpha = np.array([[101.4, 101.6, 254.7]], np.float32) / 255
    out = composite(fg, bg, alpha, round_uint8=True)
    assert out.dtype == np.float32
    assert np.array_equal(np.rint(out[0, :, 0] * 255), [101, 102, 255])        # rounded, not truncated
    assert np.array_equal(out * 255, np.rint(out * 255))                       # exactly what a PNG would hold
    assert np.allclose(composite(fg, bg, alpha)[0, :, 0] * 255, [101.4, 101.6, 254.7], atol=1e-4)


@pytest.mark.parametrize("fg_shape, bg_shape, alpha_shape, words", [
    ((8, 8, 3), (8, 9, 3), (8, 8), ["foreground (8, 8, 3)", "background (8, 9, 3)"]),
    ((8, 8, 4), (8, 8, 4), (8, 8), ["(H, W, 3)"]),
    ((8, 8, 3), (8, 8, 3), (8, 7), ["alpha (8, 7)", "(8, 8)"]),
])
def test_composite_rejects_mismatched_shapes(fg_shape, bg_shape, alpha_shape, words):
    with pytest.raises(DataError) as e:
        composite(np.zeros(fg_shape, np.float32), np.zeros(bg_shape, np.float32), np.zeros(alpha_shape, np.float32))
    for w in words:
        assert w in str(e.value)


def test_fit_background_upscales_smaller_bg_by_max_ratio_bicubic_then_crops_top_left():
    bg = np.random.default_rng(1).random((40, 50, 3)).astype(np.float32)   # bh=40, bw=50
    out = fit_background(bg, 60, 100)                                        # ratios: w 2.0, h 1.5 → 2.0
    assert out.shape == (60, 100, 3)
    expected = np.clip(cv2.resize(bg, (100, 80), interpolation=cv2.INTER_CUBIC), 0, 1)[:60, :100]
    assert np.array_equal(out, expected)
    assert not np.allclose(out, cv2.resize(bg, (100, 80), interpolation=cv2.INTER_LINEAR)[:60, :100])


def test_fit_background_non_integer_ratio_and_one_side_smaller():
    bg = np.random.default_rng(2).random((30, 45, 3)).astype(np.float32)
    out = fit_background(bg, 64, 64)                    # ratio max(64/45, 64/30) = 2.133 → 96×64, crop 64×64
    assert out.shape == (64, 64, 3)
    assert np.array_equal(out, np.clip(cv2.resize(bg, (96, 64), interpolation=cv2.INTER_CUBIC), 0, 1)[:, :64])
    tall = np.random.default_rng(3).random((200, 50, 3)).astype(np.float32)   # taller than needed, too narrow
    out = fit_background(tall, 100, 100)                                      # ratio max(2, 0.5) = 2 → 100×400
    assert np.array_equal(out, np.clip(cv2.resize(tall, (100, 400), interpolation=cv2.INTER_CUBIC), 0, 1)[:100])


def test_fit_background_larger_bg_is_cropped_untouched():
    bg = rand_u8((90, 120, 3), 4)
    out = fit_background(bg, 60, 80)
    assert out.dtype == np.uint8 and np.array_equal(out, bg[:60, :80])     # DIM: top-left corner, no resize
    a, b = fit_background(bg, 60, 80, np.random.default_rng(5)), fit_background(bg, 60, 80, np.random.default_rng(5))
    assert np.array_equal(a, b)
    windows = [(y, x) for y in range(31) for x in range(41) if np.array_equal(a, bg[y:y + 60, x:x + 80])]
    assert len(windows) == 1                                                 # a true window of the photo


# ----------------------------------------------------------------------------------------- trimaps

@pytest.mark.parametrize("fg_k, bg_k", [(1, 1), (2, 9), (7, 7), (29, 3), (29, 29)])
def test_eroded_trimap_every_fractional_pixel_is_unknown(fg_k, bg_k):
    alpha = soft_disc(72, 80, 20, soft=6)
    noisy = alpha.copy()
    noisy[::7, ::5] = 0.3                         # isolated fractional pixels inside fg and bg too
    for a in (alpha, noisy):
        t = eroded_trimap(a, fg_k, bg_k)
        assert t.dtype == np.uint8 and set(np.unique(t)) <= {0, 128, 255}
        assert (t[(a > 0) & (a < 1)] == 128).all()
        assert (a[t == 255] == 1).all() and (a[t == 0] == 0).all()


def test_eroded_trimap_kernel_one_is_no_erosion():
    alpha = soft_disc(48, 48, 14)
    t = eroded_trimap(alpha, 1, 1)
    assert np.array_equal(t == 255, alpha == 1) and np.array_equal(t == 0, alpha == 0)
    assert np.array_equal(t == 128, (alpha > 0) & (alpha < 1))


@pytest.mark.parametrize("fg_k, bg_k, fg_loss, bg_loss", [(9, 1, 4, 0), (1, 5, 0, 2), (29, 15, 14, 7), (3, 3, 1, 1)])
def test_eroded_trimap_erodes_fg_and_bg_independently_by_kernel_radius(fg_k, bg_k, fg_loss, bg_loss):
    t = eroded_trimap(vertical_edge(), fg_k, bg_k)
    for row in (t[0], t[20], t[-1]):             # the same on every row: the image border does not erode
        assert np.nonzero(row == 255)[0].max() == 31 - fg_loss
        assert np.nonzero(row == 0)[0].min() == 33 + bg_loss
        assert row[0] == 255 and row[-1] == 0
        assert (row == 128).sum() == 1 + fg_loss + bg_loss


def test_eroded_trimap_accepts_8bit_matte():
    a8 = (vertical_edge() * 255).round().astype(np.uint8)      # 255 / 128 / 0
    assert np.array_equal(eroded_trimap(a8, 5, 5), eroded_trimap(vertical_edge(), 5, 5))


def test_random_trimap_draws_two_independent_kernels_of_1_to_29_px():
    alpha = vertical_edge(16, 96)
    alpha[:, :32] = 1.0
    widths = []
    for seed in range(40):
        t = random_trimap(alpha, np.random.default_rng(seed))
        draw = np.random.default_rng(seed)
        k_fg, k_bg = int(draw.integers(1, 30)), int(draw.integers(1, 30))
        assert np.array_equal(t, eroded_trimap(alpha, k_fg, k_bg))          # the DIM protocol, kernels from rng
        row = t[8]
        widths.append((31 - np.nonzero(row == 255)[0].max(), np.nonzero(row == 0)[0].min() - 33))
    fg_w, bg_w = np.array(widths).T
    assert fg_w.min() >= 0 and fg_w.max() <= 14 and bg_w.min() >= 0 and bg_w.max() <= 14
    assert len(set(fg_w)) > 5 and (fg_w != bg_w).any()                      # varied and independent
    assert np.array_equal(random_trimap(alpha, np.random.default_rng(0), (1, 1)), eroded_trimap(alpha, 1, 1))


def test_random_trimap_same_seed_same_trimap():
    alpha = soft_disc(64, 64, 18)
    a = random_trimap(alpha, np.random.default_rng(11))
    assert np.array_equal(a, random_trimap(alpha, np.random.default_rng(11)))
    assert any(not np.array_equal(a, random_trimap(alpha, np.random.default_rng(s))) for s in range(12, 16))


def test_validation_trimap_is_deterministic_15px_erosion():
    alpha = soft_disc(64, 64, 20)
    t = validation_trimap(alpha)
    assert np.array_equal(t, validation_trimap(alpha.copy()))
    assert np.array_equal(t, eroded_trimap(alpha, 15, 15))
    row = validation_trimap(vertical_edge())[5]
    assert (row == 128).sum() == 1 + 7 + 7


@pytest.mark.parametrize("band", [1, 4, 8])
def test_trimap_from_mask_band_is_band_px_each_side_of_the_edge(band):
    mask = np.zeros((40, 64), bool)
    mask[:, :32] = True                          # edge between columns 31 and 32
    t = trimap_from_mask(mask, band=band)
    assert set(np.unique(t)) == {0, 128, 255}
    for row in (t[0], t[20], t[-1]):
        unknown = np.nonzero(row == 128)[0]
        assert (unknown.min(), unknown.max()) == (32 - band, 31 + band)      # 2·band px, centred on the edge
        assert row[0] == 255 and row[-1] == 0


def test_trimap_from_mask_on_a_disc_and_mask_types():
    yy, xx = np.mgrid[:101, :101]
    d = np.hypot(yy - 50, xx - 50)
    mask = d < 30
    t = trimap_from_mask(mask, band=6)
    # a 6 px ring each side of the radius-30 edge (±1 px: the ellipse kernel is discrete)
    assert d[t == 128].min() >= 30 - 6 - 1 and d[t == 128].max() <= 30 + 6 + 1
    assert d[t == 255].max() <= 30 - 6 + 1 and d[t == 0].min() >= 30 + 6 - 1
    assert np.array_equal(trimap_from_mask(mask.astype(np.uint8) * 255, band=6), t)     # uint8 0/255
    assert np.array_equal(trimap_from_mask(mask.astype(np.float32) * 0.9, band=6), t)   # float above 0.5
    assert (trimap_from_mask(np.full((20, 20), 0.4, np.float32), band=3) == 0).all()    # below threshold: bg
    assert not (trimap_from_mask(mask, band=0) == 128).any()


def test_trimap_classes():
    assert trimap_to_classes(np.array([[0, 128, 255]], np.uint8)).tolist() == [[0, 1, 2]]
    alpha = np.array([[0.0, 0.01, 0.5, 0.99, 1.0]], np.float32)
    assert gt_trimap_classes(alpha).tolist() == [[0, 1, 1, 1, 2]]
    grown = gt_trimap_classes(vertical_edge(), dilate=5)[3]
    assert np.nonzero(grown == 1)[0].tolist() == [30, 31, 32, 33, 34]


# ---------------------------------------------------------------------------------------------- io

def test_read_rgba_channel_order_scaling_and_layouts(tmp_path):
    rgba = rand_u8((6, 7, 4), 1)
    rgb, alpha = read_rgba(save(tmp_path / "c.png", rgba))
    assert rgb.dtype == np.float32 and alpha.dtype == np.float32
    assert np.array_equal(rgb, rgba[..., :3] / np.float32(255))
    assert np.array_equal(alpha, rgba[..., 3] / np.float32(255))
    rgb, alpha = read_rgba(save(tmp_path / "rgb.png", rgba[..., :3]))
    assert alpha is None and np.array_equal(rgb, rgba[..., :3] / np.float32(255))
    gray, _ = read_rgba(save(tmp_path / "gray.png", rgba[..., 0]))
    assert gray.shape == (6, 7, 3) and np.array_equal(gray[..., 2], rgba[..., 0] / np.float32(255))
    deep = np.full((4, 4), 65535, np.uint16)
    deep[0, 0] = 32768
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    deep_rgb = read_rgb(tmp_path / "deep.png")                     # 16 bits: divided by 65535
    assert deep_rgb[0, 0, 0] == pytest.approx(32768 / 65535) and deep_rgb[1, 1, 1] == 1.0
    assert np.array_equal(read_rgb(tmp_path / "c.png"), read_rgba(tmp_path / "c.png")[0])


def test_read_alpha_three_equal_channels_or_error(tmp_path):
    a = rand_u8((5, 6), 2)
    assert np.array_equal(read_alpha(save(tmp_path / "a1.png", a)), a / np.float32(255))
    assert np.array_equal(read_alpha(save(tmp_path / "a3.png", np.dstack([a, a, a]))), a / np.float32(255))
    bad = np.dstack([a, a, 255 - a])
    with pytest.raises(DataError) as e:
        read_alpha(save(tmp_path / "bad.png", bad))
    assert_data_error(e, tmp_path / "bad.png", "different colour channels")


def test_read_alpha_and_rgb_refuse_floats_out_of_range_and_read_a_cutouts_transparency(tmp_path):
    """A float file in 0..255 or with NaN is refused naming it (it was clipped to [0, 1]: a wrong ground truth
    scored without a word), and a matte stored as an RGBA file's transparency over flat colour is that
    transparency (it was read from the black colour channels: all 0)."""
    a = rand_u8((5, 6), 3)
    cutout = np.dstack([np.zeros_like(a)] * 3 + [a])
    assert np.array_equal(read_alpha(save(tmp_path / "cutout.png", cutout)), a / np.float32(255))
    cases = [("alpha", read_alpha, a.astype(np.float32), "float alphas must lie in [0, 1]"),
             ("image", read_rgb, np.dstack([a] * 3).astype(np.float32), "float images must lie in [0, 1]"),
             ("nan", read_alpha, np.where(a > 128, np.nan, 0.5).astype(np.float32), "NaN or inf")]
    for name, read, values, words in cases:
        path = tmp_path / f"{name}.tiff"
        assert cv2.imwrite(str(path), values)
        with pytest.raises(DataError) as e:
            read(path)
        assert_data_error(e, path, words)


def test_read_trimap_validates_values_channels_and_depth(tmp_path):
    t = np.array([[0, 128, 255], [255, 128, 0]], np.uint8)
    assert np.array_equal(read_trimap(save(tmp_path / "t.png", t)), t)
    assert np.array_equal(read_trimap(save(tmp_path / "t3.png", np.dstack([t, t, t]))), t)
    with pytest.raises(DataError) as e:
        read_trimap(save(tmp_path / "odd.png", np.array([[0, 127, 200]], np.uint8)))
    assert_data_error(e, tmp_path / "odd.png", "values other than 0/128/255", "127, 200")
    with pytest.raises(DataError) as e:
        read_trimap(save(tmp_path / "colour.png", np.dstack([t, t, 255 - t])))
    assert_data_error(e, tmp_path / "colour.png", "different colour channels")
    cv2.imwrite(str(tmp_path / "deep.png"), t.astype(np.uint16) * 257)
    with pytest.raises(DataError) as e:
        read_trimap(tmp_path / "deep.png")
    assert_data_error(e, tmp_path / "deep.png", "8-bit")
    with pytest.raises(DataError, match="trimap must be uint8"):
        check_trimap(t.astype(np.int32))
    with pytest.raises(DataError, match="single-channel"):
        check_trimap(np.dstack([t, t]))


@pytest.mark.parametrize("value", [1, 64, 127, 129, 254])
def test_a_trimap_value_next_to_a_valid_one_is_found_anywhere(value):
    """The check is one look-up pass over the pixels: every other value is caught, in a strided view too."""
    t = np.tile(np.array([0, 128, 255], np.uint8), (300, 400))
    view = t[::3, ::2]
    assert check_trimap(view) is view
    t[-1, -1] = value
    with pytest.raises(DataError, match=f"values other than 0/128/255: {value}$"):
        check_trimap(t)


@pytest.mark.parametrize("reader", [read_rgb, read_alpha, read_trimap])
@pytest.mark.parametrize("damage, words", [
    ("missing", "file not found"),
    ("empty", "file is empty"),
    ("random bytes", "not a readable image"),
    ("truncated png", "not a readable image"),
])
def test_missing_empty_and_corrupt_files_are_data_errors_naming_the_file(tmp_path, reader, damage, words):
    path = tmp_path / "x.png"
    png = cv2.imencode(".png", np.full((32, 32), 128, np.uint8) + rand_u8((32, 32), 3) // 2)[1].tobytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "random bytes":
        path.write_bytes(rand_u8(500, 4).tobytes())
    elif damage == "truncated png":
        path.write_bytes(png[: len(png) // 2])
    with pytest.raises(DataError) as e:
        reader(path)
    assert_data_error(e, path, words)
    assert e.value.path == path


def test_check_same_size_names_the_odd_file():
    a, b = np.zeros((10, 12)), np.zeros((10, 13))
    check_same_size({"image": (a, Path("i.png")), "alpha": (a, Path("a.png"))})
    with pytest.raises(DataError) as e:
        check_same_size({"image": (a, Path("i.png")), "trimap": (b, Path("t.png"))})
    assert str(e.value) == "t.png: trimap is 13x10 but image (i.png) is 12x10"


def test_to_uint8_rounds_and_clips():
    x = np.array([-0.1, 0.0, 0.2, 100.4 / 255, 100.6 / 255, 1.0, 1.3])
    assert to_uint8(x).tolist() == [0, 0, 51, 100, 101, 255, 255]


def test_atomic_path_renames_on_success_only(tmp_path):
    final = tmp_path / "sub" / "out.bin"
    with atomic_path(final) as tmp:
        assert tmp.parent == final.parent and tmp != final
        tmp.write_bytes(b"new")
        assert not final.exists()                  # nothing under the final name until the block ends
    assert final.read_bytes() == b"new" and listing(final.parent) == ["out.bin"]
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with atomic_path(final) as tmp:
                tmp.write_bytes(b"half")
                raise exc
        assert final.read_bytes() == b"new" and listing(final.parent) == ["out.bin"]   # old file kept, no temp


def test_a_failed_folder_build_leaves_no_folder_it_made(tmp_path):
    """atomic_folder makes its parents through check_folder, so a command that fails removes them again."""
    from common.outputs import atomic_folder, folders_made, remove_made_folders

    mark = folders_made()
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "cache" / "phone" / "set") as tmp:
            (tmp / "half.npy").write_bytes(b"x")
            raise RuntimeError("the build failed")
    remove_made_folders(mark)
    assert listing(tmp_path) == []


def test_atomic_path_names_the_output_when_it_cannot_be_written(tmp_path):
    (tmp_path / "dir.bin").mkdir()
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(DataError, match="dir.bin: is a directory"):
        with atomic_path(tmp_path / "dir.bin"):
            raise AssertionError("not reached: checked before the block")
    with pytest.raises(DataError, match="cannot create the folder"):
        with atomic_path(tmp_path / "file" / "out.bin"):
            raise AssertionError("not reached")
    final = tmp_path / "out.bin"
    with pytest.raises(DataError, match=r"out.bin: cannot write here: No space left on device"):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(28, "No space left on device", str(tmp))   # the error names the temporary file
    assert not final.exists() and listing(tmp_path) == ["dir.bin", "file"]


def test_write_image_round_trips_and_creates_folders(tmp_path):
    rgb = np.random.default_rng(5).random((6, 8, 3)).astype(np.float32)
    p = write_image(tmp_path / "a" / "b" / "rgb.png", rgb)
    assert p == tmp_path / "a" / "b" / "rgb.png"
    assert np.array_equal(read_rgb(p), to_uint8(rgb) / np.float32(255))
    rgba = rand_u8((6, 8, 4), 6)
    rgb_back, alpha_back = read_rgba(write_image(tmp_path / "rgba.png", rgba))
    assert np.array_equal(rgb_back * 255, rgba[..., :3]) and np.array_equal(alpha_back * 255, rgba[..., 3])
    gray = rand_u8((6, 8), 7)
    assert np.array_equal(np.asarray(Image.open(write_image(tmp_path / "g.png", gray))), gray)
    assert np.array_equal(np.asarray(Image.open(write_image(tmp_path / "g1.png", gray[..., None]))), gray)
    assert listing(tmp_path) == ["a", "g.png", "g1.png", "rgba.png"] and listing(tmp_path / "a" / "b") == ["rgb.png"]


def test_write_image_unknown_format_is_a_data_error_and_leaves_nothing(tmp_path):
    with pytest.raises(DataError) as e:
        write_image(tmp_path / "x.nope", np.zeros((4, 4, 3), np.float32))
    assert_data_error(e, tmp_path / "x.nope", "could not encode")
    with pytest.raises(DataError, match="shape"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 2), np.uint8))
    assert listing(tmp_path) == []


# ----------------------------------------------------------------------------------------- readers

@pytest.fixture
def adobe_root(tmp_path) -> Path:
    """fg/{f1,f2}.png, alpha/f1.png + alpha/f2.bmp, bg/b0..b3 (b0 smaller than fg, b1 larger), trimaps/f1.png."""
    root = tmp_path / "adobe"
    h, w = 30, 40
    for i, name in enumerate(("f1", "f2")):
        save(root / "fg" / f"{name}.png", rand_u8((h, w, 3), 10 + i))
    alpha = (soft_disc(h, w, 10) * 255).round().astype(np.uint8)
    save(root / "alpha" / "f1.png", alpha)
    save(root / "alpha" / "f2.bmp", alpha)
    save(root / "trimaps" / "f1.png", eroded_trimap(alpha / np.float32(255), 3, 3))
    colours = [(200, 10, 10), (10, 200, 10), (10, 10, 200), (90, 90, 90)]
    sizes = [(15, 20), (60, 90), (h, w), (h, w)]
    for i, (c, s) in enumerate(zip(colours, sizes)):
        save(root / "bg" / f"b{i}.png", np.full((*s, 3), c, np.uint8))
    (root / "fg_names.txt").write_text("f1.png\nf2.png\n")
    (root / "bg_names.txt").write_text("\n".join(f"b{i}.png" for i in range(4)) + "\n")
    return root


def test_adobe_dim_reader_composites_each_fg_on_num_bgs_backgrounds(adobe_root):
    r = AdobeDIMReader(adobe_root, num_bgs=2)
    assert len(r) == 4 and r.names == ["f1_0", "f1_1", "f2_0", "f2_1"]
    alpha = read_alpha(adobe_root / "alpha" / "f1.png")
    colours = np.array([(200, 10, 10), (10, 200, 10), (10, 10, 200), (90, 90, 90)], np.float32) / 255
    for i, s in enumerate(r):
        fg = read_rgb(adobe_root / "fg" / f"f{i // 2 + 1}.png")
        assert s.image.shape == (30, 40, 3) and s.bg.shape == (30, 40, 3)
        assert np.allclose(s.bg, colours[i], atol=1e-5)            # b0 upscaled, b1 cropped: still its colour
        assert np.array_equal(s.fg, fg) and np.array_equal(s.alpha, alpha)
        assert np.array_equal(s.image, composite(fg, s.bg, alpha, round_uint8=True))
        assert np.allclose(s.image[alpha == 0], colours[i], atol=0.5 / 255)
        assert np.array_equal(s.image[alpha == 1], fg[alpha == 1])
    assert list(r[0].trimaps) == ["trimap"] and r[2].trimaps == {}
    assert all(p.is_file() for p in r.source_files())
    assert {p.name for p in r.source_files()} == {"f1.png", "f2.png", "f2.bmp", "b0.png", "b1.png", "b2.png", "b3.png"}
    assert len(r.source_files()) == 2 + 2 + 1 + 4


def test_adobe_dim_reader_without_name_lists_uses_sorted_folders(adobe_root):
    (adobe_root / "fg_names.txt").unlink()
    (adobe_root / "bg_names.txt").unlink()
    r = AdobeDIMReader(adobe_root)
    assert [p.name for p in r.fg_files] == ["f1.png", "f2.png"] and r.names == ["f1_0", "f2_0"]
    assert np.allclose(r[1].bg, np.array([10, 200, 10]) / 255, atol=1e-5)


def test_adobe_dim_reader_errors(adobe_root):
    with pytest.raises(DataError) as e:
        AdobeDIMReader(adobe_root, num_bgs=3)                          # 2 fg × 3 > 4 backgrounds
    assert_data_error(e, adobe_root / "bg", "4 backgrounds listed", "need 6")
    (adobe_root / "fg_names.txt").write_text("f1.png\nghost.png\n")
    with pytest.raises(DataError) as e:
        AdobeDIMReader(adobe_root)
    assert_data_error(e, adobe_root / "fg" / "ghost.png", "listed in fg_names.txt but missing")
    (adobe_root / "fg_names.txt").write_text("\n\n")
    with pytest.raises(DataError) as e:
        AdobeDIMReader(adobe_root)
    assert_data_error(e, adobe_root / "fg_names.txt", "name list is empty")
    (adobe_root / "fg_names.txt").write_text("f1.png\n")
    save(adobe_root / "alpha" / "f1.png", np.zeros((30, 41), np.uint8))
    with pytest.raises(DataError) as e:
        AdobeDIMReader(adobe_root)[0]
    assert_data_error(e, adobe_root / "alpha" / "f1.png", "alpha is 41x30", "fg")
    save(adobe_root / "alpha" / "f1.png", np.zeros((30, 40), np.uint8))
    save(adobe_root / "trimaps" / "f1.png", np.full((30, 40), 100, np.uint8))
    with pytest.raises(DataError) as e:
        AdobeDIMReader(adobe_root)[0]
    assert_data_error(e, adobe_root / "trimaps" / "f1.png", "0/128/255", "100")
    (adobe_root / "trimaps" / "f1.png").unlink()
    (adobe_root / "alpha" / "f1.png").unlink()
    with pytest.raises(DataError) as e:
        AdobeDIMReader(adobe_root)[0]
    assert_data_error(e, adobe_root / "alpha" / "f1.png", "file not found")
    with pytest.raises(DataError) as e:
        AdobeDIMReader(adobe_root.parent / "elsewhere")
    assert_data_error(e, adobe_root.parent / "elsewhere" / "fg", "folder not found")


def make_alphamatting(root: Path, names=("a", "b"), size=(40, 48), test_layout=False) -> dict[str, np.ndarray]:
    """A tiny alphamatting.com folder: training layout (input/, gt/ as 3 equal channels, trimap1/, trimap2/)
    or test layout (input_lowres/, trimap_lowres/Trimap1..3/, no gt)."""
    alpha = (soft_disc(*size, 12) * 255).round().astype(np.uint8)
    for i, n in enumerate(names):
        save(root / ("input_lowres" if test_layout else "input") / f"{n}.png", rand_u8((*size, 3), 20 + i))
        if test_layout:
            for k in (1, 2, 3):
                save(root / "trimap_lowres" / f"Trimap{k}" / f"{n}.png", eroded_trimap(alpha, 2 * k + 1, 2 * k + 1))
        else:
            save(root / "gt" / f"{n}.png", np.dstack([alpha] * 3))
            save(root / "trimap1" / f"{n}.png", eroded_trimap(alpha, 3, 3))
            save(root / "trimap2" / f"{n}.png", eroded_trimap(alpha, 9, 9))
    return {"alpha": alpha}


def test_alphamatting_reader_training_layout(tmp_path):
    made = make_alphamatting(tmp_path / "am")
    r = AlphaMattingReader(tmp_path / "am")
    assert r.names == ["a", "b"] and len(r) == 2 and r.gt_dir == tmp_path / "am" / "gt"
    s = r[1]
    assert s.name == "b"
    assert np.array_equal(s.image, rand_u8((40, 48, 3), 21) / np.float32(255))
    assert np.array_equal(s.alpha, made["alpha"] / np.float32(255))
    assert sorted(s.trimaps) == ["trimap1", "trimap2"]
    assert (s.trimaps["trimap2"] == 128).sum() > (s.trimaps["trimap1"] == 128).sum()
    assert len(r.source_files()) == 2 * 4 and all(p.is_file() for p in r.source_files())
    assert AlphaMattingReader(tmp_path / "am", ["b"]).names == ["b"]
    with pytest.raises(DataError) as e:
        AlphaMattingReader(tmp_path / "am", ["b", "zz"])
    assert_data_error(e, tmp_path / "am" / "input", "images not found: zz")


def test_alphamatting_reader_test_layout_without_gt(tmp_path):
    make_alphamatting(tmp_path / "am", names=("doll", "net"), test_layout=True)
    r = AlphaMattingReader(tmp_path / "am")
    assert r.names == ["doll", "net"] and r.gt_dir is None
    s = r[0]
    assert s.alpha is None and sorted(s.trimaps) == ["trimap1", "trimap2", "trimap3"]
    unknown = [(s.trimaps[f"trimap{k}"] == 128).sum() for k in (1, 2, 3)]
    assert unknown[0] < unknown[1] < unknown[2]


def test_alphamatting_reader_bad_files(tmp_path):
    root = tmp_path / "am"
    make_alphamatting(root)
    save(root / "trimap1" / "a.png", np.zeros((40, 47), np.uint8))
    with pytest.raises(DataError) as e:
        AlphaMattingReader(root)[0]
    assert_data_error(e, root / "trimap1" / "a.png", "trimap1 is 47x40", "image")
    save(root / "trimap1" / "a.png", np.full((40, 48), 64, np.uint8))
    with pytest.raises(DataError) as e:
        AlphaMattingReader(root)[0]
    assert_data_error(e, root / "trimap1" / "a.png", "0/128/255", "64")
    (root / "trimap1" / "a.png").unlink()
    save(root / "gt" / "a.png", np.zeros((41, 48), np.uint8))
    with pytest.raises(DataError) as e:
        AlphaMattingReader(root)[0]
    assert_data_error(e, root / "gt" / "a.png", "alpha is 48x41 but image")
    (root / "gt" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError) as e:
        AlphaMattingReader(root)[0]
    assert_data_error(e, root / "gt" / "a.png", "not a readable image")
    (root / "gt" / "a.png").unlink()
    with pytest.raises(DataError) as e:
        AlphaMattingReader(root)[0]
    assert_data_error(e, root / "gt", "no ground-truth alpha for a")
    for f in (root / "input").iterdir():
        f.unlink()
    with pytest.raises(DataError) as e:
        AlphaMattingReader(root)
    assert_data_error(e, root / "input", "folder has no image files")
    with pytest.raises(DataError) as e:
        AlphaMattingReader(tmp_path)
    assert_data_error(e, tmp_path, "no input/ or input_lowres/ folder")


def test_alphamatting_reader_real_dev_folder(dev_dir):
    r = AlphaMattingReader(dev_dir)
    assert len(r) == 14 and r.names[0] == "GT01" and "GT27" in r.names
    assert sorted(r.trimap_dirs) == ["trimap1", "trimap2"]
    for s in r:
        h, w = s.alpha.shape
        assert max(h, w) == 800 and s.image.shape == (h, w, 3) and s.alpha.dtype == np.float32
        t1, t2 = s.trimaps["trimap1"], s.trimaps["trimap2"]
        assert (t2 == 128).sum() > (t1 == 128).sum() > 0             # trimap2 has the larger unknown band
        assert ((s.alpha > 0) & (s.alpha < 1)).any()
        assert s.alpha[t1 == 255].min() > 0.9 and s.alpha[t1 == 0].max() < 0.1


def test_alphamatting_reader_real_test_folder(test_dir):
    r = AlphaMattingReader(test_dir)
    assert r.names == ["doll", "donkey", "elephant", "net", "pineapple", "plant", "plasticbag", "troll"]
    assert r.gt_dir is None and sorted(r.trimap_dirs) == ["trimap1", "trimap2", "trimap3"]
    s = r[r.names.index("net")]
    assert s.alpha is None and sorted(s.trimaps) == ["trimap1", "trimap2", "trimap3"]
    assert all(t.shape == s.image.shape[:2] and set(np.unique(t)) == {0, 128, 255} for t in s.trimaps.values())
    assert len(r.source_files()) == 8 * 4


def test_rgba_cutout_reader(tmp_path):
    cut = rand_u8((20, 24, 4), 30)
    cut[..., 3] = (soft_disc(20, 24, 7) * 255).round().astype(np.uint8)
    save(tmp_path / "cuts" / "b.png", cut)
    save(tmp_path / "cuts" / "a.png", cut[::-1].copy())
    (tmp_path / "cuts" / "notes.txt").write_text("not an image")
    r = RGBACutoutReader(tmp_path / "cuts")
    assert r.names == ["a", "b"] and len(r) == 2
    s = r[1]
    fg, alpha = cut[..., :3] / np.float32(255), cut[..., 3] / np.float32(255)
    assert np.array_equal(s.fg, fg) and np.array_equal(s.alpha, alpha)
    assert np.allclose(s.image, fg * alpha[..., None]) and (s.image[alpha == 0] == 0).all()   # over black
    save(tmp_path / "cuts" / "c.png", cut[..., :3])
    with pytest.raises(DataError) as e:
        RGBACutoutReader(tmp_path / "cuts")[2]
    assert_data_error(e, tmp_path / "cuts" / "c.png", "no alpha channel")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as e:
        RGBACutoutReader(tmp_path / "empty")
    assert_data_error(e, tmp_path / "empty", "no image files")
    with pytest.raises(DataError) as e:
        list_images(tmp_path / "nowhere")
    assert_data_error(e, tmp_path / "nowhere", "folder not found")


@pytest.mark.slow
def test_estimate_foreground_recovers_known_colours():
    """The one test that calls pymatting (numba compiles on first use: up to a minute)."""
    yy, xx = np.mgrid[:24, :24].astype(np.float32)
    alpha = np.clip((xx - 8) / 8, 0, 1)                      # 0 up to x = 8, a ramp, 1 from x = 16
    true_fg = np.dstack([np.full_like(yy, 0.9), 0.2 + 0.02 * yy, np.full_like(yy, 0.3)])
    bg = np.dstack([np.full_like(yy, 0.1), np.full_like(yy, 0.6), 0.8 + 0.005 * yy])
    image = composite(true_fg, bg, alpha)
    fg = estimate_foreground(image, alpha)
    assert fg.dtype == np.float32 and fg.shape == (24, 24, 3) and fg.min() >= 0 and fg.max() <= 1
    band = (alpha > 0) & (alpha < 1)
    assert np.abs(composite(fg, bg, alpha) - image)[band].max() < 0.03
    assert np.abs(fg - true_fg)[alpha >= 0.5].max() < 0.05
    with pytest.raises(DataError, match="differ in size"):
        estimate_foreground(image, alpha[:, :20])


@pytest.mark.slow
def test_closed_form_alpha_recovers_a_two_colour_edge():
    """Closed-form matting (pymatting, numba: compiles on first use) on a ramp between two flat colours, the
    case its colour-line model is exact for: the pseudo-labels' quality where the model holds."""
    yy, xx = np.mgrid[:32, :32].astype(np.float32)
    alpha = np.clip((xx - 10) / 12, 0, 1)
    image = composite(np.dstack([np.full_like(yy, c) for c in (0.9, 0.3, 0.2)]),
                      np.dstack([np.full_like(yy, c) for c in (0.1, 0.5, 0.8)]), alpha)
    trimap = np.where(xx < 6, 0, np.where(xx > 25, 255, 128)).astype(np.uint8)   # unknown: the ramp and 4 px more
    got = estimate_alpha_closed_form(image, trimap)
    assert got.dtype == np.float32 and got.shape == alpha.shape
    assert np.all(got[trimap == 0] == 0) and np.all(got[trimap == 255] == 1)
    assert np.abs(got - alpha)[trimap == 128].max() < 1e-3
    with pytest.raises(DataError, match="differ in size"):
        estimate_alpha_closed_form(image, trimap[:, :20])
    with pytest.raises(DataError, match="needs an RGB image"):
        estimate_alpha_closed_form(image[..., 0], trimap)
    with pytest.raises(DataError, match="must be uint8"):
        estimate_alpha_closed_form(image, trimap / np.float32(255))
    with pytest.raises(DataError, match="needs both background .0. and foreground .255."):
        estimate_alpha_closed_form(image, np.where(trimap == 0, 128, trimap).astype(np.uint8))
    known = np.where(xx < 16, 0, 255).astype(np.uint8)      # nothing unknown: the trimap is the answer
    assert np.array_equal(estimate_alpha_closed_form(image, known), known / np.float32(255))


def test_closed_form_prints_nothing_of_its_solver_on_stdout(dev_dir, capfd):
    """On GT13's trimap1 pymatting's incomplete Cholesky fails once and retries with a shift, printing a
    PERFORMANCE WARNING on stdout, where `adamat eval` writes its table: held back."""
    sample = next(iter(AlphaMattingReader(dev_dir, ["GT13"])))
    alpha = estimate_alpha_closed_form(sample.image, sample.trimaps["trimap1"])
    assert capfd.readouterr().out == "" and np.isfinite(alpha).all()


def test_pseudo_label_pool_from_photos_without_ground_truth(tmp_path, monkeypatch):
    """The test-set layout (no gt/) becomes a pool of pseudo-labelled cut-outs from each photo's trimap1; the
    estimated alpha and colours are cached, so a second pool computes nothing; another trimap is another key."""
    make_alphamatting(tmp_path / "am", names=("doll", "net"), test_layout=True)
    calls = []

    def fake_cf(image, trimap):
        calls.append(trimap.copy())
        return (trimap / np.float32(255)).astype(np.float32)

    monkeypatch.setattr(synth, "estimate_alpha_closed_form", fake_cf)
    monkeypatch.setattr(synth, "estimate_foreground", lambda image, alpha: image)   # no numba here
    pool = ForegroundPool.from_pseudo_labels(tmp_path / "am", tmp_path / "cache")
    assert [name for name, _, _ in pool.items] == ["pseudo:doll", "pseudo:net"]
    trimap1 = AlphaMattingReader(tmp_path / "am")[0].trimaps["trimap1"]
    assert np.array_equal(calls[0], trimap1)
    assert np.array_equal(pool.items[0][2], trimap1 / np.float32(255))
    assert len(listing(tmp_path / "cache")) == 4 and len(pool.sources) == 2 * 4
    name, fg, alpha = pool.sample((16, 16), np.random.default_rng(0), augment=True)
    assert name.startswith("pseudo:") and fg.shape == (16, 16, 3) and alpha.shape == (16, 16)
    # cached: nothing is estimated again
    monkeypatch.setattr(synth, "estimate_alpha_closed_form", lambda *a: pytest.fail("alpha recomputed"))
    monkeypatch.setattr(synth, "estimate_foreground", lambda *a: pytest.fail("colours recomputed"))
    again = ForegroundPool.from_pseudo_labels(tmp_path / "am", tmp_path / "cache")
    assert all(np.array_equal(a[2], b[2]) and np.array_equal(a[1], b[1]) for a, b in zip(pool.items, again.items))
    # another trimap is another label
    monkeypatch.setattr(synth, "estimate_alpha_closed_form", fake_cf)
    monkeypatch.setattr(synth, "estimate_foreground", lambda image, alpha: image)
    wide = ForegroundPool.from_pseudo_labels(tmp_path / "am", tmp_path / "cache", trimap="trimap2")
    assert len(calls) == 4 and not np.array_equal(wide.items[0][2], pool.items[0][2])
    with pytest.raises(DataError, match="doll has no trimap9 .has: trimap1, trimap2, trimap3."):
        ForegroundPool.from_pseudo_labels(tmp_path / "am", tmp_path / "cache", trimap="trimap9")


def test_training_data_adds_the_pseudo_labelled_photos_unless_told_not_to(tmp_path, monkeypatch):
    import adamatting.train.data as train_module

    make_alphamatting(tmp_path / "test", names=("net",), test_layout=True)
    monkeypatch.setattr(train_module, "alphamatting_dev_dir", lambda: tmp_path / "no-dev-set")
    monkeypatch.setattr(train_module, "alphamatting_test_dir", lambda: tmp_path / "test")
    monkeypatch.setattr(synth, "estimate_alpha_closed_form", lambda image, trimap: trimap / np.float32(255))
    monkeypatch.setattr(synth, "estimate_foreground", lambda image, alpha: image)   # no numba here
    cfg = train_module.TrainConfig(model="tiny", batch=2, crop=32, real_fraction=1.0, bank_size=2, bank_res=64,
                                   bg_bank=1)
    assert cfg.pseudo_labels     # the default
    assert train_module.TrainData(replace(cfg, pseudo_labels=False), tmp_path / "cache", progress=False).real is None
    data = train_module.TrainData(cfg, tmp_path / "cache", progress=False)
    assert [name for name, _, _ in data.real.items] == ["pseudo:net"]
    assert data.sample(np.random.default_rng(0))["alpha"].shape == (1, 32, 32)


def _window(big: np.ndarray, small: np.ndarray) -> tuple[int, int, bool] | None:
    """Where ``small`` sits in ``big`` (exactly, maybe mirrored left-right): (y, x, flipped), or None."""
    h, w = small.shape[:2]
    for flipped in (False, True):
        want = small[:, ::-1] if flipped else small
        for y in range(big.shape[0] - h + 1):
            for x in range(big.shape[1] - w + 1):
                if np.array_equal(big[y:y + h, x:x + w], want):
                    return y, x, flipped
    return None


def test_photo_crops_are_the_photo_itself_with_a_background_that_gives_it_back(tmp_path, monkeypatch):
    """sample_photo crops the real photo (not a re-composite): the same window of the photo, its alpha and
    (when drawn) one of its hand-drawn trimaps; its fg and bg composite back to the photo."""
    make_alphamatting(tmp_path / "am")
    # fg colours: a smooth guess unlike the photo, so bg has to make up the difference
    monkeypatch.setattr(synth, "estimate_foreground", lambda image, alpha: np.full_like(image, 0.5))
    pool = ForegroundPool.from_alphamatting(tmp_path / "am", None, tmp_path / "cache")
    assert sorted(pool.photos) == ["a", "b"]
    sample = AlphaMattingReader(tmp_path / "am")[0]
    photo = pool.photos["a"]
    assert np.array_equal(photo.image, sample.image)
    assert [t.tobytes() for t in photo.trimaps] == [sample.trimaps[k].tobytes() for k in ("trimap1", "trimap2")]
    a = sample.alpha[..., None]
    recomposed = a * 0.5 + (1 - a) * photo.bg
    assert np.array_equal(photo.bg[sample.alpha == 0], sample.image[sample.alpha == 0])
    exact = (a < 0.99) & (photo.bg > 0) & (photo.bg < 1)       # B is clipped to [0, 1]; elsewhere it is exact
    assert exact.mean() > 0.5
    assert np.abs(recomposed - sample.image)[exact].max() < 1e-5
    rng = np.random.default_rng(0)
    seen_trimap = seen_none = 0
    for _ in range(12):
        crop = pool.sample_photo((24, 24), rng, scale_range=(1.0, 1.0), trimap_fraction=0.5)
        photo = pool.photos[crop.name]
        where = _window(photo.image, crop.image)
        assert where is not None, "a photo crop is a window of the photo"
        y, x, flipped = where
        cut = lambda arr: arr[y:y + 24, x:x + 24][:, ::-1] if flipped else arr[y:y + 24, x:x + 24]  # noqa: E731
        assert np.array_equal(crop.alpha, cut(pool._by_name[crop.name][1]))
        assert np.array_equal(crop.bg, cut(photo.bg)) and np.array_equal(crop.fg, cut(pool._by_name[crop.name][0]))
        if crop.trimap is None:
            seen_none += 1
        else:
            seen_trimap += 1
            assert any(np.array_equal(crop.trimap, cut(t)) for t in photo.trimaps)
    assert seen_trimap and seen_none
    # scaled 1.5×: the trimap (nearest neighbour, pixel centres) stays 0/128/255 and in register with alpha
    for _ in range(6):
        crop = pool.sample_photo((40, 40), rng, scale_range=(1.5, 1.5), trimap_fraction=1.0)
        assert crop.trimap is not None and set(np.unique(crop.trimap)) <= {0, 128, 255}
        assert (crop.alpha[crop.trimap == 255] > 0.9).all() and (crop.alpha[crop.trimap == 0] < 0.1).all()
    disc = ForegroundPool([("disc", np.zeros((8, 8, 3), np.float32), np.ones((8, 8), np.float32))], [])
    assert sorted((pool + disc).photos) == ["a", "b"]
    with pytest.raises(DataError, match="has no photos"):
        disc.sample_photo((8, 8), rng, None)
    with pytest.raises(DataError, match="duplicate cut-out names: a"):
        pool + pool
    with pytest.raises(DataError, match="photos without a cut-out of the same name: a"):
        ForegroundPool(disc.items, [], {"a": pool.photos["a"]})


def test_training_data_mixes_in_photo_crops_when_asked(tmp_path, monkeypatch):
    import adamatting.train.data as train_module

    make_alphamatting(tmp_path / "dev", names=("GT01",), size=(64, 64))
    monkeypatch.setattr(train_module, "alphamatting_dev_dir", lambda: tmp_path / "dev")
    monkeypatch.setattr(train_module, "REAL_TRAIN", ("GT01",))
    # fg colours unlike the photo, so the background has to make up the difference (no numba here)
    monkeypatch.setattr(synth, "estimate_foreground", lambda image, alpha: np.full_like(image, 0.5))
    cfg = train_module.TrainConfig(model="tiny", batch=2, crop=32, real_fraction=1.0, bank_size=2, bank_res=64,
                                   bg_bank=1, pseudo_labels=False, photo_fraction=1.0, real_scale=(1.0, 1.0))
    data = train_module.TrainData(cfg, tmp_path / "cache", progress=False)
    photo = data.real.photos["GT01"].image
    for seed in range(4):
        item = data.sample(np.random.default_rng(seed))
        image = item["image01"].transpose(1, 2, 0)
        assert _window(photo, image) is not None              # the photo as taken, not a re-composite
        a, bg = item["alpha"][0][..., None], item["bg"].transpose(1, 2, 0)
        comp = a * item["fg"].transpose(1, 2, 0) + (1 - a) * bg
        exact = (a < 0.99) & (bg > 0) & (bg < 1)              # B is clipped to [0, 1] and hidden where α ≥ 0.99
        assert exact.mean() > 0.3 and np.abs(comp - image)[exact].max() < 1e-5
    # off: the same samples as a pool without photos (photo crops draw nothing from the generator)
    off = replace(cfg, photo_fraction=0.0)
    with_photos, without = train_module.TrainData(off, tmp_path / "cache", progress=False), \
        train_module.TrainData(off, tmp_path / "cache", progress=False)
    without.real.photos = {}
    for seed in range(3):
        x, y = with_photos.sample(np.random.default_rng(seed)), without.sample(np.random.default_rng(seed))
        assert all(np.array_equal(x[k], y[k]) for k in x)
    # a run saved before photo crops existed resumes without them; shares outside [0, 1] are refused
    assert train_module.TrainConfig.from_dict({"model": "tiny"}).photo_fraction == 0.0
    with pytest.raises(ValueError, match="photo_fraction must be in .0, 1., got 1.5"):
        train_module.TrainConfig(photo_fraction=1.5)


# ------------------------------------------------------------------------------------------- synth

def test_synthesizer_trimap_modes_and_determinism():
    s = Synthesizer({"procedural": 1.0}, bg_sources=("procedural",), kinds=("defocus",))
    c = s.sample((48, 64), np.random.default_rng(3), trimap_mode="validation")
    assert c.image.shape == (48, 64, 3) and c.alpha.shape == (48, 64) and c.source == "procedural:defocus"
    assert np.array_equal(c.trimap, validation_trimap(c.alpha))
    assert np.array_equal(c.image, composite(c.fg, c.bg, c.alpha, round_uint8=True))
    again = s.sample((48, 64), np.random.default_rng(3), trimap_mode="validation")
    assert np.array_equal(again.image, c.image) and np.array_equal(again.trimap, c.trimap)
    m = s.sample((48, 64), np.random.default_rng(3), trimap_mode="mask", mask_band=4)
    assert set(np.unique(m.trimap)) <= {0, 128, 255} and (m.trimap == 128).any()
    with pytest.raises(DataError, match="unknown trimap mode 'soft'"):
        s.sample((48, 64), np.random.default_rng(3), trimap_mode="soft")


def test_synthesizer_rejects_bad_sources():
    with pytest.raises(DataError, match="unknown foreground sources"):
        Synthesizer({"photos": 1.0})
    with pytest.raises(DataError, match="no usable foreground source"):
        Synthesizer({"procedural": 0.0, "real": 1.0})          # real asked for, but no real pool
    with pytest.raises(DataError, match="unknown procedural kinds"):
        Synthesizer({"procedural": 1.0}, kinds=("hair", "smoke"))


def test_foreground_pool_sample_fits_then_crops_around_the_transition_band():
    fg = np.random.default_rng(0).random((80, 120, 3)).astype(np.float32)
    alpha = soft_disc(80, 120, 25)
    pool = ForegroundPool([("disc", fg, alpha)], [])
    name, f, a = pool.sample((80, 120), np.random.default_rng(0), augment=False)
    assert name == "disc" and np.array_equal(f, fg) and np.array_equal(a, alpha)   # same size: untouched
    _, f, a = pool.sample((40, 40), np.random.default_rng(0), augment=False)
    # scaled by max(40/80, 40/120) = 0.5 to 40×60, then a 40×40 window centred on the band's centroid
    # (x = 29.5 → int 29 → window x = 9..48)
    assert f.shape == (40, 40, 3) and a.shape == (40, 40)
    assert np.array_equal(a, cv2.resize(alpha, (60, 40), interpolation=cv2.INTER_AREA)[:, 9:49])
    _, _, a = pool.sample((100, 150), np.random.default_rng(0), augment=False)    # smaller cut-out: upscaled
    assert a.shape == (100, 150) and ((a > 0) & (a < 1)).any()
    with pytest.raises(DataError, match="empty"):
        ForegroundPool([], [])


# -------------------------------------------------------------------------------------------- sets

def test_embedded_configs_load():
    calib, val = SetConfig.from_toml("calib"), SetConfig.from_toml("val")
    assert (calib.name, calib.count, calib.size, calib.trimap) == ("calib", 32, (512, 512), "mask")
    assert (val.name, val.count, val.size, val.trimap) == ("val", 32, (512, 512), "validation")
    assert calib.seed != val.seed
    assert (calib.real_split, val.real_split) == ("train", "validation")      # held-back images only in val
    assert calib.resolve(calib.real_root) == shared_data_dir() / "alphamatting_lowres_dev"
    assert cache_key(calib, []) != cache_key(val, [])


MINIMAL = "name = 'x'\ncount = 3\nsize = [64, 64]\nseed = 1\n"


@pytest.mark.parametrize("text, words", [
    (MINIMAL + "colour = 'red'\n", ["unknown config keys: colour"]),
    (MINIMAL + "[backgrounds]\nfolders = 'bg'\n", ["unknown [backgrounds] keys: folders"]),
    (MINIMAL + "foregrounds = 2\n", ["[foregrounds] must be a table"]),
    (MINIMAL.replace("seed = 1\n", ""), ["missing required key: seed"]),
    (MINIMAL.replace("[64, 64]", "64"), ["size must be [height, width]", "64"]),
    (MINIMAL.replace("[64, 64]", "[64, 24]"), ["size must be [height, width] of at least 32 px"]),
    (MINIMAL.replace("[64, 64]", "[64.5, 64]"), ["size must be [height, width]"]),
    (MINIMAL.replace("count = 3", "count = 0"), ["count must be at least 1, got 0"]),
    (MINIMAL.replace("count = 3", "count = 'three'"), ["count must be a whole number, got 'three'"]),
    (MINIMAL + "trimap = 'soft'\n", ["trimap must be one of random, validation, mask"]),
    (MINIMAL + "[foregrounds]\nreal_split = 'test'\n", ["real_split must be one of"]),
    ("name = 'x'\ncount = = 3\n", ["not valid TOML"]),
])
def test_bad_configs_are_data_errors_naming_the_file(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DataError) as e:
        SetConfig.from_toml(path)
    assert_data_error(e, path, *words)


def test_a_binary_file_given_as_a_config_is_named(tmp_path):
    from calib_data.phone_set import PhoneSetConfig

    path = tmp_path / "clip.toml"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42\x8a\xff")
    with pytest.raises(DataError) as e:
        SetConfig.from_toml(path)
    assert_data_error(e, path, "not valid TOML", "can't decode byte")
    with pytest.raises(DataError, match="clip.toml: not a phone set config: 'utf-8' codec can't decode"):
        PhoneSetConfig.load(path)


def test_missing_config_is_a_data_error(tmp_path):
    with pytest.raises(DataError) as e:
        SetConfig.from_toml(tmp_path / "nope.toml")
    assert_data_error(e, tmp_path / "nope.toml", "config file not found")
    with pytest.raises(DataError, match="config file not found"):
        SetConfig.from_toml("no-such-embedded-config")
    with pytest.raises(DataError, match="is a folder, not a config file"):
        SetConfig.from_toml(tmp_path)


def test_build_set_writes_consistent_arrays_and_meta(tmp_path):
    s = build_set(tiny_config(size=(48, 64), count=4), tmp_path, progress=False)
    assert s.path.parent == tmp_path and s.path.name == f"tiny-{s.meta['key']}" and len(s.meta["key"]) == 16
    assert listing(tmp_path) == [s.path.name] and listing(s.path) == sorted(
        ["alphas.npy", "fgs.npy", "images.npy", "meta.json", "trimaps.npy"])
    assert len(s) == 4 and s.size == (48, 64)
    assert s.images.shape == (4, 48, 64, 3) and s.fgs.shape == (4, 48, 64, 3)
    assert s.alphas.shape == s.trimaps.shape == (4, 48, 64)
    assert all(a.dtype == np.uint8 for a in (s.images, s.alphas, s.trimaps, s.fgs))
    assert set(np.unique(s.trimaps)) <= {0, 128, 255}
    fractional = (s.alphas > 0) & (s.alphas < 255)
    assert fractional.any() and (s.trimaps[fractional] == 128).all()   # random (eroded) trimaps cover every one
    assert len(s.meta["origins"]) == 4 and all(o.startswith("procedural:") for o in s.meta["origins"])
    assert s.meta["config"]["seed"] == 7 and s.meta["config"]["size"] == [48, 64] and s.meta["sources"] == []
    item = s[2]
    assert item["image"].dtype == np.float32 and np.array_equal(item["alpha"], s.alphas[2] / np.float32(255))
    stats = set_statistics(s)
    assert stats["count"] == 4 and stats["size"] == "64x48" and stats["fractional_covered"] == 1.0
    assert 0 < stats["mean_alpha"] < 1 and stats["n_procedural"] == 4 and stats["n_real"] == 0


def test_build_set_same_config_same_pixels_in_any_cache(tmp_path):
    a = build_set(tiny_config(trimap="validation"), tmp_path / "one", progress=False)
    b = build_set(tiny_config(trimap="validation"), tmp_path / "two", progress=False)
    assert a.path.name == b.path.name
    for name in ("images", "alphas", "trimaps", "fgs"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    c = build_set(tiny_config(trimap="validation", seed=8), tmp_path / "one", progress=False)
    assert c.path != a.path and not np.array_equal(a.alphas, c.alphas)


def test_second_build_reuses_the_cache_without_rewriting(tmp_path, monkeypatch):
    first = build_set(tiny_config(), tmp_path, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in first.path.iterdir()}

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cached set was rebuilt")

    monkeypatch.setattr(Synthesizer, "sample", must_not_run)
    second = build_set(tiny_config(), tmp_path, progress=False)
    assert second.path == first.path and listing(tmp_path) == [first.path.name]
    assert {p.name: p.stat().st_mtime_ns for p in second.path.iterdir()} == stamps


def test_cache_key_follows_config_fields():
    base = cache_key(tiny_config(), [])
    assert base == cache_key(tiny_config(), [])
    changed = [cache_key(tiny_config(**c), []) for c in
               ({"seed": 8}, {"count": 4}, {"size": (64, 96)}, {"trimap": "mask"}, {"mask_band": 8}, {"name": "other"})]
    assert len({base, *changed}) == 7


def cutout_folder(folder: Path, n: int = 2) -> Path:
    for i in range(n):
        cut = rand_u8((40, 40, 4), 40 + i)
        cut[..., 3] = (soft_disc(40, 40, 12) * 255).round().astype(np.uint8)
        save(folder / f"cut{i}.png", cut)
    return folder


def test_rgba_folder_set_and_its_content_in_the_key(tmp_path):
    cuts = cutout_folder(tmp_path / "cuts")
    cfg = tiny_config(procedural=0.0, real=1.0, rgba_root=str(cuts), size=(32, 32))
    s1 = build_set(cfg, tmp_path / "cache", progress=False)
    assert set(s1.meta["origins"]) <= {"real:cut0", "real:cut1"} and len(s1.meta["origins"]) == 3
    assert sorted(Path(p).name for p in s1.meta["sources"]) == ["cut0.png", "cut1.png"]
    os.utime(cuts / "cut0.png", ns=(1, 1))                  # touched, same content: same key, reused
    assert build_set(cfg, tmp_path / "cache", progress=False).path == s1.path
    cut = np.asarray(Image.open(cuts / "cut0.png")).copy()
    cut[0, 0, 0] ^= 1
    save(cuts / "cut0.png", cut)                            # one value in one file changed: new key
    s2 = build_set(cfg, tmp_path / "cache", progress=False)
    assert s2.path != s1.path and s1.path.is_dir()
    cutout_folder(cuts, 3)                                  # a file added: new key again
    s3 = build_set(cfg, tmp_path / "cache", progress=False)
    assert len({s1.path, s2.path, s3.path}) == 3


def test_background_folder_set_uses_its_images_and_hashes_them(tmp_path):
    colours = {"red.png": (220, 20, 20), "blue.png": (20, 20, 220)}
    for name, c in colours.items():
        save(tmp_path / "bgs" / name, np.full((80, 80, 3), c, np.uint8))
    cfg = tiny_config(bg_sources=("folder",), bg_folder=str(tmp_path / "bgs"), trimap="validation")
    s1 = build_set(cfg, tmp_path / "cache", progress=False)
    assert sorted(Path(p).name for p in s1.meta["sources"]) == ["blue.png", "red.png"]
    for img, alpha in zip(s1.images, s1.alphas):
        bg_px = img[alpha == 0].astype(int)
        assert len(bg_px) and any(np.abs(bg_px - c).max() <= 1 for c in colours.values())
    save(tmp_path / "bgs" / "red.png", np.full((80, 80, 3), (200, 20, 20), np.uint8))
    s2 = build_set(cfg, tmp_path / "cache", progress=False)
    assert s2.path != s1.path


def test_background_folder_changes_within_one_process(tmp_path):
    for name in ("a.png", "b.png"):
        save(tmp_path / "bgs" / name, np.full((80, 80, 3), 100, np.uint8))
    cfg = tiny_config(count=4, bg_sources=("folder",), bg_folder=str(tmp_path / "bgs"))
    first = build_set(cfg, tmp_path / "cache", progress=False)
    (tmp_path / "bgs" / "a.png").unlink()
    save(tmp_path / "bgs" / "c.png", np.full((80, 80, 3), 50, np.uint8))
    second = build_set(cfg, tmp_path / "cache", progress=False)
    assert second.path != first.path
    assert sorted(Path(p).name for p in second.meta["sources"]) == ["b.png", "c.png"]


def test_real_and_cutout_foregrounds_are_both_used(tmp_path, monkeypatch):
    """A config with an alphamatting folder and an RGBA folder draws real foregrounds from both."""
    make_alphamatting(tmp_path / "am", names=("a", "b"))
    cutout_folder(tmp_path / "cuts")
    monkeypatch.setattr(synth, "estimate_foreground", lambda image, alpha: image)   # no numba here
    cfg = tiny_config(procedural=0.0, real=1.0, real_root=str(tmp_path / "am"), real_split="all",
                      rgba_root=str(tmp_path / "cuts"), size=(32, 32))
    synthesizer, sources, notes = sets._synthesizer(cfg, tmp_path / "cache")
    assert sorted(name for name, _, _ in synthesizer.real.items) == ["a", "b", "cut0", "cut1"]
    assert len(sources) == 2 * 4 + 2 and notes == []
    s = build_set(cfg, tmp_path / "cache", progress=False)
    assert all(o.split(":")[1] in {"a", "b", "cut0", "cut1"} for o in s.meta["origins"])
    assert len(listing(tmp_path / "cache" / "foregrounds")) == 2          # estimated foregrounds cached


def test_set_from_the_real_dev_folder_uses_held_back_images_only(dev_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "estimate_foreground", lambda image, alpha: image)   # no numba here
    cfg = tiny_config(procedural=0.0, real=1.0, real_root="${SHARED_DATA}/alphamatting_lowres_dev",
                      real_split="validation")
    s = build_set(cfg, tmp_path / "cache", progress=False)
    assert set(s.meta["origins"]) <= {"real:GT03", "real:GT15", "real:GT19", "real:GT25"}
    assert len(s.meta["sources"]) == 4 * 4 and all(str(dev_dir) in p for p in s.meta["sources"])
    assert len(listing(tmp_path / "cache" / "foregrounds")) == 4


def test_missing_real_root_is_noted_and_procedural_used(tmp_path):
    cfg = tiny_config(procedural=0.5, real=0.5, real_root=str(tmp_path / "no-data"))
    s = build_set(cfg, tmp_path / "cache", progress=False)
    assert s.meta["notes"] == [f"real foregrounds skipped: {tmp_path / 'no-data'} not found"]
    assert all(o.startswith("procedural:") for o in s.meta["origins"])
    alone = tiny_config(procedural=0.0, real=1.0, real_root=str(tmp_path / "no-data"))    # nothing else to composite
    with pytest.raises(DataError, match=r"no-data: \[foregrounds\] real_root not found, and procedural is 0"):
        build_set(alone, tmp_path / "cache", progress=False)


@pytest.mark.parametrize("key, words", [("rgba_root", "no image files"), ("bg_folder", "no background images")])
def test_empty_source_folder_fails_cleanly(tmp_path, key, words):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DataError) as e:
        build_set(tiny_config(real=1.0, **{key: str(empty)}), tmp_path / "cache", progress=False)
    assert_data_error(e, empty, words)
    assert listing(tmp_path / "cache") == []


@pytest.mark.parametrize("exc", [RuntimeError("synthesizer failed"), KeyboardInterrupt()])
def test_failed_or_interrupted_build_leaves_nothing_in_the_cache(tmp_path, monkeypatch, exc):
    real_sample, calls = Synthesizer.sample, []

    def fail_on_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise exc
        return real_sample(self, *args, **kwargs)

    monkeypatch.setattr(Synthesizer, "sample", fail_on_third)
    with pytest.raises(type(exc)):
        build_set(tiny_config(count=4), tmp_path, progress=False)
    assert len(calls) == 3 and listing(tmp_path) == []         # no set folder, no temporary leftovers
    monkeypatch.setattr(Synthesizer, "sample", real_sample)
    s = build_set(tiny_config(count=4), tmp_path, progress=False)
    assert listing(tmp_path) == [s.path.name] and len(s) == 4


def test_debris_under_the_final_name_is_replaced(tmp_path):
    key = cache_key(tiny_config(), [])
    debris = tmp_path / f"tiny-{key}"
    debris.mkdir(parents=True)
    (debris / "images.npy").write_bytes(b"half")             # no meta.json: never a finished set
    s = build_set(tiny_config(), tmp_path, progress=False)
    assert s.path == debris and len(s) == 3 and listing(tmp_path) == [debris.name]


def test_damaged_sets_are_data_errors(tmp_path):
    s = build_set(tiny_config(), tmp_path, progress=False)
    (s.path / "trimaps.npy").write_bytes(b"\x93NUMPY broken")
    with pytest.raises(DataError) as e:
        CompositedSet(s.path)
    assert_data_error(e, s.path, "damaged set")
    (s.path / "meta.json").write_text("{not json")
    with pytest.raises(DataError) as e:
        CompositedSet(s.path)
    assert_data_error(e, s.path, "meta.json is not valid JSON")
    with pytest.raises(DataError) as e:
        CompositedSet(tmp_path)
    assert_data_error(e, tmp_path, "no meta.json")


# --------------------------------------------------------------------------------------------- cli

def test_cli_calib_build_prints_the_set_path(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    assert cli_main(["calib", "build", "--config", str(config), "--out", str(tmp_path / "sets"), "--quiet"]) == 0
    out = capsys.readouterr().out.strip()
    (only,) = (tmp_path / "sets").iterdir()
    assert out == str(only) and (only / "meta.json").is_file()
    assert json.loads((only / "meta.json").read_text())["config"]["count"] == 3
    assert cli_main(["calib", "build", "--config", str(config), "--out", str(tmp_path / "sets")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == out and "fractional_covered" in lines[1] and lines[3].startswith("tiny  ")


def test_cli_calib_build_says_when_real_foregrounds_were_not_found(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.replace("procedural = 1.0", f"procedural = 0.5\nreal = 0.5\nreal_root = "
                                                            f"'{tmp_path / 'no-data'}'"))
    for _ in range(2):                       # built, then reused from the cache: said both times
        assert cli_main(["calib", "build", "--config", str(config), "--out", str(tmp_path / "sets"), "--quiet"]) == 0
        err = capsys.readouterr().err
        assert err == f"note: real foregrounds skipped: {tmp_path / 'no-data'} not found\n"


@pytest.mark.parametrize("text, words", [
    (TINY_TOML.replace("seed = 7", "seed = 7\ncolour = 'red'"), ["unknown config keys: colour"]),
    (TINY_TOML.replace("size = [64, 64]", "size = '64'"), ["size must be [height, width]"]),
    (TINY_TOML.replace("count = 3", "count = ["), ["not valid TOML"]),
    (TINY_TOML.replace("seed = 7\n", ""), ["missing required key: seed"]),
    (TINY_TOML.replace('name = "tiny"\n', "").replace("seed = 7\n", ""), ["missing required keys: name, seed"]),
    (None, ["config file not found"]),
])
def test_cli_bad_config_exits_2_with_a_clear_message(tmp_path, capsys, text, words):
    config = tmp_path / "bad.toml"
    if text is not None:
        config.write_text(text)
    assert cli_main(["calib", "build", "--config", str(config), "--out", str(tmp_path / "sets"), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"error: {config}: ") and captured.err.count("\n") == 1
    for w in words:
        assert w in captured.err
    assert not (tmp_path / "sets").exists()


@pytest.mark.parametrize("command, text", [
    ("build", MINIMAL.replace("'x'", "'../escaped'")),
    ("phone", "name = '../escaped'\ncount = 1\nsize = [64, 64]\nkinds = ['hair']\n"),
])
def test_a_set_name_cannot_put_the_set_outside_the_cache(tmp_path, capsys, command, text):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    cache = tmp_path / "cache" / "inner"
    assert cli_main(["calib", command, "--config", str(config), "--out", str(cache)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "would not be a file directly in this folder" in err[-1]
    assert not any(p.name.startswith("escaped") for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("text, words", [
    ("count = 'x'\n", "count, seed and size [height, width] must be whole numbers (got count 'x'"),
    ("count = nan\n", "must be whole numbers (got count nan"),
    ("size = 5\n", "must be whole numbers"),
    ("size = [64.5, 64]\n", "must be whole numbers"),
    ("seed = -1\n", "seed must be at least 0, got -1"),
    ("kinds = 'hair'\n", "kinds must be a list among"),
    ("recipe = [1]\n", "recipe must be one of"),
    ("trimap = 'mask'\n", "not a phone set config: unknown keys trimap (known: name, count"),
])
def test_bad_phone_set_configs_are_one_line_naming_the_file(tmp_path, capsys, text, words):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert cli_main(["calib", "phone", "--config", str(config), "--out", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {config}: {err[0].split(': ', 2)[2]}"] and words in err[0]
    assert not (tmp_path / "cache").exists()
