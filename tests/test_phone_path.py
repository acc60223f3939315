"""The phone path: one geometry for a checkpoint and its exports, the band from the mask's resolution, the
higher-resolution refinement of the band, simulated segmenter masks, phone-resolution sets and ``adamat eval``."""

import json

import cv2
import numpy as np
import pytest
from conftest import disc_photo

from adamat.cli import main
from adamatting.checkpoint import load_model, save_checkpoint
from adamatting.config import DEFAULT_WEIGHTS
from calib_data.phone_set import PhoneSetConfig, build_phone_set, build_upscaled_set
from calib_data.segmenter_masks import RECIPES, simulate_mask
from common.errors import DataError
from common.metrics import compute_all, compute_regions
from evaluation.datasets import EvalFolder
from evaluation.folder_eval import EvalSettings, evaluate_folder
from evaluation.methods import ClosedForm, GuidedFilterMask, Model, RawMask
from export.onnx_graph import export_onnx
from runtime.band_refiner import SHIPPED
from runtime.matter import Matter
from runtime.preprocess import Band, band_for_mask, make_trimap
from runtime.refine import Refinement, TilePlan, _tiles, plan_tiles, refine

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SIZE = (64, 64)


@pytest.fixture(scope="module")
def tiny(seeded_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("phone")
    model = seeded_model("tiny")
    ckpt = save_checkpoint(root / "tiny.pt", model)
    onnx_path = root / "tiny_fp32.onnx"
    export_onnx(model, onnx_path, SIZE)
    return root, ckpt, onnx_path


def test_the_shipped_checkpoint_and_its_export_give_the_same_matte(tmp_path):
    """The product's geometry: weights/mobile.pt and its 512x512 FP32 ONNX letterbox a non-square photo the
    same way, so their mattes agree to numerical precision (with the FP32 band refiner: the INT8 one may round
    a difference of 1e-6 in its input to a step of its output)."""
    model, _ = load_model(DEFAULT_WEIGHTS)
    onnx_path = tmp_path / "mobile_fp32.onnx"
    export_onnx(model, onnx_path, (512, 512))
    photo, alpha = disc_photo(300, 451)
    mask = (alpha > 0.5).astype(np.float32)
    pt = Matter.from_artifact(DEFAULT_WEIGHTS, band_refiner=SHIPPED).predict(photo, mask=mask).alpha
    ox = Matter.from_artifact(onnx_path, band_refiner=SHIPPED).predict(photo, mask=mask).alpha
    assert pt.shape == ox.shape == (300, 451)
    assert np.abs(pt - ox).max() <= 1e-3


def test_the_band_follows_the_mask_resolution():
    # 2 mask pixels inside the edge, 6 outside; a mask pixel is 15.75 photo pixels here
    assert band_for_mask((3024, 4032), (192, 256)) == Band(32, 95)
    assert band_for_mask((6048, 8064), (192, 256)) == Band(63, 189)
    assert band_for_mask((600, 800), (75, 100)) == Band(16, 48)         # 1/8: a mask pixel is 8 photo pixels
    assert band_for_mask((600, 800), (600, 800)) == Band(14, 16)        # a full-resolution mask: the floors
    assert band_for_mask((600, 800), (192, 256)) == Band(14, 19)        # a phone mask on a small photo: the inner floor
    coarse = np.zeros((24, 32), np.float32)
    coarse[6:18, 8:24] = 1
    trimap = make_trimap((240, 320), mask=coarse)                  # 10 photo pixels per mask pixel: 20 in, 60 out
    row = trimap[120]
    assert row[80:100].tolist() == [128] * 20 and row[100:140].tolist() == [255] * 40    # the person's left edge
    assert row[20:80].tolist() == [128] * 60 and row[:20].tolist() == [0] * 20
    assert (row == 128).sum() == 2 * (20 + 60)
    assert make_trimap((240, 320), mask=coarse, band=5)[120].tolist().count(128) == 20    # 5 on each side
    assert make_trimap((240, 320), mask=coarse, band=Band(5, 10))[120].tolist().count(128) == 30


def test_a_trimap_made_at_a_lower_resolution_keeps_the_band_of_the_photos_pixels():
    """make_trimap(at=...) makes a mask's trimap at that resolution with the band scaled from the photo's pixels:
    the same band as the photo's trimap reduced, where the two differ only along the band's limits; a given
    trimap is reduced by nearest neighbour; at the photo's own size it is the photo's trimap bit for bit."""
    coarse = np.zeros((24, 32), np.float32)
    coarse[6:18, 8:24] = 1
    full = make_trimap((480, 640), mask=coarse)                    # 20 photo pixels per mask pixel: 40 in, 120 out
    small = make_trimap((480, 640), mask=coarse, at=(120, 160))
    assert small[60].tolist().count(128) == 2 * (10 + 30)           # the band in quarter-size pixels
    reduced = cv2.resize(full, (160, 120), interpolation=cv2.INTER_NEAREST_EXACT)
    assert np.count_nonzero(small != reduced) <= 0.01 * small.size
    assert np.array_equal(make_trimap((480, 640), mask=coarse, at=(480, 640)), full)
    assert np.array_equal(make_trimap((480, 640), full, at=(120, 160)), reduced)
    assert (make_trimap((480, 640), at=(120, 160)) == 128).all() and small.shape == (120, 160)


def test_simulated_masks_follow_their_recipe_and_are_seeded():
    _, alpha = disc_photo(300, 400)
    phone = simulate_mask(alpha, RECIPES["phone"], "a")
    assert phone.shape == (192, 256) and set(np.unique(phone)) <= {0.0, 1.0}
    assert np.array_equal(phone, simulate_mask(alpha, RECIPES["phone"], "a"))
    assert not np.array_equal(phone, simulate_mask(alpha, RECIPES["phone"], "b"))   # jitter per image
    down8 = simulate_mask(alpha, RECIPES["down8"], "a")
    assert down8.shape == (38, 50)
    up = cv2.resize(down8, (400, 300), interpolation=cv2.INTER_LINEAR) > 0.5
    assert np.mean(up != (alpha > 0.5)) < 0.02                     # no jitter: the outline at 1/8 only


def test_compute_regions_equals_compute_all_per_region():
    rng = np.random.default_rng(3)
    gt = rng.random((40, 50))
    pred = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1)
    trimap = rng.choice(np.array([0, 128, 255], np.uint8), gt.shape)
    both = compute_regions(pred, gt, trimap)
    assert both["all"] == compute_all(pred, gt, trimap, region="all")
    assert both["unknown"] == compute_all(pred, gt, trimap)


