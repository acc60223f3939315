"""The bokeh renderer: lens blur, highlights, foreground colours, compositing, and the atomic file pipeline."""

import argparse
import pathlib

import cv2
import numpy as np
import pytest
from PIL import Image

from adamat.commands import bokeh as command
from common.errors import DataError
from runtime.bokeh import render_bokeh
from runtime.foreground import estimate_foreground
from runtime.lens_blur import (
    DEFAULT_STRENGTH,
    HIGHLIGHT_GAIN,
    HIGHLIGHT_THRESHOLD,
    blur_radius,
    disc_kernel,
    highlight_boost,
    lens_blur,
    srgb_to_linear,
)
from runtime.lens_blur import _brightest
from runtime.lens_blur import _reduced_light as reduced_light
from runtime.pipeline import bokeh_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def scene(h=120, w=160, seed=0):
    """A noisy textured background, a subject disc of α = 1 with a soft (hair-like) rim, α = 0 outside."""
    rng = np.random.default_rng(seed)
    photo = rng.integers(0, 200, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((h / 4 - r) / 6 + 0.5, 0, 1).astype(np.float32)
    photo[alpha >= 1] = (220, 120, 90)
    return photo, alpha


def test_output_shape_dtype_and_timings():
    photo, alpha = scene()
    out, timings = render_bokeh(photo, alpha, strength=0.02)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert set(timings) == {"foreground", "blur", "composite"}
    out_float, _ = render_bokeh(photo / np.float32(255), alpha, strength=0.02)
    assert np.abs(out_float.astype(int) - out).max() <= 1


def test_no_blur_returns_the_photo_itself():
    """strength 0 (or a disc under half a pixel) returns the photo, as documented: its partly transparent pixels
    were re-composited from the estimated foreground over the unblurred photo (up to 48 levels off)."""
    photo, alpha = scene()
    assert ((alpha > 0) & (alpha < 1)).any()
    out, timings = render_bokeh(photo, alpha, strength=0.0)
    assert np.array_equal(out, photo) and out is not photo and timings == {}


def test_subject_pixels_are_unchanged_where_alpha_is_one():
    photo, alpha = scene()
    photo[alpha >= 1] = np.random.default_rng(1).integers(0, 256, (int((alpha >= 1).sum()), 3))
    out, _ = render_bokeh(photo, alpha, strength=0.03)
    solid = alpha >= 1
    assert solid.sum() > 500
    assert np.array_equal(out[solid], photo[solid])
    assert not np.array_equal(out[alpha == 0], photo[alpha == 0])


def test_background_is_blurred():
    photo, alpha = scene()
    out, _ = render_bokeh(photo, alpha, strength=0.03)
    bg = alpha == 0
    assert out[bg].astype(np.float32).var(axis=0).mean() < 0.05 * photo[bg].astype(np.float32).var(axis=0).mean()


def test_subject_does_not_bleed_into_the_background():
    """A bright subject on a dark wall: next to the subject the wall stays dark (normalised convolution);
    a plain blur of the whole photo would spread the subject's light around it."""
    h, w = 120, 160
    photo = np.full((h, w, 3), 30, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    alpha = (np.hypot(yy - 60, xx - 80) < 30).astype(np.float32)
    photo[alpha > 0] = 240
    out, _ = render_bokeh(photo, alpha, strength=0.05)
    ring = (np.hypot(yy - 60, xx - 80) > 31) & (np.hypot(yy - 60, xx - 80) < 40)
    assert np.abs(out[ring].astype(int) - 30).max() <= 1
    plain = lens_blur(photo, None, strength=0.05, gain=0)
    assert plain[ring].mean() > 60


def test_highlights_become_bright_discs():
    """Small clipped lights on a dark background: with the boost they become discs of the lens radius,
    far brighter than the same lights under a plain blur, which dissolves them into a faint haze."""
    h, w = 200, 200
    photo = np.full((h, w, 3), 20, np.uint8)
    photo[98:102, 98:102] = 255
    radius = blur_radius((h, w), 0.04)                  # 11.3 px
    boosted = lens_blur(photo, strength=0.04)
    plain = lens_blur(photo, strength=0.04, gain=0)
    assert boosted.max() > plain.max() + 60
    spot = boosted[..., 0] > (20 + int(boosted.max())) / 2
    area = spot.sum()
    assert 0.7 * np.pi * radius ** 2 < area < 1.3 * np.pi * radius ** 2
    ys, xs = np.nonzero(spot)
    assert abs((ys.max() - ys.min()) - (xs.max() - xs.min())) <= 1                      # round
    assert area > 0.7 * (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)        # a disc fills π/4 of its box
    k = disc_kernel(5.0)
    assert k.shape == (11, 11) and abs(k.sum() - 1) < 1e-6 and k[5, 5] == k.max() and k[0, 0] == 0


def test_large_bright_areas_do_not_bloom():
    h, w = 200, 200
    photo = np.full((h, w, 3), 20, np.uint8)
    photo[50:150, 50:150] = 250
    boosted = lens_blur(photo, strength=0.04)
    plain = lens_blur(photo, strength=0.04, gain=0)
    assert np.abs(boosted[90:110, 90:110].astype(int) - plain[90:110, 90:110]).max() <= 2


@pytest.mark.parametrize("with_alpha, with_background, gain", [(True, True, HIGHLIGHT_GAIN), (True, False, HIGHLIGHT_GAIN),
                                                                (False, True, HIGHLIGHT_GAIN), (True, True, 0.0)])
@pytest.mark.parametrize("dense_highlights", [1.0, 0.0])
def test_reduced_light_adds_the_changed_pixels_to_their_blocks_as_the_full_resolution_product_would(
        with_alpha, with_background, gain, dense_highlights, monkeypatch):
    """The blocks of linear light · (1 − α) · boost, with the band's colours replaced, as the definition gives
    them at full resolution: the replaced colours and the boosted highlights (some of them in the band, some
    in the rows and columns the blocks leave out) written into their strips, or, where the highlights are many
    (here: any), every strip multiplied by its boost."""
    monkeypatch.setattr("runtime.lens_blur.DENSE_HIGHLIGHTS", dense_highlights)
    rng = np.random.default_rng(3)
    h, w, factor, radius = 123, 157, 4, 14.0
    photo = rng.integers(0, 200, (h, w, 3), dtype=np.uint8)
    lights = rng.random((h, w)) < 0.02
    photo[lights] = rng.integers(200, 256, (int(lights.sum()), 3), dtype=np.uint8)
    alpha = np.clip(rng.random((h, w)) * 3 - 1, 0, 1).astype(np.float32) if with_alpha else None
    band = (alpha > 0) & (alpha < 1) if with_alpha else rng.random((h, w)) < 0.3
    assert (band & lights).any() and (~band & lights).any() and lights[h - 3:].any()
    colours = rng.random((int(band.sum()), 3)).astype(np.float32)
    background = (np.flatnonzero(band), colours) if with_background else None

    lin, weight = reduced_light(photo, alpha, background, factor, radius, HIGHLIGHT_THRESHOLD, gain)

    light = srgb_to_linear(photo / 255.0)
    if with_background:
        light[band] = srgb_to_linear(colours)
    keep = np.ones((h, w), np.float32) if alpha is None else 1.0 - alpha
    boost = highlight_boost(photo, max(3, int(radius) | 1)) if gain else 1.0
    hb, wb = h // factor * factor, w // factor * factor
    block = lambda x: x[:hb, :wb].reshape(hb // factor, factor, wb // factor, factor, *x.shape[2:]).mean((1, 3))
    np.testing.assert_allclose(lin, block(light * (keep * boost)[..., None]), atol=2e-5)
    np.testing.assert_allclose(weight, block(keep), atol=1e-6)


def test_the_boost_is_looked_up_at_every_pixel_once_highlights_are_three_in_a_thousand():
    """A term per highlight below 0.3 % of the pixels, the boost of every pixel above it (the loop's look-up is
    cheaper than the terms from 0.3 %: DENSE_HIGHLIGHTS)."""
    from runtime.lens_blur import _Boost, _highlights

    rng = np.random.default_rng(5)
    for share, dense in ((0.002, False), (0.004, True)):
        photo = rng.integers(0, 150, (200, 250, 3), dtype=np.uint8)
        photo.reshape(-1, 3)[rng.choice(photo.shape[0] * photo.shape[1], int(share * 50000), replace=False)] = 255
        assert isinstance(_highlights(photo, 15, HIGHLIGHT_THRESHOLD, HIGHLIGHT_GAIN), _Boost) == dense


def test_the_blurred_light_is_encoded_as_the_clipped_srgb_curve_defines_it():
    """The compiled encoding of the blurred light: light over weight, clipped to white (boosted highlights reach
    9× white), sRGB-encoded, rounded, as the numpy definitions give it (a
    weight of 0, where no background is in reach, divides by 1e-6)."""
    from runtime.kernels import encode_light
    from runtime.lens_blur import linear_to_srgb

    rng = np.random.default_rng(6)
    num = (rng.random((40, 50, 3)) ** 3 * 9).astype(np.float32)
    den = rng.random((40, 50)).astype(np.float32)
    den[0, :5] = 0.0
    out = np.zeros(num.shape, np.uint8)
    encode_light(num, den, 0, 40, out)
    expected = np.rint(linear_to_srgb(num / np.maximum(den, 1e-6)[..., None]) * 255.0)
    assert (num / den.clip(1e-6)[..., None] > 1).mean() > 0.2 and np.abs(out - expected).max() <= 1
    assert np.mean(out == expected) > 0.999


def test_the_lens_blur_keeps_whites_white_and_clips_a_boosted_light_channel_by_channel():
    """A blown-out background (flat 255, and near-white 240) blurs to itself, with highlights or without; a small
    saturated yellow light, boosted past white, becomes a ball whose red and green are clipped to 255 and whose
    blue stays low (yellow, not white), brighter than the plain blur's ball."""
    from runtime.lens_blur import lens_blur

    for level in (255, 240):
        flat = np.full((120, 160, 3), level, np.uint8)
        for gain in (0.0, 8.0):
            assert np.all(lens_blur(flat, None, 0.03, gain=gain) == level)
    photo = np.full((200, 200, 3), 20, np.uint8)
    photo[98:102, 98:102] = (250, 240, 10)
    plain, ball = (lens_blur(photo, None, 0.02, gain=gain)[100, 100].astype(int) for gain in (0.0, 8.0))
    assert ball[0] == ball[1] == 255 and ball[2] < 40 and np.all(ball[:2] > plain[:2] + 40)


def test_the_partly_transparent_pixels_are_found_in_order_in_every_strip():
    """The compiled search gives np.flatnonzero of 0 < α < 1, across strips (a photo taller than one), at the
    edges of [0, 1] and for a photo with none."""
    from runtime.foreground import BAND_ROWS, partly_transparent, partly_transparent_index

    alpha = np.random.default_rng(7).choice(np.float32([0, 1e-7, 0.5, 1 - 6e-8, 1]), (BAND_ROWS * 3 + 5, 31))
    assert np.array_equal(partly_transparent_index(alpha), np.flatnonzero(partly_transparent(alpha)))
    assert partly_transparent_index(np.ones((3, 4), np.float32)).size == 0


def test_the_brightest_channel_is_numpys_maximum_over_the_channels_of_any_photo_array():
    """The compiled loop over flat pixels gives each pixel's largest channel, of a contiguous photo or of a view
    (every other column, the channels reversed), at any size (a strip of 1 row, a photo of odd sides)."""
    photo = np.random.default_rng(4).integers(0, 256, (67, 131, 3), dtype=np.uint8)
    for view in (photo, photo[:, ::2], photo[..., ::-1], photo[:1], photo[5:6, 7:8]):
        assert np.array_equal(_brightest(view), view.max(axis=2))


@pytest.mark.parametrize("shape, strength", [((9000, 8), DEFAULT_STRENGTH), ((8, 9000), DEFAULT_STRENGTH),
                                              ((20, 400), 1.0), ((100, 2000), 0.9), ((8, 8), 1.0)])
def test_a_long_thin_photo_or_a_disc_wider_than_the_photo_renders(shape, strength):
    """The blur's reduction stops at one pixel on the short side: a 9000×8 photo, or a disc as wide as the
    photo, renders (its subject unchanged) where the reduced image was empty."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    alpha = np.zeros(shape, np.float32)
    alpha[: shape[0] // 2, : shape[1] // 2] = 1.0
    out, _ = render_bokeh(photo, alpha, strength)
    assert out.shape == photo.shape and np.array_equal(out[alpha == 1], photo[alpha == 1])


def test_foreground_estimate_removes_the_old_background_from_hair():
    """I = αF + (1−α)B, red strands over blue across a 12 px band: F estimated in the band is far closer
    to the red than the photo's colours there, and B to the blue."""
    h = w = 256
    rng = np.random.default_rng(0)
    strands = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), sigmaX=0.7, sigmaY=6)
    ramp = np.clip((w / 2 + 6 - np.arange(w, dtype=np.float32)) / 12, 0, 1)[None, :].repeat(h, 0)
    alpha = np.clip(ramp + (strands - 0.5) * 3 * ((ramp > 0) & (ramp < 1)), 0, 1).astype(np.float32)
    fg, bg = np.array([0.8, 0.2, 0.1], np.float32), np.array([0.1, 0.3, 0.9], np.float32)
    photo = np.rint((alpha[..., None] * fg + (1 - alpha[..., None]) * bg) * 255).astype(np.uint8)
    mask, f, b = estimate_foreground(photo, alpha)
    assert mask.sum() > 1000 and f.shape == b.shape == (mask.sum(), 3)
    weight = alpha[mask][:, None]
    err_estimate = (weight * np.abs(f - fg)).mean()
    err_photo = (weight * np.abs(photo[mask] / 255.0 - fg)).mean()
    assert err_estimate < 0.25 * err_photo
    assert np.abs(b - bg).mean() < 0.08


def test_bad_alpha():
    photo, alpha = scene()
    with pytest.raises(DataError, match="alpha is"):
        render_bokeh(photo, alpha[:-1])
    with pytest.raises(TypeError, match="alpha must be a numpy array"):        # was "alpha is () but the photo is"
        render_bokeh(photo, None)
    with pytest.raises(DataError, match="NaN"):
        render_bokeh(photo, np.full_like(alpha, np.nan))
    with pytest.raises(DataError, match="shape"):
        render_bokeh(photo[..., :2], alpha)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        render_bokeh(photo.astype(np.float32), alpha)
    gray, _ = render_bokeh(photo[..., 0], alpha)                      # accepted as Matter accepts it
    assert gray.shape == photo.shape
    for matte, words in ((alpha * 255, "from 0 to 255 .* divide it by 255"), (alpha - 0.5, "from -0.5"),
                         (alpha.astype(np.int32), "got int32"), (alpha.astype(np.complex64), "got complex64")):
        with pytest.raises(DataError, match=words):                # were clipped (or cast) without a word
            render_bokeh(photo, matte)
    wide = render_bokeh(photo, (alpha * 65535).astype(np.uint16))[0]  # uint16 and bool mattes by their range
    assert np.abs(wide.astype(int) - render_bokeh(photo, alpha)[0]).max() <= 1
    assert np.array_equal(render_bokeh(photo, (alpha * 65535).astype(">u2"))[0], wide)
    assert np.array_equal(render_bokeh(photo, alpha > 0.5)[0], render_bokeh(photo, (alpha > 0.5).astype(np.float32))[0])
    for options, words in (({"highlight_gain": float("nan")}, "highlight_gain must be a number from 0 to 1000"),
                           ({"highlight_gain": 1e30}, "highlight_gain must be a number from 0 to 1000, got 1e"),
                           ({"highlight_threshold": 2.0}, "highlight_threshold must be a number from 0 to 1, got 2")):
        with pytest.raises(ValueError, match=words):              # NaN or 1e300 rendered a black background
            render_bokeh(photo, alpha, **options)
    assert render_bokeh(photo, alpha, highlight_gain=1000)[0].min() < 200      # the largest gain: no overflow
    with pytest.raises(TypeError, match="photo must be a numpy array"):
        render_bokeh("photo.jpg", alpha)
    ringing = np.clip(alpha * 1.2 - 0.1, -0.1, 1.1)                # a cubic resize's overshoot: clipped
    assert np.array_equal(render_bokeh(photo, ringing)[0], render_bokeh(photo, np.clip(ringing, 0, 1))[0])


# --------------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_bokeh_file(tiny_checkpoint, tmp_path, suffix):
    photo, alpha = scene(90, 130)
    cv2.imwrite(str(tmp_path / "photo.png"), photo[..., ::-1])
    cv2.imwrite(str(tmp_path / "mask.png"), (alpha > 0.5).astype(np.uint8) * 255)
    out = tmp_path / f"out{suffix}"
    timings = bokeh_file(tmp_path / "photo.png", out, mask_path=tmp_path / "mask.png", artifact=tiny_checkpoint,
                         strength=0.03, band=4)
    written = cv2.imread(str(out))
    assert written.shape == photo.shape
    assert {"open", "load", "trimap", "model", "upsample", "foreground", "blur", "composite", "write"} <= set(timings)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["photo.png", "mask.png", out.name])


