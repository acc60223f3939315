"""The band refiner: its network, its ONNX graph under the runtime's loader, its place in Matter, its training,
the see-through subjects it trains on, and ``adamat train-refiner``."""

import importlib.util
import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from adamat.cli import main
from adamatting.model.band_refiner import RECEPTIVE_RADIUS, BandRefiner
from adamatting.train.band_refiner import RefinerRecipe, train_band_refiner
from benchmarks.measurements import load
from calib_data.procedural import KINDS, SEE_THROUGH_KINDS, make_foreground, random_foreground
from evaluation.datasets import EvalImage
from evaluation.refiner_data import folds, phone_scale_items, refiner_samples, see_through_items
from common.manifest import sha256_of
from export import band_refiner_int8
from export.band_refiner_graph import from_onnx, max_difference, write_band_refiner
from export.errors import ExportError
from runtime import band_refiner as runtime_refiner
from runtime.errors import BackendUnavailable
from runtime.mask_prior import guided_mask, mask_at
from runtime.matter import WORKING_SIDE, Matter
from runtime.preprocess import make_trimap

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def seeded_refiner(seed=0, channels=8) -> BandRefiner:
    torch.manual_seed(seed)
    model = BandRefiner(channels)
    for p in model.parameters():
        torch.nn.init.normal_(p, 0.0, 0.3)
    return model.eval()


