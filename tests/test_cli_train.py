"""The adamat CLI, resumable training and the demo, on tiny configs."""

import csv
import dataclasses
import platform
from pathlib import Path

import numpy as np
import pytest
import torch

from adamat.cli import build_parser, main
from adamatting.checkpoint import CheckpointError, load_model
from adamatting.config import DEFAULT_WEIGHTS, get_config
from adamatting.model import build_model
from adamatting.train import TrainConfig, lr_at, train
from calib_data.sets import SetConfig
from calib_data.splits import alphamatting_dev_dir
from common.errors import DataError

COMMANDS = [["calib", "build"], ["demo"], ["train"], ["eval-real"], ["ship"], ["flops"], ["export", "onnx"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: adamat" in capsys.readouterr().out


def test_pseudo_labels_are_on_unless_turned_off():
    assert build_parser().parse_args(["train"]).pseudo_labels is True
    assert build_parser().parse_args(["train", "--no-pseudo-labels"]).pseudo_labels is False
    assert TrainConfig().pseudo_labels is True


def test_photo_crops_are_half_the_real_samples_by_default_and_shares_are_checked(capsys):
    args = build_parser().parse_args(["train"])
    assert args.photo_fraction == TrainConfig().photo_fraction == 0.5
    assert build_parser().parse_args(["train", "--photo-fraction", "0"]).photo_fraction == 0.0
    for flag, value in (("--photo-fraction", "1.5"), ("--photo-trimap-fraction", "-0.1"), ("--real-fraction", "half")):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(["train", flag, value])
        assert exit_info.value.code == 2
        assert f"argument {flag}: must be" in capsys.readouterr().err


def test_flops_command_prints_the_budget(capsys):
    assert main(["flops", "--config", "tiny", "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "GMACs" in out and "propagation" in out
    assert main(["flops", "--config", "tiny", "--size", "0"]) == 2
    assert "each side must be from the 'tiny' model's stride 32 to 4096" in capsys.readouterr().err
    assert main(["flops", "--config", "tiny-guided", "--size", "96"]) == 2
    assert "size 96x96 is not a multiple of the 'tiny-guided' model's stride 64" in capsys.readouterr().err


def tiny_train_config(steps):
    return TrainConfig(model="tiny", steps=steps, batch=2, crop=64, warmup=2, real_fraction=0.0, bank_size=6,
                       bank_res=96, bg_bank=2, ckpt_every=2, val_every=2, threads=1)


def test_training_writes_logs_checkpoints_and_resumes(tmp_path):
    run = tmp_path / "run"
    calls = []

    def validate(model):
        calls.append(model.training)
        return {"SAD": 10.0 - len(calls), "MSE": 0.1, "Grad": 1.0, "Conn": 1.0}

    train(run, tiny_train_config(4), cache_root=tmp_path / "cache", progress=False, validate=validate)
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file() and (run / "curves.png").is_file()
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert rows[1]["val_sad"] and not rows[0]["val_sad"]
    assert calls == [False, False]  # validated in eval mode, at steps 2 and 4
    first = torch.load(run / "last.pt", weights_only=True)
    assert first["step"] == 4 and first["best"] == 8.0
    # resuming continues from step 4, with the optimizer state and the learned sigmas
    train(run, tiny_train_config(6), cache_root=tmp_path / "cache", progress=False, validate=validate)
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    resumed = torch.load(run / "last.pt", weights_only=True)
    assert resumed["step"] == 6 and resumed["best"] == 7.0
    assert resumed["loss"]["log_var_alpha"] != first["loss"]["log_var_alpha"]
    # the batch is a function of (seed, step): a resumed run sees the data a straight run would
    assert float(rows[4]["sigma1"]) != 1.0
    # a damaged log is named before a step is trained (empty: StopIteration; foreign: a traceback at the curves)
    good = (run / "log.csv").read_text()
    for damaged, words in (("", "not a training log: it is empty"),
                           ("garbage,,,\n1,2\n", "not a training log: it has no column step, loss"),
                           (good + "x,1\n", "line 8 is not a row of a training log: 'x,1'")):
        (run / "log.csv").write_text(damaged)
        with pytest.raises(DataError, match=words):
            train(run, tiny_train_config(8), cache_root=tmp_path / "cache", progress=False, validate=validate)
        assert torch.load(run / "last.pt", weights_only=True)["step"] == 6


def test_guided_run_starts_from_weights_without_the_upsampler(tmp_path, capsys):
    # How the shipped guided model was made: --init with a checkpoint of the same network at guided_scale 1.
    plain = train(tmp_path / "plain", tiny_train_config(2), cache_root=tmp_path / "cache", progress=False)
    cfg = dataclasses.replace(tiny_train_config(2), model="tiny-guided", real_scale=(0.8, 1.25))
    last = train(tmp_path / "guided", cfg, cache_root=tmp_path / "cache", progress=False, init=plain)
    assert "refiner tensors newly initialised" in capsys.readouterr().out
    ck = torch.load(last, weights_only=True)
    assert ck["config"]["guided_scale"] == 2 and any(k.startswith("refiner.") for k in ck["model"])
    with pytest.raises(ValueError, match="crop 96 is not a multiple of the 'tiny-guided' model's stride 64"):
        train(tmp_path / "bad", dataclasses.replace(cfg, crop=96), cache_root=tmp_path / "cache", progress=False)
    assert not (tmp_path / "bad").exists()


def test_guided_scale_override_trains_the_network_at_full_resolution_from_guided_weights(tmp_path, capsys):
    # The other direction: --guided-scale 1 with --init of a guided checkpoint drops its upsampler.
    assert build_parser().parse_args(["train", "--guided-scale", "1"]).guided_scale == 1
    assert build_parser().parse_args(["train"]).guided_scale is None
    assert build_parser().parse_args(["train", "--guided-scale", "4/3"]).guided_scale == 4 / 3
    for bad in ("1.5", "3"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["train", "--guided-scale", bad])
        assert "must be one of 1, 4/3, 2, 4" in capsys.readouterr().err
    guided_cfg = dataclasses.replace(tiny_train_config(2), model="tiny-guided")
    guided = train(tmp_path / "guided", guided_cfg, cache_root=tmp_path / "cache", progress=False)
    full_cfg = dataclasses.replace(guided_cfg, guided_scale=1, crop=96)   # stride 32 again
    assert full_cfg.model_config() == get_config("tiny-guided", guided_scale=1)
    last = train(tmp_path / "full", full_cfg, cache_root=tmp_path / "cache", progress=False, init=guided)
    assert "refiner tensors dropped" in capsys.readouterr().out
    ck = torch.load(last, weights_only=True)
    assert ck["config"]["guided_scale"] == 1 and not any(k.startswith("refiner.") for k in ck["model"])
    before = torch.load(guided, weights_only=True)["model"]
    assert any(not torch.equal(ck["model"][k], before[k]) for k in ck["model"] if k.startswith("encoder."))
    # resuming the run without its override names the field and the flag (before the crop check: 96 is
    # not a multiple of the guided stride 64) instead of failing on the weights; with it, it resumes
    with pytest.raises(CheckpointError, match=r"guided_scale: run 1 vs now 2.*--guided-scale 1\)"):
        train(tmp_path / "full", dataclasses.replace(full_cfg, guided_scale=None, steps=4),
              cache_root=tmp_path / "cache", progress=False)
    resumed = train(tmp_path / "full", dataclasses.replace(full_cfg, steps=3), cache_root=tmp_path / "cache",
                    progress=False)
    assert torch.load(resumed, weights_only=True)["step"] == 3


def test_learning_rate_schedule_warms_up_and_decays():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(55, cfg) < lr_at(20, cfg) and lr_at(100, cfg) == pytest.approx(2e-5)


def test_ship_writes_a_weights_only_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    train(run, tiny_train_config(2), cache_root=tmp_path / "cache", progress=False)
    assert main(["ship", "--run", str(run), "--out", str(tmp_path / "w.pt")]) == 0
    payload = torch.load(tmp_path / "w.pt", weights_only=True)
    assert "optimizer" not in payload and payload["step"] == 2 and payload["config"]["name"] == "tiny"


def test_ship_can_run_the_weights_at_another_guided_scale(tmp_path, capsys):
    # How the shipped weights went from 1/2 to 3/4 resolution: the same tensors, another guided_scale.
    run = tmp_path / "run"
    train(run, dataclasses.replace(tiny_train_config(2), model="tiny-guided"), cache_root=tmp_path / "cache",
          progress=False)
    out = tmp_path / "w.pt"
    assert main(["ship", "--run", str(run), "--out", str(out), "--guided-scale", "4/3"]) == 0
    shipped, trained = torch.load(out, weights_only=True), torch.load(run / "last.pt", weights_only=True)
    assert shipped["config"]["guided_scale"] == 4 / 3 and trained["config"]["guided_scale"] == 2
    assert shipped["model"].keys() == trained["ema"].keys()
    assert all(torch.equal(shipped["model"][k], trained["ema"][k]) for k in shipped["model"])
    assert shipped["trained_guided_scale"] == 2 and "val" not in shipped and "best" not in shipped
    model, _ = load_model(out)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 128, 128), torch.full((1, 1, 128, 128), 0.5))["alpha_pu"].shape[-1] == 96
    capsys.readouterr()
    assert main(["ship", "--run", str(run), "--out", str(tmp_path / "x.pt"), "--guided-scale", "1"]) == 2
    assert "error: adamat ship: --guided-scale 1 needs a model without the guided upsampler" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_ship_and_eval_real_check_their_outputs_before_any_work(tmp_path, capsys):
    (tmp_path / "taken.pt").mkdir()
    (tmp_path / "q" / "quality.md").mkdir(parents=True)
    # the checkpoints do not exist: the output is checked first
    assert main(["ship", "--average", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "taken.pt")]) == 2
    assert "taken.pt: is a directory" in capsys.readouterr().err
    assert main(["eval-real", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "q")]) == 2
    assert "quality.md: is a directory" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "q").iterdir()] == ["quality.md"]      # no quality.json without it


