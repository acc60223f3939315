"""Resumable training of AdaMatting on composited data (CPU by default, CUDA when present).

A run folder holds ``last.pt`` (resumable: model, loss σ's, optimizer, step), ``best.pt`` (best mean SAD on
the held-back real images), ``log.csv`` and ``curves.png``. Starting a run whose folder has ``last.pt``
continues it; SIGINT/SIGTERM save ``last.pt`` before exiting.

Data per step: foregrounds from a pre-rendered procedural bank plus the real alphamatting.com training
split (colours estimated by pymatting; optionally also the test photos, which have no ground truth, with
closed-form matting's alpha as a pseudo-label), randomly scaled, cropped near the edge, flipped and colour
jittered, composited on natural or procedural backgrounds; trimaps from random DIM erosion (70 %), from a
coarse mask (25 %, the phone case) or all unknown (5 %, "no trimap"). ``photo_fraction`` (half) of the
real samples are instead a crop of the photo as it was taken (its own background, one of its
hand-drawn trimaps half of the time): the held-back images are photos of that kind, not re-composites.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from adamatting.checkpoint import (
    CheckpointError,
    load_state,
    read_checkpoint,
    save_checkpoint,
    upgrade_state,
)
from adamatting.config import ModelConfig, format_scale, get_config
from adamatting.loss import AdaMattingLoss
from adamatting.model import AdaMatting, build_model
from calib_data import backgrounds
from calib_data.compositing import composite, fit_background
from calib_data.io import to_uint8
from calib_data.splits import REAL_TRAIN, alphamatting_dev_dir, alphamatting_test_dir
from calib_data.synth import ForegroundPool, coarse_mask, color_jitter
from calib_data.trimaps import gt_trimap_classes, random_trimap, trimap_from_mask
from common.encoding import encode_inputs


@dataclass
class TrainConfig:
    model: str = "mobile"
    # Override of the model config's guided_scale (None: the config's own). 1 trains the mobile network at
    # full resolution, without the guided upsampler; 2 at half resolution (weights/README.md, "Training").
    guided_scale: float | None = None
    steps: int = 3000
    batch: int = 8
    crop: int = 512                    # a multiple of the model's stride (128 for mobile)
    lr: float = 1e-3
    warmup: int = 50
    weight_decay: float = 1e-5
    aux_weight: float = 0.5
    grad_weight: float = 1.0           # Sobel-gradient L1 in the unknown region (sharp hair)
    comp_weight: float = 0.5           # composition L1 with the sample's own F and B
    real_fraction: float = 0.7         # share of samples cut from the real training images
    # Scale of the real cut-outs relative to their native resolution (the resolution they are evaluated
    # at); None: 1–2× of the scale at which the image just covers the crop (the first runs' augmentation).
    real_scale: tuple[float, float] | None = (0.8, 1.25)
    # Add the alphamatting.com test photos (no ground truth) to the real cut-outs, with closed-form
    # matting's alpha from their narrowest trimap as a pseudo-label (calib_data.synth.from_pseudo_labels):
    # the shipped checkpoint's last run (weights/README.md).
    pseudo_labels: bool = True
    # Share of the real samples that are crops of the photo itself (its own background, no colour jitter)
    # rather than its cut-out re-composited on another background: the held-back images are photos of the
    # same kind. Of those, the share that take one of the photo's hand-drawn trimaps (the others draw one).
    photo_fraction: float = 0.5
    photo_trimap_fraction: float = 0.5
    bank_size: int = 192               # procedural foregrounds pre-rendered at bank_res
    bank_res: int = 512
    bg_bank: int = 48                  # procedural backgrounds pre-rendered (plus skimage photos)
    ckpt_every: int = 25
    val_every: int = 200
    # Exponential moving average of the weights (and BatchNorm statistics) over ~1/(1 − decay) steps: what
    # is validated, kept as best.pt and shipped. 0 disables it (the raw weights are validated).
    ema_decay: float = 0.995
    # Train only these parts of the model (top-level or dotted module names, e.g. ("refiner",
    # "propagation")); the rest keeps its weights and its BatchNorm statistics. Empty: train everything.
    train_only: tuple[str, ...] = ()
    seed: int = 0
    threads: int = 0                   # 0: torch default

    def __post_init__(self):
        for name in ("real_fraction", "photo_fraction", "photo_trimap_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def model_config(self) -> ModelConfig:
        """The network this run trains: the named config with this run's overrides."""
        return get_config(self.model, **({} if self.guided_scale is None else {"guided_scale": self.guided_scale}))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        d.setdefault("photo_fraction", 0.0)   # runs from before photo crops had none: resume them unchanged
        if d.get("real_scale") is not None:
            d["real_scale"] = tuple(d["real_scale"])
        d["train_only"] = tuple(d.get("train_only", ()))
        return cls(**d)


