"""Tiles over the pixels that need work (runtime.tiles): the cover, the reflected windows, and the guided
filter's coefficients fitted only where they are used, equal to the whole plane's there."""

import cv2
import numpy as np
import pytest

from runtime import upsample
from runtime.tiles import cover, reflected, strip_columns, window
from runtime.upsample import OPEN, guided_coefficients, upsample_alpha


def ring(h=1152, w=1536, inner=400, outer=448):
    """A band around a subject's outline: a ring crossing any grid."""
    yy, xx = np.mgrid[:h, :w]
    radius = np.hypot(yy - 0.49 * h, xx - 0.5 * w)
    return (radius > inner) & (radius < outer)


def test_the_tiles_cover_every_set_pixel_with_fewer_tiles_than_a_grid():
    """Every set pixel lies in some tile, no tile starts outside the plane, and the cover takes fewer tiles
    than the cells of a fixed grid that the ring touches."""
    tile = 128
    band = ring()
    corners = cover(band, tile)
    covered = np.zeros_like(band)
    for y, x in corners:
        assert 0 <= y < band.shape[0] and 0 <= x < band.shape[1]
        covered[y:y + tile, x:x + tile] = True
    assert covered[band].all()
    grid = np.pad(band, ((0, -band.shape[0] % tile), (0, -band.shape[1] % tile)))
    cells = grid.reshape(grid.shape[0] // tile, tile, grid.shape[1] // tile, tile).any(axis=(1, 3)).sum()
    assert len(corners) < 0.9 * cells
    assert cover(np.zeros_like(band), tile) == []


@pytest.mark.parametrize("rows", [1, 7, 64])
def test_strip_columns_are_each_strips_column_maximum(rows):
    plane = (np.random.default_rng(rows).random((150, 37)) > 0.97).astype(np.uint8) * np.uint8(128)  # 150: a last strip shorter
    expected = np.array([plane[y:y + rows].max(axis=0) for y in range(0, plane.shape[0], rows)])
    assert np.array_equal(strip_columns(plane, rows), expected)
    assert np.array_equal(strip_columns(plane > 0, rows) > 0, expected > 0)
    with pytest.raises(TypeError, match="bool or uint8"):
        strip_columns(plane.astype(np.float32), rows)


def test_a_window_past_the_border_is_the_reflected_plane():
    plane = np.arange(7 * 9, dtype=np.float32).reshape(7, 9)
    padded = cv2.copyMakeBorder(plane, 5, 5, 5, 5, cv2.BORDER_REFLECT)
    for y, x in [(-3, -4), (2, 3), (4, 6), (-5, 5), (-4, -5)]:      # pads wider than the plane's part too
        assert np.array_equal(window(plane, y, x, 6), padded[y + 5:y + 11, x + 5:x + 11])
    assert np.shares_memory(window(plane, 1, 1, 5), plane)     # inside the plane: a view, no copy


def photo_and_alpha(h, w, seed=0):
    rng = np.random.default_rng(seed)
    photo = cv2.resize(rng.random((h // 8, w // 8, 3), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    photo = np.clip(photo + rng.normal(0, 0.03, photo.shape).astype(np.float32), 0, 1)
    alpha = np.clip(ring(h, w, 0.3 * min(h, w), 0.36 * min(h, w)) * 0.6 + (photo[..., 0] > 0.6) * 0.4, 0, 1)
    return photo, alpha.astype(np.float32)


@pytest.mark.parametrize("radius, guide", [(1, "rgb"), (4, "rgb"), (2, "gray")])
def test_coefficients_fitted_where_needed_are_the_whole_planes(radius, guide, monkeypatch):
    """On tiles over a thin band (the plane's borders reached, a ragged last row and column), the coefficients
    equal the whole plane's wherever they are needed, and are not computed elsewhere."""
    monkeypatch.setattr(upsample, "FIT_TILES", (24,))
    monkeypatch.setattr(upsample, "SPARSE_AT_MOST", 1.0)   # tiles wherever they cover less than the plane
    photo, alpha = photo_and_alpha(303, 401)
    if guide == "gray":
        photo = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    need = ring(303, 401, 110, 118) | (np.arange(401) > 396)[None, :]
    whole = guided_coefficients(photo, alpha, radius, 1e-4)
    part = guided_coefficients(photo, alpha, radius, 1e-4, need)
    for w, p in zip(whole, part):
        assert np.abs(w[need] - p[need]).max() < 1e-5
    assert not part[1][130:170, 185:215].any()       # the ring's hollow: no tile, nothing fitted
    monkeypatch.setattr(upsample, "SPARSE_AT_MOST", 0.0)   # tiles never pay: the whole plane, as before
    assert np.array_equal(guided_coefficients(photo, alpha, radius, 1e-4, need)[1], whole[1])


def test_upsampling_with_decided_pixels_fits_only_around_the_open_ones(monkeypatch):
    """upsample_alpha with ``decided`` gives, at its open pixels, what the filter over the whole plane gives."""
    monkeypatch.setattr(upsample, "FIT_TILES", (16, 32))
    photo, truth = photo_and_alpha(480, 600)
    low = cv2.resize(truth, (150, 120), interpolation=cv2.INTER_AREA)
    guide_low = cv2.resize(photo, (150, 120), interpolation=cv2.INTER_AREA)
    decided = np.where(truth > 0.5, 255, 0).astype(np.uint8)
    decided[ring(480, 600, 150, 160)] = OPEN
    open_ = decided == OPEN
    whole = upsample_alpha(low, photo, guide_low, radius=2, eps=1e-4)
    part = upsample_alpha(low, photo, guide_low, radius=2, eps=1e-4, decided=decided)
    assert np.abs(whole[open_] - part[open_]).max() < 1e-5
    assert np.array_equal(part[~open_], decided[~open_] / np.float32(255))



def test_the_guided_filter_is_the_same_on_one_thread_and_on_two():
    """Its box means, fit strips, tiles and full-resolution strips spread over runtime.parallel's threads, each
    writing its own pixels: bit-identical whatever the number of threads, whole or restricted to open pixels."""
    rng = np.random.default_rng(2)
    guide = rng.random((600, 800, 3), dtype=np.float32)
    low = rng.random((150, 200), dtype=np.float32)
    decided = np.full((600, 800), OPEN, np.uint8)
    decided[:200], decided[450:, 300:] = 0, 255
    before = cv2.getNumThreads()
    try:
        outs = []
        for n in (1, 2):
            cv2.setNumThreads(n)
            outs.append([upsample_alpha(low, guide, radius=r, decided=d) for r in (1, 8) for d in (None, decided)])
    finally:
        cv2.setNumThreads(before)
    assert all(np.array_equal(a, b) for a, b in zip(*outs))


@pytest.mark.parametrize("n", [1, 2, 5, 160])
def test_reflected_indices_are_opencvs(n):
    """Far past either border too (a period of 2n): the same index as cv2.borderInterpolate for every one."""
    index = np.arange(-5 * n - 3, 6 * n + 4)
    assert reflected(index, n).tolist() == [cv2.borderInterpolate(int(i), n, cv2.BORDER_REFLECT) for i in index]