def test_demo_on_tiny_sets_writes_the_contact_sheet(tmp_path, capsys):
    from adamat.figures import run_demo

    configs = [SetConfig(name=n, count=3, size=(64, 64), seed=s, trimap=t, procedural=1.0).validated()
               for n, s, t in (("calib", 1, "mask"), ("val", 2, "validation"))]
    run_demo(tmp_path / "demo", tmp_path / "sets", weights=tmp_path / "missing.pt", configs=configs)
    out = capsys.readouterr().out
    assert (tmp_path / "demo" / "contact_sheet.png").is_file()
    assert "fractional_px" in out and "no checkpoint" in out
    import cv2

    sheet = cv2.imread(str(tmp_path / "demo" / "contact_sheet.png"))
    assert sheet.shape == (2 * 3 * 160, 8 * 160, 3)


@pytest.mark.skipif(not alphamatting_dev_dir().is_dir(), reason=f"{alphamatting_dev_dir()} not present")
def test_demo_real_image_figure_with_a_checkpoint(tmp_path, capsys):
    from adamat.figures import real_alpha_figure
    from adamatting.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "m.pt", build_model(get_config("tiny")))
    rows = real_alpha_figure(ckpt, tmp_path / "real.png")
    import cv2

    figure = cv2.imread(str(tmp_path / "real.png"))
    # 4 images × 200 px; 6 panels each (photo, trimap, network alpha, known regions kept, the runtime's alpha with
    # the matting Laplacian, ground truth), the widest row GT15's (490×800 → 327 px a panel)
    assert figure.shape == (4 * 200, 6 * 327, 3)
    assert [r["image"] for r in rows] == ["GT03", "GT15", "GT19", "GT25"]
    assert all(np.isfinite(r["SAD"]) and r["SAD"] > 0 for r in rows)
    # a random network's alpha, pulled toward the photo's colours, scores better than that alpha as it is
    assert np.mean([r["SAD, matting Laplacian"] for r in rows]) < np.mean([r["SAD"] for r in rows])


