"""Bad options of ``adamat train-refiner``, ``adamat eval`` and ``adamat ship``: one error line naming the option,
exit 2, before any work (no model opened, nothing trained or written), and every input file left as it was."""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from adamat.cli import main


def photo_folder(root: Path, names=("p0", "p1")) -> Path:
    """A folder of photos with ground truth (image/ + alpha/), as adamat eval and train-refiner read it."""
    for sub in ("image", "alpha"):
        (root / sub).mkdir(parents=True)
    for name in names:
        Image.fromarray(np.full((40, 48, 3), 90, np.uint8)).save(root / "image" / f"{name}.png")
        Image.fromarray(np.full((40, 48), 255, np.uint8)).save(root / "alpha" / f"{name}.png")
    return root


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(args: list[str], capsys) -> str:
    """The one error line of a command refused with exit 2 (argparse's SystemExit(2) or the command's 2)."""
    try:
        code = main(args)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err.strip()


# ------------------------------------------------------------------------------------------------ train-refiner
@pytest.fixture
def refiner_inputs(tmp_path):
    """A folder of two photos and a file standing for the network (never opened: every refusal comes first)."""
    folder = photo_folder(tmp_path / "set")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"the matting network")
    return folder, model


def train_refiner(folder: Path, model: Path, *args) -> list[str]:
    return ["train-refiner", "--folder", str(folder), "--checkpoint", str(model), *map(str, args)]


def test_train_refiner_refuses_an_out_that_is_its_checkpoint(refiner_inputs, tmp_path, capsys):
    folder, model = refiner_inputs
    before = contents(tmp_path)
    (tmp_path / "link.onnx").symlink_to(model)
    os.link(model, tmp_path / "hard.onnx")
    for out in (model, tmp_path / "link.onnx", tmp_path / "hard.onnx"):
        err = refused(train_refiner(folder, model, "--out", out), capsys)
        assert err == f"error: {out}: --out is the same file as --checkpoint: give another --out"
    assert {k: v for k, v in contents(tmp_path).items() if k in before} == before


def test_train_refiner_refuses_an_int8_graph_that_is_its_checkpoint(refiner_inputs, tmp_path, capsys):
    folder, _ = refiner_inputs
    int8_source = tmp_path / "net_int8.onnx"
    int8_source.write_bytes(b"a network")
    err = refused(train_refiner(folder, int8_source, "--out", tmp_path / "net.onnx"), capsys)
    assert err == f"error: {int8_source}: --out's INT8 graph is the same file as --checkpoint: give another --out"
    assert int8_source.read_bytes() == b"a network" and not (tmp_path / "net.onnx").exists()


def test_train_refiner_refuses_a_measured_table_over_its_graph(refiner_inputs, tmp_path, capsys):
    folder, model = refiner_inputs
    out = tmp_path / "r.onnx"
    for target, what in ((out, "--out"), (tmp_path / "r_int8.onnx", "--out's INT8 graph")):
        target.write_bytes(b"a graph")
        link = tmp_path / f"table-{target.stem}.json"
        link.symlink_to(target)
        err = refused(train_refiner(folder, model, "--out", out, "--measured", link), capsys)
        assert err == f"error: {link}: --measured is the same file as {what}: give another --measured"
        assert target.read_bytes() == b"a graph"
    err = refused(train_refiner(folder, model, "--out", out, "--measured", out), capsys)
    assert "argument --measured: must be a .json file" in err


def test_train_refiner_refuses_an_out_in_its_photo_folder(refiner_inputs, tmp_path, capsys):
    folder, model = refiner_inputs
    before = contents(folder)
    disguised = tmp_path / "photo.onnx"
    os.link(folder / "image" / "p0.png", disguised)
    err = refused(train_refiner(folder, model, "--out", disguised), capsys)
    assert err == f"error: {disguised}: --out is a file of --folder {folder}: give another --out"
    assert contents(folder) == before


@pytest.mark.parametrize("out", ["x.txt", "graph", "set/image/p0.png", "r.onnx/"])
def test_train_refiner_out_is_an_onnx_file(refiner_inputs, tmp_path, capsys, out):
    folder, model = refiner_inputs
    before = contents(tmp_path)
    out = f"{tmp_path}{os.sep}{out}"
    err = refused(train_refiner(folder, model, "--out", out), capsys)
    assert f"argument --out: must be a .onnx file, got '{out}'" in err
    assert contents(tmp_path) == before


