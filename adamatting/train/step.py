"""One optimisation step: the network and its loss as one module (so that DistributedDataParallel averages the
gradients of the learned σ's with the network's), under the run's precision."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from adamatting.loss import AdaMattingLoss
from adamatting.model import AdaMatting
from adamatting.train.distill import distill_loss, teacher_targets

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class NetworkAndLoss(nn.Module):
    """The loss of a batch: the ground-truth loss, plus ``distill_weight`` × the distillation loss against a
    frozen ``teacher``'s outputs when there is one (:mod:`adamatting.train.distill`)."""

    def __init__(self, model: AdaMatting, loss: AdaMattingLoss, teacher: AdaMatting | None = None,
                 distill_weight: float = 1.0):
        super().__init__()
        self.model, self.loss, self.distill_weight = model, loss, distill_weight
        self._teacher = [teacher]   # not a submodule: neither trained, nor saved, nor synchronised

    def forward(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        out = self.model(b["image"], b["trimap"])
        with torch.autocast(b["image"].device.type, enabled=False):   # the loss in float32 under any precision
            out = {k: v.float() for k, v in out.items()}
            loss, parts = self.loss(out, b["alpha"], b["trimap"], b["target"], fg=b["fg"], bg=b["bg"],
                                    image01=b["image01"])
            teacher = self._teacher[0]
            if teacher is not None:
                extra, more = distill_loss(out, teacher_targets(teacher, b["image"], b["trimap"]), b)
                loss = loss + self.distill_weight * extra
                parts = {**parts, **more, "loss": float(loss.detach())}
            return loss, parts


def choose_amp(amp: str | None, device: torch.device) -> str:
    """``None``: bf16 on CUDA, off on the CPU (its path unchanged). fp16 needs CUDA (its GradScaler does)."""
    if amp is None:
        return "bf16" if device.type == "cuda" else "off"
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("--amp fp16 needs CUDA (its loss scaling is CUDA's); use bf16 or off on the CPU")
    return amp


class Precision:
    """Autocast and, for fp16, loss scaling around the backward pass and the optimiser step."""

    def __init__(self, amp: str, device: torch.device):
        self.amp, self.device = amp, device
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")

    def autocast(self):
        return nullcontext() if self.amp == "off" else torch.autocast(self.device.type, dtype=DTYPES[self.amp])

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, params: list[nn.Parameter], clip: float) -> None:
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, clip)
        self.scaler.step(opt)
        self.scaler.update()