class TrainData:
    def __init__(self, cfg: TrainConfig, cache_root: Path, progress: bool = True):
        pool = ForegroundPool.from_procedural(cfg.bank_size, (cfg.bank_res, cfg.bank_res), cfg.seed + 1, progress)
        self.real = None
        root = alphamatting_dev_dir()
        if cfg.real_fraction > 0 and root.is_dir():
            self.real = ForegroundPool.from_alphamatting(root, list(REAL_TRAIN), cache_root / "foregrounds")
        if cfg.real_fraction > 0 and cfg.pseudo_labels and alphamatting_test_dir().is_dir():
            pseudo = ForegroundPool.from_pseudo_labels(alphamatting_test_dir(), cache_root / "foregrounds")
            self.real = pseudo if self.real is None else self.real + pseudo
        if self.real is not None and progress:
            labelled = sum(not name.startswith("pseudo:") for name, _, _ in self.real.items)
            print(f"real cut-outs: {labelled} with ground truth, {len(self.real.items) - labelled} pseudo-labelled")
        self.procedural = pool
        rng = np.random.default_rng(cfg.seed + 2)
        self.bgs = backgrounds.natural_backgrounds() + [
            backgrounds.procedural_background((cfg.bank_res, cfg.bank_res), rng) for _ in range(cfg.bg_bank)]
        self.cfg = cfg

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c, trimap = self.cfg.crop, None
        real = self.real is not None and rng.random() < self.cfg.real_fraction
        if real and self.cfg.photo_fraction > 0 and self.real.photos and rng.random() < self.cfg.photo_fraction:
            crop = self.real.sample_photo((c, c), rng, self.cfg.real_scale, self.cfg.photo_trimap_fraction)
            image, fg, bg, alpha, trimap = crop.image, crop.fg, crop.bg, crop.alpha, crop.trimap
            image = to_uint8(image).astype(np.float32) / np.float32(255.0)   # 8 bits, as composite(round_uint8)
        else:
            if real:
                _, fg, alpha = self.real.sample((c, c), rng, augment=True, scale_range=self.cfg.real_scale)
            else:
                _, fg, alpha = self.procedural.sample((c, c), rng, augment=True)
            image, fg, bg = self._composite(fg, alpha, rng)
        if trimap is None:
            trimap = self._random_trimap(alpha, rng)
        img, tri = encode_inputs(image, trimap)
        chw = lambda a: np.ascontiguousarray(np.transpose(a, (2, 0, 1)), dtype=np.float32)   # float [0, 1]
        return {"image": img, "trimap": tri, "alpha": alpha[None].astype(np.float32),
                "target": gt_trimap_classes(alpha, dilate=3), "fg": chw(fg), "bg": chw(bg), "image01": chw(image)}

    @staticmethod
    def _random_trimap(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random()
        if u < 0.70:
            return random_trimap(alpha, rng)
        if u < 0.95:
            return trimap_from_mask(coarse_mask(alpha, rng), band=int(rng.integers(4, 24)))
        return np.full(alpha.shape, 128, np.uint8)

    def _composite(self, fg: np.ndarray, alpha: np.ndarray, rng: np.random.Generator):
        """fg over a random background, both colour-jittered: (image, fg, bg)."""
        c = self.cfg.crop
        bg = self.bgs[int(rng.integers(len(self.bgs)))]
        bg = fit_background(bg, int(c * rng.uniform(1.0, 1.5)), int(c * rng.uniform(1.0, 1.5)), rng) if min(bg.shape[:2]) > c else bg
        bg = fit_background(bg, c, c, rng)
        if rng.random() < 0.5:
            bg = bg[:, ::-1]
        fg, bg = color_jitter(fg, rng), color_jitter(np.ascontiguousarray(bg), rng)
        return composite(fg, bg, alpha, round_uint8=True), fg, bg

    def batch(self, step: int, device: torch.device) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.cfg.seed, step])   # batch = f(seed, step): resumes reproducibly
        items = [self.sample(rng) for _ in range(self.cfg.batch)]
        out = {k: torch.from_numpy(np.stack([it[k] for it in items])).to(device) for k in items[0]}
        for k in ("image", "trimap"):
            out[k] = out[k].contiguous(memory_format=torch.channels_last)
        return out


