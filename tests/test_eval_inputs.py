"""``adamat eval`` on bad or unusual input: one ``error:`` line naming the problem (and the file), exit 2, before
any image is evaluated; or, where the input is valid, the right result (never two models or two photos merged)."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import disc_photo

from adamat.cli import main
from common.image_files import to_uint8
from evaluation.datasets import EvalFolder
from evaluation.folder_eval import EvalSettings, evaluate_folder, simulated_mask
from evaluation.methods import RawMask, artifact_labels

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUICK = ["--baselines", "raw-mask", "--refine-tiles", "0", "--band-refiner", "none"]


def folder(root, count=2, size=(40, 64), photos="image", truth="alpha"):
    """``count`` photos GT01, GT02, ... of ``size`` (H, W) with their ground truth."""
    for sub in (photos, truth):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        photo, alpha = disc_photo(*size, seed=i)
        cv2.imwrite(str(root / photos / f"GT{i + 1:02d}.png"), cv2.cvtColor(to_uint8(photo), cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / truth / f"GT{i + 1:02d}.png"), to_uint8(alpha))
    return root


def refused(argv, capsys):
    """The one error line of a refused command (exit 2), with nothing evaluated (no progress) or written."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def eval_json(argv, out):
    assert main(argv + ["--out", str(out)]) == 0
    return json.loads((out / "eval.json").read_text())


def test_two_models_of_one_file_name_are_two_methods_and_one_file_twice_is_refused(tiny_checkpoint, tmp_path,
                                                                                   capsys):
    ev = folder(tmp_path / "ev")
    for d in ("w1", "w2"):
        (tmp_path / d).mkdir()
        shutil.copy(tiny_checkpoint, tmp_path / d / "m.pt")
    data = eval_json(["eval", str(ev), *QUICK, "--artifacts", str(tmp_path / "w1" / "m.pt"),
                      str(tmp_path / "w2" / "m.pt")], tmp_path / "out")
    models = [m for m in data["means"] if m["where"] == "whole" and m["method"] != "raw mask"]
    assert [m["method"].split(" ")[0] for m in models] == ["w1/m.pt", "w2/m.pt"]
    assert [m["images"] for m in models] == [2, 2]
    assert artifact_labels(["a/x.onnx", "b/x.onnx", "y.onnx"]) == ["a/x.onnx", "b/x.onnx", "y.onnx"]
    assert artifact_labels(["x.onnx", "a/x.onnx"]) == [f"{Path.cwd().name}/x.onnx", "a/x.onnx"]
    one = tmp_path / "w1" / "m.pt"
    (tmp_path / "link.pt").symlink_to(one)
    for twice in ([str(one), f"{tmp_path}/w1/../w1/m.pt"], [str(one), str(tmp_path / "link.pt")]):
        err = refused(["eval", str(ev), *QUICK, "--artifacts", *twice, "--out", str(tmp_path / "o2")], capsys)
        assert err == f"error: --artifacts: {twice[0]} and {twice[1]} are the same file, given twice"
    with pytest.raises(ValueError, match="two methods named raw mask"):
        evaluate_folder(EvalFolder(ev), [RawMask(), RawMask()], EvalSettings())


def test_two_photos_of_one_name_are_refused_in_both_layouts(tmp_path, capsys):
    ev = folder(tmp_path / "ev")
    shutil.copy(ev / "image" / "GT01.png", ev / "image" / "GT01.jpg")
    err = refused(["eval", str(ev), *QUICK, "--out", str(tmp_path / "o")], capsys)
    assert err == f"error: {ev}/image: GT01.png and GT01.jpg share a name"
    am = folder(tmp_path / "am", photos="input", truth="gt")
    shutil.copy(am / "input" / "GT02.png", am / "input" / "GT02.JPG")
    err = refused(["eval", str(am), *QUICK, "--out", str(tmp_path / "o")], capsys)
    assert err == f"error: {am}/input: GT02.png and GT02.JPG share a name"
    shutil.copy(ev / "alpha" / "GT02.png", ev / "alpha" / "GT02.jpg")     # a companion too: which is the truth?
    (ev / "image" / "GT01.jpg").unlink()
    err = refused(["eval", str(ev), *QUICK, "--out", str(tmp_path / "o")], capsys)
    assert err == f"error: {ev}/alpha: GT02.png and GT02.jpg share a name"
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("size, options", [((124, 200), ["--recipe", "down8"]),
                                           ((124, 200), ["--recipe", "down8", "--long-side", "50"]),
                                           ((20, 600), []), ((20, 600), ["--recipe", "down8"])])
def test_simulated_masks_are_accepted_for_small_and_wide_photos(size, options, tiny_checkpoint, tmp_path):
    ev = folder(tmp_path / "ev", count=1, size=size)
    data = eval_json(["eval", str(ev), *QUICK, *options, "--artifacts", str(tiny_checkpoint)], tmp_path / "out")
    assert len(data["means"]) == 4 and all(m["images"] == 1 and m["na"] == 0 for m in data["means"])