def test_a_mask_or_trimap_with_no_unknown_band_renders(tiny_checkpoint, tmp_path):
    """A mask that is all person leaves no background: the photo comes back as it was; a trimap with no unknown
    region decides every pixel itself (the filters have nothing to compute)."""
    photo, alpha = scene(90, 130)
    cv2.imwrite(str(tmp_path / "photo.png"), photo[..., ::-1])
    cv2.imwrite(str(tmp_path / "all.png"), np.full(alpha.shape, 255, np.uint8))
    trimap = np.where(alpha > 0.5, 255, 0).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "trimap.png"), trimap)
    bokeh_file(tmp_path / "photo.png", tmp_path / "all_out.png", mask_path=tmp_path / "all.png",
               artifact=tiny_checkpoint)
    assert np.array_equal(cv2.imread(str(tmp_path / "all_out.png"))[..., ::-1], photo)
    bokeh_file(tmp_path / "photo.png", tmp_path / "trimap_out.png", trimap_path=tmp_path / "trimap.png",
               artifact=tiny_checkpoint)
    written = cv2.imread(str(tmp_path / "trimap_out.png"))[..., ::-1]
    assert np.array_equal(written[trimap == 255], photo[trimap == 255])
    assert not np.array_equal(written[trimap == 0], photo[trimap == 0])