def test_train_refiner_names_its_out_first_and_the_scale_that_shrinks_a_photo_too_far(tiny_checkpoint, tmp_path,
                                                                                        capsys):
    """An --out that cannot be written is named as given (it was its INT8 graph's name, x_int8.onnx); a --scales
    that takes a photo below the runtime's 8 px is named with the photo (it was "photo is 1x1", of no photo)."""
    folder = photo_folder(tmp_path / "set")
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "x.onnx"
    err = refused(["train-refiner", "--folder", str(folder), "--checkpoint", str(tiny_checkpoint), "--out", str(out),
                   "--folds", "1"], capsys)
    assert err.startswith(f"error: {out}: cannot create the folder")
    err = refused(["train-refiner", "--folder", str(folder), "--checkpoint", str(tiny_checkpoint), "--out",
                   str(tmp_path / "r.onnx"), "--scales", "0.01", "--folds", "1", "--see-through", "0"], capsys)
    assert err == "error: --scales 0.01: photo p0 (48x40) would be 1x1, below the 8 px a side the runtime mattes at least"


@pytest.mark.parametrize("option, value, words", [
    ("--scales", "1000", "argument --scales: must be a finite number above 0 and at most 4, got 1000"),
    ("--scales", "0", "argument --scales: must be a finite number above 0 and at most 4, got 0"),
    ("--see-through", "-5", "argument --see-through: must be >= 0, got -5"),
    ("--see-through", "100000", "argument --see-through: must be at most 256"),
    ("--phone-scale", "100000", "argument --phone-scale: must be at most 256"),
    ("--refine-tiles", "-3", "argument --refine-tiles: must be >= 0, got -3"),
    ("--refine-tiles", "nan", "argument --refine-tiles: must be a whole number >= 0"),
    ("--seeds", "-1", "argument --seeds: must be >= 0, got -1"),
    ("--channels", "100000", "argument --channels: must be at most 256"),
])
def test_train_refiner_bounds_its_numbers(refiner_inputs, capsys, option, value, words):
    folder, model = refiner_inputs
    assert words in refused(train_refiner(folder, model, option, value), capsys)


@pytest.mark.parametrize("option, values, repeated", [("--seeds", ["0", "1", "0"], "0"),
                                                      ("--scales", ["1", "2", "1.0"], "1")])
def test_train_refiner_refuses_a_seed_or_scale_given_twice(refiner_inputs, tmp_path, capsys, option, values,
                                                           repeated):
    folder, model = refiner_inputs
    err = refused(train_refiner(folder, model, "--out", tmp_path / "r.onnx", option, *values), capsys)
    assert err == f"error: {option}: {repeated} given more than once"
    assert not (tmp_path / "r.onnx").exists()


def test_train_refiner_folds_fit_the_photos(refiner_inputs, tmp_path, capsys):
    folder, model = refiner_inputs
    out, table = tmp_path / "r.onnx", tmp_path / "t.json"
    err = refused(train_refiner(folder, model, "--out", out, "--folds", "10"), capsys)
    assert err == f"error: --folds 10: the 2 photos of {folder} make at most 2 folds"
    held = photo_folder(tmp_path / "dev", ("GT01", "GT02", "GT03", "GT15"))
    err = refused(train_refiner(held, model, "--out", out, "--folds", "4"), capsys)
    assert err == f"error: --folds 4: the 4 photos of {held} make at most 3 folds (its 2 held-back photos are one)"
    one = photo_folder(tmp_path / "one", ("GT01", "GT02", "GT03"))
    err = refused(train_refiner(one, model, "--out", out, "--folds", "4"), capsys)
    assert err == f"error: --folds 4: the 3 photos of {one} make at most 3 folds (its 1 held-back photo is one)"
    err = refused(train_refiner(folder, model, "--out", out, "--folds", "1", "--measured", table), capsys)
    assert "--measured needs --folds >= 2" in err
    assert not out.exists() and not table.exists()