def test_simulated_mask_sizes_keep_the_photo_aspect(tmp_path):
    from calib_data.segmenter_masks import RECIPES

    item = EvalFolder(folder(tmp_path / "ev", count=1, size=(124, 200)))[0]
    assert simulated_mask(item, RECIPES["down8"], 0).shape == (16, 26)      # 1/8 rounds to 25x16: 3 % off
    assert simulated_mask(item, RECIPES["phone"], 0).shape == (159, 256)    # the recipe's own size where it fits


def test_long_side_below_the_minimum_side_names_the_photo(tmp_path, capsys):
    ev = folder(tmp_path / "ev", count=1, size=(20, 600))
    err = refused(["eval", str(ev), *QUICK, "--long-side", "16", "--out", str(tmp_path / "o")], capsys)
    assert err == (f"error: {ev}/image/GT01.png: photo is 600x20: --long-side 16 scales it to 16x1, below the 8 px "
                   f"the runtime mattes at least")


def test_folders_and_other_entries_among_the_photos_are_skipped(tmp_path):
    ev = folder(tmp_path / "ev", count=1)
    (ev / "image" / "x.png").mkdir()
    assert EvalFolder(ev).names == ["GT01"]


@pytest.mark.parametrize("layout", ["simple", "alphamatting"])
def test_a_missing_ground_truth_is_found_before_any_work(layout, tmp_path, capsys):
    photos, truth = ("image", "alpha") if layout == "simple" else ("input", "gt")
    ev = folder(tmp_path / "ev", count=3, photos=photos, truth=truth)
    (ev / truth / "GT03.png").unlink()
    err = refused(["eval", str(ev), *QUICK, "--out", str(tmp_path / "o")], capsys)
    assert err == f"error: {ev}/{truth}: no file named GT03 (one of .png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp)"
    (ev / truth / "GT03.png").mkdir()                      # a folder of that name is no ground truth either
    assert refused(["eval", str(ev), *QUICK, "--out", str(tmp_path / "o")], capsys) == err


def test_the_baselines_name_arguments_they_cannot_take():
    """Each failed deep in numpy, OpenCV or pymatting, or answered silently: a NaN mask gave an all-zero prior, a
    NaN photo ran closed-form matting's solver to its iteration limit, a negative cap failed comparing a complex
    number."""
    from common.errors import DataError
    from evaluation.methods import ClosedForm
    from runtime.mask_prior import guided_mask

    photo = np.random.default_rng(0).random((60, 80, 3), dtype=np.float32)
    trimap = np.full((60, 80), 128, np.uint8)
    trimap[:10], trimap[-10:] = 0, 255
    mask = (np.arange(60)[:, None] >= 30).repeat(80, 1).astype(np.float32)
    assert guided_mask(photo, mask).shape == ClosedForm().predict(photo, trimap, None).shape == (60, 80)
    for call, error, words in (
            (lambda: guided_mask(photo, np.full_like(mask, np.nan)), DataError, "mask contains NaN or inf"),
            (lambda: guided_mask(photo, mask[..., None].repeat(3, 2)), TypeError, "mask must be \\(h, w\\)"),
            (lambda: guided_mask(photo, mask, mask), TypeError, "need must be a bool array"),
            (lambda: guided_mask(photo[:0], mask[:0]), DataError, "must not be empty"),
            (lambda: guided_mask((photo * 255).astype(np.uint8), mask), TypeError, "photo must be float RGB"),
            (lambda: ClosedForm(cap=-5), ValueError, "cap must be a whole number of pixels >= 1"),
            (lambda: ClosedForm().predict(np.full_like(photo, np.nan), trimap, None), DataError, "from nan to nan"),
            (lambda: ClosedForm().predict(photo * 255, trimap, None), DataError, "in \\[0, 1\\], got values from"),
            (lambda: ClosedForm().predict(photo, trimap[:30], None), DataError, "of one size")):
        with pytest.raises(error, match=words):
            call()


def test_both_layouts_read_a_photo_and_its_ground_truth_alike(tmp_path, capsys):
    """The alphamatting.com layout (input/ + gt/) reads its files as image/ + alpha/ does: a matte stored as an
    RGBA file's transparency is that transparency (it was read from the black colour channels: a ground truth of
    zeros, scored without a word), and a float photo or matte in 0..255 is refused naming it (it was clipped)."""
    simple, am = folder(tmp_path / "simple"), folder(tmp_path / "am", photos="input", truth="gt")
    for root, truth in ((simple, "alpha"), (am, "gt")):
        a = cv2.imread(str(root / truth / "GT01.png"), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(root / truth / "GT01.png"), np.dstack([np.zeros_like(a)] * 3 + [a]))
    read = [{item.name: item.alpha for item in EvalFolder(root)} for root in (simple, am)]
    assert read[0]["GT01"].max() == 1.0 and all(np.array_equal(read[0][n], read[1][n]) for n in read[0])
    for sub in ("gt", "input"):
        bad = folder(tmp_path / f"float-{sub}", photos="input", truth="gt")
        path = bad / sub / "GT01.png"
        assert cv2.imwrite(str(path.with_suffix(".tiff")), cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float32))
        path.unlink()
        capsys.readouterr()
        assert main(["eval", str(bad), *QUICK, "--out", str(tmp_path / "o")]) == 2     # read as it is evaluated
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"error: {path.with_suffix('.tiff')}: ") and "must lie in [0, 1]" in err
        assert not (tmp_path / "o").exists()