def test_bokeh_file_writes_the_photo_upright(tiny_checkpoint, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8                                     # stored landscape, shown rotated 90° anticlockwise
    Image.fromarray(scene(60, 100)[0]).save(tmp_path / "phone.jpg", quality=95, exif=exif)
    bokeh_file(tmp_path / "phone.jpg", tmp_path / "out.png", artifact=tiny_checkpoint)
    assert cv2.imread(str(tmp_path / "out.png")).shape == (100, 60, 3)


def test_bokeh_file_that_fails_leaves_no_folder_it_made(tiny_checkpoint, tmp_path):
    """As the command line: the output's new folders go with a failed render (a corrupt photo here), and a folder
    that was there already stays."""
    (tmp_path / "corrupt.png").write_bytes(b"not a png")
    (tmp_path / "there").mkdir()
    for out in (tmp_path / "new" / "dirs" / "out.jpg", tmp_path / "there" / "new" / "out.jpg"):
        with pytest.raises(DataError, match="corrupt.png"):
            bokeh_file(tmp_path / "corrupt.png", out, artifact=tiny_checkpoint)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.png", "there"]
    assert not any((tmp_path / "there").iterdir())


def test_bokeh_file_writes_atomically(tiny_checkpoint, tmp_path, monkeypatch):
    photo, _ = scene(90, 130)
    cv2.imwrite(str(tmp_path / "photo.png"), photo[..., ::-1])
    out = tmp_path / "out.jpg"
    out.write_bytes(b"the previous rendering")

    def fail_half_way(self, data):                       # the disk fills up half-way through the write
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_bytes", fail_half_way)
    with pytest.raises(DataError, match="out.jpg: cannot write here: No space"):   # the output named, not the temp
        bokeh_file(tmp_path / "photo.png", out, artifact=tiny_checkpoint)
    monkeypatch.undo()
    assert out.read_bytes() == b"the previous rendering"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg", "photo.png"]   # no temporary left

    square = tmp_path / "square.png"                       # a failure before the write: nothing written
    cv2.imwrite(str(square), np.zeros((50, 50), np.uint8))
    out.unlink()
    with pytest.raises(DataError, match="different aspect ratio"):
        bokeh_file(tmp_path / "photo.png", out, mask_path=square, artifact=tiny_checkpoint)
    assert not out.exists()


def test_bokeh_file_refuses_an_unknown_output_format_before_any_work(tmp_path):
    with pytest.raises(DataError, match="output must be"):
        bokeh_file(tmp_path / "missing.jpg", tmp_path / "out.gif", artifact=tmp_path / "missing.pt")


def test_bokeh_file_refuses_bad_outputs_and_options_before_any_work(tiny_checkpoint, tmp_path):
    # The artifact and the photo do not exist: each error below is raised before either is opened.
    photo, none = tmp_path / "photo.png", tmp_path / "missing.pt"
    (tmp_path / "taken.png").mkdir()
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_bytes(b"")
    cases = [(tmp_path / "taken.png", {}, r"taken.png: is a directory"),
             (tmp_path / "folder", {}, r"folder: is a directory; give a file name"),   # not: "got no suffix"
             (tmp_path / "file" / "out.png", {}, r"cannot create the folder .*file"),
             (f"{tmp_path / 'out.png'}/", {}, r"out.png: names a folder, not a file"),
             (tmp_path / "out.png", {"strength": float("inf")}, r"strength must be a number in \[0, 1\]"),
             (tmp_path / "out.png", {"strength": float("nan")}, r"strength must be a number in \[0, 1\]"),
             (tmp_path / "out.png", {"band": 10 ** 6}, r"band must be a whole number of pixels from 1 to 2048, got 1000000"),
             (tmp_path / "out.png", {"band": 0}, r"band must be"),]
    for out, options, message in cases:
        with pytest.raises(ValueError, match=message):
            bokeh_file(photo, out, artifact=none, **options)
    assert not (tmp_path / "out.png").exists()
    with pytest.raises(DataError, match=f"{tmp_path.name}: is a directory, not an image file"):
        bokeh_file(tmp_path, tmp_path / "out.png", artifact=tiny_checkpoint)
    cv2.imwrite(str(photo), np.zeros((4, 60, 3), np.uint8))
    with pytest.raises(DataError, match="photo.png: photo is 60x4; both sides must be at least 8 px"):
        bokeh_file(photo, tmp_path / "out.png", artifact=tiny_checkpoint)
    cv2.imwrite(str(photo), scene(40, 60)[0])
    with pytest.raises(DataError, match="photo.png: is the input photo"):
        bokeh_file(photo, tmp_path / "." / "photo.png", artifact=none)
    assert cv2.imread(str(photo)).shape == (40, 60, 3)


def test_bokeh_file_names_an_argument_of_the_wrong_kind(tiny_checkpoint, tmp_path):
    """Each failed in pathlib naming nothing, or (overwrite="no") replaced the output; an all-background mask array
    failed building its error from Path(array)."""
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), scene(40, 60)[0])
    for args, options, words in (((scene(40, 60)[0], tmp_path / "o.png"), {},
                                  r"photo_path must be a path .*got ndarray \(an array: Matter.predict"),
                                 ((photo, str(tmp_path / "o.png").encode()), {}, "out_path must be a path .*got bytes$"),
                                 ((photo, tmp_path / "o.png"), {"artifact": None}, "artifact must be a model's path"),
                                 ((photo, tmp_path / "o.png"), {"overwrite": "no"}, "overwrite must be True or False"),
                                 ((photo, tmp_path / "o.png"), {"mask_path": "auto", "segmenter": 5},
                                  r"segmenter must be a runtime.person_mask.PersonSegmenter \(its mask.*or None, got int")):
        with pytest.raises(TypeError, match=words):
            bokeh_file(*args, **{"artifact": tiny_checkpoint, **options})
    for out, words in (("", "out_path must be a non-empty path"), (str(tmp_path / "a\0b.png"), "holds a NUL byte")):
        with pytest.raises(ValueError, match=words):                 # "embedded null byte", of no path
            bokeh_file(photo, out, artifact=tiny_checkpoint)
    with pytest.raises(DataError, match="^the mask marks no person"):
        bokeh_file(photo, tmp_path / "o.png", mask_path=np.zeros((40, 60), np.float32), artifact=tiny_checkpoint)
    with pytest.raises(DataError, match=r"^the trimap marks no subject: every pixel of it is background \(0\)"):
        bokeh_file(photo, tmp_path / "o.png", trimap_path=np.zeros((40, 60), np.uint8), artifact=tiny_checkpoint)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