class WeightAverage:
    """An exponential moving average of a model's weights and buffers, updated after every optimiser step.

    Why: with batches of 8 crops the weights wander. In one run (lr 1e-3; weights/runs.json, run 7) single checkpoints 200 steps apart
    scored 8.9–10.2 mean held-back SAD at steps 600–1000, while the plain average of three snapshots from
    steps 750–975 scored 8.37, better than each. (Late in the cosine schedule, at low lr, the average of
    steps 2000–2400 scored like its members, 9.3.) What is validated and shipped is the average."""

    def __init__(self, model: AdaMatting, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"a weight average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: AdaMatting) -> None:
        for avg, cur in zip(self.model.state_dict().values(), model.state_dict().values()):
            if avg.is_floating_point():
                avg.lerp_(cur, 1.0 - self.decay)
            else:   # BatchNorm's num_batches_tracked
                avg.copy_(cur)


def _in(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def freeze_except(model: nn.Module, prefixes: tuple[str, ...]) -> list[nn.Parameter]:
    """The parameters to train: all of them, or (``prefixes`` given) those of the named modules, the others
    set to requires_grad=False. A name that matches no module raises ValueError listing the top-level ones."""
    if not prefixes:
        return list(model.parameters())
    modules = dict(model.named_modules())
    unknown = [p for p in prefixes if p not in modules or p == ""]
    if unknown:
        top = ", ".join(n for n, _ in model.named_children())
        raise ValueError(f"train_only: no module named {', '.join(map(repr, unknown))} in the model (its parts: {top})")
    trained = []
    for name, p in model.named_parameters():
        p.requires_grad_(_in(name, prefixes))
        if p.requires_grad:
            trained.append(p)
    return trained


def frozen_norms(model: nn.Module) -> list[nn.Module]:
    """BatchNorm layers whose parameters are all frozen: kept in eval mode while the rest trains, so that
    their running statistics stay those the frozen weights were trained with."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and not any(p.requires_grad for p in m.parameters())]


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def train(run_dir: str | Path, cfg: TrainConfig, cache_root: Path = Path("cache"), progress: bool = True,
          validate=None, init: str | Path | None = None) -> Path:
    """Train (or continue) a run. ``validate(model) -> dict`` (mean SAD etc.) is called every val_every steps
    on the weight average (``cfg.ema_decay``; the raw weights when it is 0), which best.pt then holds;
    last.pt holds the raw weights, the optimiser state and the average (``ema``) to resume from.

    ``init``: a checkpoint whose weights (and learned σ's, when it has them) start a *new* run, e.g. the
    shipped weights/mobile.pt; ignored when the run folder already has last.pt (that is resumed)."""
    model_cfg = cfg.model_config()
    run_dir = Path(run_dir)
    last = run_dir / "last.pt"
    resumed = read_checkpoint(last) if last.is_file() else None   # read once: checked here, loaded below
    if resumed is not None:   # before the other checks: resumed with other options, the first error names them
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
    if cfg.crop % model_cfg.stride:
        raise ValueError(f"crop {cfg.crop} is not a multiple of the {cfg.model!r} model's stride {model_cfg.stride}")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1) (0: no weight average), got {cfg.ema_decay}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # channels_last: ~1.4x faster depthwise convolutions on CPU (measured on the 2-core machine)
    model: AdaMatting = build_model(model_cfg).to(device, memory_format=torch.channels_last)
    trained = freeze_except(model, cfg.train_only)   # before the run folder exists: a bad name leaves none
    run_dir.mkdir(parents=True, exist_ok=True)
    loss_fn = AdaMattingLoss(aux_weight=cfg.aux_weight, comp_weight=cfg.comp_weight,
                             grad_weight=cfg.grad_weight).to(device)
    params = trained + list(loss_fn.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best, elapsed, averaged = 0, float("inf"), 0.0, None
    if resumed is not None:
        ck = resumed
        if upgrade_state(model, ck["model"])[1]:
            raise CheckpointError(f"{last} predates the propagation unit's trimap input: its optimizer state "
                                  f"does not fit the model; start a new run from its weights (--init {last})")
        load_state(model, ck["model"], last)
        loss_fn.load_state_dict(ck["loss"])
        opt.load_state_dict(ck["optimizer"])
        step, best, elapsed = ck["step"], ck.get("best", best), ck.get("elapsed_s", 0.0)
        averaged = ck.get("ema")   # absent in runs from before the weight average: it starts here
        print(f"resuming {last} at step {step} (best val SAD {best:.3f})")
    elif init is not None:
        ck = read_checkpoint(init)
        # The same network with and without the guided upsampler (guided_scale > 1 vs 1) shares every weight
        # but the upsampler's: a run of one can start from the other. A new upsampler starts from its
        # identity-like initialisation; an old one is dropped.
        kept, dropped = load_state(model, ck["model"], init, new_modules=("refiner.",))
        if "loss" in ck:
            loss_fn.load_state_dict(ck["loss"])
        print(f"new run {run_dir} from the weights of {init} (its step {ck.get('step', '?')})"
              + (f"; {len(kept)} refiner tensors newly initialised" if kept else "")
              + (f"; its {len(dropped)} refiner tensors dropped" if dropped else ""))
    ema = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    if ema is not None and averaged is not None:
        ema.model.load_state_dict(averaged)
    (run_dir / "train_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    data = TrainData(cfg, cache_root, progress)
    log_path = run_dir / "log.csv"
    fields = ["step", "elapsed_s", "lr", "loss", "trimap_ce", "alpha_l1", "alpha_l1_decoder", "alpha_grad", "sigma1", "sigma2",
              "val_sad", "val_mse", "val_grad", "val_conn"]
    if not log_path.is_file():
        with log_path.open("w", newline="") as f:
            csv.writer(f).writerow(fields)

    stop = {"flag": False}

    def _stop(signum, frame):
        stop["flag"] = True

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def save(path: Path, weights: AdaMatting = model, **extra):
        if ema is not None and weights is model:
            extra["ema"] = ema.model.state_dict()
        save_checkpoint(path, weights, loss=loss_fn.state_dict(), optimizer=opt.state_dict(), step=step, best=best,
                        elapsed_s=elapsed, train_config=dataclasses.asdict(cfg), **extra)

    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train", unit="step")
    t_start = time.time() - elapsed
    frozen = frozen_norms(model) if cfg.train_only else []   # requires_grad is fixed for the run
    try:
        while step < cfg.steps and not stop["flag"]:
            model.train()
            for m in frozen:
                m.eval()
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            b = data.batch(step, device)
            out = model(b["image"], b["trimap"])
            loss, parts = loss_fn(out, b["alpha"], b["trimap"], b["target"], fg=b["fg"], bg=b["bg"],
                                  image01=b["image01"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            if ema is not None:
                ema.update(model)
            step += 1
            elapsed = time.time() - t_start
            row = {"step": step, "elapsed_s": round(elapsed, 1), "lr": opt.param_groups[0]["lr"], **parts}
            if validate is not None and (step % cfg.val_every == 0 or step == cfg.steps):
                scored = model.eval() if ema is None else ema.model
                scores = validate(scored)
                row.update({f"val_{k.lower()}": v for k, v in scores.items()})
                if scores["SAD"] < best:
                    best = scores["SAD"]
                    save(run_dir / "best.pt", weights=scored, val=scores)
            with log_path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=fields, extrasaction="ignore").writerow(row)
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.3f}", l1=f"{parts['alpha_l1']:.3f}", s1=f"{parts['sigma1']:.3f}",
                            s2=f"{parts['sigma2']:.3f}")
            if step % cfg.ckpt_every == 0 or "val_sad" in row:
                save(last)
                if "val_sad" in row:
                    plot_curves(log_path, run_dir / "curves.png")
    finally:
        save(last)
        bar.close()
        for s, h in old.items():
            signal.signal(s, h)
    plot_curves(log_path, run_dir / "curves.png")
    return last


def plot_curves(log_path: Path, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(log_path.open()))
    if not rows:
        return
    steps = np.array([int(r["step"]) for r in rows])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))

    def smooth(v, k=25):
        v = np.asarray(v, float)
        return np.convolve(v, np.ones(k) / k, mode="valid") if len(v) > k else v

    for key in ("loss", "alpha_l1", "trimap_ce"):
        v = smooth([float(r[key]) for r in rows])
        axes[0].plot(steps[len(steps) - len(v):], v, label=key)
    axes[0].set_title("training loss (moving average)"); axes[0].set_xlabel("step"); axes[0].legend()
    for key in ("sigma1", "sigma2"):
        axes[1].plot(steps, [float(r[key]) for r in rows], label=key)
    axes[1].set_title("learned σ"); axes[1].set_xlabel("step"); axes[1].legend()
    val = [(int(r["step"]), float(r["val_sad"]), float(r["val_grad"])) for r in rows if r.get("val_sad")]
    if val:
        v = np.array(val)
        axes[2].plot(v[:, 0], v[:, 1], "o-", label="mean SAD")
        axes[2].plot(v[:, 0], v[:, 2], "s-", label="mean Grad")
        axes[2].set_title("held-back real images (trimap1+2)"); axes[2].set_xlabel("step"); axes[2].legend()
    fig.tight_layout()
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(out)
