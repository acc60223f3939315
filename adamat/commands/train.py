"""``adamat train`` (``make train``): train, or resume, a model in a run folder."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from adamat.arguments import guided_scale, minutes
from adamatting.train import RunOptions, TrainConfig, train
from adamatting.train.config import AMP
from adamatting.train.distributed import choose_device
from adamatting.train.launch import launch, without_option
from calib_data.splits import alphamatting_dev_dir
from common.arguments import (
    count,
    fraction,
    number,
    out_folder,
    path_text,
    positive_int,
    scale,
    thread_count,
    whole_number,
)
from common.machine import usable_cores
from evaluation.protocol import evaluate_real, model_predictor

MAX_SEED = 2**32 - 1   # --seed, at most (torch's seed takes 64 bits; 2**64 failed inside it, naming no option)


def add_arguments(t) -> None:
    t.add_argument("--config", default="mobile", help="model config: mobile, paper, tiny")
    t.add_argument("--guided-scale", type=guided_scale, default=None, metavar="{1,4/3,2,4}",
                   help="override the config's guided_scale: 1 runs the network at full resolution (no guided "
                        "upsampler), 4/3 at 3/4 resolution with it (the mobile config's own), 2 at half")
    t.add_argument("--run-dir", "--run", dest="run", type=out_folder, default="runs/mobile",
                   help="run folder; an existing last.pt is resumed (write --run-dir under torchrun, which takes "
                        "--run for its own --run-path)")
    t.add_argument("--steps", type=whole_number(1), default=3000)
    t.add_argument("--batch", type=whole_number(1), default=8)
    t.add_argument("--crop", type=whole_number(1), default=512,
                   help="training crop side, a multiple of the model's stride")
    t.add_argument("--lr", type=number(0, above=True), default=1e-3)
    t.add_argument("--warmup", type=count, default=50, help="steps of linear learning-rate warm-up")
    t.add_argument("--real-fraction", type=fraction, default=0.7)
    t.add_argument("--grad-weight", type=number(0), default=1.0, help="Sobel-gradient L1 weight in the alpha loss")
    t.add_argument("--comp-weight", type=number(0), default=0.5, help="composition L1 weight in the alpha loss")
    t.add_argument("--bank-size", type=whole_number(1), default=192,
                   help="procedural foregrounds pre-rendered for training")
    t.add_argument("--bank-res", type=whole_number(32), default=512,
                   help="side of the pre-rendered procedural foregrounds")
    t.add_argument("--real-scale", type=scale, nargs=2, default=[0.8, 1.25], metavar=("MIN", "MAX"),
                   help="scale of the real cut-outs relative to their native resolution (default: 0.8 1.25)")
    t.add_argument("--pseudo-labels", action=argparse.BooleanOptionalAction, default=True,
                   help="also train on the alphamatting.com test photos (no ground truth) with closed-form "
                        "matting's alpha as the label (default: %(default)s)")
    t.add_argument("--photo-fraction", type=fraction, default=0.5,
                   help="share of the real samples that are crops of the photo as taken (its own background) "
                        "rather than its cut-out re-composited (default: %(default)s)")
    t.add_argument("--photo-trimap-fraction", type=fraction, default=0.5,
                   help="share of those photo crops that take one of the photo's hand-drawn trimaps "
                        "(default: %(default)s)")
    t.add_argument("--val-every", type=whole_number(1), default=200)
    t.add_argument("--ema-decay", type=float, default=0.995,
                   help="weight average validated, kept as best.pt and shipped (0: the raw weights)")
    t.add_argument("--train-only", nargs="+", default=[], metavar="MODULE",
                   help="train only these parts (e.g. refiner propagation alpha_decoder); the rest keeps its "
                        "weights and BatchNorm statistics")
    t.add_argument("--threads", type=thread_count, default=0, help="torch CPU threads (default: torch's)")
    t.add_argument("--seed", type=whole_number(0, MAX_SEED), default=0,
                   help=f"the run's seed: its data stream and initial weights (0 to {MAX_SEED})")
    g = t.add_argument_group("how it runs (not part of the recipe)")
    g.add_argument("--nproc", type=positive_int, default=1,
                   help="training processes on this machine (torchrun's engine; --batch is per process)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when present")
    g.add_argument("--amp", choices=AMP, default=None,
                   help="mixed precision (default: bf16 on CUDA, off on the CPU; fp16 adds loss scaling)")
    g.add_argument("--workers", type=count, default=None,
                   help="data-loading processes per training process (default: on CUDA every core but one, "
                        "shared between the processes; on the CPU 0)")
    g.add_argument("--minutes", type=minutes, default=None,
                   help="time budget: stop cleanly (validation, last.pt, best.pt) before it is spent")
    g.add_argument("--compile", action="store_true", help="torch.compile the network (CUDA)")
    g.add_argument("--sync-bn", action="store_true",
                   help="BatchNorm statistics over every process's batch (CUDA only; default per process)")
    t.add_argument("--cache", type=out_folder, default="cache", help="cache root (estimated real foregrounds)")
    t.add_argument("--teacher", type=path_text, default=None, metavar="CHECKPOINT",
                   help="distil from this trained checkpoint (e.g. weights/mobile.pt): its alpha and adapted trimap "
                        "become soft targets beside the ground truth")
    t.add_argument("--distill-weight", type=number(0), default=None,
                   help="weight of the distillation loss (with --teacher; default 1)")
    t.add_argument("--init", type=path_text, default=None,
                   help="start a new run from these weights (e.g. weights/mobile.pt); an existing last.pt wins")
    t.set_defaults(func=run)


def run(args) -> int:
    device = choose_device(args.device)   # CUDA asked for where there is none: one line, before any process starts
    _check_run(args, device)
    if args.nproc > 1:
        return launch(args.nproc, without_option(args.argv, "--nproc"))
    options = RunOptions(device=args.device, amp=args.amp, workers=args.workers, minutes=args.minutes,
                         compile=args.compile, sync_bn=args.sync_bn)
    cfg = TrainConfig(model=args.config, guided_scale=args.guided_scale, steps=args.steps, batch=args.batch,
                      crop=args.crop, lr=args.lr, warmup=args.warmup, real_fraction=args.real_fraction,
                      grad_weight=args.grad_weight, comp_weight=args.comp_weight, threads=args.threads,
                      val_every=args.val_every, bank_size=args.bank_size, bank_res=args.bank_res,
                      real_scale=tuple(args.real_scale), ema_decay=args.ema_decay, pseudo_labels=args.pseudo_labels,
                      photo_fraction=args.photo_fraction, photo_trimap_fraction=args.photo_trimap_fraction,
                      train_only=tuple(args.train_only), seed=args.seed, teacher=args.teacher,
                      distill_weight=1.0 if args.distill_weight is None else args.distill_weight)
    validate = None
    if alphamatting_dev_dir().is_dir():
        def validate(model):
            return evaluate_real(model_predictor(model))[0]
    elif os.environ.get("RANK", "0") == "0":
        print(f"note: {alphamatting_dev_dir()} not found: training without validation", file=sys.stderr)
    train(args.run, cfg, Path(args.cache), validate=validate, init=args.init, options=options)
    return 0


def _check_run(args, device) -> None:
    """ValueError naming the option for what would fail only after the data is built, or run unused."""
    if args.distill_weight is not None and not args.teacher:
        raise ValueError("--distill-weight weighs the distillation from --teacher: give a teacher or leave it out")
    most = torch.cuda.device_count() if device.type == "cuda" else usable_cores()
    if args.nproc > most:
        where = f"{most} CUDA device(s)" if device.type == "cuda" else f"{most} CPU core(s)"
        raise ValueError(f"--nproc {args.nproc}: this machine has {where}, one per training process")