@pytest.mark.parametrize("target", ["loop.jpg", "gone.jpg"])
def test_a_link_to_nothing_is_named_as_such_not_as_missing(tmp_path, capsys, target):
    from adamat.cli import main
    from common.image_files import reading_problem

    (tmp_path / "loop.jpg").symlink_to(tmp_path / target)
    message = "a symbolic link to nothing (its target is missing, or it links to itself)"
    assert reading_problem(tmp_path / "loop.jpg") == message
    assert main(["bokeh", str(tmp_path / "loop.jpg"), "-o", str(tmp_path / "out.jpg")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'loop.jpg'}: {message}\n"
    with pytest.raises(ValueError, match="strength must be .*, got '0.01'"):     # a string shown as a number
        bokeh_file(tmp_path / "p.jpg", tmp_path / "o.jpg", strength="0.01")


@pytest.mark.parametrize("missing", ["photos", "photo.jpg", "clip.mp4"])
def test_command_says_a_missing_input_is_missing_before_judging_the_output(tmp_path, capsys, missing):
    from adamat.cli import main

    assert main(["bokeh", str(tmp_path / missing), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / missing}: not found: give a photo, a folder of photos or a clip\n", err
    assert sorted(tmp_path.iterdir()) == []


def test_command_refuses_a_thread_count_below_one(capsys):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser.add_subparsers().add_parser("bokeh"))
    with pytest.raises(SystemExit):
        parser.parse_args(["bokeh", "p.png", "-o", "o.png", "--threads", "-2"])
    assert "--threads: must be >= 1, got -2" in capsys.readouterr().err


def test_command(tiny_checkpoint, tmp_path, capsys):
    photo, _ = scene(64, 96)
    cv2.imwrite(str(tmp_path / "p.png"), photo)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser.add_subparsers().add_parser("bokeh"))
    args = parser.parse_args(["bokeh", str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"),
                              "--artifact", str(tiny_checkpoint), "--strength", "0.02", "--timings", "--mask", "none"])
    assert args.func(args) == 0
    assert (tmp_path / "o.png").is_file()
    assert "model" in capsys.readouterr().out
    assert f"default {DEFAULT_STRENGTH}:" in command.STRENGTH_HELP


