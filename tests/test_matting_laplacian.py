"""The matting Laplacian's solve of a drawn trimap's band (runtime.matting_laplacian) and Matter's use of it."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from runtime.matter import Matter
from runtime.matting_laplacian import MAX_WEIGHT, WEIGHT, check_weight, solve_band

MEASURED = Path(__file__).resolve().parents[1] / "benchmarks" / "measured"


def soft_edge(h=48, w=64):
    """Two flat colours joined by a 12-px ramp of alpha (the colour line model holds exactly), its trimap with
    the ramp unknown, and the ramp's alpha."""
    alpha = np.clip((np.arange(w, dtype=np.float32) - 26) / 12, 0, 1)[None].repeat(h, 0)
    fg, bg = np.array([0.9, 0.6, 0.3], np.float32), np.array([0.1, 0.2, 0.5], np.float32)
    photo = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:, :22], trimap[:, 42:] = 0, 255
    return photo, trimap, alpha


def test_the_photos_colours_recover_an_edge_the_prior_has_lost():
    photo, trimap, truth = soft_edge()
    step = (truth > 0.5).astype(np.float32)                     # a network that saw the edge too small
    band = trimap == 128
    solved = solve_band(photo, trimap, step)
    assert np.abs(solved - truth)[band].mean() < 0.1 * np.abs(step - truth)[band].mean()
    assert solved.dtype == np.float32 and solved.shape == truth.shape
    assert (solved[trimap == 0] == 0).all() and (solved[trimap == 255] == 1).all()


