"""Training that scales: the data stream and its workers, torchrun DDP (gloo, 2 local processes), the time
budget and signals, the bad-input errors; tiny configs on the CPU."""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from adamat.cli import main
from adamatting.loss import AdaMattingLoss
from adamatting.model import build_model
from adamatting.train import Budget, RunOptions, TrainConfig, TrainData, batches, train
from adamatting.train.step import NetworkAndLoss

ROOT = Path(__file__).resolve().parent.parent
TINY = TrainConfig(model="tiny", steps=4, batch=2, crop=64, warmup=1, real_fraction=0.0, bank_size=4, bank_res=96,
                   bg_bank=2, ckpt_every=2, val_every=1000, threads=1, ema_decay=0.5)
TINY_ARGS = ["--config", "tiny", "--crop", "64", "--real-fraction", "0", "--bank-size", "4", "--bank-res", "96",
             "--threads", "1", "--warmup", "1", "--ema-decay", "0.5", "--val-every", "1000"]


def _env(**extra) -> dict:
    """A child's environment: no real data (no validation, fast), one thread per process."""
    return {**os.environ, "ADAMATTING_SHARED_DATA": "/nonexistent", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT), **extra}


def _adamat(*args, cwd, **env):
    return subprocess.run([sys.executable, "-m", "adamat.cli", *args], cwd=cwd, env=_env(**env),
                          capture_output=True, text=True, timeout=300)


def _steps(run: Path) -> list[int]:
    return [int(r["step"]) for r in csv.DictReader((run / "log.csv").open())]


def _weights(path: Path, key: str = "model") -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)[key]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return TrainData(TINY, tmp_path_factory.mktemp("cache"), progress=False)


def _stream(data, start, stop, workers, rank=0):
    return [(step, {k: v.numpy() for k, v in b.items()}) for step, b in batches(data, start, stop, rank, workers)]


def _same(a, b) -> bool:
    return all(sa == sb and all(np.array_equal(xa[k], xb[k]) for k in xa) for (sa, xa), (sb, xb) in zip(a, b)) \
        and len(a) == len(b)


def test_the_stream_is_the_same_for_any_worker_count_and_resumes_where_it_stopped(data):
    serial = _stream(data, 0, 6, workers=0)
    assert [s for s, _ in serial] == list(range(6))
    assert _same(_stream(data, 0, 6, workers=2), serial)             # same seed and settings: same batches
    assert _same(_stream(data, 3, 6, workers=1), serial[3:])         # resumed at step 3: nothing repeated or skipped
    assert not np.array_equal(serial[0][1]["image"], serial[1][1]["image"])
    other_seed = TrainData(replace(TINY, seed=1), Path("cache-unused"), progress=False)
    assert not np.array_equal(other_seed.batch_arrays(0)["alpha"], serial[0][1]["alpha"])