def disc(h, w, seed=0):
    """A photo of a bright disc on a smooth random background, its exact alpha and a coarse 1/4 mask."""
    rng = np.random.default_rng(seed)
    bg = cv2.resize(rng.random((3, 4, 3), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[:h, :w]
    alpha = np.clip((min(h, w) / 3 - np.hypot(yy - h / 2, xx - w / 2)) / 2 + 0.5, 0, 1).astype(np.float32)
    photo = np.clip(alpha[..., None] * 0.9 + (1 - alpha[..., None]) * bg * 0.5, 0, 1).astype(np.float32)
    mask = cv2.resize((alpha > 0.5).astype(np.float32), (w // 4, h // 4), interpolation=cv2.INTER_AREA) > 0.5
    return photo, alpha, mask.astype(np.float32)


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    model = seeded_refiner()
    path = write_band_refiner(model, tmp_path_factory.mktemp("refiner") / "refiner.onnx", {"test": True})
    return model, path


def test_an_untrained_refiner_returns_the_mean_of_the_network_and_the_filter():
    alpha, prior = torch.rand(1, 1, 20, 24), torch.rand(1, 1, 20, 24)
    out = BandRefiner()(torch.rand(1, 3, 20, 24) * 2 - 1, alpha, prior, torch.rand(1, 1, 20, 24))
    assert torch.allclose(out, (alpha + prior) / 2, atol=1e-6)


def test_the_runtime_tiles_read_exactly_the_receptive_field():
    """An output pixel depends on inputs RECEPTIVE_RADIUS away and no further: the runtime's halo must be it."""
    model = seeded_refiner()
    torch.manual_seed(1)
    x = torch.rand(1, model.body[0].in_channels, 41, 41, requires_grad=True)
    model.body(x)[0, :, 20, 20].sum().backward()        # the layers before the output's gate and clamp
    ys, xs = np.nonzero(x.grad[0].abs().sum(0).numpy())
    assert max(np.abs(ys - 20).max(), np.abs(xs - 20).max()) == RECEPTIVE_RADIUS
    assert runtime_refiner.RECEPTIVE_RADIUS == RECEPTIVE_RADIUS


def test_the_exported_graph_matches_pytorch_under_the_runtime_loader(graph):
    model, path = graph
    assert max_difference(model, path) < 1e-4


def test_the_runtime_refines_the_band_only_and_matches_pytorch_on_the_reflected_photo(graph, monkeypatch):
    """The tiles give what the refiner gives on the whole photo reflected at its borders (cv2.BORDER_REFLECT),
    up to the last row of tiles that holds a single photo row (129 = 4 × 32 + 1)."""
    model, path = graph
    monkeypatch.setattr(runtime_refiner, "TILE", 32)      # several tiles on a small photo
    photo, _, mask = disc(129, 160)
    trimap = make_trimap(photo.shape[:2], mask=mask, band=6)
    alpha = np.clip(mask_at(mask, photo.shape[:2]), 0, 1)
    out = runtime_refiner.BandRefiner.open(path)(photo, trimap, alpha, mask)
    band = trimap == 128
    assert np.array_equal(out[~band], alpha[~band]) and not np.allclose(out[band], alpha[band])
    r = RECEPTIVE_RADIUS
    planes = [photo * 2 - 1, alpha, guided_mask(photo, mask), mask_at(mask, photo.shape[:2])]
    t = lambda a: torch.from_numpy(  # noqa: E731
        np.atleast_3d(cv2.copyMakeBorder(a, r, r, r, r, cv2.BORDER_REFLECT)).transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        want = model(*map(t, planes))[0, 0, r:-r, r:-r].numpy()
    sel = band & (want > 0.01) & (want < 0.99)   # away from the snapping to 0 and 1
    assert sel.sum() > 50 and np.abs(out[sel] - want[sel]).max() < 1e-4


def test_the_answer_does_not_depend_on_the_tiles(graph, monkeypatch):
    """Tiles are a way to batch the work: the band's answer does not see where a tile ended, nor how little of
    the last tile row lies inside the photo (121 = 5 × 24 + 1: its halo reaches past the pixel row it reads)."""
    _, path = graph
    photo, _, mask = disc(121, 161)
    trimap = make_trimap(photo.shape[:2], mask=mask, band=8)
    alpha = mask_at(mask, photo.shape[:2])
    answers = []
    for tile in (128, 24):
        monkeypatch.setattr(runtime_refiner, "TILE", tile)
        answers.append(runtime_refiner.BandRefiner.open(path)(photo, trimap, alpha, mask))
    assert np.abs(answers[0] - answers[1]).max() < 1e-5


def test_the_prior_is_filtered_only_where_the_refiner_reads_it(graph, monkeypatch):
    """Above the prior's fitting resolution (512 px) the guided filter of the mask runs only within the receptive
    radius of the band: the same prior there, 0 elsewhere, and the same band as with the whole plane's prior."""
    _, path = graph
    photo, _, mask = disc(600, 800)
    band = make_trimap(photo.shape[:2], mask=mask, band=10) == 128
    near = runtime_refiner._reach(band)
    assert band.sum() < near.sum() < 0.3 * near.size
    whole, part = guided_mask(photo, mask), guided_mask(photo, mask, near)
    assert 0.05 < whole[near].mean() < 0.95 and np.abs(part - whole)[near].max() < 1e-5 and not part[~near].any()
    alpha = mask_at(mask, photo.shape[:2])
    trimap = np.where(band, 128, 0).astype(np.uint8)
    refined = runtime_refiner.BandRefiner.open(path)(photo, trimap, alpha, mask)
    monkeypatch.setattr(runtime_refiner, "guided_mask", lambda photo, mask, need=None: guided_mask(photo, mask))
    assert np.abs(runtime_refiner.BandRefiner.open(path)(photo, trimap, alpha, mask) - refined).max() < 1e-5


def test_a_larger_photo_takes_its_edges_from_the_photo():
    """Above Matter's working resolution the answer reaches the photo through the guided filter: a perfect answer
    at a quarter of the resolution comes back with the photo's sharp edge, not a bilinear blur."""
    from runtime.matter import WORKING_UPSAMPLE
    from runtime.upsample import upsample_alpha

    photo, truth, mask = disc(240, 320)
    band = make_trimap(photo.shape[:2], mask=mask, band=12) == 128
    low = cv2.resize(truth, (80, 60), interpolation=cv2.INTER_AREA)
    out = upsample_alpha(low, photo, cv2.resize(photo, (80, 60), interpolation=cv2.INTER_AREA), **WORKING_UPSAMPLE)
    blurred = cv2.resize(low, (320, 240))
    assert np.abs(out - truth)[band].mean() < 0.5 * np.abs(blurred - truth)[band].mean()


def test_missing_or_damaged_refiner_files_are_named(tmp_path):
    with pytest.raises(BackendUnavailable, match="nope.onnx"):
        runtime_refiner.BandRefiner.open(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    for runtime in ("onnxruntime", "opencv"):
        with pytest.raises(ValueError, match="bad.onnx"):
            runtime_refiner.BandRefiner.open(bad, runtime)


def test_a_damaged_openvino_refiner_is_named_without_the_frontends_native_lines(tmp_path, capfd):
    """OpenVINO's frontends each tried to parse it and wrote their failures to the process's stderr beside the
    error (TensorFlow's 'Error parsing text-format tensorflow.GraphDef')."""
    bad = tmp_path / "bad.xml"
    bad.write_text("<net><broken")
    capfd.readouterr()
    with pytest.raises(ValueError, match="bad.xml: not a band refiner model OpenVINO can read"):
        runtime_refiner.BandRefiner.open(bad)
    assert capfd.readouterr().err == ""


def test_a_matting_network_given_as_the_refiner_is_named_as_such(tmp_path, capsys):
    """A graph with other inputs (the matting network's image and trimap) is refused as it is opened, by onnxruntime
    and OpenVINO alike, in one line: not at its first tile, in the runtime's words."""
    import onnx
    import openvino as ov
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, c, 8, 8]) for n, c in (("image", 3), ("trimap", 1))]
    out = helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1, 1, 8, 8])
    nodes = [helper.make_node("ReduceMean", ["image"], ["m"], axes=[1], keepdims=1), helper.make_node("Add", ["m", "trimap"], ["alpha"])]
    model = helper.make_model(helper.make_graph(nodes, "matting", inputs, [out]), opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, tmp_path / "matting.onnx")
    ov.save_model(ov.convert_model(tmp_path / "matting.onnx"), tmp_path / "matting.xml")
    cv2.imwrite(str(tmp_path / "p.png"), np.zeros((40, 60, 3), np.uint8))
    for name in ("matting.onnx", "matting.xml"):
        with pytest.raises(ValueError, match=rf"{name}: not a band refiner: its inputs are image, trimap"):
            runtime_refiner.BandRefiner.open(tmp_path / name)
        assert main(["bokeh", str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"), "--band-refiner",
                     str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not a band refiner" in err, err
    with pytest.raises(ValueError, match="matting.onnx: not a band refiner: OpenCV cannot run it on the inputs"):
        runtime_refiner.BandRefiner.open(tmp_path / "matting.onnx", "opencv")   # OpenCV names no inputs: it tries


def test_onnxruntime_runs_the_refiner_where_installed_and_opencv_gives_the_same_band(graph, monkeypatch):
    _, path = graph
    photo, _, mask = disc(120, 160)
    trimap = make_trimap(photo.shape[:2], mask=mask, band=8)
    alpha = mask_at(mask, photo.shape[:2])
    spec = importlib.util.find_spec
    default, opencv = runtime_refiner.BandRefiner.open(path), runtime_refiner.BandRefiner.open(path, "opencv")
    assert (default.runtime, opencv.runtime) == ("onnxruntime", "opencv")
    assert np.abs(default(photo, trimap, alpha, mask) - opencv(photo, trimap, alpha, mask)).max() < 1e-5
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else spec(name, *a))
    assert runtime_refiner.BandRefiner.open(path).runtime == "opencv"                 # onnxruntime not installed
    with pytest.raises(BackendUnavailable, match="onnxruntime is not installed"):
        runtime_refiner.BandRefiner.open(path, "onnxruntime")


def test_matter_runs_the_refiner_in_the_band_when_a_mask_is_given(graph, tiny_checkpoint):
    _, path = graph
    photo, _, mask = disc(96, 128)
    plain = Matter.from_artifact(tiny_checkpoint, input_size=(64, 64), band_refiner=None, refinement=None)
    refined = Matter.from_artifact(tiny_checkpoint, input_size=(64, 64), band_refiner=path, refinement=None)
    a, b = plain.predict(photo, mask=mask), refined.predict(photo, mask=mask)
    trimap = make_trimap(photo.shape[:2], mask=mask)
    band = trimap == 128
    assert "band" in b.timings and "band" not in a.timings
    assert np.array_equal(a.alpha[~band], b.alpha[~band]) and not np.allclose(a.alpha[band], b.alpha[band])
    # a trimap alone gives the refiner no mask: the matte is the network's
    assert np.array_equal(refined.predict(photo, trimap=trimap).alpha, plain.predict(photo, trimap=trimap).alpha)


def test_training_is_seeded_and_learns():
    photo, alpha, mask = disc(64, 80)
    item = EvalImage("d", photo, alpha)

    class Blurry:   # a "network" whose alpha is the mask, blurred: the refiner must sharpen it
        def predict(self, image, trimap, with_trimap_prob):
            return type("R", (), {"alpha": cv2.GaussianBlur(mask_at(mask, alpha.shape), (9, 9), 3)})()

    samples = refiner_samples([item], Blurry(), [1.0], [0, 1])
    recipe = RefinerRecipe(steps=40, batch=4, patch=32, channels=4, lr=5e-3)
    a, b = train_band_refiner(samples, recipe), train_band_refiner(samples, recipe)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    s = samples[0]
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x))[None]  # noqa: E731
    args = (t(s["image"].transpose(2, 0, 1) * 2 - 1), t(s["alpha"][None]), t(s["prior"][None]), t(s["mask"][None]))
    band = s["band"] > 0
    with torch.no_grad():
        err = [np.abs(m(*args)[0, 0].numpy() - s["gt"])[band].mean() for m in (BandRefiner(4), a)]
    assert err[1] < err[0]