def test_train_refiner_quantize_only_refuses_the_training_options(refiner_inputs, tmp_path, capsys):
    folder, model = refiner_inputs
    graph = tmp_path / "r.onnx"
    graph.write_bytes(b"a graph")
    err = refused(train_refiner(folder, model, "--out", graph, "--quantize-only", "--steps", "3", "--measured",
                                tmp_path / "t.json"), capsys)
    assert err == "error: --steps, --measured: not used by --quantize-only (it trains and scores nothing)"
    assert graph.read_bytes() == b"a graph" and not (tmp_path / "r_int8.onnx").exists()


# ---------------------------------------------------------------------------------------------------------- eval
def eval_args(folder: Path, tmp_path: Path, *args) -> list[str]:
    return ["eval", str(folder), "--artifacts", str(tmp_path / "model.pt"), "--out", str(tmp_path / "out"),
            *map(str, args)]


@pytest.mark.parametrize("option, value, words", [
    ("--refine-tiles", "-3", "argument --refine-tiles: must be >= 0, got -3"),
    ("--refine-zoom", "nan", "argument --refine-zoom: must be a finite number > 1, got nan"),
    ("--refine-zoom", "1", "argument --refine-zoom: must be a finite number > 1, got 1"),
    ("--refine-zoom", "inf", "argument --refine-zoom: must be a finite number > 1, got inf"),
    ("--long-side", "100000", "argument --long-side: must be at most 7071"),
    ("--long-side", "8", "argument --long-side: must be >= 16, got 8"),
    ("--seed", "-1", "argument --seed: must be >= 0, got -1"),
    ("--closed-form-cap", "1000000000", "argument --closed-form-cap: must be at most 16000000"),
    ("--frames", "100000", "argument --frames: must be at most 600"),
    ("--frames", "1", "argument --frames: must be >= 2, got 1"),        # dtSSD of one frame: NaN in the JSON
    ("--clip-size", "100000", "argument --clip-size: must be at most 4096"),
    ("--clip-size", "8", "argument --clip-size: must be >= 32, got 8"),
])
def test_eval_bounds_its_numbers(tmp_path, capsys, option, value, words):
    folder = photo_folder(tmp_path / "set")
    values = [value, "64"] if option == "--clip-size" else [value]
    assert words in refused(eval_args(folder, tmp_path, option, *values), capsys)
    assert not (tmp_path / "out").exists()


def test_eval_refuses_a_clip_too_long_to_hold(tmp_path, capsys):
    err = refused(["eval", "clips", "--frames", "600", "--clip-size", "4096", "4096", "--artifacts",
                   str(tmp_path / "model.pt"), "--out", str(tmp_path / "o")], capsys)
    assert err.startswith("error: --frames 600 --clip-size 4096 4096: ") and "at most" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option", ["--artifacts", "--baselines", "--images"])
def test_eval_refuses_a_value_given_twice(tmp_path, capsys, option):
    folder = photo_folder(tmp_path / "set")
    value = {"--artifacts": str(tmp_path / "model.pt"), "--baselines": "guided-filter", "--images": "p0"}[option]
    err = refused(eval_args(folder, tmp_path, option, value, value), capsys)
    assert err == f"error: {option}: {value} given more than once"
    assert not (tmp_path / "out").exists()


def test_eval_refuses_an_output_over_its_artifact(tmp_path, capsys):
    folder = photo_folder(tmp_path / "set")
    (tmp_path / "out").mkdir()
    model = tmp_path / "out" / "eval.json"
    model.write_bytes(b"a model")
    err = refused(["eval", str(folder), "--artifacts", str(model), "--out", str(tmp_path / "out")], capsys)
    assert err == f"error: {model}: is --artifacts {model}: give another --out"
    assert model.read_bytes() == b"a model"


@pytest.mark.parametrize("name", ["eval-clips.json", "eval-clips.md"])
def test_eval_clips_refuses_an_output_over_its_artifact(tmp_path, capsys, name):
    from evaluation.clip_eval import CLIP_RESULT_FILES

    assert name in CLIP_RESULT_FILES
    (tmp_path / "out").mkdir()
    model = tmp_path / "model.pt"
    model.write_bytes(b"a model")
    os.link(model, tmp_path / "out" / name)
    err = refused(["eval", "clips", "--artifacts", str(model), "--out", str(tmp_path / "out")], capsys)
    assert err == f"error: {tmp_path / 'out' / name}: is --artifacts {model}: give another --out"
    assert model.read_bytes() == b"a model"


