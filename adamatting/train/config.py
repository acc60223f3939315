"""What a training run is: the recipe (:class:`TrainConfig`, saved with every checkpoint) and how this process
runs it (:class:`RunOptions`: device, mixed precision, data workers, time budget; not part of the recipe)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from adamatting.config import ModelConfig, get_config
from common.machine import usable_cores


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
    # Distillation (adamatting.train.distill): a trained checkpoint whose outputs are soft targets for this
    # network, added to the ground-truth loss with this weight; None: ground truth alone.
    teacher: str | None = None
    distill_weight: float = 1.0

    def __post_init__(self):
        for name in ("real_fraction", "photo_fraction", "photo_trimap_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.real_scale is not None and not 0.0 < self.real_scale[0] <= self.real_scale[1]:
            raise ValueError(f"real_scale (--real-scale MIN MAX) needs 0 < MIN <= MAX, got {self.real_scale}")

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



AMP = ("off", "bf16", "fp16")


@dataclass
class RunOptions:
    """How this process runs a recipe. None of it changes what is learned, except ``amp`` (rounding) and,
    under several processes, the BatchNorm statistics (``sync_bn``)."""

    device: str = "auto"            # auto (CUDA when present), cpu, cuda
    amp: str | None = None          # off | bf16 | fp16 (with a GradScaler); None: bf16 on CUDA, off on CPU
    workers: int | None = None      # data-loading processes per training process; None: default_workers()
    minutes: float | None = None    # stop cleanly (validation, checkpoints) before this many minutes
    compile: bool = False           # torch.compile the network (CUDA; the first steps compile)
    sync_bn: bool = False           # SyncBatchNorm across processes (CUDA only; per-process statistics otherwise)

    def __post_init__(self):
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.amp is not None and self.amp not in AMP:
            raise ValueError(f"amp must be one of {', '.join(AMP)}, got {self.amp!r}")
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"workers must be 0 (load in the training process) or more, got {self.workers}")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")


def default_workers(cuda: bool, processes_per_node: int = 1) -> int:
    """Data workers per training process: on CUDA every core but the training process's own feeds the GPU
    (at most 16, shared between a node's processes); on the CPU the cores compute the network and none (one
    worker made the mobile model's steps 2-10 % faster on 2 cores, within the machine's run-to-run spread:
    benchmarks/measured/train-step-*.json; ``--workers 1`` asks for it)."""
    if not cuda:
        return 0
    return max(1, min(16, usable_cores() // max(1, processes_per_node) - 1))