def test_refinement_tiles_cover_the_most_unsure_pixels_first():
    unsure = np.zeros((300, 400), bool)
    unsure[10:20, 10:20] = True           # 100 pixels in the top-left tile
    unsure[250:290, 300:390] = True       # 3600 pixels in the bottom-right one
    tiles = _tiles(unsure, (128, 128), 5)
    assert tiles[0] == (172, 272) and len(tiles) == 2   # the rest adds nothing: no third tile
    with pytest.raises(ValueError, match="tiles >= 1 and zoom > 1"):
        Refinement(tiles=0)


def test_planned_tiles_cover_the_band_with_their_full_weight():
    """Tiles chosen for any weight leave a band in their fading borders; the plan's cover it with weight 1, so
    it needs no coarse alpha there. A band the tile count cannot cover gives no plan."""
    band = np.zeros((600, 800), bool)
    band[:, 230:240] = True                          # inside the first column of tiles' fading right border
    trimap = np.where(band, 128, 0).astype(np.uint8)
    settings = Refinement(tiles=8, zoom=4)           # the refinement at the trimap's own resolution
    any_weight = TilePlan((600, 800), (256, 256), _tiles(band, (256, 256), 8))
    assert (any_weight.reach[band] < 1).any()
    plan = plan_tiles(trimap, (256, 256), settings)
    assert plan is not None and plan.work == (600, 800) and len(plan.corners) == 3
    assert (plan.reach[band] >= 1).all()
    assert plan_tiles(trimap, (256, 256), Refinement(tiles=2, zoom=4)) is None
    assert plan_tiles(np.zeros((600, 800), np.uint8), (256, 256), settings) is None      # no band