def test_a_new_run_can_start_from_shipped_weights(tmp_path):
    first = tmp_path / "first"
    train(first, tiny_train_config(2), cache_root=tmp_path / "cache", progress=False)
    assert main(["ship", "--run", str(first), "--out", str(tmp_path / "w.pt")]) == 0
    shipped = torch.load(tmp_path / "w.pt", weights_only=True)
    second = tmp_path / "second"
    train(second, tiny_train_config(1), cache_root=tmp_path / "cache", progress=False, init=tmp_path / "w.pt")
    rows = list(csv.DictReader((second / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1]
    # the learned sigmas came along: the first step starts from the shipped ones, not from 1.0
    assert float(rows[0]["sigma1"]) != 1.0
    assert shipped["loss"]["log_var_trimap"] != 0


def test_the_weight_average_is_validated_kept_as_best_resumed_and_shipped(tmp_path):
    run, seen = tmp_path / "run", []

    def validate(model):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"SAD": 10.0 - len(seen), "MSE": 0.1, "Grad": 1.0, "Conn": 1.0}

    cfg = dataclasses.replace(tiny_train_config(4), ema_decay=0.5)
    train(run, cfg, cache_root=tmp_path / "cache", progress=False, validate=validate)
    last, best = (torch.load(run / name, weights_only=True) for name in ("last.pt", "best.pt"))
    key = "encoder.stem.0.weight"
    # what was validated and kept as best.pt is the average (last.pt carries it), not the raw weights
    assert torch.equal(best["model"][key], seen[-1][key]) and torch.equal(last["ema"][key], seen[-1][key])
    assert not torch.equal(last["model"][key], last["ema"][key])
    # the average resumes with the run: after one more step it is decay·old + (1 − decay)·new raw weights
    train(run, dataclasses.replace(cfg, steps=5), cache_root=tmp_path / "cache", progress=False)
    resumed = torch.load(run / "last.pt", weights_only=True)
    assert torch.allclose(resumed["ema"][key], 0.5 * last["ema"][key] + 0.5 * resumed["model"][key])
    # without best.pt (a run without validation), ship takes the average of last.pt, not the raw weights
    (run / "best.pt").unlink()
    assert main(["ship", "--run", str(run), "--out", str(tmp_path / "w2.pt")]) == 0
    shipped = torch.load(tmp_path / "w2.pt", weights_only=True)
    assert torch.equal(shipped["model"][key], resumed["ema"][key])
    with pytest.raises(ValueError, match="ema_decay must be in"):
        train(tmp_path / "bad", dataclasses.replace(cfg, ema_decay=1.0), cache_root=tmp_path / "cache", progress=False)
    assert not (tmp_path / "bad").exists()


def test_ship_refuses_to_write_over_a_checkpoint_it_ships_from(tmp_path, capsys):
    source = tmp_path / "snapshot.pt"
    source.write_bytes(b"the only copy")
    for args in (["--average", str(source)], ["--run-dir", str(tmp_path)]):
        target = source if args[0] == "--average" else tmp_path / "last.pt"
        target.write_bytes(b"the only copy")
        assert main(["ship", *args, "--out", str(target)]) == 2
        assert f"{target}: is a checkpoint it ships from: give another --out" in capsys.readouterr().err
        assert target.read_bytes() == b"the only copy"


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1"])
def test_train_refiner_scales_are_finite_and_positive(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train-refiner", "--scales", value])
    assert exit_info.value.code == 2
    assert f"argument --scales: must be a finite number above 0 and at most 4, got {value}" in capsys.readouterr().err


def test_ship_can_average_snapshots_of_one_config(tmp_path, capsys):
    from adamatting.checkpoint import save_checkpoint

    key, snaps = "encoder.stem.0.weight", []
    for i in range(3):
        torch.manual_seed(i)
        model = build_model(get_config("tiny"))
        snaps.append(save_checkpoint(tmp_path / f"s{i}.pt", model, step=100 * (i + 1)))
    assert main(["ship", "--average", *map(str, snaps), "--out", str(tmp_path / "w.pt")]) == 0
    shipped = torch.load(tmp_path / "w.pt", weights_only=True)
    weights = [torch.load(s, weights_only=True)["model"][key] for s in snaps]
    assert torch.allclose(shipped["model"][key], sum(weights) / 3, atol=1e-7)
    assert shipped["step"] == 300 and shipped["averaged_steps"] == [100, 200, 300]
    other = save_checkpoint(tmp_path / "other.pt", build_model(get_config("tiny-guided")))
    capsys.readouterr()
    assert main(["ship", "--average", str(snaps[0]), str(other), "--out", str(tmp_path / "bad.pt")]) != 0
    assert "other.pt: checkpoint is for another model config" in capsys.readouterr().err
    assert not (tmp_path / "bad.pt").exists()


def test_ship_refuses_a_run_with_an_average_and_names_a_folder_that_is_no_run(tmp_path, capsys):
    """--run was ignored beside --average; a folder with neither checkpoint was named as 'last.pt: not found'."""
    (tmp_path / "s.pt").write_bytes(b"x")
    assert main(["ship", "--average", str(tmp_path / "s.pt"), "--run", "runs/x", "--out", str(tmp_path / "w.pt")]) == 2
    assert "give --average or --run, not both" in capsys.readouterr().err
    assert main(["ship", "--run", str(tmp_path / "empty"), "--out", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'empty'}: not found: give a run folder" in err
    (tmp_path / "empty").mkdir()
    assert main(["ship", "--run", str(tmp_path / "empty"), "--out", str(tmp_path / "w.pt")]) == 2
    assert f"{tmp_path / 'empty'}: holds no best.pt or last.pt" in capsys.readouterr().err
    assert main(["ship", "--run", str(tmp_path / "s.pt"), "--out", str(tmp_path / "w.pt")]) == 2
    assert f"{tmp_path / 's.pt'}: is a file, not a run folder" in capsys.readouterr().err
    (tmp_path / "empty").rmdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.pt"]


def test_train_only_trains_the_named_parts_and_keeps_the_rest_and_its_statistics(tmp_path):
    start = train(tmp_path / "start", dataclasses.replace(tiny_train_config(2), model="tiny-guided"),
                  cache_root=tmp_path / "cache", progress=False)
    assert build_parser().parse_args(["train", "--train-only", "refiner", "propagation"]).train_only == [
        "refiner", "propagation"]
    cfg = dataclasses.replace(tiny_train_config(3), model="tiny-guided", ema_decay=0.0,
                              train_only=("refiner", "propagation.cell"))
    last = train(tmp_path / "part", cfg, cache_root=tmp_path / "cache", progress=False, init=start)
    before, after = (torch.load(p, weights_only=True)["model"] for p in (start, last))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("refiner.", "propagation.cell.")) for k in changed)
    # frozen BatchNorms kept their running statistics; the refiner's trained ones moved
    assert torch.equal(before["encoder.stem.1.running_mean"], after["encoder.stem.1.running_mean"])
    assert "refiner.conv.1.running_mean" in changed
    assert "propagation.embed.weight" not in changed
    # it resumes only with the same parts to train (the optimiser state holds theirs), else names the flag
    assert TrainConfig.from_dict(torch.load(last, weights_only=True)["train_config"]).train_only == cfg.train_only
    with pytest.raises(CheckpointError, match=r"trains refiner propagation.cell, this resume asks for everything; "
                                              r"resume with the run's options \(--train-only refiner propagation.cell\)"):
        train(tmp_path / "part", dataclasses.replace(cfg, train_only=(), steps=4), cache_root=tmp_path / "cache",
              progress=False)
    resumed = train(tmp_path / "part", dataclasses.replace(cfg, steps=4), cache_root=tmp_path / "cache",
                    progress=False)
    assert torch.load(resumed, weights_only=True)["step"] == 4
    with pytest.raises(ValueError, match=r"no module named 'refinr' in the model \(its parts: encoder, "):
        train(tmp_path / "bad", dataclasses.replace(cfg, train_only=("refinr",)), cache_root=tmp_path / "cache",
              progress=False)
    assert not (tmp_path / "bad").exists()


def test_demo_with_a_missing_second_model_is_one_line_before_any_work(tmp_path, capsys):
    from adamat.cli import main

    assert main(["demo", "--out", str(tmp_path / "demo"), "--variant", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "none.pt: no such checkpoint for the second model" in err
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("args, words", [
    (["--size", "0", "0"], "argument --size: must be >= 1, got 0"),
    (["--size", "65536", "65536"], "argument --size: must be at most 4096, got 65536"),   # after the figures
    (["--size", "100", "100"], "input size 100x100 must be positive multiples of the encoder stride"),
    (["--variant", "{tmp}/copy.pt"], "copy.pt: is --weights: the second model must be another one"),
    (["--weights", "{tmp}/nope.pt", "--variant", "none"], "nope.pt: checkpoint not found"),
    (["--variant", "{tmp}/garbage.pt"], "garbage.pt"),
    (["--export-dir", "{tmp}/file"], "argument --export-dir: {tmp}/file is a file, not a folder"),
    (["--reports", "{tmp}/file"], "argument --reports: {tmp}/file is a file, not a folder"),
    (["--runs", "0"], "argument --runs: must be >= 1, got 0"),
    (["--warmup", "-1"], "argument --warmup: must be >= 0, got -1"),
])
def test_demo_refuses_bad_options_before_any_figure_or_export(tmp_path, capsys, args, words):
    """Each was found after the figures (or the exports) were written, or not at all."""
    from adamat.cli import main

    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "copy.pt").symlink_to(Path(DEFAULT_WEIGHTS).resolve())     # the default --weights, by another name
    args = [a.format(tmp=tmp_path) for a in args]
    folders = ["--out", str(tmp_path / "demo"), "--cache", str(tmp_path / "cache"), "--export-dir",
               str(tmp_path / "export"), "--reports", str(tmp_path / "reports")]
    try:
        code = main(["demo", *folders, *args])
    except SystemExit as e:                 # the parser's own refusals
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and words.format(tmp=tmp_path) in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.pt", "file", "garbage.pt"]


def test_numba_uses_a_fork_safe_thread_pool_beside_openvino():
    # OpenVINO loads TBB; numba then picks its TBB pool, which warns on every fork from a non-main thread.
    import os
    import subprocess
    import sys

    pytest.importorskip("openvino")

    script = ("from adamat.cli import process_defaults; process_defaults()\n"
              "import os, threading, numpy as np, openvino, numba\n"
              "from pymatting.util.boxfilter import boxfilter\n"
              "boxfilter(np.random.rand(32, 32), 3)\n"
              "def fork():\n"
              "    pid = os.fork()\n"
              "    os._exit(0) if pid == 0 else os.waitpid(pid, 0)\n"
              "t = threading.Thread(target=fork); t.start(); t.join()\n"
              "print(numba.threading_layer())\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["workqueue"] and "fork" not in run.stderr


@pytest.mark.parametrize("choice, expected", [(None, "False"), ("1", "True"), ("0", "False")])
def test_the_command_asks_for_no_huge_pages_unless_the_user_chose(choice, expected):
    """numpy's transparent-huge-page requests stall 12-megapixel planes where the kernel compacts memory for
    them: the command turns them off, unless NUMPY_MADVISE_HUGEPAGE says what the user wants."""
    import os
    import subprocess
    import sys

    script = ("from adamat.cli import process_defaults; process_defaults()\n"
              "from numpy._core import multiarray\n"
              "print(multiarray._get_madvise_hugepage())\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    env |= {} if choice is None else {"NUMPY_MADVISE_HUGEPAGE": choice}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [expected]


@pytest.mark.parametrize("variables, words", [
    ({"WORLD_SIZE": "abc"}, "the environment variable WORLD_SIZE must be a whole number >= 1 .*, got 'abc'"),
    ({"WORLD_SIZE": ""}, "WORLD_SIZE must be a whole number >= 1"),
    ({"RANK": "x"}, "the environment variable RANK must be a whole number >= 0"),
    ({"RANK": "3"}, "RANK 3 and LOCAL_RANK 0 must be below WORLD_SIZE 1"),
])
def test_torchruns_variables_that_are_not_counts_are_named(monkeypatch, variables, words):
    """int('abc') said 'invalid literal for int()', naming no variable."""
    from adamatting.train.distributed import start

    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=words):
        start("cpu")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt and mallinfo2")
@pytest.mark.parametrize("command, variables, reused", [
    ("bokeh", {}, True), ("bokeh", {"MALLOC_TRIM_THRESHOLD_": "131072"}, False), ("train", {}, False)])
def test_adamat_bokeh_reuses_large_blocks_unless_the_user_set_the_c_librarys_own(command, variables, reused):
    """glibc maps every block over 32 MB afresh (a 12-megapixel float plane: 12,000 page faults on each first
    write); ``adamat bokeh`` takes blocks up to LARGE_BLOCK from the heap, where they are reused, unless the
    user's MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES say how the C library should
    allocate; the other commands leave the C library as it is."""
    import os
    import subprocess
    import sys

    script = ("import ctypes\n"
              "from adamat import cli\n"
              "asked, reuse = [], cli.reuse_large_blocks\n"
              "cli.reuse_large_blocks = lambda: asked.append(reuse()) or asked[-1]\n"
              f"cli.process_defaults({command!r})\n"
              "import numpy as np\n"
              "class Info(ctypes.Structure):\n"
              "    _fields_ = [(n, ctypes.c_size_t) for n in ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', "
              "'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]\n"
              "mallinfo2 = ctypes.CDLL(None).mallinfo2\n"
              "mallinfo2.restype = Info\n"
              "plane = np.ones((3024, 4032), np.float32)\n"
              "assert plane.nbytes < cli.LARGE_BLOCK\n"
              "print(asked, mallinfo2().hblkhd < plane.nbytes)\n")   # hblkhd: the bytes of blocks mapped on their own
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env | variables,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    if run.stdout.startswith("[False]"):
        pytest.skip("this glibc refuses an mmap threshold over 32 MB")
    assert run.stdout.split() == [str([True] if reused else []), str(reused)]