def test_timings_say_when_the_tiles_alone_ran_the_network_and_how_the_loops_were_compiled(capsys, monkeypatch):
    command._print_timings({"open": 0.05, "load": 0.1, "trimap": 0.02, "refine": 0.15, "write": 0.04})
    out = capsys.readouterr().out
    assert "refine" in out and command.TILES_ONLY in out and "compute        170.0 ms" in out
    assert "the runtime's loops (compiled by make setup), opened once per process" in out
    monkeypatch.setattr(command.kernels, "ahead_of_time", lambda: False)    # the extension missing: numba's JIT
    command._print_timings({"open": 0.5})
    assert "(compiled just in time: make setup compiles them ahead, faster to open)" in capsys.readouterr().out
    command._print_timings({"model": 0.02, "refine": 0.15})
    assert command.TILES_ONLY not in capsys.readouterr().out


def test_without_an_artifact_the_command_runs_the_fastest_current_export(seeded_model, tiny_checkpoint, tmp_path,
                                                                          monkeypatch, capsys):
    """Without --artifact: an export of the default checkpoint in $ADAMAT_ARTIFACTS, INT8 before FP32, and
    never one exported from another checkpoint, one of another size or one whose bytes changed; the checkpoint
    itself where none is left. The command says which model it ran."""
    import dataclasses
    import shutil

    from adamat.cli import main
    from adamatting.checkpoint import file_sha256
    from common.manifest import load_manifest, write_manifest
    from export.onnx_graph import export_onnx
    from runtime.artifacts import fastest_export

    size, exports = (64, 64), tmp_path / "exports"
    fp32, int8, stale = (exports / f"adamatting_tiny_64x64_{tag}.onnx" for tag in ("fp32", "int8", "old_int8"))
    export_onnx(seeded_model(), fp32, size, checkpoint_sha256=file_sha256(tiny_checkpoint))
    for path, sha in ((int8, file_sha256(tiny_checkpoint)), (stale, "0" * 64)):   # the same graph, said INT8
        shutil.copy(fp32, path)
        write_manifest(path, dataclasses.replace(load_manifest(fp32), precision="int8", checkpoint_sha256=sha))
    assert fastest_export(tiny_checkpoint, exports, size).path == int8
    assert fastest_export(tiny_checkpoint, exports, (128, 128)) is None

    int8.write_bytes(int8.read_bytes()[:-1] + b"x")                  # changed after export: refused, FP32 next
    monkeypatch.setenv("ADAMAT_ARTIFACTS", str(exports))
    monkeypatch.setattr(command, "DEFAULT_ARTIFACT", tiny_checkpoint)
    monkeypatch.setattr(command, "DEFAULT_INPUT_SIZE", size)
    photo, _ = scene(64, 96)
    cv2.imwrite(str(tmp_path / "p.png"), photo)
    assert main(["bokeh", str(tmp_path / "p.png"), "--mask", "none", "-o", str(tmp_path / "o.jpg")]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"model: {fp32} (onnxruntime FP32, the fastest up-to-date export of {tiny_checkpoint}")
    fp32.unlink()
    assert fastest_export(tiny_checkpoint, exports, size) is None
    assert main(["bokeh", str(tmp_path / "p.png"), "--mask", "none", "-o", str(tmp_path / "o2.jpg")]) == 0
    assert "model:" not in capsys.readouterr().err and (tmp_path / "o2.jpg").is_file()