def test_a_covering_plan_refines_the_band_without_the_coarse_alpha():
    """Where the planned tiles cover the band, the coarse alpha does not reach the result: refine without it
    gives what refine with any coarse alpha gives (to float rounding), so the coarse pass is skipped."""
    photo, truth = disc_photo(300, 400)
    trimap = make_trimap((300, 400), mask=(truth > 0.5).astype(np.float32), band=12)

    def run(image, tile_trimap):       # a stand-in network: the photo's brightness
        return np.clip(image.mean(axis=2) * 1.5 - 0.2, 0, 1)

    settings = Refinement(tiles=8, zoom=2)
    plan = plan_tiles(trimap, (128, 128), settings)
    assert plan is not None
    coarse = np.where(trimap == 255, 1.0, np.where(trimap == 0, 0.0, 0.37)).astype(np.float32)
    with_coarse = refine(run, photo, trimap, coarse, (128, 128), settings, plan)
    without = refine(run, photo, trimap, None, (128, 128), settings, plan)
    assert np.abs(with_coarse - without).max() <= 1e-6           # the blend's float rounding: c + 1·(new − c)
    assert np.abs(without - coarse)[trimap == 128].mean() > 0.05      # the band was refined
    with pytest.raises(ValueError, match="needs the coarse alpha"):
        refine(run, photo, trimap, None, (128, 128), settings)


def test_matter_skips_the_coarse_pass_only_where_the_tiles_replace_it(tiny):
    _, ckpt, _ = tiny
    photo, alpha = disc_photo(400, 600)
    mask = cv2.resize((alpha > 0.5).astype(np.float32), (75, 50), interpolation=cv2.INTER_AREA)

    def timings(tiles=8, with_trimap_prob=False, **options):
        matter = Matter.from_artifact(ckpt, input_size=(256, 256), refinement=Refinement(tiles=tiles), **options)
        return matter.predict(photo, mask=mask, with_trimap_prob=with_trimap_prob).timings

    skipped = timings()
    assert "refine" in skipped and "model" not in skipped                    # six tiles of 256 at 512 px
    assert "model" in timings(with_trimap_prob=True)                         # its trimap output is asked for
    assert "model" in timings(clamp_known=False)                             # its alpha is used outside the band
    assert "model" in timings(tiles=1)                                       # one tile cannot cover the band


def test_refinement_changes_only_the_band_and_runs_its_tiles(tiny):
    _, ckpt, onnx_path = tiny
    photo, alpha = disc_photo(400, 600)
    mask = cv2.resize((alpha > 0.5).astype(np.float32), (75, 50), interpolation=cv2.INTER_AREA)
    plain = Matter.from_artifact(onnx_path, refinement=None).predict(photo, mask=mask)
    refined = Matter.from_artifact(onnx_path, refinement=Refinement(tiles=3, zoom=4)).predict(photo, mask=mask)
    trimap = make_trimap((400, 600), mask=mask)
    changed = np.abs(refined.alpha - plain.alpha) > 0
    assert changed.any() and not changed[trimap != 128].any()
    assert "refine" in refined.timings and "refine" not in plain.timings


def test_a_photo_above_the_working_side_is_matted_there_and_filtered_to_full_resolution(tiny, monkeypatch):
    """Above WORKING_SIDE the tiles and the band refiner see the photo at the working resolution, and one
    guided filter brings their alpha to the photo: full size, 0 / 1 where the trimap made at the working
    resolution is known across a working pixel's neighbours (nearest neighbour to the photo), which lies inside
    the known regions of the photo's own trimap, and in the band the photo's own edges, sharper than the working
    resolution's alpha upsampled bilinearly."""
    import runtime.matter

    _, _, onnx_path = tiny
    photo, alpha = disc_photo(400, 600)
    mask = cv2.resize((alpha > 0.5).astype(np.float32), (75, 50), interpolation=cv2.INTER_AREA)
    matter = Matter.from_artifact(onnx_path, refinement=Refinement(tiles=2, zoom=4))
    seen, refiner, tiles = {}, matter.band_refiner, runtime.matter.refine

    def spy(name, stage, at):      # records the shape of the photo, argument ``at`` of the stage
        return lambda *args: (seen.setdefault(name, args[at].shape[:2]), stage(*args))[1]

    monkeypatch.setattr(matter, "band_refiner", spy("band", refiner, 0))
    monkeypatch.setattr(runtime.matter, "refine", spy("tiles", tiles, 1))
    monkeypatch.setattr(runtime.matter, "WORKING_SIDE", 300)
    result = matter.predict(photo, mask=mask)
    working, window = make_trimap((400, 600), mask=mask, at=(200, 300)), np.ones((3, 3), np.uint8)
    fg, bg = (cv2.resize(cv2.erode(cv2.compare(working, level, cv2.CMP_EQ), window), (600, 400),
                         interpolation=cv2.INTER_NEAREST) > 0 for level in (255, 0))
    full = make_trimap((400, 600), mask=mask)
    assert seen == {"tiles": (200, 300), "band": (200, 300)} and result.alpha.shape == (400, 600)
    assert (result.alpha[fg] == 1).all() and (result.alpha[bg] == 0).all()
    assert (full[fg] == 255).all() and (full[bg] == 0).all() and (fg | bg).sum() > 0.9 * (full != 128).sum()
    band = full == 128
    assert not np.array_equal(result.alpha[band], cv2.resize(cv2.resize(result.alpha, (300, 200),
                                                            interpolation=cv2.INTER_AREA), (600, 400))[band])