def test_a_step_split_between_processes_is_the_doubled_batch_of_one(data):
    full = data.batch_arrays(5, batch=4)
    halves = [data.batch_arrays(5, rank) for rank in (0, 1)]
    for k in full:
        assert np.array_equal(full[k], np.concatenate([h[k] for h in halves]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_gradients(rank, port, batch, out):
    """Rank ``rank`` of 2: DDP gradients of its half of ``batch``, stored in ``out[rank]``."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    net = NetworkAndLoss(build_model(TINY.model_config()), AdaMattingLoss(comp_weight=0.5, grad_weight=1.0))
    net.model.eval()   # BatchNorm from running statistics: the same function of each sample on any split
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    half = {k: v[2 * rank:2 * rank + 2] for k, v in batch.items()}
    ddp(half)[0].backward()
    out[rank] = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    dist.destroy_process_group()


def test_ddp_averages_gradients_of_the_network_and_the_learned_sigmas_exactly(data):
    """Two processes with two samples each give the gradient of one process with the four: exactly when the
    loss is a mean of the samples' means (here: every pixel unknown, so each sample weighs the same) and
    BatchNorm does not mix samples (eval mode). In training, per-process BatchNorm statistics and the loss's
    normalisation by the unknown pixels of the whole batch make the two differ (see the README)."""
    batch = {k: torch.from_numpy(v) for k, v in data.batch_arrays(0, batch=4).items()}
    batch["trimap"] = torch.full_like(batch["trimap"], 0.5)
    out = mp.Manager().dict()
    mp.spawn(_ddp_gradients, args=(_free_port(), batch, out), nprocs=2)
    torch.manual_seed(0)
    net = NetworkAndLoss(build_model(TINY.model_config()), AdaMattingLoss(comp_weight=0.5, grad_weight=1.0))
    net.model.eval()
    net(batch)[0].backward()
    single = {n: p.grad for n, p in net.named_parameters() if p.grad is not None}
    assert set(out[0]) == set(single) and "loss.log_var_alpha" in single
    for name, g in single.items():
        assert torch.equal(out[0][name], out[1][name]), name          # every rank holds the same gradient
        assert torch.allclose(out[0][name], g, rtol=1e-4, atol=1e-6), name


def _sigterm_at(step):
    def validate(model):
        if validate.calls == 0:
            os.kill(os.getpid(), signal.SIGTERM)   # what a cluster sends before preempting
        validate.calls += 1
        return {"SAD": 10.0 - validate.calls, "MSE": 0.0, "Grad": 0.0, "Conn": 0.0}
    validate.calls = 0
    return validate


def test_sigterm_leaves_a_run_that_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    cfg = replace(TINY, val_every=2)
    quiet = {"progress": False, "options": RunOptions(workers=2)}
    train(tmp_path / "straight", cfg, tmp_path / "cache", **quiet)
    train(tmp_path / "stopped", cfg, tmp_path / "cache", validate=_sigterm_at(2), **quiet)
    assert torch.load(tmp_path / "stopped" / "last.pt", weights_only=False)["step"] == 2
    assert (tmp_path / "stopped" / "best.pt").is_file()
    train(tmp_path / "stopped", cfg, tmp_path / "cache", **quiet)
    assert _steps(tmp_path / "stopped") == [1, 2, 3, 4]
    for key in ("model", "ema"):
        a, b = _weights(tmp_path / "straight" / "last.pt", key), _weights(tmp_path / "stopped" / "last.pt", key)
        assert all(torch.equal(a[k], b[k]) for k in a), key


def test_budget_reserves_a_step_a_validation_and_a_checkpoint():
    now = [0.0]
    budget = Budget(1.0, clock=lambda: now[0])
    budget.took("step", 2.0)
    budget.took("validation", 10.0)
    budget.took("checkpoint", 1.0)
    now[0] = 60.0 - 16.0   # 2 steps + a validation + 2 checkpoints = 16 s left: not yet
    assert not budget.spent()
    now[0] += 0.5
    assert budget.spent()
    assert not Budget(None).spent()


def test_a_time_budget_stops_with_a_validation_and_a_resumable_run(tmp_path):
    cfg = replace(TINY, steps=100_000)
    scores = iter(range(100, 0, -1))
    validate = lambda model: {"SAD": float(next(scores)), "MSE": 0.0, "Grad": 0.0, "Conn": 0.0}  # noqa: E731
    t0 = time.monotonic()
    train(tmp_path / "run", cfg, tmp_path / "cache", progress=False, validate=validate,
          options=RunOptions(minutes=0.1))
    wall = time.monotonic() - t0
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert 1 < last["step"] < cfg.steps and last["step"] == int(rows[-1]["step"])
    assert rows[0]["val_sad"] and rows[-1]["val_sad"]          # the first step and the last validate
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=False)["step"] == last["step"]
    assert last["elapsed_s"] < 6.0, (last["elapsed_s"], wall)   # its own clock: the budget is 6 s


@pytest.mark.slow
def test_torchrun_with_two_processes_writes_once_and_resumes_on_another_world_size(tmp_path):
    run = tmp_path / "run"
    done = _adamat("train", "--nproc", "2", "--run-dir", str(run), "--steps", "3", "--batch", "1", "--workers", "1",
                   *TINY_ARGS, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in run.iterdir()) == ["curves.png", "last.pt", "log.csv", "train_config.json"]
    assert _steps(run) == [1, 2, 3]                           # rank 0 alone logs
    assert torch.load(run / "last.pt", weights_only=False)["world_size"] == 2
    more = _adamat("train", "--run-dir", str(run), "--steps", "5", "--batch", "1", *TINY_ARGS, cwd=tmp_path)
    assert more.returncode == 0, more.stderr[-2000:]
    assert "resuming" in more.stdout and _steps(run) == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_sigterm_to_a_two_process_run_leaves_a_resumable_checkpoint(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "adamat.cli", "train", "--nproc", "2", "--run-dir", str(run), "--steps", "100000",
           "--batch", "1", "--workers", "0", *TINY_ARGS]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ((run / "log.csv").is_file() and len(_steps(run)) >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + signal.SIGTERM and "stopped by signal 15" in err, err[-2000:]
    step = torch.load(run / "last.pt", weights_only=False)["step"]
    assert step >= 3 and _steps(run)[-1] == step
    more = _adamat("train", "--run-dir", str(run), "--steps", str(step + 1), "--batch", "1", *TINY_ARGS, cwd=tmp_path)
    assert more.returncode == 0 and f"resuming {run / 'last.pt'} at step {step}" in more.stdout


@pytest.mark.parametrize("args, message", [
    (["--workers", "-1"], "argument --workers: must be >= 0, got -1"),
    (["--nproc", "0"], "argument --nproc: must be >= 1, got 0"),
    (["--minutes", "0"], "argument --minutes: must be > 0, got 0"),
    (["--steps", "0"], "argument --steps: must be >= 1, got 0"),
    (["--batch", "-2"], "argument --batch: must be >= 1, got -2"),
    (["--crop", "0"], "argument --crop: must be >= 1, got 0"),
    (["--lr", "inf"], "argument --lr: must be a finite number > 0, got inf"),
    (["--grad-weight", "nan"], "argument --grad-weight: must be a finite number >= 0, got nan"),
    (["--comp-weight", "-1"], "argument --comp-weight: must be a finite number >= 0, got -1"),
    (["--bank-size", "0"], "argument --bank-size: must be >= 1, got 0"),
    (["--bank-res", "7"], "argument --bank-res: must be >= 32, got 7"),
    (["--real-scale", "nan", "1"], "argument --real-scale: must be a finite number > 0, got nan"),
    (["--val-every", "0"], "argument --val-every: must be >= 1, got 0"),
    (["--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["--seed", str(2 ** 64)], "argument --seed: must be at most 4294967295"),     # failed inside torch's seed
    (["--distill-weight", "inf"], "argument --distill-weight: must be a finite number >= 0, got inf"),
])
def test_bad_run_options_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--run-dir", str(tmp_path / "run"), *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, message", [
    (["--real-scale", "2", "1"], "real_scale (--real-scale MIN MAX) needs 0 < MIN <= MAX, got (2.0, 1.0)"),
    (["--distill-weight", "0.5"], "--distill-weight weighs the distillation from --teacher"),
    (["--nproc", "999"], "--nproc 999: this machine has"),
    (["--cache", "{file}"], "argument --cache: {file} is a file, not a folder"),   # as the parser reads them
    (["--run-dir", "{file}"], "argument --run-dir/--run: {file} is a file, not a folder"),
    (["--sync-bn", "--device", "cpu"], "--sync-bn needs CUDA"),
])
def test_options_that_would_fail_after_the_data_or_do_nothing_are_refused_first(tmp_path, capsys, args, message):
    """Each was refused only after the training data was built (about 15 s), or not at all; no run folder."""
    file = tmp_path / "a_file"
    file.write_bytes(b"")
    args = [a.format(file=file) for a in args]
    try:
        code = main(["train", "--run-dir", str(tmp_path / "run"), *TINY_ARGS, *args])
    except SystemExit as e:                 # the parser's own refusals
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message.format(file=file) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_the_run_folder_appears_only_once_the_data_is_built(tmp_path, capsys, monkeypatch):
    """Data that cannot be built (here: no foreground at all) leaves no run folder behind."""
    from adamatting.train import loop

    def no_data(*args):
        raise ValueError("foreground pool is empty")
    monkeypatch.setattr(loop, "TrainData", no_data)
    assert main(["train", "--run-dir", str(tmp_path / "run"), *TINY_ARGS]) == 2
    assert "foreground pool is empty" in capsys.readouterr().err and not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA where there is none")
def test_cuda_asked_for_where_there_is_none(tmp_path, capsys):
    assert main(["train", "--run-dir", str(tmp_path / "run"), "--device", "cuda", *TINY_ARGS]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device cuda: no CUDA device is available here" in err
    assert main(["train", "--run-dir", str(tmp_path / "run"), "--amp", "fp16", "--device", "cpu", *TINY_ARGS]) == 2
    assert "--amp fp16 needs CUDA" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_data_folder_missing_on_one_rank_stops_every_rank_before_anything_is_written(tmp_path):
    """Rank 1 sees no real photos (another node without the data): every rank stops with one line."""
    real = tmp_path / "data"
    (real / "alphamatting_lowres_dev" / "input").mkdir(parents=True)
    for name in ("GT01", "GT05"):
        (real / "alphamatting_lowres_dev" / "input" / f"{name}.png").write_bytes(b"")
    wrapper = tmp_path / "rank.sh"
    wrapper.write_text(f'#!/bin/sh\n[ "$LOCAL_RANK" = 1 ] && export ADAMATTING_SHARED_DATA=/nonexistent '
                       f'|| export ADAMATTING_SHARED_DATA={real}\nexec {sys.executable} -m adamat.cli "$@"\n')
    wrapper.chmod(0o755)
    run = tmp_path / "run"
    args = [a for a in TINY_ARGS if a not in ("--real-fraction", "0")]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "--no-python", str(wrapper), "train", "--run-dir", str(run), "--no-pseudo-labels",
                           "--steps", "2", *args], cwd=tmp_path, env={**_env(), "ADAMATTING_SHARED_DATA": ""},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert (f"error: rank 1 finds 0 photos in /nonexistent/alphamatting_lowres_dev, rank 0 finds 2 in {real}/"
            "alphamatting_lowres_dev: every process of a run needs the same data") in done.stderr
    assert not run.exists()


@pytest.mark.slow
def test_the_gpu_script_runs_on_the_cpu_with_a_two_minute_budget(tmp_path):
    """scripts/train_on_gpu.sh as on a GPU machine, with the project's interpreter and ALLOW_CPU=1: it trains
    from the shipped weights within the budget, ships the weight average and evaluates it (with the real
    photos, when present), and writes its throughput."""
    out = tmp_path / "gpu-run"
    env = {**_env(), "PYTHON": sys.executable, "ALLOW_CPU": "1", "EVAL_MINUTES": "1", "BATCH": "2"}
    env.pop("ADAMATTING_SHARED_DATA")
    done = subprocess.run(["bash", str(ROOT / "scripts" / "train_on_gpu.sh"), str(out), "2", "--crop", "256",
                           "--real-fraction", "0", "--bank-size", "8", "--bank-res", "256", "--threads", "2"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # training gets 2 - 1 minutes less the setup's whole seconds (none when the setup takes under a second)
    assert re.search(r"time budget of (0\.9\d*|1) min spent: stopped at step \d+", done.stdout), done.stdout[-3000:]
    assert {"last.pt", "log.csv", "curves.png"} <= {p.name for p in (out / "run").iterdir()}
    assert (out / "candidate.pt").is_file() and (out / "script.log").stat().st_size > 0
    assert json.loads((out / "throughput.json").read_text())["samples_per_s"] > 0
    from calib_data.splits import alphamatting_dev_dir
    if alphamatting_dev_dir().is_dir():
        for protocol in ("trimap", "mask"):
            scores = json.loads((out / f"eval-{protocol}" / "eval.json").read_text())
            assert any(m.startswith("candidate.pt (torch/fp32)") for m in scores["methods"]), scores["methods"]


def test_a_student_learns_from_a_teacher_beside_the_ground_truth(tmp_path):
    teacher = tmp_path / "teacher.pt"
    torch.manual_seed(3)
    from adamatting.checkpoint import save_checkpoint
    save_checkpoint(teacher, build_model(replace(TINY, model="tiny-guided").model_config()))
    cfg = replace(TINY, model="tiny-fused", steps=2, teacher=str(teacher), distill_weight=0.5)
    train(tmp_path / "run", cfg, tmp_path / "cache", progress=False)
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert all(float(r["distill_total"]) > 0 for r in rows)
    with pytest.raises(ValueError, match="crop 96 is not a multiple of the teacher's stride 64"):
        train(tmp_path / "other", replace(cfg, crop=96), tmp_path / "cache", progress=False)
    with pytest.raises(ValueError, match="checkpoint not found"):
        train(tmp_path / "none", replace(cfg, teacher=str(tmp_path / "missing.pt")), tmp_path / "cache",
              progress=False)
    assert not (tmp_path / "other").exists() and not (tmp_path / "none").exists()
