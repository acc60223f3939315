"""The training loop: one run folder, one or several processes, resumable at any step.

A run folder holds ``last.pt`` (resumable: model, loss σ's, optimiser, weight average, step), ``best.pt``
(the best mean SAD on the held-back real images), ``train_config.json``, ``log.csv`` and ``curves.png``.
Starting a run whose folder has ``last.pt`` continues it, with any number of processes. SIGINT/SIGTERM (what
a cluster sends before preempting) and a spent time budget stop every process at the same step; rank 0 then
writes ``last.pt`` (after a last validation, for the budget).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from adamatting.checkpoint import (
    CheckpointError,
    load_state,
    read_checkpoint,
    save_checkpoint,
    upgrade_state,
)
from adamatting.config import ModelConfig, format_scale
from adamatting.loss import AdaMattingLoss
from adamatting.model import AdaMatting, build_model
from adamatting.train import distributed
from adamatting.train.average import WeightAverage
from adamatting.train.config import RunOptions, TrainConfig, default_workers
from adamatting.train.curves import log_columns, plot_curves
from adamatting.train.data import TrainData, batches, data_sources, to_device
from adamatting.train.distill import load_teacher
from adamatting.train.freezing import freeze_except, frozen_norms
from adamatting.train.schedule import Budget, lr_at
from adamatting.train.step import NetworkAndLoss, Precision, choose_amp
from common.errors import DataError

LOG_FIELDS = ["step", "elapsed_s", "lr", "loss", "trimap_ce", "alpha_l1", "alpha_l1_decoder", "alpha_grad", "sigma1",
              "sigma2", "val_sad", "val_mse", "val_grad", "val_conn", "distill_total", "distill_alpha_l1"]
CLIP = 5.0   # gradient-norm clip


def train(run_dir: str | Path, cfg: TrainConfig, cache_root: Path = Path("cache"), progress: bool = True,
          validate=None, init: str | Path | None = None, options: RunOptions | None = None) -> Path:
    """Train (or continue) a run. ``validate(model) -> dict`` (mean SAD etc.) is called every val_every steps
    on the weight average (``cfg.ema_decay``; the raw weights when it is 0), which best.pt then holds;
    last.pt holds the raw weights, the optimiser state and the average (``ema``) to resume from.

    ``init``: a checkpoint whose weights (and learned σ's, when it has them) start a *new* run, e.g. the
    shipped weights/mobile.pt; ignored when the run folder already has last.pt (that is resumed).
    ``options``: device, precision, data workers, time budget (:class:`RunOptions`). Under torchrun every
    process calls this; ``progress`` and ``validate`` matter on rank 0 only."""
    options = options or RunOptions()
    budget = Budget(options.minutes)   # counts from here: building the data is part of the budget
    procs = distributed.start(options.device)
    try:
        run = Run(Path(run_dir), cfg, options, procs, progress and procs.main)
        run.prepare(cache_root, init)
        return run.loop(validate if procs.main else None, budget)
    finally:
        procs.close()


def check_resume(last: Path, resumed: dict, cfg: TrainConfig, model_cfg: ModelConfig) -> None:
    """A resume must ask for the run's own parts and network; the first error names the options to use."""
    saved_only = tuple(resumed.get("train_config", {}).get("train_only", ()))
    if saved_only != tuple(cfg.train_only):   # the optimiser state holds only the parts the run trains
        show = lambda parts: " ".join(parts) if parts else "everything"  # noqa: E731
        raise CheckpointError(f"{last} trains {show(saved_only)}, this resume asks for {show(cfg.train_only)}; "
                              "resume with the run's options"
                              + (f" (--train-only {' '.join(saved_only)})" if saved_only else " (no --train-only)"))
    saved = ModelConfig.from_dict(resumed["config"]).replace(name=model_cfg.name)
    differ = [f"{k}: run {a} vs now {b}" for k, a, b in saved.differences(model_cfg)]
    if differ:
        hint = (f" (--guided-scale {format_scale(saved.guided_scale)})"
                if saved.guided_scale != model_cfg.guided_scale else "")
        raise CheckpointError(f"{last} was trained with another model config than this resume asks for ("
                              + ", ".join(differ) + f"); resume with the run's options{hint}")


def check_same_data(procs: distributed.Processes, cfg: TrainConfig) -> None:
    """Every process must see the same real photos (a node without the data folder would train on less)."""
    seen = procs.gather(data_sources(cfg))
    for rank, sources in enumerate(seen):
        for (folder, names), (folder0, names0) in zip(sources, seen[0]):
            if names != names0:
                raise DataError(f"rank {rank} finds {len(names)} photos in {folder}, rank 0 finds {len(names0)} in "
                                f"{folder0}: every process of a run needs the same data")


class Run:
    """The state of one run in this process: network, loss, optimiser, weight average, step."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, options: RunOptions, procs: distributed.Processes,
                 progress: bool):
        self.dir, self.cfg, self.options, self.procs, self.progress = run_dir, cfg, options, procs, progress
        self.last = run_dir / "last.pt"
        self.step, self.best, self.elapsed = 0, float("inf"), 0.0

    def log(self, message: str) -> None:
        if self.procs.main:
            print(message)

    # -- setting up ----------------------------------------------------------------------------------------

    def prepare(self, cache_root: Path, init: str | Path | None) -> None:
        """Everything that can fail on bad input fails here, before the run folder exists."""
        cfg, model_cfg, device = self.cfg, self.cfg.model_config(), self.procs.device
        resumed = read_checkpoint(self.last) if self.last.is_file() else None   # read once: checked, then loaded
        if resumed is not None:
            check_resume(self.last, resumed, cfg, model_cfg)
        if cfg.crop % model_cfg.stride:
            raise ValueError(f"crop {cfg.crop} is not a multiple of the {cfg.model!r} model's stride {model_cfg.stride}")
        if not 0.0 <= cfg.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0: no weight average), got {cfg.ema_decay}")
        if self.options.sync_bn and device.type != "cuda":
            raise ValueError("--sync-bn needs CUDA (PyTorch's SyncBatchNorm does not run on the CPU)")
        self.precision = Precision(choose_amp(self.options.amp, device), device)
        check_same_data(self.procs, cfg)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)   # the initial weights (rank 0's are broadcast to the others anyway)
        # channels_last: ~1.4x faster depthwise convolutions on CPU (measured on a 2-core machine)
        self.model: AdaMatting = build_model(model_cfg).to(device, memory_format=torch.channels_last)
        self.trained = freeze_except(self.model, cfg.train_only)   # a bad name fails before the folder exists
        self.loss = AdaMattingLoss(aux_weight=cfg.aux_weight, comp_weight=cfg.comp_weight,
                                   grad_weight=cfg.grad_weight).to(device)
        self.params = self.trained + list(self.loss.parameters())
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        teacher = self._teacher(cfg, device)
        averaged = self._restore(resumed) if resumed is not None else self._start_from(init)
        self.ema = WeightAverage(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        if self.ema is not None and averaged is not None:
            self.ema.model.load_state_dict(averaged)
        with self.procs.main_first():   # rank 0 fills the caches (estimated foregrounds) the others read
            self.data = TrainData(cfg, cache_root, self.progress)
        if self.procs.main:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "train_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
        self.net = self._wrap(NetworkAndLoss(self.model, self.loss, teacher, cfg.distill_weight))

    @staticmethod
    def _teacher(cfg: TrainConfig, device: torch.device) -> AdaMatting | None:
        if not cfg.teacher:
            return None
        teacher = load_teacher(cfg.teacher).to(device, memory_format=torch.channels_last)
        if cfg.crop % teacher.cfg.stride:
            raise ValueError(f"crop {cfg.crop} is not a multiple of the teacher's stride {teacher.cfg.stride} "
                             f"({cfg.teacher})")
        return teacher

    def _restore(self, ck: dict) -> dict | None:
        if upgrade_state(self.model, ck["model"])[1]:
            raise CheckpointError(f"{self.last} predates the propagation unit's trimap input: its optimizer state "
                                  f"does not fit the model; start a new run from its weights (--init {self.last})")
        load_state(self.model, ck["model"], self.last)
        self.loss.load_state_dict(ck["loss"])
        self.opt.load_state_dict(ck["optimizer"])
        self.step, self.best, self.elapsed = ck["step"], ck.get("best", self.best), ck.get("elapsed_s", 0.0)
        self.log(f"resuming {self.last} at step {self.step} (best val SAD {self.best:.3f})"
                 + (f" on {self.procs.world} processes" if self.procs.distributed else ""))
        return ck.get("ema")   # absent in runs from before the weight average: it starts here

    def _start_from(self, init: str | Path | None) -> None:
        if init is None:
            return None
        ck = read_checkpoint(init)
        # The same network with and without the guided upsampler (guided_scale > 1 vs 1) shares every weight
        # but the upsampler's: a run of one can start from the other. A new upsampler starts from its
        # identity-like initialisation; an old one is dropped.
        kept, dropped = load_state(self.model, ck["model"], init, new_modules=("refiner.",))
        if "loss" in ck:
            self.loss.load_state_dict(ck["loss"])
        self.log(f"new run {self.dir} from the weights of {init} (its step {ck.get('step', '?')})"
                 + (f"; {len(kept)} refiner tensors newly initialised" if kept else "")
                 + (f"; its {len(dropped)} refiner tensors dropped" if dropped else ""))
        return None

    def _wrap(self, net: NetworkAndLoss) -> torch.nn.Module:
        """Under several processes, DistributedDataParallel (gradients averaged across ranks; BatchNorm
        statistics per process unless ``sync_bn``); compiled when asked."""
        device = self.procs.device
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True   # fixed crop size: the fastest kernels are found once
        if self.procs.distributed:
            if self.options.sync_bn:
                net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
            net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        return torch.compile(net) if self.options.compile else net

    # -- running -------------------------------------------------------------------------------------------

    def save(self, path: Path, weights: AdaMatting | None = None, **extra) -> None:
        if not self.procs.main:
            return
        if self.ema is not None and weights is None:
            extra["ema"] = self.ema.model.state_dict()
        save_checkpoint(path, weights or self.model, loss=self.loss.state_dict(), optimizer=self.opt.state_dict(),
                        step=self.step, best=self.best, elapsed_s=self.elapsed,
                        train_config=dataclasses.asdict(self.cfg), world_size=self.procs.world, **extra)

    def validate(self, validate, budget: Budget) -> dict[str, float]:
        t0 = time.monotonic()
        scored = self.model.eval() if self.ema is None else self.ema.model
        scores = validate(scored)
        if scores["SAD"] < self.best:
            self.best = scores["SAD"]
            self.save(self.dir / "best.pt", weights=scored, val=scores)
        budget.took("validation", time.monotonic() - t0)
        return {f"val_{k.lower()}": v for k, v in scores.items()}

    def checkpoint(self, budget: Budget, curves: bool) -> None:
        t0 = time.monotonic()
        self.save(self.last)
        if curves and self.procs.main:
            plot_curves(self.dir / "log.csv", self.dir / "curves.png")
        budget.took("checkpoint", time.monotonic() - t0)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        self.model.train()
        for m in self.frozen:
            m.eval()
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step, self.cfg)
        with self.precision.autocast():
            loss, parts = self.net(batch)
        self.precision.step(loss, self.opt, self.params, CLIP)
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return parts

    def loop(self, validate, budget: Budget) -> Path:
        cfg, procs = self.cfg, self.procs
        self.frozen = frozen_norms(self.model) if cfg.train_only else []   # requires_grad is fixed for the run
        stream = self._stream()
        log = self._open_log()
        stop = {"signal": False}
        old = {s: signal.signal(s, lambda *_: stop.update(signal=True)) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not self.progress, desc="train", unit="step")
        t_start, first, spent = time.time() - self.elapsed, self.step, False
        try:
            # every rank stops at the same step: on a signal to any of them, or when rank 0's budget is spent
            while self.step < cfg.steps and not procs.any(stop["signal"] or spent):
                t0 = time.monotonic()
                step, batch = next(stream)
                assert step == self.step, f"data stream at step {step}, training at {self.step}"
                parts = self._timed_step(batch, budget, t0, t_start)
                spent = procs.main and budget.spent()
                self._log_step(parts, validate, self._validation_due(budget, first, spent), budget, log, bar)
            if spent and self.step < cfg.steps:
                self.log(f"time budget of {self.options.minutes:g} min spent: stopped at step {self.step}")
        finally:
            self.save(self.last)
            bar.close()
            for s, h in old.items():
                signal.signal(s, h)
            del stream   # stops the data workers
        if procs.main:
            plot_curves(log, self.dir / "curves.png")
        procs.barrier()   # the others leave once last.pt is written
        return self.last

    def _stream(self):
        """The batches from the run's step on, with the data workers asked for (default: by device and local
        processes)."""
        procs = self.procs
        workers = self.options.workers
        if workers is None:
            workers = default_workers(procs.device.type == "cuda", procs.local_world)
        return iter(batches(self.data, self.step, self.cfg.steps, procs.rank, workers, procs.device.type == "cuda"))

    def _open_log(self) -> Path:
        """log.csv, its header written where it is new, and on rank 0 its columns read."""
        log = self.dir / "log.csv"
        if self.procs.main and not log.is_file():
            with log.open("w", newline="") as f:
                csv.writer(f).writerow(LOG_FIELDS)
        if self.procs.main:   # a resumed run keeps its log's columns
            self.fields = log_columns(log)
        return log

    def _timed_step(self, batch: dict[str, torch.Tensor], budget: Budget, t0: float,
                    t_start: float) -> dict[str, float]:
        """One training step on ``batch``: its time since ``t0`` (fetching the batch included) told to the budget,
        the run's elapsed time counted from ``t_start``."""
        parts = self.train_step(to_device(batch, self.procs.device))
        budget.took("step", time.monotonic() - t0)
        self.elapsed = time.time() - t_start
        return parts

    def _validation_due(self, budget: Budget, first: int, spent: bool) -> bool:
        """Every val_every steps and at the last; a budget validates its first step (from then on a validation's
        cost is known) and its last."""
        return (self.step % self.cfg.val_every == 0 or self.step == self.cfg.steps or spent
                or (budget.deadline is not None and self.step == first + 1))

    def _log_step(self, parts: dict[str, float], validate, due: bool, budget: Budget, log: Path, bar) -> None:
        """The step's row of log.csv, with a validation where due; a checkpoint every ckpt_every steps and after
        each validation."""
        row = {"step": self.step, "elapsed_s": round(self.elapsed, 1), "lr": self.opt.param_groups[0]["lr"], **parts}
        if validate is not None and due:
            row.update(self.validate(validate, budget))
        self._append(log, row, bar, parts)
        if self.step % self.cfg.ckpt_every == 0 or "val_sad" in row:
            self.checkpoint(budget, curves="val_sad" in row)

    def _append(self, log: Path, row: dict, bar, parts) -> None:
        if not self.procs.main:
            return
        with log.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore").writerow(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.3f}", l1=f"{parts['alpha_l1']:.3f}", s1=f"{parts['sigma1']:.3f}",
                            s2=f"{parts['sigma2']:.3f}")