def test_a_photo_whose_mask_has_no_band_is_not_scored_there(tmp_path):
    """A ground truth of all 0 gives a mask with no edge and a trimap with no unknown pixel: its band is n/a (it
    was scored 0 and counted in the band's mean), its whole image scored as any other."""
    ev = folder(tmp_path / "ev", count=2)
    cv2.imwrite(str(ev / "alpha" / "GT01.png"), np.zeros((40, 64), np.uint8))
    result = evaluate_folder(EvalFolder(ev), [RawMask()], EvalSettings())
    assert sorted((r["image"], r["where"]) for r in result.rows) == [("GT01", "whole"), ("GT02", "band"),
                                                                    ("GT02", "whole")]
    assert [(r["image"], r["where"]) for r in result.na] == [("GT01", "band")]
    band = next(m for m in result.means() if m["where"] == "band")
    assert band["images"] == 1 and band["na"] == 1 and band["SAD"] == next(
        r["SAD"] for r in result.rows if r["where"] == "band")


@pytest.mark.parametrize("clips", [False, True])
def test_an_output_file_that_cannot_be_written_is_refused_before_any_work(clips, tiny_checkpoint, tmp_path, capsys):
    """A folder named eval.json (eval-clips.json) in --out: refused in one line before any photo is evaluated (it
    was said after the whole evaluation)."""
    out = tmp_path / "o"
    (out / ("eval-clips.json" if clips else "eval.json")).mkdir(parents=True)
    source = ["clips", "--clip-size", "32", "32", "--frames", "2"] if clips else [str(folder(tmp_path / "ev")), *QUICK]
    err = refused(["eval", *source, "--artifacts", str(tiny_checkpoint), "--out", str(out)], capsys)
    assert err.endswith("eval-clips.json: is a directory; give a file name" if clips else
                        "eval.json: is a directory; give a file name")


def test_a_photo_linking_to_nothing_is_named_and_unused_or_odd_ground_truth_is_said(tmp_path, capsys):
    """A photo that is a link to nothing was skipped without a word: it is named (exit 2); a ground truth with no
    photo of its name, and a 16-bit matte holding 8-bit values (read as alpha <= 0.004), get a warning."""
    ev = folder(tmp_path / "ev", count=2)
    shutil.copy(ev / "alpha" / "GT01.png", ev / "alpha" / "GT99.png")
    with pytest.warns(UserWarning, match=r"1 ground truth with no photo of its name, not evaluated: GT99"):
        EvalFolder(ev)
    (ev / "image" / "GT03.png").symlink_to(tmp_path / "gone.png")
    shutil.copy(ev / "alpha" / "GT01.png", ev / "alpha" / "GT03.png")
    capsys.readouterr()
    assert main(["eval", str(ev), *QUICK, "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {ev / 'image' / 'GT03.png'}: a symbolic link to nothing (its target is missing, or it links to itself)")
    deep = folder(tmp_path / "deep", count=1)
    path = deep / "alpha" / "GT01.png"
    cv2.imwrite(str(path), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.uint16))
    with pytest.warns(UserWarning, match="a 16-bit matte whose values are all at most 255"):
        assert EvalFolder(deep)[0].alpha.max() <= 255 / 65535


def test_the_held_back_scores_and_the_upscaled_sets_name_a_folder_they_lack(tmp_path):
    """evaluate_real on a folder without trimap2/ stopped with a KeyError, without gt/ with "gt must be a 2-D array"
    naming nothing; build_upscaled_set of a test split (no gt/) with an AttributeError."""
    from calib_data.phone_set import build_upscaled_set
    from common.errors import DataError
    from evaluation.protocol import evaluate_real

    root = folder(tmp_path / "am", count=2, photos="input", truth="gt")
    (root / "trimap1").mkdir()
    for name in ("GT01", "GT02"):
        alpha = cv2.imread(str(root / "gt" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(root / "trimap1" / f"{name}.png"), np.where(alpha > 250, 255, np.where(alpha < 5, 0, 128)))
    predict = lambda image, trimap: np.zeros(trimap.shape, np.float32)   # noqa: E731
    with pytest.raises(DataError, match=r"am: has no trimap2/ folder: the images are scored .* trimap1, trimap2"):
        evaluate_real(predict, ("GT01", "GT02"), root=root)
    assert len(evaluate_real(predict, ("GT01", "GT02"), ("trimap1",), root=root)[1]) == 2
    shutil.rmtree(root / "gt")
    with pytest.raises(DataError, match=r"am: has no gt/ folder"):
        evaluate_real(predict, ("GT01", "GT02"), ("trimap1",), root=root)
    with pytest.raises(DataError, match="has no gt/ folder of ground truth to upscale"):
        build_upscaled_set(root, 2, tmp_path / "cache", progress=False)