@pytest.mark.parametrize("target, options, words", [
    ("folder", ["--strength", "nan"], "strength must be a number in [0, 1]"),
    ("folder", ["--band", "0"], "band must be a whole number of pixels from 1 to 2048, got 0"),
    ("p.png", ["--format", "png"], "--format applies to a folder of photos; a photo's output format follows"),
    ("clip.mp4", ["--format", "png"], "--format applies to a folder of photos; a clip's output format follows"),
    ("p.png", ["--mask", "none", "--band", "5"], "--band applies to a photo's mask: not used with --mask none"),
    ("folder", ["--mask", "none", "--band", "5"], "--band applies to a photo's mask: not used with --mask none"),
    ("clip.mp4", ["--band", "5"], "--band applies to a photo's mask: not used with a clip"),
    ("clip.mp4", ["--refine", "8"], "--refine applies to photos; clips run without tile refinement"),
    ("clip.mp4", ["--refine", "0"], "--refine applies to photos; clips run without tile refinement"),
])
def test_command_refuses_bad_or_unused_options_once_before_the_model(tmp_path, capsys, target, options, words):
    """One error line before the model loads (the artifact here does not exist): a folder's photos do not each
    fail on a bad --strength or --band, and an option the input would ignore is named."""
    from adamat.cli import main

    (tmp_path / "folder").mkdir()
    for name in ("folder/a.png", "folder/b.png", "p.png"):
        cv2.imwrite(str(tmp_path / name), scene(40, 60)[0])
    (tmp_path / "clip.mp4").write_bytes(b"never decoded: the options are refused first")
    out = tmp_path / ("out" if target == "folder" else "out" + pathlib.Path(target).suffix.replace(".png", ".jpg"))
    code = main(["bokeh", str(tmp_path / target), "-o", str(out), "--artifact", str(tmp_path / "none.pt"), *options])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
    assert not out.exists()