def test_an_8_bit_photo_is_matted_without_a_float_copy_and_as_its_float_self(tiny, monkeypatch):
    """Matter keeps 8-bit pixels 8-bit (the working resolution's photo and the letterbox are resized from them):
    the same matte as the float photo's within rounding."""
    import runtime.matter

    _, _, onnx_path = tiny
    photo, alpha = disc_photo(400, 600)
    u8 = np.rint(photo * 255).astype(np.uint8)
    mask = cv2.resize((alpha > 0.5).astype(np.float32), (75, 50), interpolation=cv2.INTER_AREA)
    monkeypatch.setattr(runtime.matter, "WORKING_SIDE", 300)
    matter = Matter.from_artifact(onnx_path)
    a, b = (matter.predict(p, mask=mask).alpha for p in (u8, u8.astype(np.float32) / 255))
    assert np.abs(a - b).mean() < 1e-3


def _simple_folder(root, count=2, with_masks=False):
    for sub in ("image", "alpha") + (("mask",) if with_masks else ()):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        photo, alpha = disc_photo(120, 160, seed=i)
        cv2.imwrite(str(root / "image" / f"p{i}.png"), np.rint(photo[..., ::-1] * 255).astype(np.uint8))
        cv2.imwrite(str(root / "alpha" / f"p{i}.png"), np.rint(alpha * 255).astype(np.uint8))
        if with_masks:
            m = cv2.resize((alpha > 0.5).astype(np.uint8) * 255, (40, 30), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(root / "mask" / f"p{i}.png"), m)
    return root


class Oracle:
    """Returns the ground truth it was given: every metric must be 0."""

    name, needs_mask = "oracle", False

    def __init__(self, folder):
        self.truth = {tuple(it.image.shape): it.alpha for it in folder}

    def predict(self, image, trimap, mask):
        return self.truth[tuple(image.shape)]


def test_evaluate_folder_in_the_mask_protocol(tiny, tmp_path):
    _, ckpt, _ = tiny
    folder = EvalFolder(_simple_folder(tmp_path / "set", count=1))
    methods = [Oracle(folder), RawMask(), GuidedFilterMask(), ClosedForm(cap=5000), Model.open(ckpt, None)]
    result = evaluate_folder(folder, methods, EvalSettings("mask", "down8"))
    means = {(m["method"], m["where"]): m for m in result.means()}
    assert {w for _, w in means} == {"whole", "band"} and len(result.rows) == 2 * len(methods)
    assert means[("oracle", "whole")]["SAD"] == 0 and means[("oracle", "band")]["Grad"] == 0
    assert means[("raw mask", "whole")]["SAD"] > 0.1
    assert means[("closed-form", "whole")]["SAD"] < means[("raw mask", "whole")]["SAD"]
    assert all(r["seconds"] >= 0 and r["size"] == [120, 160] for r in result.rows)


def test_evaluate_folder_uses_given_masks_and_the_trimap_protocol_skips_mask_methods(tmp_path):
    folder = EvalFolder(_simple_folder(tmp_path / "set", count=1, with_masks=True))
    assert folder.has_masks and folder[0].mask.shape == (30, 40)
    settings = EvalSettings("mask", "phone")
    result = evaluate_folder(folder, [RawMask()], settings)
    assert result.settings.recipe == "given" and settings.recipe == "phone"     # the caller's settings unchanged
    with pytest.raises(ValueError, match="the trimap protocol needs trimaps"):
        evaluate_folder(folder, [RawMask(), Oracle(folder)], EvalSettings("trimap"))


