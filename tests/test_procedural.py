"""Procedural foregrounds (exact fractional alpha, determinism) and backgrounds (sources, file handling)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from calib_data import backgrounds, procedural
from common.errors import DataError

SIZE = (128, 128)
SEEDS = (0, 1, 2)


def make(kind: str, seed: int, size=SIZE):
    return procedural.make_foreground(kind, size, np.random.default_rng(seed))


@pytest.fixture(scope="module")
def samples() -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    return {kind: [make(kind, seed) for seed in SEEDS] for kind in procedural.KINDS}


def opaque_outline(alpha: np.ndarray) -> int:
    """Pixels of the α == 1 region that touch a pixel with α < 1."""
    opaque = (alpha == 1).astype(np.uint8)
    return int((opaque & ~cv2.erode(opaque, np.ones((3, 3), np.uint8)).astype(bool)).sum())


# ------------------------------------------------------------------------------------ foregrounds

def test_kinds_cover_the_hard_cases():
    assert set(procedural.KINDS) >= {"hair", "fur", "veil", "glass", "defocus", "motion"}


@pytest.mark.parametrize("kind", procedural.KINDS)
def test_same_seed_same_arrays_bit_for_bit(kind, samples):
    fg, alpha = make(kind, 0)
    assert np.array_equal(fg, samples[kind][0][0]) and np.array_equal(alpha, samples[kind][0][1])
    assert not np.array_equal(alpha, samples[kind][1][1])


@pytest.mark.parametrize("kind", procedural.KINDS)
@pytest.mark.parametrize("size", [SIZE, (96, 160), (200, 72)])
def test_shapes_dtypes_ranges(kind, size, samples):
    fg, alpha = samples[kind][0] if size == SIZE else make(kind, 3, size)
    assert fg.shape == (*size, 3) and alpha.shape == size
    assert fg.dtype == np.float32 and alpha.dtype == np.float32
    assert np.isfinite(fg).all() and np.isfinite(alpha).all()
    assert fg.min() >= 0 and fg.max() <= 1 and alpha.min() >= 0 and alpha.max() <= 1


@pytest.mark.parametrize("kind", procedural.KINDS)
def test_exact_background_opaque_core_and_fractional_band(kind, samples):
    for _, alpha in samples[kind]:
        transparent, opaque = (alpha == 0).mean(), (alpha == 1).mean()
        fractional = ((alpha > 0) & (alpha < 1)).mean()
        assert transparent > 0.15, f"{kind}: only {transparent:.1%} exact background"
        assert opaque > 0.05, f"{kind}: only {opaque:.1%} exact opaque core"
        assert fractional > 0.01, f"{kind}: only {fractional:.2%} fractional alpha"
        # More than an anti-aliased outline: the band is wider than the opaque region's outline.
        assert ((alpha > 0) & (alpha < 1)).sum() > 1.3 * opaque_outline(alpha), kind
        # Snapping leaves no values within 1e-4 of 0 or 1 other than 0 and 1 themselves.
        assert not ((alpha > 0) & (alpha < procedural.SNAP)).any()
        assert not ((alpha < 1) & (alpha > 1 - procedural.SNAP)).any()


@pytest.mark.parametrize("kind", procedural.KINDS)
def test_foreground_is_textured_and_defined_everywhere(kind, samples):
    for fg, alpha in samples[kind]:
        assert fg[alpha == 1].std(axis=0).max() > 0.01, f"{kind}: flat opaque colour"
        assert fg[alpha == 0].mean() > 0.01, f"{kind}: black foreground behind α = 0"


def test_hair_has_sub_pixel_strands_outside_the_body():
    _, alpha = make("hair", 5, (256, 256))
    away = cv2.distanceTransform((alpha < 1).astype(np.uint8), cv2.DIST_L2, 5)   # distance to α == 1
    faint = (alpha >= 0.05) & (alpha <= 0.5) & (away > 3)
    assert faint.sum() > 300, f"only {faint.sum()} faint strand pixels away from the body"
    # Coverage from 8×8 supersampling, not an 8-bit mask: many distinct fractional levels.
    assert np.unique(alpha[(alpha > 0) & (alpha < 1)]).size > 200


def test_strand_coverage_matches_width():
    """A long straight strand of width w covers ~w pixel-areas per pixel of length."""
    shape = (64, 256)
    for width in (0.11, 0.38, 0.89):
        points = np.stack([np.linspace(20, 236, 12), np.full(12, 32.3)], 1)[None]
        alpha, premult = procedural._render_strands(points, np.array([width]), np.array([[0.2, 0.4, 0.6]]), shape)
        per_column = alpha[:, 40:216].sum(0).mean()
        assert per_column == pytest.approx(width, rel=0.15)
        covered = alpha > 0
        assert np.allclose(premult[covered] / alpha[covered, None], (0.2, 0.4, 0.6), atol=1e-3)


def test_veil_and_glass_are_semi_transparent(samples):
    for _, alpha in samples["veil"]:
        assert ((alpha > 0.15) & (alpha < 0.85)).mean() > 0.02
    for _, alpha in samples["glass"]:
        assert ((alpha > 0.0) & (alpha < 0.3)).mean() > 0.01


def test_random_foreground_is_seeded():
    kind, fg, alpha = procedural.random_foreground(SIZE, np.random.default_rng(7))
    again = procedural.random_foreground(SIZE, np.random.default_rng(7))
    assert kind in procedural.KINDS and again[0] == kind
    assert np.array_equal(fg, again[1]) and np.array_equal(alpha, again[2])


def test_bad_kind_or_size_is_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown foreground kind"):
        procedural.make_foreground("smoke", SIZE, rng)
    with pytest.raises(ValueError, match="at least"):
        procedural.make_foreground("hair", (8, 8), rng)
    with pytest.raises(ValueError, match="size"):
        procedural.make_foreground("hair", 128, rng)


# ------------------------------------------------------------------------------------ backgrounds

def test_natural_backgrounds_load_offline_and_are_cached():
    photos = backgrounds.natural_backgrounds()
    assert len(photos) >= 5
    for photo in photos:
        assert photo.dtype == np.float32 and photo.ndim == 3 and photo.shape[2] == 3
        assert 0 <= photo.min() and photo.max() <= 1
        assert not photo.flags.writeable
    assert all(a is b for a, b in zip(photos, backgrounds.natural_backgrounds()))


def test_procedural_background_is_seeded():
    a = backgrounds.procedural_background((48, 80), np.random.default_rng(3))
    b = backgrounds.procedural_background((48, 80), np.random.default_rng(3))
    c = backgrounds.procedural_background((48, 80), np.random.default_rng(4))
    assert a.shape == (48, 80, 3) and a.dtype == np.float32
    assert 0 <= a.min() and a.max() <= 1 and a.std() > 0.01
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("source", ["natural", "procedural"])
@pytest.mark.parametrize("size", [(64, 96), (1100, 300)])   # the second is taller than every bundled photo
def test_random_background_has_exact_size(source, size):
    for seed in range(3):
        bg = backgrounds.random_background(size, np.random.default_rng(seed), sources=(source,))
        assert bg.shape == (*size, 3) and bg.dtype == np.float32
        assert 0 <= bg.min() and bg.max() <= 1 and bg.flags.writeable


def test_folder_backgrounds_lists_images_sorted(tmp_path):
    (tmp_path / "sub").mkdir()
    for name, fmt in (("b.JPG", "JPEG"), ("a.png", "PNG"), ("sub/c.bmp", "BMP")):
        Image.new("RGB", (4, 4)).save(tmp_path / name, format=fmt)
    (tmp_path / "notes.txt").write_text("not an image")
    assert backgrounds.folder_backgrounds(tmp_path) == [tmp_path / "a.png", tmp_path / "b.JPG",
                                                        tmp_path / "sub" / "c.bmp"]


def test_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist") as missing:
        backgrounds.folder_backgrounds(tmp_path / "nowhere")
    assert "nowhere" in str(missing.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no background images") as empty:
        backgrounds.folder_backgrounds(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(empty.value)


def test_corrupt_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but not really a png")
    with pytest.raises(DataError) as err:
        backgrounds.load_background(bad)
    assert str(bad) in str(err.value)
    with pytest.raises(DataError, match="broken.png"):
        backgrounds.random_background((32, 32), np.random.default_rng(0), sources=("folder",), folder=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        backgrounds.load_background(tmp_path / "missing.png")


def test_gray_rgba_and_16_bit_files(tmp_path):
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((5, 7), 51, np.uint8))
    gray = backgrounds.load_background(tmp_path / "gray.png")
    assert gray.shape == (5, 7, 3) and np.allclose(gray, 0.2)

    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)                      # fully transparent, colour must survive untouched
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    loaded = backgrounds.load_background(tmp_path / "rgba.png")
    assert loaded.shape == (5, 7, 3) and np.allclose(loaded, np.array([10, 20, 30]) / 255)

    Image.fromarray(np.full((5, 7), 1000, np.uint16)).save(tmp_path / "deep.png")
    assert np.allclose(backgrounds.load_background(tmp_path / "deep.png"), 1000 / 65535)

    gray_alpha = np.dstack([np.full((5, 7), 77, np.uint8), np.zeros((5, 7), np.uint8)])
    Image.fromarray(gray_alpha, "LA").save(tmp_path / "la.png")
    assert np.allclose(backgrounds.load_background(tmp_path / "la.png"), 77 / 255)


def test_random_background_from_a_folder(tmp_path):
    small = np.zeros((20, 30, 3), np.uint8)
    small[..., 2] = 255                                # red in BGR
    cv2.imwrite(str(tmp_path / "red.png"), small)
    for sources in (("folder",), ("natural", "procedural")):   # giving a folder adds it as a source
        bg = backgrounds.random_background((64, 48), np.random.default_rng(1), sources=sources, folder=tmp_path)
        assert bg.shape == (64, 48, 3)
    bg = backgrounds.random_background((64, 48), np.random.default_rng(1), sources=("folder",), folder=tmp_path)
    assert np.allclose(bg, (1, 0, 0), atol=1e-3)       # upscaled, cropped, and RGB order


def test_bad_background_sources():
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match="unknown background sources"):
        backgrounds.random_background((32, 32), rng, sources=("stock",))
    with pytest.raises(DataError, match="needs a folder"):
        backgrounds.random_background((32, 32), rng, sources=("folder",))