# ---------------------------------------------------------------------------------------------------------- ship
@pytest.mark.parametrize("out", ["w.txt", "weights", "w.pt/"])
def test_ship_out_is_a_pt_file(tmp_path, capsys, out):
    err = refused(["ship", "--average", str(tmp_path / "a.pt"), "--out", f"{tmp_path}{os.sep}{out}"], capsys)
    assert "argument --out: must be a .pt file" in err
    assert not list(tmp_path.iterdir())


def test_ship_refuses_a_checkpoint_averaged_twice(tmp_path, capsys):
    a = tmp_path / "a.pt"
    a.write_bytes(b"a checkpoint")
    os.link(a, tmp_path / "b.pt")
    for twice in ([a, a], [a, tmp_path / "." / "a.pt"], [a, tmp_path / "b.pt"]):
        err = refused(["ship", "--average", *map(str, twice), "--out", str(tmp_path / "w.pt")], capsys)
        assert err == f"error: --average: {twice[1]} is {twice[0]} again: an average takes each checkpoint once"
    assert a.read_bytes() == b"a checkpoint" and not (tmp_path / "w.pt").exists()


def saved_checkpoint(path: Path, config: str) -> Path:
    from adamatting.checkpoint import save_checkpoint
    from adamatting.config import get_config
    from adamatting.model import build_model

    path.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(path, build_model(get_config(config)))


@pytest.fixture
def no_model_built(monkeypatch):
    """Every way adamat ship builds a model (loading, averaging, rescaling) recorded: a refusal comes first."""
    import adamat.commands.ship as ship

    built = []
    for name in ("average_checkpoints", "load_model", "build_model"):
        monkeypatch.setattr(ship, name, lambda *a, name=name, **k: built.append(name))
    yield
    assert built == [], f"a model was built before the refusal: {built}"


@pytest.mark.parametrize("scale", ["4/3", "2", "1"])
def test_ship_names_the_guided_scales_a_model_can_run_at(tmp_path, capsys, no_model_built, scale):
    source = saved_checkpoint(tmp_path / "fused.pt", "tiny-fused")
    before = source.read_bytes()
    err = refused(["ship", "--average", str(source), "--out", str(tmp_path / "w.pt"), "--guided-scale", scale],
                  capsys)
    assert err == (f"error: adamat ship: --guided-scale {scale}: config tiny-fused runs at guided scale 4 only (its "
                   f"decoders end at stride 4)")
    assert source.read_bytes() == before and not (tmp_path / "w.pt").exists()


def test_ship_refuses_a_scale_that_changes_the_guided_upsampler(tmp_path, capsys, no_model_built):
    run = tmp_path / "run"
    source = saved_checkpoint(run / "best.pt", "tiny-guided")
    before = source.read_bytes()
    err = refused(["ship", "--run", str(run), "--out", str(tmp_path / "w.pt"), "--guided-scale", "1"], capsys)
    assert err == (f"error: adamat ship: --guided-scale 1 needs a model without the guided upsampler; {source} has "
                   f"guided_scale 2 (train one from its weights: adamat train --guided-scale 1 --init ...)")
    assert source.read_bytes() == before and not (tmp_path / "w.pt").exists()