def test_a_trimap_without_an_unknown_pixel_is_not_scored_as_zero(tmp_path):
    """The trimap protocol scores the unknown band: a trimap without one would average a 0 into every mean."""
    root = _simple_folder(tmp_path / "set", count=2)
    (root / "trimap").mkdir()
    for i in range(2):
        alpha = cv2.imread(str(root / "alpha" / f"p{i}.png"), cv2.IMREAD_GRAYSCALE)
        band = (alpha > 0) & (alpha < 255) if i == 0 else np.zeros_like(alpha, bool)
        trimap = np.where(band, 128, np.where(alpha > 127, 255, 0)).astype(np.uint8)
        cv2.imwrite(str(root / "trimap" / f"p{i}.png"), trimap)
    folder = EvalFolder(root)
    result = evaluate_folder(folder, [RawMask(), Oracle(folder), GuidedFilterMask()], EvalSettings("trimap"))
    assert [(r["image"], r["method"]) for r in result.rows] == [("p0", "oracle")]
    assert [(r["image"], r["method"], r["reason"]) for r in result.na] == [
        ("p1", "oracle", "trimap marks no unknown pixel: nothing to score")]
    assert [(m["method"], m["images"]) for m in result.means()] == [("oracle", 1)]


def test_eval_folders_refuse_bad_layouts(tmp_path):
    with pytest.raises(DataError, match="evaluation folder not found"):
        EvalFolder(tmp_path / "missing")
    (tmp_path / "noalpha" / "image").mkdir(parents=True)
    with pytest.raises(DataError, match="has image/ but no alpha/"):
        EvalFolder(tmp_path / "noalpha")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no images with ground truth \(expected image/ \+ alpha/, or the "
                                        r"alphamatting.com layout input/ \+ gt/\)"):
        EvalFolder(tmp_path / "empty")
    for sub in ("alpha", "mask"):                    # a photo with no ground truth (or no mask): found at once
        folder = _simple_folder(tmp_path / f"no-{sub}", count=3)
        (folder / "mask").mkdir(exist_ok=True)
        for i in range(3):
            cv2.imwrite(str(folder / "mask" / f"p{i}.png"), np.full((12, 16), 255, np.uint8))
        (folder / sub / "p2.png").unlink()
        with pytest.raises(DataError, match=rf"no-{sub}/{sub}: no file named p2"):
            EvalFolder(folder)
    with pytest.raises(DataError, match="no image named p7"):
        EvalFolder(_simple_folder(tmp_path / "some", count=2), only=["p1", "p7"])
    assert EvalFolder(tmp_path / "some", only=["p1"]).names == ["p1"]
    folder = EvalFolder(_simple_folder(tmp_path / "ok", count=2), long_side=80, limit=1)
    assert len(folder) == 1 and folder[0].image.shape == (60, 80, 3) and folder[0].alpha.shape == (60, 80)