def test_the_weight_pulls_toward_the_prior():
    photo, trimap, truth = soft_edge()
    step = (truth > 0.5).astype(np.float32)
    band = trimap == 128
    errors = [np.abs(solve_band(photo, trimap, step, w) - step)[band].mean() for w in (WEIGHT, 1.0, MAX_WEIGHT)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-3


def test_a_trimap_without_a_band_is_itself():
    photo, trimap, truth = soft_edge()
    sure = np.where(truth > 0.5, 255, 0).astype(np.uint8)
    assert np.array_equal(solve_band(photo, sure, truth), sure / np.float32(255))


def test_a_trimap_without_both_sure_regions_keeps_the_prior():
    photo, trimap, truth = soft_edge()
    for one_sided in (np.maximum(trimap, 128), np.minimum(trimap, 128), np.full_like(trimap, 128)):
        solved = solve_band(photo, one_sided, truth * 0.5)
        assert np.array_equal(solved, np.where(one_sided == 128, truth * 0.5, one_sided == 255))


def test_a_band_over_the_limit_is_solved_scaled_down(monkeypatch):
    import runtime.matting_laplacian as laplacian

    photo, trimap, truth = soft_edge(96, 128)
    step = (truth > 0.5).astype(np.float32)
    band = trimap == 128
    full = solve_band(photo, trimap, step)
    monkeypatch.setattr(laplacian, "MAX_BAND", band.sum() // 4)     # solved at half the size
    half = solve_band(photo, trimap, step)
    assert not np.array_equal(half, full) and np.abs(half - full)[band].mean() < 0.02
    assert (half[trimap == 0] == 0).all() and (half[trimap == 255] == 1).all()


def test_a_solve_that_does_not_settle_stops_and_says_so(monkeypatch):
    """A pixel checkerboard defeats the preconditioner (thousands of steps): the solve stops at MAX_STEPS."""
    import runtime.matting_laplacian as laplacian

    board = np.indices((40, 60)).sum(0) % 2
    photo = np.repeat(board[..., None], 3, axis=2).astype(np.float32)
    trimap = np.full((40, 60), 128, np.uint8)
    trimap[0, 0], trimap[20, 30] = 0, 255
    monkeypatch.setattr(laplacian, "MAX_STEPS", 3)
    with pytest.warns(UserWarning, match="the matting Laplacian did not settle in 3 steps"):
        solved = solve_band(photo, trimap, np.full((40, 60), 0.5, np.float32))
    assert np.isfinite(solved).all() and solved.min() >= 0 and solved.max() <= 1


@pytest.mark.parametrize("change, error, words", [
    ({"prior": np.full((48, 64), np.nan, np.float32)}, ValueError, r"the prior must be floats in \[0, 1\], got float32 "
                                                                   r"with NaN or inf"),
    ({"photo": np.full((48, 64, 3), 2.0)}, ValueError, r"the photo must be floats in \[0, 1\], got float64 from 2 to 2"),
    ({"photo": np.zeros((48, 64, 3), np.uint8)}, ValueError, "the photo must be floats in"),
    ({"prior": np.zeros((64, 48), np.float32)}, ValueError, r"the prior must have the shape \(48, 64\)"),
    ({"photo": np.zeros((48, 64), np.float32)}, ValueError, r"the photo must have the shape \(48, 64, 3\)"),
    ({"photo": np.zeros((48, 64, 4), np.float32)}, ValueError, r"the photo must have the shape \(48, 64, 3\)"),
    ({"trimap": np.full((48, 64), 0.5)}, ValueError, "trimap must be uint8"),
    ({"trimap": np.full((48, 64), 200, np.uint8)}, ValueError, "trimap has values other than 0/128/255: 200"),
    ({"prior": 0.5}, TypeError, "prior must be a numpy array, got float"),
])
def test_solve_band_refuses_inputs_it_cannot_solve(change, error, words):
    photo, trimap, truth = soft_edge()
    given = {"photo": photo, "trimap": trimap, "prior": truth} | change
    with pytest.raises(error, match=words):
        solve_band(given["photo"], given["trimap"], given["prior"])


@pytest.mark.parametrize("weight", [0, -1.0, float("nan"), float("inf"), MAX_WEIGHT * 10, True, "1e-3", None])
def test_a_weight_that_is_not_a_positive_number_is_refused(weight):
    with pytest.raises(ValueError, match=r"the matting Laplacian's weight must be a number above 0"):
        check_weight(weight)


def test_a_numpy_weight_of_any_precision_is_read_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # float16 against MAX_WEIGHT overflowed: a RuntimeWarning
        assert check_weight(np.float16(1e-3)) == pytest.approx(1e-3, rel=1e-3) and check_weight(np.float64(2)) == 2


def test_the_weight_is_the_one_its_selection_chose():
    """WEIGHT is the candidate with the lowest mean SAD on the photos the network was trained on, in the measured
    selection (``python -m benchmarks.trimap_laplacian``); the held-back photos did not choose it."""
    files = sorted(MEASURED.glob("trimap-laplacian-*.json"))
    assert files, "the measured selection of the matting Laplacian's weight is missing"
    rows = json.loads(files[-1].read_text())["rows"]
    train = [r for r in rows if not r["held_back"] and r["weight"] is not None]
    weights = sorted({r["weight"] for r in train})
    mean_sad = {w: np.mean([r["SAD"] for r in train if r["weight"] == w]) for w in weights}
    assert min(mean_sad, key=mean_sad.get) == WEIGHT


def test_matter_solves_a_drawn_trimaps_band_and_nothing_else(seeded_model):
    photo, trimap, truth = soft_edge(96, 128)
    laplacian = Matter.from_model(seeded_model(), (64, 64), band_refiner=None, refinement=None)
    plain = Matter.from_model(seeded_model(), (64, 64), band_refiner=None, refinement=None, laplacian=None)
    solved, network = (m.predict(photo, trimap=trimap, with_trimap_prob=False) for m in (laplacian, plain))
    assert "laplacian" in solved.timings and "laplacian" not in network.timings
    band = trimap == 128
    assert np.array_equal(solved.alpha[~band], network.alpha[~band])
    assert np.abs(solved.alpha - truth)[band].mean() < 0.5 * np.abs(network.alpha - truth)[band].mean()
    mask = (truth > 0.5).astype(np.uint8) * 255                 # the phone path: the band refiner's, not this
    assert "laplacian" not in laplacian.predict(photo, mask=mask, with_trimap_prob=False).timings


def test_matter_refuses_a_weight_of_zero(seeded_model):
    with pytest.raises(ValueError, match="the matting Laplacian's weight"):
        Matter.from_model(seeded_model(), (64, 64), laplacian=0)


def test_adamat_bokeh_solves_a_trimaps_band_unless_told_not_to(tiny_checkpoint, tmp_path, capsys):
    import cv2

    from adamat.cli import main

    photo, trimap, _ = soft_edge(96, 128)
    cv2.imwrite(str(tmp_path / "p.png"), np.rint(photo[..., ::-1] * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "t.png"), trimap)
    base = ["bokeh", str(tmp_path / "p.png"), "--trimap", str(tmp_path / "t.png"), "--artifact", str(tiny_checkpoint),
            "--timings"]
    assert main([*base, "-o", str(tmp_path / "on.png")]) == 0
    assert "laplacian" in capsys.readouterr().out
    assert main([*base, "--laplacian", "none", "-o", str(tmp_path / "off.png")]) == 0
    assert "laplacian" not in capsys.readouterr().out
    on, off = (cv2.imread(str(tmp_path / f"{n}.png")) for n in ("on", "off"))
    assert not np.array_equal(on, off) and np.array_equal(on[trimap == 255], off[trimap == 255])


@pytest.mark.parametrize("argv, message", [
    (["--laplacian", "0.01"], "--laplacian applies to a photo's --trimap (the band it marks): not used with a mask"),
    (["--laplacian", "1e-3", "--mask", "none"], "--laplacian applies to a photo's --trimap (the band it marks): not "
                                                "used with --mask none"),              # the default, typed out
    (["--laplacian", "0"], "argument --laplacian: must be a finite number above 0 and at most 1e+06, got 0"),
    (["--laplacian", "nan"], "argument --laplacian: must be a finite number above 0"),
])
def test_adamat_bokeh_refuses_a_laplacian_it_would_not_use(tmp_path, capsys, argv, message):
    import cv2

    from adamat.cli import main

    cv2.imwrite(str(tmp_path / "p.png"), np.full((64, 64, 3), 128, np.uint8))
    try:
        code = main(["bokeh", str(tmp_path / "p.png"), *argv, "-o", str(tmp_path / "o.png")])
    except SystemExit as e:          # the parser's own refusal
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "o.png").exists()