def test_see_through_subjects_have_holes_and_stay_out_of_the_networks_draw():
    rng = np.random.default_rng(3)
    for kind in SEE_THROUGH_KINDS:
        _, alpha = make_foreground(kind, (96, 128), rng)
        ys, xs = np.nonzero(alpha > 0)
        hull = alpha[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        assert (hull == 0).mean() > 0.05 and (alpha == 1).any() or (alpha > 0.5).any()
    assert not set(SEE_THROUGH_KINDS) & set(KINDS)
    assert {random_foreground((48, 48), np.random.default_rng(s))[0] for s in range(40)} <= set(KINDS)
    items = see_through_items(2, seed=0, sides=(64, 80))
    assert [i.name for i in items] == ["net-000", "foliage-001"] and max(items[1].alpha.shape) <= 80


def test_phone_scale_subjects_are_made_large_and_brought_to_the_working_resolution():
    items = phone_scale_items(2, seed=4, size=(1200, 1600))
    assert [i.name for i in items] == [f"phone-{KINDS[0]}-000", f"phone-{KINDS[1]}-001"]
    for item in items:
        assert max(item.alpha.shape) == WORKING_SIDE and item.image.shape[:2] == item.alpha.shape
        assert ((item.alpha > 0) & (item.alpha < 1)).mean() > 0.001
    again = phone_scale_items(1, seed=4, size=(1200, 1600))[0]
    assert np.array_equal(again.alpha, items[0].alpha)                  # seeded


def test_folds_keep_the_held_back_split_together():
    names = ["GT01", "GT03", "GT05", "GT15", "GT19", "GT25", "GT27"]
    assert folds(names, 3) == [["GT03", "GT15", "GT19", "GT25"], ["GT01", "GT27"], ["GT05"]]
    assert folds(["a", "b", "c"], 2) == [["a", "c"], ["b"]]


def test_train_refiner_command_writes_the_graph_and_the_kfold_table(tiny_checkpoint, tmp_path, capsys):
    root = tmp_path / "set"
    for sub in ("image", "alpha"):
        (root / sub).mkdir(parents=True)
    for i in range(2):
        photo, alpha, _ = disc(72, 96, seed=i)
        cv2.imwrite(str(root / "image" / f"p{i}.png"), np.rint(photo[..., ::-1] * 255).astype(np.uint8))
        cv2.imwrite(str(root / "alpha" / f"p{i}.png"), np.rint(alpha * 255).astype(np.uint8))
    out, measured = tmp_path / "r.onnx", tmp_path / "band-refiner-kfold-2026-12-05-test.json"
    assert main(["train-refiner", "--checkpoint", str(tiny_checkpoint), "--folder", str(root), "--out", str(out),
                 "--measured", str(measured), "--scales", "1", "--seeds", "0", "--steps", "3", "--channels", "4",
                 "--see-through", "1", "--folds", "2"]) == 0
    assert "refined/filter SAD" in capsys.readouterr().out
    data = load(measured)
    assert data["rows"][0]["photos"] == 2 and len(data["details"]["per_photo"]) == 2
    assert runtime_refiner.BandRefiner.open(out).path == out
    meta = json.loads({p.key: p.value for p in __import__("onnx").load(str(out)).metadata_props}["recipe"])
    assert meta["steps"] == 3 and meta["channels"] == 4
    int8 = tmp_path / "r_int8.onnx"                    # its INT8 graph beside it, quantized from it
    assert _props(int8)[runtime_refiner.QUANTIZED_FROM] == sha256_of(out)
    assert "band tiles of 1 photos" in json.loads(_props(int8)["calibration"])
    # --quantize-only makes it again from the graph that is there, and names a missing one
    int8.unlink()
    args = ["train-refiner", "--checkpoint", str(tiny_checkpoint), "--folder", str(root), "--scales", "1"]
    assert main(args + ["--out", str(out), "--quantize-only"]) == 0 and int8.is_file()
    assert main(args + ["--out", str(tmp_path / "none.onnx"), "--quantize-only"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "none.onnx: no band refiner graph to quantize" in err and err.count("\n") == 1


def _props(path) -> dict:
    return {p.key: p.value for p in __import__("onnx").load(str(path)).metadata_props}


def test_the_shipped_refiner_runs_as_its_int8_graph_under_onnxruntime_with_the_same_band():
    """The INT8 graph that ships was quantized from the FP32 graph that ships (retraining without
    requantizing fails here), onnxruntime runs it, and its band is the FP32 graph's within a mean 0.01."""
    shipped = runtime_refiner.BandRefiner.shipped()
    assert (shipped.path, shipped.runtime, shipped.name) == (runtime_refiner.SHIPPED_INT8, "onnxruntime",
                                                             "band refiner INT8")
    assert _props(runtime_refiner.SHIPPED_INT8)[runtime_refiner.QUANTIZED_FROM] == sha256_of(runtime_refiner.SHIPPED)
    photo, alpha, mask = disc(240, 320)
    trimap = make_trimap(photo.shape[:2], mask=mask, band=12)
    coarse = np.clip(alpha + np.random.default_rng(0).normal(0, 0.1, alpha.shape), 0, 1).astype(np.float32)
    fp32_refiner = runtime_refiner.BandRefiner.open(runtime_refiner.SHIPPED)
    assert fp32_refiner.name == "band refiner"
    fp32 = fp32_refiner(photo, trimap, coarse, mask)
    int8 = shipped(photo, trimap, coarse, mask)
    band = trimap == 128
    assert np.array_equal(int8[~band], fp32[~band]) and np.abs(int8 - fp32)[band].mean() < 0.01


def test_the_int8_graph_runs_only_beside_the_graph_it_was_quantized_from(tmp_path, monkeypatch):
    """An FP32 graph that is not the one the INT8 graph came from (retrained, edited) runs as itself; so does
    the FP32 graph where onnxruntime is not installed (OpenCV runs it)."""
    real, other = runtime_refiner.SHIPPED, tmp_path / "band_refiner.onnx"
    proto = __import__("onnx").load(str(real))
    proto.metadata_props.add(key="edited", value="1")
    __import__("onnx").save(proto, str(other))
    monkeypatch.setattr(runtime_refiner, "SHIPPED", other)
    with pytest.warns(UserWarning, match="band_refiner_int8.onnx was not quantized from .*band_refiner.onnx"):
        refiner = runtime_refiner.BandRefiner.shipped()
    assert (refiner.path, refiner.runtime) == (other, "onnxruntime")
    monkeypatch.setattr(runtime_refiner, "SHIPPED", real)
    spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else spec(name, *a))
    refiner = runtime_refiner.BandRefiner.shipped()
    assert (refiner.path.name, refiner.runtime) == ("band_refiner.onnx", "opencv")
    monkeypatch.setattr(runtime_refiner, "SHIPPED", tmp_path / "absent.onnx")
    assert runtime_refiner.BandRefiner.shipped() is None


def test_an_int8_graph_that_differs_from_its_fp32_graph_is_not_published(graph, tmp_path, monkeypatch):
    _, path = graph
    photo, alpha, mask = disc(300, 400)
    sample = {"image": photo, "alpha": alpha, "prior": guided_mask(photo, mask), "mask": mask_at(mask, alpha.shape),
              "band": (make_trimap(alpha.shape, mask=mask, band=8) == 128).astype(np.float32)}
    batches = band_refiner_int8.calibration_batches([sample], tiles=4)
    assert sum(len(b["image"]) for b in batches) == 4 and batches[0]["image"].shape[1:] == (3, 160, 160)
    check = band_refiner_int8.write_int8_refiner(path, tmp_path / "ok.onnx", batches, "test")
    assert 0 < check["mean_abs_vs_fp32"] <= band_refiner_int8.TOLERANCE and check["tiles"] == 4
    monkeypatch.setattr(band_refiner_int8, "TOLERANCE", 0.0)
    with pytest.raises(ExportError, match="differs from its FP32 graph"):
        band_refiner_int8.write_int8_refiner(path, tmp_path / "bad.onnx", batches, "test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.onnx"]


def test_the_command_line_turns_the_refiner_on_and_off(graph, tiny_checkpoint, tmp_path):
    _, path = graph
    photo, alpha, mask = disc(96, 128)
    cv2.imwrite(str(tmp_path / "p.png"), np.rint(photo[..., ::-1] * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "m.png"), (mask * 255).astype(np.uint8))
    outs = {}
    for choice in ("none", str(path)):
        out = tmp_path / f"o-{len(outs)}.png"
        assert main(["bokeh", str(tmp_path / "p.png"), "--mask", str(tmp_path / "m.png"), "--artifact",
                     str(tiny_checkpoint), "--refine", "0", "--band-refiner", choice, "-o", str(out)]) == 0
        outs[choice] = cv2.imread(str(out))
    assert not np.array_equal(outs["none"], outs[str(path)])
    (tmp_path / "set" / "image").mkdir(parents=True)
    (tmp_path / "set" / "alpha").mkdir()
    cv2.imwrite(str(tmp_path / "set" / "image" / "p.png"), np.rint(photo[..., ::-1] * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "set" / "alpha" / "p.png"), np.rint(alpha * 255).astype(np.uint8))
    assert main(["eval", str(tmp_path / "set"), "--artifacts", str(tiny_checkpoint), "--refine-tiles", "0",
                 "--band-refiner", str(path), "--also-unrefined", "--baselines", "--out", str(tmp_path / "ev")]) == 0
    methods = json.loads((tmp_path / "ev" / "eval.json").read_text())["methods"]
    assert methods == ["tiny.pt (torch/fp32) band refiner", "tiny.pt (torch/fp32) unrefined"]


@pytest.fixture(scope="module")
def converted(graph, tmp_path_factory):
    """``adamat export band-refiner`` of the seeded graph: every target's file."""
    from export.band_refiner_targets import export_band_refiners

    out = tmp_path_factory.mktemp("targets")
    return out, {r["target"]: r for r in export_band_refiners(graph[1], out)}


def test_every_target_converts_the_refiner_and_each_runtime_gives_the_same_band(graph, converted):
    """Each registry target with a refiner file gets one, checked against PyTorch; every one that runs here gives
    the ONNX graph's band (to float noise; TensorRT's FP16 graph to half-precision noise); CoreML's package
    is converted and refused here with the reason."""
    from common.targets import TARGETS

    model, path = graph
    out, rows = converted
    assert set(rows) == {n for n, t in TARGETS.items() if t.refiner} and all(r["status"] == "built" for r in rows.values())
    assert from_onnx(out / "band_refiner.onnx")[1] == {"test": True}           # the training facts travel
    photo, _, mask = disc(160, 200)
    trimap = make_trimap(photo.shape[:2], mask=mask, band=8)
    alpha = mask_at(mask, photo.shape[:2])
    want = runtime_refiner.BandRefiner.open(path)(photo, trimap, alpha, mask)
    for name, file, runtime, tolerance in (("openvino", "band_refiner_openvino.xml", "openvino", 1e-5),
                                           ("executorch", "band_refiner_executorch.pte", "executorch", 1e-5),
                                           ("tensorrt", "band_refiner_trt_fp16.onnx", "onnxruntime", 5e-3)):
        refiner = runtime_refiner.BandRefiner.open(out / file)
        assert refiner.runtime == runtime and rows[name]["check"]["max_abs_vs_pytorch"] <= rows[name]["check"]["tolerance"]
        assert np.abs(refiner(photo, trimap, alpha, mask) - want).max() < tolerance, name
    assert runtime_refiner.BandRefiner.open(out / "band_refiner_executorch.pte").runner.batch == runtime_refiner.BATCH
    assert 0 < rows["coreml"]["check"]["simulated_max_abs_vs_pytorch"] < 0.05        # random weights: a loose bound
    with pytest.raises(BackendUnavailable, match="macOS"):
        runtime_refiner.BandRefiner.open(out / "band_refiner_coreml_fp16.mlpackage")


def test_matter_takes_a_targets_refiner_by_its_path(graph, converted, tiny_checkpoint):
    _, path = graph
    out, _ = converted
    photo, _, mask = disc(96, 128)
    alphas = [Matter.from_artifact(tiny_checkpoint, input_size=(64, 64), band_refiner=p).predict(photo, mask=mask).alpha
              for p in (path, out / "band_refiner_openvino.xml")]
    assert np.abs(alphas[0] - alphas[1]).max() < 1e-5


def test_a_conversion_that_differs_from_pytorch_is_not_published(graph, tmp_path, monkeypatch):
    from export import band_refiner_graph
    from export.band_refiner_targets import export_band_refiners

    monkeypatch.setattr(band_refiner_graph, "max_difference", lambda *a, **k: 0.5)
    rows = export_band_refiners(graph[1], tmp_path, ["openvino", "executorch"])
    assert [r["status"] for r in rows] == ["failed", "failed"] and "differs from PyTorch by 5.00e-01" in rows[0]["reason"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["band_refiners.json"]


def test_the_gates_run_each_artifact_with_its_targets_refiner(tmp_path):
    """evaluation.accuracy.band_refiner_for: an artifact's own target's conversion in band_refiner/ beside it,
    else the shipped graph (the reference checkpoint always)."""
    from evaluation.accuracy import band_refiner_for
    from runtime.artifacts import Artifact

    ov = Artifact(tmp_path / "m_openvino_fp32.xml", "openvino", "fp32", "openvino")
    trt = Artifact(tmp_path / "m_trt_fp16.onnx", "tensorrt", "fp16", "onnxruntime")
    assert band_refiner_for(ov) == band_refiner_for(trt) == "shipped"
    (tmp_path / "band_refiner").mkdir()
    (tmp_path / "band_refiner" / "band_refiner_openvino.xml").write_text("")
    assert band_refiner_for(ov) == tmp_path / "band_refiner" / "band_refiner_openvino.xml"
    assert band_refiner_for(trt) == "shipped"                    # TensorRT's own is band_refiner_trt_fp16.onnx
    assert band_refiner_for(Artifact(tmp_path / "m.pt", "torch", "fp32", "torch")) == "shipped"


def test_export_band_refiner_refuses_what_is_not_a_refiner_graph(tmp_path, capsys):
    """One error line naming the file, exit 2, no output folder left behind."""
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a graph")
    for source, why in ((tmp_path / "none.onnx", "band refiner graph not found"), (junk, "not an ONNX graph")):
        out = tmp_path / "out" / "band_refiner"
        assert main(["export", "band-refiner", "--refiner", str(source), "--out", str(out)]) == 2
        assert capsys.readouterr().err.strip() == f"error: {source}: {why}" and not out.exists()


@pytest.mark.parametrize("graph, words", [
    ("not_onnx", "not a band refiner graph onnxruntime can read"),
    ("int8", "is an INT8 graph already: give the FP32 graph it was quantized from"),
])
def test_quantize_only_refuses_what_is_not_an_fp32_graph_before_any_work(tmp_path, capsys, graph, words):
    """One error line naming --out, before the folder is read or the network opened (neither exists here)."""
    out = tmp_path / "r.onnx"
    if graph == "int8":
        shutil.copyfile(runtime_refiner.SHIPPED_INT8, out)
    else:
        out.write_bytes(b"not an ONNX graph")
    assert main(["train-refiner", "--quantize-only", "--out", str(out), "--folder", str(tmp_path / "none"),
                 "--checkpoint", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith(f"error: {out}: ") and words in err[0]
    assert not (tmp_path / "r_int8.onnx").exists()


def test_the_refiner_names_a_trimap_or_alpha_of_the_wrong_shape_or_kind():
    """Each failed inside numpy (a broadcast, an array of another dimension), named an internal argument, or
    (a 0..255 alpha) came back 0..255."""
    refiner = runtime_refiner.BandRefiner.shipped()
    photo, alpha, mask = disc(100, 140)
    trimap = make_trimap(photo.shape[:2], mask=mask, band=8)
    coarse = alpha.astype(np.float32)
    for args, error, words in (
            ((photo, trimap, coarse[:50]), ValueError, r"alpha must be float in \[0, 1\] of the photo's \(H, W\)"),
            ((photo, trimap[..., None], coarse), ValueError, r"trimap must be uint8 0 / 128 / 255 of the photo's"),
            ((photo, trimap, coarse.tolist()), ValueError, "alpha must be .* got list"),
            ((photo, trimap.astype(np.float32), coarse), TypeError, "trimap must be uint8"),
            ((photo, trimap, (coarse * 255).astype(np.uint8)), ValueError, "alpha must be float in .* got uint8")):
        with pytest.raises(error, match=words):
            refiner(*args, mask)
    assert refiner(photo, trimap, coarse, mask).shape == (100, 140)


def test_a_refiner_graphs_suffix_is_read_in_any_case(graph, tmp_path):
    """train-refiner --out R.ONNX trained, then could not open its own graph ("no runtime here runs it"): the
    suffix is read in any case, as the matting network's is."""
    _, path = graph
    upper = tmp_path / "R.ONNX"
    upper.write_bytes(path.read_bytes())
    assert runtime_refiner.runtimes_for(upper) == runtime_refiner.runtimes_for(path) == ["onnxruntime", "opencv"]
    assert runtime_refiner.BandRefiner.open(upper).name == runtime_refiner.BandRefiner.open(path).name


def test_a_very_wide_photos_training_sample_gets_a_mask_of_its_aspect(tiny_checkpoint):
    """The phone recipe's 256-px mask of a 1000x16 photo rounds to 256x4, another aspect: the sample was refused
    ("mask is 256x4 but the photo is 1000x16", of no photo or option); it takes the mask adamat eval gives it."""
    from evaluation.datasets import EvalImage
    from evaluation.refiner_data import sample

    photo, alpha, _ = disc(16, 1000)
    matter = Matter.from_artifact(tiny_checkpoint, band_refiner=None, refinement=None)
    s = sample(EvalImage("wide", photo, alpha), matter, 0)
    assert s["mask"].shape == s["alpha"].shape == (16, 1000)