def test_eval_command_writes_the_table_and_the_json(tiny, tmp_path, capsys):
    _, ckpt, onnx_path = tiny
    folder = _simple_folder(tmp_path / "set", count=2)
    out = tmp_path / "out"
    assert main(["eval", str(folder), "--artifacts", str(ckpt), str(onnx_path), "--recipe", "down8",
                 "--refine-tiles", "2", "--also-unrefined", "--closed-form-cap", "4000", "--out", str(out)]) == 0
    data = json.loads((out / "eval.json").read_text())
    assert data["format"] == "adamatting-eval/1" and data["settings"]["protocol"] == "mask"
    assert len(data["methods"]) == 7 and len(data["rows"]) == 2 * 2 * 7
    assert "| raw mask | whole | 2 |" in (out / "eval.md").read_text()
    assert main(["eval", str(tmp_path / "nope"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "evaluation folder not found" in err[-1]


def test_phone_sets_are_built_once_in_the_eval_layout(tmp_path):
    cfg = PhoneSetConfig(name="small", count=2, size=(96, 128), kinds=("fur", "glass"))
    path = build_phone_set(cfg, tmp_path, progress=False)
    names = sorted(p.stem for p in (path / "image").iterdir())
    assert names == ["00_fur_128x96", "01_glass_96x128"]
    assert cv2.imread(str(path / "image" / "01_glass_96x128.jpg")).shape == (128, 96, 3)
    assert cv2.imread(str(path / "mask" / "00_fur_128x96.png"), cv2.IMREAD_GRAYSCALE).shape == (192, 256)
    mtime = (path / "alpha" / "00_fur_128x96.png").stat().st_mtime_ns
    assert build_phone_set(cfg, tmp_path, progress=False) == path
    assert (path / "alpha" / "00_fur_128x96.png").stat().st_mtime_ns == mtime       # reused, not rebuilt
    assert len(EvalFolder(path)) == 2 and EvalFolder(path).has_masks
    with pytest.raises(DataError, match="kinds must be a list among"):
        PhoneSetConfig(kinds=("smoke",)).validated()
    assert PhoneSetConfig.load("phone").size == (3024, 4032)


def test_upscaled_real_sets(tmp_path):
    root = tmp_path / "am"
    for sub in ("input", "gt", "trimap1"):
        (root / sub).mkdir(parents=True)
    photo, alpha = disc_photo(30, 40)
    cv2.imwrite(str(root / "input" / "a.png"), np.rint(photo[..., ::-1] * 255).astype(np.uint8))
    cv2.imwrite(str(root / "gt" / "a.png"), np.rint(alpha * 255).astype(np.uint8))
    cv2.imwrite(str(root / "trimap1" / "a.png"), np.full((30, 40), 128, np.uint8))
    path = build_upscaled_set(root, 2, tmp_path / "cache", progress=False)
    item = EvalFolder(path)[0]
    assert item.image.shape == (60, 80, 3) and item.alpha.shape == (60, 80) and item.mask is None


def test_photos_over_50_megapixels_are_refused_before_decoding(tmp_path, capsys):
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("L", (8000, 6400)).save(big)                       # 51.2 megapixels
    with pytest.raises(DataError, match="8000x6400 \\(51 megapixels\\); the limit is 50 megapixels"):
        Matter.from_artifact(DEFAULT_WEIGHTS).predict(big)
    assert main(["bokeh", str(big), "-o", str(tmp_path / "o.jpg")]) == 2
    assert "the limit is 50 megapixels" in capsys.readouterr().err and not (tmp_path / "o.jpg").exists()
    with pytest.raises(DataError, match="the limit is 50 megapixels"):
        Matter.from_artifact(DEFAULT_WEIGHTS).predict(np.zeros((7100, 7100, 3), np.uint8))


def test_the_photo_alpha_settles_where_the_working_alpha_is_sure():
    """runtime.matter.decided: the photo's alpha is decided (0 / 1) where the working resolution's stays within
    the margin of 0 / 1 across the whole window around the pixel, and where the trimap is sure; open (the last
    filter computes it) elsewhere."""
    from runtime.matter import SETTLED, decided
    from runtime.upsample import OPEN

    alpha_w = np.zeros((40, 40), np.float32)
    alpha_w[:, 20:] = 1.0
    alpha_w[10, 5] = 0.5                                   # one unsure pixel in the background
    alpha_w[30, 30] = 1 - SETTLED["margin"] / 2            # within the margin of 1: still sure
    r = SETTLED["window"] // 2
    expected = np.full((40, 40), OPEN, np.uint8)
    for i in range(40):
        for j in range(40):
            window = alpha_w[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
            expected[i, j] = 0 if window.max() < SETTLED["margin"] else 255 if window.min() > 1 - SETTLED["margin"] else OPEN
    low = decided(alpha_w, (80, 80))                       # the photo at twice the working resolution: the
    assert np.array_equal(low, expected)                   # label at the working one, read by nearest neighbour
    label = cv2.resize(low, (80, 80), interpolation=cv2.INTER_NEAREST)
    assert label[20, 10] == OPEN and label[20, 10 + 2 * (r + 1)] == 0     # open only within the window's reach
    known = np.full((80, 80), 128, np.uint8)
    known[:, :4], known[:, 76:], known[20, 10] = 255, 0, 0                # the trimap wins where it is sure
    with_known = decided(alpha_w, (80, 80), known)
    assert (with_known[:, :4] == 255).all() and (with_known[:, 76:] == 0).all() and with_known[20, 10] == 0
    assert np.array_equal(with_known[:, 4:76], np.where(known == 128, label, known)[:, 4:76])
    # a trimap at the working resolution decides where it holds across a working pixel's neighbours: the photo's
    # pixels it decides are known in the photo's own trimap (here the disc's, made at both resolutions)
    unsure = np.full((40, 40), 0.5, np.float32)
    mask = cv2.circle(np.zeros((40, 40), np.float32), (20, 20), 12, 1.0, -1)
    full, working = (make_trimap((80, 80), mask=mask, band=6, at=at) for at in ((80, 80), (40, 40)))
    label = decided(unsure, (80, 80), working)
    assert label.shape == (40, 40)
    label = cv2.resize(label, (80, 80), interpolation=cv2.INTER_NEAREST)
    assert (label[label != OPEN] == full[label != OPEN]).all() and (label != OPEN).mean() > 0.5
    assert (cv2.resize(working, (80, 80), interpolation=cv2.INTER_NEAREST)[full == 128] != 128).any()   # unshrunk


def test_the_filter_answers_only_where_alpha_is_open():
    """runtime.upsample.upsample_alpha with ``decided``: 0 / 1 where decided, the filter's own answer where open
    (computed on the open columns only: to float noise), for an 8-bit RGB guide, a float one and a gray one."""
    from runtime.upsample import OPEN, upsample_alpha

    rng = np.random.default_rng(0)
    for shape, kind in (((151, 213), "uint8"), ((150, 200), "float"), ((49, 515), "gray")):
        low = cv2.GaussianBlur(rng.random((shape[0] // 4, shape[1] // 4), dtype=np.float32), (5, 5), 1)
        guide = (rng.random((*shape, 3)) * 255).astype(np.uint8)
        guide = guide if kind == "uint8" else guide.astype(np.float32) / 255
        label = np.full(shape, OPEN, np.uint8)
        draw = rng.random(shape)
        label[draw < 0.3], label[draw > 0.8], label[:, :100] = 0, 255, 0
        options = {"guide": "gray" if kind == "gray" else "rgb", "radius": 2, "eps": 1e-4}
        for method in ("guided", "bilinear"):
            everywhere = upsample_alpha(low, guide, method=method, **options)
            out = upsample_alpha(low, guide, method=method, decided=label, **options)
            assert np.array_equal(out[label == 0], np.zeros((label == 0).sum(), np.float32))
            assert np.array_equal(out[label == 255], np.ones((label == 255).sum(), np.float32))
            assert np.abs(out[label == OPEN] - everywhere[label == OPEN]).max() < 1e-5


def test_a_label_at_a_lower_resolution_is_read_as_its_nearest_neighbour_resize_would_be():
    """``decided`` at a third of the photo's resolution (Matter's working one): the same alpha, bit for bit, as the
    label brought to the photo by cv2.resize's nearest neighbour, which is never made; the bilinear path too."""
    from runtime.upsample import OPEN, upsample_alpha

    rng = np.random.default_rng(2)
    guide = (rng.random((301, 427, 3)) * 255).astype(np.uint8)
    low = cv2.GaussianBlur(rng.random((75, 107), dtype=np.float32), (5, 5), 1)
    label = np.full((100, 142), OPEN, np.uint8)
    label[rng.random(label.shape) < 0.3], label[:, :40] = 255, 0
    full = cv2.resize(label, (427, 301), interpolation=cv2.INTER_NEAREST)
    for method in ("guided", "bilinear"):
        assert np.array_equal(upsample_alpha(low, guide, method=method, decided=label),
                              upsample_alpha(low, guide, method=method, decided=full))


def test_a_label_with_nothing_open_decides_every_pixel():
    """A trimap or mask with no unknown band leaves the filter nothing to compute: every pixel 0 / 1 as labelled."""
    from runtime.upsample import upsample_alpha

    rng = np.random.default_rng(1)
    label = np.where(rng.random((120, 160)) < 0.5, 0, 255).astype(np.uint8)
    guide = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    out = upsample_alpha(rng.random((30, 40), dtype=np.float32), guide, decided=label)
    assert np.array_equal(out, (label / 255).astype(np.float32))