def test_ship_help_says_which_scales_a_model_takes(capsys):
    with pytest.raises(SystemExit):
        main(["ship", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ("mobile-int8 (the default model; decoders end at stride 4) runs at 4 only; mobile (stride 1) at 4/3, 2 "
            "or 4 (weights/mobile.pt: trained at 2, shipped at 4/3)") in help_text


@pytest.mark.parametrize("args", [
    ["ship", "--run-dir", ""],                  # fell back to the default run, and shipped it
    ["gate", "--artifacts", ""], ["gate", "--checkpoint", ""], ["gate", "--gates", ""], ["gate", "--val", ""],
    ["eval-real", "--checkpoint", ""], ["eval", "real", "--band-refiner", ""], ["eval", "real", "--artifacts", ""],
    ["demo", "--weights", ""], ["demo", "--variant", ""],
    ["export", "all", "--checkpoint", ""], ["export", "all", "--calib", ""], ["export", "all", "--val", ""],
    ["train", "--teacher", ""],                 # built the training data first
    ["train", "--init", " "], ["train-refiner", "--checkpoint", ""],
    ["train-refiner", "--folder", ""],          # read the current folder as photos
    ["ship", "--average", ""],
])
def test_an_empty_path_is_refused_by_the_parser_not_read_as_the_current_folder(args, capsys):
    option = args[-2]
    err = refused(args, capsys)
    assert err.startswith(f"error: argument {option}") and "must name a file or folder, got an empty path" in err, err


def test_train_refiner_with_no_band_to_calibrate_on_writes_nothing(tiny_checkpoint, tmp_path, capsys):
    """Photos whose masks mark no edge (a ground truth of all 1 here) leave no tile to calibrate the INT8 graph on:
    said before any training, naming the photos; the FP32 graph was written first and left without its INT8 one."""
    folder = photo_folder(tmp_path / "set")
    out = tmp_path / "r.onnx"
    err = refused(["train-refiner", "--folder", str(folder), "--checkpoint", str(tiny_checkpoint), "--out", str(out),
                   "--folds", "1", "--see-through", "0", "--scales", "1", "--steps", "1"], capsys)
    assert err == (f"error: {folder}: no band to calibrate the INT8 graph on: the masks of p0, p1 mark no edge (a "
                   "ground truth with no subject?)")
    assert not out.exists() and not (tmp_path / "r_int8.onnx").exists()


def test_train_refiner_summary_says_n_a_where_the_filter_has_no_error():
    from adamat.commands.train_refiner import METHODS, summary

    row = {"image": "p0", "scale": 1.0, **{m: {"SAD": 0.0, "Grad": 0.0} for m in METHODS}}
    [table] = summary([row])          # photos with no subject: 0 / 0 was a ZeroDivisionError after the training
    assert table["sad_vs_filter"] is None and table["grad_vs_filter"] is None and table["photos"] == 1


def test_train_refiner_with_one_fold_never_trains_on_the_held_back_photos(tiny_checkpoint, tmp_path, capsys):
    """--folds 1 trained on GT03, GT15, ... (calib_data.splits: never trained or calibrated on); a folder of only
    held-back photos trained on them. Now they are the one fold's held photos, and such a folder is refused."""
    import onnx

    held = photo_folder(tmp_path / "held", ("GT03", "GT15"))
    err = refused(["train-refiner", "--folder", str(held), "--checkpoint", str(tiny_checkpoint), "--out",
                   str(tmp_path / "h.onnx"), "--folds", "1"], capsys)
    assert err == f"error: {held}: holds only held-back photos: none to train on"
    mixed = tmp_path / "mixed"            # photos with an edge to train on: a disc, large enough for a sample
    for sub in ("image", "alpha"):
        (mixed / sub).mkdir(parents=True)
        disc = cv2.circle(np.zeros((120, 160), np.uint8), (80, 60), 40, 255, -1)
        for name in ("GT01", "GT03"):
            cv2.imwrite(str(mixed / sub / f"{name}.png"), np.dstack([disc // 2 + 60] * 3) if sub == "image" else disc)
    out = tmp_path / "r.onnx"
    assert main(["train-refiner", "--folder", str(mixed), "--checkpoint", str(tiny_checkpoint), "--out", str(out),
                 "--folds", "1", "--see-through", "0", "--scales", "1", "--steps", "1"]) == 0
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["trained_on"]) == ["GT01"]


def test_train_refiner_checks_every_photo_at_every_scale_before_the_model_opens(refiner_inputs, capsys, tmp_path):
    """A photo too small for one --scales was refused when its turn came, after every photo before it had run
    through the network; the sizes are in the headers (the model here is no model: it is never opened)."""
    folder, model = refiner_inputs
    err = refused(train_refiner(folder, model, "--out", tmp_path / "r.onnx", "--scales", "1", "0.1", "--folds", "1"),
                  capsys)
    assert err == "error: --scales 0.1: photo p0 (48x40) would be 5x4, below the 8 px a side the runtime mattes at least"