def test_the_bands_background_colours_are_converted_in_parts_as_in_one():
    """_background_pixels converts the band's colours to linear light in parts on the runtime's threads: the same
    values as one conversion, across the parts' boundaries."""
    from runtime.lens_blur import COLOURS_PER_PASS, _background_pixels, srgb_to_linear

    rng = np.random.default_rng(0)
    for n in (0, 1, COLOURS_PER_PASS - 1, COLOURS_PER_PASS, 2 * COLOURS_PER_PASS + 1):
        colours = rng.random((n, 3))                              # float64, as a caller may give them
        index = np.sort(rng.choice(10 * n + 10, n, replace=False))
        found, light = _background_pixels((index, colours))
        assert np.array_equal(found, index) and light.dtype == np.float32
        assert np.array_equal(light, srgb_to_linear(colours.astype(np.float32)).reshape(-1, 3))


RGB, PLANE = np.zeros((4, 6, 3), np.uint8), np.zeros((4, 6), np.float32)


@pytest.mark.parametrize("photo, alpha, words", [
    (RGB.astype(np.float32), PLANE, r"photo must be uint8 RGB \(H, W, 3\), got float32"),
    (RGB[..., 0], PLANE, r"photo must be uint8 RGB \(H, W, 3\), got uint8 \(4, 6\)"),
    (RGB, PLANE.astype(np.uint8), r"alpha must be float \(H, W\) of the photo's \(4, 6\), got uint8"),
    (RGB, None, r"alpha must be float \(H, W\) of the photo's \(4, 6\), got NoneType"),
])
def test_the_foreground_estimate_names_a_photo_or_alpha_it_cannot_take(photo, alpha, words):
    """foreground_at and the lens blur check the photo and the alpha the same way (check_photo_alpha); the
    foreground needs the alpha, the blur takes none (it then blurs everything)."""
    from runtime.foreground import foreground_at

    with pytest.raises(TypeError, match=words):
        foreground_at(photo, alpha, np.zeros(0, np.int64))
    if alpha is None:
        assert lens_blur(photo, None, 0.1).shape == photo.shape
