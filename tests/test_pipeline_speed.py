"""The pipeline's rewritten stages against the code they replace (benchmarks.pipeline_reference), on small
images: the trimap from a mask at its own resolution, the guided upsampling in strips, the foreground at an
integer reduction, the lens blur at a reduced resolution and the fused composite. Equal within float noise
where the arithmetic is the same, within the quality bounds (alpha mean |Δα| ≤ 1e-3, bokeh ≥ 40 dB) where a
resolution changed. Speed is measured by ``python -m benchmarks.pipeline_stages``, never here."""

import cv2
import numpy as np
import pytest

import benchmarks.pipeline_reference as ref
from runtime.bokeh import composite, render_bokeh
from runtime.foreground import estimate_foreground, foreground_at, partly_transparent
from runtime.lens_blur import lens_blur
from runtime.preprocess import DISTANCE_STEPS, make_trimap, to_mask, trimap_from_mask
from runtime.upsample import fast_guided_upsample, snap, upsample_alpha


def portrait(h=240, w=320, seed=0):
    """A textured photo with small highlights, an elliptical subject with a strand-like soft rim."""
    rng = np.random.default_rng(seed)
    texture = cv2.resize(rng.random((12, 16, 3), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    photo = np.clip(texture * 180 + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    for y, x in rng.integers((0, 0), (h, w), (6, 2)):
        cv2.circle(photo, (int(x), int(y)), 2, (255, 250, 235), -1)
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - 0.6 * h) / (0.4 * h), (xx - 0.5 * w) / (0.25 * w))
    strands = cv2.resize(rng.random((h // 4, w // 4), dtype=np.float32), (w, h))
    alpha = np.clip((1.0 - r) * 12 + (strands - 0.5) * 1.5, 0, 1).astype(np.float32)
    photo[alpha >= 1] = (200, 150, 120)
    return photo, alpha


def psnr(a, b):
    mse = np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def coarse_mask(alpha, side):
    h, w = alpha.shape
    s = side / max(h, w)
    small = cv2.resize((alpha > 0.5).astype(np.float32), (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return (small > 0.5).astype(np.uint8) * 255


@pytest.mark.parametrize("band", [3, 8])
def test_trimap_is_the_full_resolution_transform_for_narrow_bands(band):
    """Up to DISTANCE_STEPS pixels the grid is the photo's: exactly the old distance transforms."""
    _, alpha = portrait()
    for mask in (coarse_mask(alpha, 64), (alpha > 0.5).astype(np.uint8) * 255):
        old = ref.trimap_from_mask(to_mask(mask), alpha.shape, band)
        assert np.array_equal(make_trimap(alpha.shape, mask=mask, band=band), old)


@pytest.mark.parametrize("band", [16, 40, 90])
def test_trimap_band_within_a_pixel_or_two(band):
    """Wider bands: distances on a grid of band / 8 pixels move the band's limits by about half a step."""
    _, alpha = portrait(480, 640)
    mask = coarse_mask(alpha, 64)
    old = ref.trimap_from_mask(to_mask(mask), alpha.shape, band)
    new = make_trimap(alpha.shape, mask=mask, band=band)
    assert set(np.unique(new)) <= {0, 128, 255}
    unknown_old, unknown_new = (old == 128).sum(), (new == 128).sum()
    assert abs(unknown_new - unknown_old) <= 0.03 * unknown_old
    step = band / DISTANCE_STEPS                             # photo pixels per grid pixel
    for a, b in ((old, new), (new, old)):                    # each band within about half a grid step of the other
        outside = cv2.distanceTransform((a != 128).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        assert outside[b == 128].max() <= step / 2 + 1.5
    assert not ((new == 0) & (old == 255)).any() and not ((new == 255) & (old == 0)).any()


def test_trimap_is_made_strip_by_strip_with_the_same_classes_whatever_the_strips(monkeypatch):
    """A wide band's upsampled distances are classified strip by strip: strips of 7 rows (the last one short),
    of the default size and one strip of the whole photo give the same trimap."""
    import runtime.preprocess as preprocess

    _, alpha = portrait(480, 640)
    mask = to_mask(coarse_mask(alpha, 64))
    trimaps = []
    for rows in (7, preprocess.TRIMAP_STRIP_ROWS, 10_000):
        monkeypatch.setattr(preprocess, "TRIMAP_STRIP_ROWS", rows)
        trimaps.append(trimap_from_mask(mask, alpha.shape, (24, 60)))
    assert all(np.array_equal(t, trimaps[0]) for t in trimaps) and (trimaps[0] == 128).sum() > 1000


def test_trimap_from_mask_takes_any_resolution():
    _, alpha = portrait()
    mask = to_mask(coarse_mask(alpha, 80))
    assert trimap_from_mask(mask, alpha.shape, 24).shape == alpha.shape
    assert (trimap_from_mask(np.ones_like(mask), alpha.shape, 24) == 255).all()
    assert (trimap_from_mask(np.zeros_like(mask), alpha.shape, 24) == 0).all()


def test_upsampling_equals_the_reference_within_float_noise():
    photo, alpha = portrait()
    photo01 = photo.astype(np.float32) / 255
    for size in ((60, 80), (47, 61)):                      # an integer and a ragged ratio
        small = cv2.resize(photo01, size[::-1], interpolation=cv2.INTER_AREA)
        a_small = cv2.resize(alpha, size[::-1], interpolation=cv2.INTER_AREA)
        for guide in ("rgb", "gray"):
            old = ref.upsample_alpha(a_small, photo01, small, guide=guide)
            new = upsample_alpha(a_small, photo01, small, guide=guide)
            assert new.dtype == np.float32 and np.abs(old - new).max() < 1e-4
            assert np.mean((old == 1) != (new == 1)) < 1e-3 and np.mean((old == 0) != (new == 0)) < 1e-3
        q_old, q_new = ref.fast_guided_upsample(a_small, small, photo01), fast_guided_upsample(a_small, small, photo01)
        assert np.abs(q_old - q_new).max() < 1e-4


def test_snap_in_place_equals_the_reference():
    x = np.random.default_rng(1).normal(0.5, 0.6, (130, 70)).astype(np.float32)
    x[0, :3] = [0.5 / 255, 1 - 0.5 / 255, 1.0]
    old = ref.snap(x.copy())
    new = snap(x)
    assert new is x and new.dtype == np.float32
    assert np.abs(old - new).max() < 1e-6 and np.array_equal(old == 0, new == 0)
    assert snap(x.astype(np.float64)).dtype == np.float32     # other dtypes: a float32 copy


def test_composite_is_exactly_the_reference():
    photo, alpha = portrait()
    mask, fg, bg = estimate_foreground(photo, alpha)
    background = lens_blur(photo, alpha, 0.03, background=(mask, bg))
    old = ref.composite(photo, alpha, background, mask, fg)
    assert np.array_equal(composite(photo, alpha, background, mask, fg), old)
    same = background.copy()
    assert composite(photo, alpha, same, np.flatnonzero(mask), fg, out=same) is same and np.array_equal(same, old)


def test_composite_upsamples_a_reduced_background_into_its_output_as_the_full_size_one_would_be():
    """The lens blur's reduced image composited straight into a new array: the same bits as compositing its
    bilinear upsampling, which is never made; over the photo (a compiled loop reads it bilinearly): within a level
    of that, and the photo itself where α = 1."""
    from runtime.lens_blur import reduced_lens_blur

    photo, alpha = portrait()
    mask, fg, bg = estimate_foreground(photo, alpha)
    small = reduced_lens_blur(photo, alpha, 0.1, background=(mask, bg))
    assert small.shape[0] < photo.shape[0] // 2
    full = cv2.resize(small, photo.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    made = composite(photo, alpha, full, mask, fg)
    assert np.array_equal(composite(photo, alpha, small, mask, fg), made)
    assert np.array_equal(lens_blur(photo, alpha, 0.1, background=(mask, bg)), full)
    mine = photo.copy()
    over = composite(mine, alpha, small, mask, fg, out=mine)
    difference = np.abs(over.astype(int) - made.astype(int))
    assert over is mine and difference.max() == 1 and difference.mean() < 0.1   # 6 % of the values here, by one
    assert np.array_equal(over[alpha >= 1], photo[alpha >= 1]) and (alpha >= 1).any()


def test_a_bokeh_rendered_over_its_photo_is_within_a_level_of_the_one_rendered_beside_it():
    """render_bokeh(reuse_photo=True) writes the result into the photo's own memory (no second photo-sized
    image): within a level of the photo kept, the subject the same; a photo it cannot reuse (not C-contiguous) is
    left as it was, and rendered as without reuse_photo."""
    photo, alpha = portrait()
    beside, _ = render_bokeh(photo, alpha, 0.05)
    mine = photo.copy()
    over, _ = render_bokeh(mine, alpha, 0.05, reuse_photo=True)
    assert over is mine and np.abs(over.astype(int) - beside.astype(int)).max() <= 1
    assert np.array_equal(over[alpha >= 1], beside[alpha >= 1]) and not np.array_equal(beside, photo)
    flipped = photo[:, ::-1]
    kept = flipped.copy()
    out, _ = render_bokeh(flipped, alpha[:, ::-1], 0.05, reuse_photo=True)
    assert out is not flipped and np.array_equal(flipped, kept)
    assert np.array_equal(out, render_bokeh(kept, alpha[:, ::-1], 0.05)[0])
    with pytest.raises(TypeError, match="reuse_photo"):
        render_bokeh(photo, alpha, reuse_photo="yes")


def test_foreground_matches_the_reference():
    photo, alpha = portrait()
    mask_old, fg_old, bg_old = ref.estimate_foreground(photo, alpha)
    mask, fg, bg = estimate_foreground(photo, alpha)
    assert np.array_equal(mask, mask_old) and np.array_equal(fg, fg_old) and np.array_equal(bg, bg_old)
    big_photo, big_alpha = (cv2.resize(x, (1920, 1440), interpolation=cv2.INTER_LINEAR) for x in (photo, alpha))
    _, fg_old, _ = ref.estimate_foreground(big_photo, big_alpha, max_megapixels=0.5)   # a 2x2 reduction here
    _, fg, _ = estimate_foreground(big_photo, big_alpha, max_megapixels=0.5)
    assert np.abs(fg - fg_old).mean() < 0.01



def test_foreground_means_are_computed_at_a_quarter_megapixel():
    """A 2-megapixel photo's box means at 1/3 of its resolution (0.25 MP at most), not 1/2 (1 MP): the
    default is the 0.25-MP estimate and not the 1-MP one (benchmarks.foreground_resolution: the same
    foreground error to 2 %, half the time at 12 MP)."""
    photo, alpha = portrait()
    photo, alpha = (cv2.resize(x, (1600, 1200), interpolation=cv2.INTER_LINEAR) for x in (photo, alpha))
    index = np.flatnonzero(partly_transparent(alpha))
    default, _ = foreground_at(photo, alpha, index)
    assert np.array_equal(default, foreground_at(photo, alpha, index, max_megapixels=0.25)[0])
    assert not np.array_equal(default, foreground_at(photo, alpha, index, max_megapixels=1.0)[0])

@pytest.mark.parametrize("strength", [0.02, 0.05, 0.15])
def test_lens_blur_and_bokeh_within_40_db_of_the_reference(strength):
    photo, alpha = portrait(360, 480)
    old = ref.render_bokeh(photo, alpha, strength)
    new, _ = render_bokeh(photo, alpha, strength)
    assert psnr(old, new) >= 40.0
    assert np.array_equal(new[alpha >= 1], photo[alpha >= 1])
    plain_old = ref.lens_blur(photo, None, strength, gain=0)
    assert psnr(plain_old, lens_blur(photo, None, strength, gain=0)) >= 40.0


def test_matting_path_alpha_within_1e3():
    """The trimap and the upsampling together, as Matter.predict runs them: mean |Δα| ≤ 1e-3."""
    photo, alpha = portrait(480, 640)
    mask = coarse_mask(alpha, 64)
    band = 20
    photo01 = photo.astype(np.float32) / 255
    small = cv2.resize(photo01, (160, 120), interpolation=cv2.INTER_AREA)
    a_small = cv2.resize(alpha, (160, 120), interpolation=cv2.INTER_AREA)
    results = []
    for trimap, up in ((lambda: ref.trimap_from_mask(to_mask(mask), alpha.shape, band), ref.upsample_alpha),
                       (lambda: make_trimap(alpha.shape, mask=mask, band=band), upsample_alpha)):
        a, t = up(a_small, photo01, small), trimap()
        a[t == 0], a[t == 255] = 0.0, 1.0
        results.append(a)
    assert np.abs(results[0] - results[1]).mean() <= 1e-3


def test_refinement_blends_its_tiles_before_one_guided_upsampling():
    """The band's tiles blended at the refinement's resolution and brought to the photo once match the tiles
    each brought to the photo by its own guided filter (the reference) within the quality bound."""
    from runtime.refine import Refinement, refine

    photo_u8, truth = portrait(480, 640)
    photo = photo_u8.astype(np.float32) / 255
    trimap = make_trimap(truth.shape, mask=coarse_mask(truth, 80), band=16)
    coarse = upsample_alpha(cv2.resize(truth, (80, 60), interpolation=cv2.INTER_AREA), photo)
    coarse[trimap == 0], coarse[trimap == 255] = 0, 1

    def run(image, tile_trimap):       # a stand-in network: the truth seen through the photo's brightness
        return np.clip(image.mean(axis=2) * 1.2 - 0.1, 0, 1) * (tile_trimap > 0)

    settings = Refinement(tiles=3, zoom=2)
    new, old = (f(run, photo, trimap, coarse, (96, 96), settings) for f in (refine, ref.refine))
    band = trimap == 128
    assert np.abs(new - coarse)[band].mean() > 0.05                  # the tiles did replace the coarse alpha
    assert np.abs(new - old)[band].mean() * band.mean() <= 1e-3      # whole-image mean |Δα|
    assert np.array_equal(new[~band], coarse[~band])


def test_bokeh_runs_records_each_stage_of_the_command(tiny_checkpoint, tmp_path, monkeypatch):
    """benchmarks.bokeh_runs: one adamat bokeh process per run, the stages it printed and its peak RSS."""
    import json

    import benchmarks.bokeh_runs as bokeh_runs

    out = tmp_path / "runs.json"
    assert bokeh_runs.main([str(tiny_checkpoint), "--runs", "2", "--size", "160", "120", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert "on a synthetic 160x120 JPEG" in data["method"]
    assert row["model"] == "PyTorch FP32 (checkpoint)" and row["runs"] == 2
    assert {"open ms", "model ms", "band ms", "compute ms"} <= set(row) and row["model ms"] > 0
    stages = sum(v for k, v in row.items() if k.endswith(" ms") and k not in ("open ms", "load ms", "write ms",
                                                                               "compute ms"))
    assert abs(stages - row["compute ms"]) < 0.5 * row["compute ms"]     # medians: close to, not equal to, the sum
    assert 50 < row["peak RSS MiB"] < 4000


def test_bokeh_runs_with_the_segmenter_renders_a_person_without_a_mask(tiny_checkpoint, tmp_path):
    """``--segmenter``: the astronaut's photo, no --mask given: the person segmenter's stage is in the table, cold
    and warm."""
    import json

    import benchmarks.bokeh_runs as bokeh_runs

    for extra in ([], ["--warm", "1"]):
        out = tmp_path / f"runs{len(extra)}.json"
        assert bokeh_runs.main([str(tiny_checkpoint), "--runs", "1", "--segmenter", "--size", "320", "240", *extra,
                                "--out", str(out)]) == 0
        data = json.loads(out.read_text())
        assert "astronaut, the person segmenter finding the mask" in data["method"]
        assert data["rows"][0]["segment ms"] > 0


def test_folder_runs_times_one_process_for_the_folder_against_each_photo_alone(tiny_checkpoint, tmp_path, monkeypatch):
    """benchmarks.folder_runs: the folder's wall time beside the bound its photos alone give (their stages but open,
    one open, one process start), and the folder's summed stages."""
    import json

    import benchmarks.folder_runs as folder_runs

    monkeypatch.setattr(folder_runs, "H", 240)
    monkeypatch.setattr(folder_runs, "W", 320)
    out = tmp_path / "folder.json"
    assert folder_runs.main([str(tiny_checkpoint), "--photos", "2", "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["photos"] == 2 and row["folder segment ms"] > 0 and row["folder compute ms"] > 0
    parts = row["photos alone: compute + decode + encode s"] + row["one open s"] + row["process start s"]
    assert row["bound s"] == pytest.approx(parts, abs=0.02) and row["one open s"] > 0 and row["process start s"] > 0
    assert 0 < row["folder stages s"] < row["folder wall s"]
    assert "2 320x240 JPEGs" in json.loads(out.read_text())["method"]


def test_bokeh_runs_warm_renders_in_one_process_and_takes_the_medians_of_all_but_the_first(tiny_checkpoint, tmp_path,
                                                                                           monkeypatch):
    """--warm N: one process per run opens the artifact once, renders N + 1 times; the method says so."""
    import json

    import benchmarks.bokeh_runs as bokeh_runs

    monkeypatch.setattr(bokeh_runs, "H", 120)
    monkeypatch.setattr(bokeh_runs, "W", 160)
    out = tmp_path / "warm.json"
    assert bokeh_runs.main([str(tiny_checkpoint), "--runs", "1", "--warm", "2", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert "renders 3 times, its medians over the last 2" in data["method"] and row["runs"] == 1
    assert row["open ms"] == 0 and row["model ms"] > 0 and row["compute ms"] > row["model ms"]
    with pytest.raises(SystemExit):
        bokeh_runs.main([str(tiny_checkpoint), "--warm", "-1", "--out", str(out)])


def test_a_guide_of_8_bit_pixels_gives_the_float_guides_alpha():
    """The upsampling reads an 8-bit photo as it is (no full-resolution float copy) for the same alpha."""
    photo, alpha = portrait()
    small = cv2.resize(alpha, (80, 60), interpolation=cv2.INTER_AREA)
    photo01 = photo.astype(np.float32) / 255
    low = cv2.resize(photo01, (80, 60), interpolation=cv2.INTER_AREA)
    assert np.abs(upsample_alpha(small, photo, low) - upsample_alpha(small, photo01, low)).max() < 1e-5
    assert np.abs(upsample_alpha(small, photo) - upsample_alpha(small, photo01)).mean() < 1e-3   # guide_low rounded


def test_a_large_photo_reaches_the_working_resolution_within_a_level_of_one_area_resize():
    """A photo of twice the working side or more is block-averaged by the whole factor first, then area-resized
    the rest of the way: within an 8-bit level on average of the one-step area resize on this noisy texture (half
    a level on the 12-megapixel set, whose alpha moves by 2.5e-4 at most)."""
    from runtime.matter import WORKING_SIDE, _at_working_resolution

    photo, _ = portrait(2 * WORKING_SIDE * 3 // 4 + 41, 2 * WORKING_SIDE + 57)      # k = 2, ragged sides
    photo_w = _at_working_resolution(photo)
    one_step = cv2.resize(photo, photo_w.shape[1::-1], interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    assert photo_w.shape[1] == WORKING_SIDE and photo_w.dtype == np.float32
    assert np.abs(photo_w - one_step).mean() < 1.0 / 255


def test_bokeh_runs_keeps_a_stage_only_one_code_runs_in_its_place():
    from benchmarks.bokeh_runs import columns

    this = {"model": "m", "code": "this", "preprocess ms": 1.0, "refine ms": 2.0, "compute ms": 3.0}
    before = {"model": "m", "code": "before", "preprocess ms": 1.0, "model ms": 9.0, "upsample ms": 4.0,
              "refine ms": 2.0, "compute ms": 3.0}
    assert columns([this, before]) == ["model", "code", "preprocess ms", "model ms", "upsample ms", "refine ms",
                                       "compute ms"]


def test_change_quality_counts_what_a_change_moved_and_scores_both_against_the_truth(tmp_path):
    """benchmarks.change_quality: per set, the identical outputs, the largest mean |Δα|, the lowest bokeh PSNR and,
    with ground truth, SAD and Grad before and now."""
    from benchmarks.change_quality import compared

    rng = np.random.default_rng(0)
    truth = {name: rng.random((40, 60), dtype=np.float32) for name in ("a", "b")}
    for folder in ("now", "before"):
        (tmp_path / folder).mkdir()
    for name in ("a", "b", "c"):
        alpha, bokeh = rng.random((40, 60), dtype=np.float32), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
        for folder in ("now", "before"):
            np.save(tmp_path / folder / f"{name}.alpha.npy", alpha)
            np.save(tmp_path / folder / f"{name}.bokeh.npy", bokeh)
    moved = np.load(tmp_path / "now" / "b.alpha.npy") * np.float32(0.98) + np.float32(0.01)
    np.save(tmp_path / "now" / "b.alpha.npy", moved)
    bokeh = np.load(tmp_path / "now" / "b.bokeh.npy")
    np.save(tmp_path / "now" / "b.bokeh.npy", bokeh ^ np.uint8(1))     # every value one level away
    first, second = compared([(0, "a"), (0, "b"), (1, "c")], tmp_path / "now", tmp_path / "before", truth)
    assert (first["images"], first["identical alpha"], first["identical bokeh"]) == (2, 1, 1)
    before = np.load(tmp_path / "before" / "b.alpha.npy")
    assert first["largest mean |Δα|"] == pytest.approx(np.mean(np.abs(moved - before)), rel=0.01)
    assert first["lowest bokeh PSNR dB"] == pytest.approx(48.1, abs=0.05)      # 10·log10(255²/1)
    assert first["SAD now"] != first["SAD before"] and first["Grad before"] is not None
    assert (second["images"], second["identical alpha"], second["SAD now"]) == (1, 1, None)


def test_a_measured_file_records_the_tree_before_as_tree_not_as_a_folder_of_this_machine():
    from benchmarks.bokeh_runs import recorded

    assert recorded(["m.onnx", "--before", "/srv/old", "--runs", "2"]) == ["m.onnx", "--before", "TREE", "--runs", "2"]
    assert recorded(["--before=/srv/old", "m.onnx"]) == ["--before=TREE", "m.onnx"]


@pytest.mark.parametrize("channels", [3, 1])
def test_the_guided_filters_compiled_fit_is_its_numpy_form_bit_for_bit(channels):
    """runtime.kernels.guided_fit does the float32 operations of the numpy fit it replaced, in its order."""
    from runtime import kernels

    rng = np.random.default_rng(3)
    h, w = 37, 53
    guide = [cv2.blur(rng.random((h, w), dtype=np.float32), (5, 5)) for _ in range(channels)]
    p = np.clip(rng.random((h, w), dtype=np.float32) * 2 - 0.5, 0, 1)
    pairs = [(i, j) for i in range(channels) for j in range(i, channels)]
    planes = [*guide, p, *(g * p for g in guide), *(guide[i] * guide[j] for i, j in pairs)]
    means = np.stack([cv2.blur(x, (3, 3)) for x in planes])
    fit = np.zeros((channels + 1, h, w), np.float32)
    kernels.guided_fit(means, np.float32(1e-5), 0, h, fit)
    expected = ref.local_fit(list(means[:channels]), means[channels], list(means[channels + 1:2 * channels + 1]),
                             dict(zip(pairs, means[2 * channels + 1:])), 1e-5)
    assert all(np.array_equal(x, y) for x, y in zip(fit, expected))
    assert np.abs(fit[:channels]).max() > 0.1          # a fit with something to fit


def test_the_filters_application_fills_decided_spans_and_computes_the_rest_as_pixel_by_pixel():
    """runtime.kernels.apply_linear reads each row of the decided label once, into spans: 0 / 1 exactly where the
    label (read by nearest neighbour) decides, the bilinear coefficients applied elsewhere."""
    from runtime import kernels

    rng = np.random.default_rng(5)
    h, w, low = 45, 70, (9, 14)
    a, b = rng.random((*low, 3), dtype=np.float32) - 0.5, rng.random(low, dtype=np.float32)
    guide = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    label = cv2.resize(rng.choice(np.uint8([0, 128, 255]), (5, 6)), (23, 15), interpolation=cv2.INTER_NEAREST)
    rows, columns = kernels.neighbours(h, low[0]), kernels.neighbours(w, low[1])
    q = np.full((h, w), -1.0, np.float32)
    kernels.apply_linear(a, b, guide, label, kernels.nearest(h, 15), kernels.nearest(w, 23), rows, columns,
                         np.float32(-1), 3, h, q)
    at = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    y, x = np.mgrid[:h, :w]
    y0, y1, wy = (rows[:, k][y] for k in range(3))
    x0, x1, wx = (columns[:, k][x] for k in range(3))
    y0, y1, x0, x1 = (v.astype(int) for v in (y0, y1, x0, x1))

    def read(p):
        return ((1 - wy) * (1 - wx) * p[y0, x0] + (1 - wy) * wx * p[y0, x1] + wy * (1 - wx) * p[y1, x0]
                + wy * wx * p[y1, x1])

    expected = read(b) + sum(read(a[..., c]) * guide[..., c] for c in range(3))
    assert (q[:3] == -1).all()                                   # rows before first: untouched
    rest, open_ = at[3:], at[3:] == 128
    assert (q[3:][rest == 0] == 0).all() and (q[3:][rest == 255] == 1).all() and open_.any()
    np.testing.assert_allclose(q[3:][open_], expected[3:][open_], atol=1e-4)


def test_a_composite_keeps_the_photo_where_alpha_is_1_even_where_the_mask_given_marks_it_and_refuses_read_only_out():
    photo, alpha = portrait()
    mask, fg, bg = estimate_foreground(photo, alpha)
    background = lens_blur(photo, alpha, 0.03, background=(mask, bg))
    wider = alpha > 0                                   # the partly transparent pixels and the subject's
    colours = np.zeros((int(wider.sum()), 3), np.float32)
    colours[mask[wider]] = fg
    out = composite(photo, alpha, background, wider, colours)
    assert np.array_equal(out[alpha >= 1], photo[alpha >= 1]) and (alpha >= 1).any()
    assert np.array_equal(out, composite(photo, alpha, background, mask, fg))
    frozen = photo.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        composite(photo, alpha, background, mask, fg, out=frozen)


def test_the_guided_filter_refuses_a_guide_it_cannot_fit():
    from runtime.upsample import guided_coefficients

    p = np.zeros((20, 30), np.float32)
    for guide in (np.zeros((20, 30, 2), np.float32), np.zeros((20, 31, 3), np.float32)):
        with pytest.raises(ValueError, match="gray or RGB guide"):
            guided_coefficients(guide, p, 1, 1e-4)


@pytest.mark.parametrize("shape, size", [((151, 203, 3), (115, 154)), ((64, 96, 3), (32, 48)), ((50, 70), (37, 41)),
                                         ((40, 60, 3), (40, 60)), ((30, 40, 3), (45, 20))])
def test_area_reduce_is_opencvs_area_resize_in_float(shape, size):
    """runtime.resample.area_reduce: OpenCV's INTER_AREA computed in float (8-bit pixels without their rounding
    back to 8 bits), by fractions, whole factors, on a plane, at the same size; a larger side goes to OpenCV."""
    from runtime.resample import area_reduce

    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    expected = cv2.resize(pixels.astype(np.float32), size[::-1], interpolation=cv2.INTER_AREA) / np.float32(255)
    got = area_reduce(pixels, size, 1 / 255)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-6)
    floats = pixels.astype(np.float32) / 255
    np.testing.assert_allclose(area_reduce(floats, size), expected, atol=2e-6)
    with pytest.raises(ValueError, match="reduces"):
        from runtime.resample import area_weights
        area_weights(10, 11)
