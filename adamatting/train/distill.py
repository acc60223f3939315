"""Distillation: a trained teacher's soft outputs as training targets for another network (e.g. the shipped
``mobile`` model teaching ``mobile-int8``).

For a training loop, three calls:

    teacher = load_teacher("weights/mobile.pt")                       # frozen, eval mode
    targets = teacher_targets(teacher, image, trimap, cfg)            # no grad; per batch
    loss, parts = distill_loss(student(image, trimap), targets, batch, cfg)

``batch`` is the training batch: ``image`` and ``trimap`` as the network takes them (encoded, N×3×H×W and
N×1×H×W), and optionally ``alpha`` (N×1×H×W ground truth). The loss is

- the KL divergence from the teacher's adapted trimap, softened by a temperature T, to the student's
  (``trimap_logits`` / T), times T² (so its gradients keep their size when T changes);
- L1 between the student's and the teacher's alpha, pixels of the input trimap's unknown band weighted by
  ``unknown_weight``; where the batch has ground truth, the teacher's alpha is replaced by the ground truth
  wherever the teacher is further than ``trust`` from it (the teacher's mistakes are not taught);
- L1 between their alpha gradients (horizontal and vertical differences): edges and hair strands.

Teacher outputs of another resolution are resized (bilinear) to the student's. Every part is also returned
as a float (``parts``) for logging.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from adamatting.checkpoint import load_model
from adamatting.model import AdaMatting


@dataclass(frozen=True)
class DistillConfig:
    temperature: float = 2.0
    trimap_weight: float = 1.0
    alpha_weight: float = 1.0
    grad_weight: float = 0.5
    unknown_weight: float = 4.0      # weight of the input trimap's unknown pixels in the alpha terms (others: 1)
    trust: float = 0.1               # with ground truth: the teacher's alpha is used where |α_T − α_GT| ≤ trust

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if min(self.trimap_weight, self.alpha_weight, self.grad_weight, self.unknown_weight, self.trust) < 0:
            raise ValueError("distillation weights and trust must be >= 0")


def load_teacher(path: str | Path) -> AdaMatting:
    """The teacher network of a checkpoint, in eval mode, its parameters frozen."""
    teacher, _ = load_model(path)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


@torch.no_grad()
def teacher_targets(teacher: AdaMatting, image: torch.Tensor, trimap: torch.Tensor,
                    cfg: DistillConfig = DistillConfig()) -> dict[str, torch.Tensor]:
    """The teacher's soft targets for one batch: ``alpha`` (N×1×H×W) and ``trimap_prob`` (N×3×H×W, the softmax
    of its trimap logits at the temperature), computed without gradients in eval mode."""
    was_training = teacher.training
    teacher.eval()
    try:
        out = teacher(image, trimap)
    finally:
        teacher.train(was_training)
    return {"alpha": out["alpha"].detach(),
            "trimap_prob": torch.softmax(out["trimap_logits"].detach() / cfg.temperature, dim=1)}


def _resized(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if t.shape[-2:] == like.shape[-2:]:
        return t
    return F.interpolate(t, size=like.shape[-2:], mode="bilinear", align_corners=False)


def _check(student: dict, targets: dict, batch: dict) -> None:
    for name, d, keys in (("student outputs", student, ("alpha", "trimap_logits")),
                          ("teacher targets", targets, ("alpha", "trimap_prob")), ("batch", batch, ("trimap",))):
        missing = [k for k in keys if k not in d]
        if missing:
            raise ValueError(f"{name} lack {', '.join(missing)}")
    n = student["alpha"].shape[0]
    if targets["alpha"].shape[0] != n or batch["trimap"].shape[0] != n:
        raise ValueError(f"batch sizes differ: student {n}, teacher {targets['alpha'].shape[0]}, "
                         f"batch {batch['trimap'].shape[0]}")


def _grad_l1(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    dx = (a[..., :, 1:] - a[..., :, :-1]) - (b[..., :, 1:] - b[..., :, :-1])
    dy = (a[..., 1:, :] - a[..., :-1, :]) - (b[..., 1:, :] - b[..., :-1, :])
    wx, wy = w[..., :, 1:], w[..., 1:, :]
    return (dx.abs() * wx).sum() / wx.sum() + (dy.abs() * wy).sum() / wy.sum()


def distill_loss(student: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                 cfg: DistillConfig = DistillConfig()) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the trimap KL, alpha L1 and alpha-gradient L1 terms (module docstring) and each
    part as a float. ValueError for missing outputs or differing batch sizes."""
    _check(student, targets, batch)
    alpha = student["alpha"]
    t_alpha, t_prob = _resized(targets["alpha"], alpha), _resized(targets["trimap_prob"], student["trimap_logits"])
    if "alpha" in batch:
        gt = _resized(batch["alpha"], alpha)
        t_alpha = torch.where((t_alpha - gt).abs() <= cfg.trust, t_alpha, gt)
    unknown = (_resized(batch["trimap"], alpha) - 0.5).abs() < 0.25
    w = 1.0 + (cfg.unknown_weight - 1.0) * unknown.float()
    log_p = F.log_softmax(student["trimap_logits"] / cfg.temperature, dim=1)
    kl = (t_prob * (torch.log(t_prob.clamp_min(1e-8)) - log_p)).sum(dim=1).mean() * cfg.temperature ** 2
    l1 = ((alpha - t_alpha).abs() * w).sum() / w.sum()
    grad = _grad_l1(alpha, t_alpha, w)
    total = cfg.trimap_weight * kl + cfg.alpha_weight * l1 + cfg.grad_weight * grad
    parts = {"distill_trimap_kl": kl, "distill_alpha_l1": l1, "distill_grad_l1": grad, "distill_total": total}
    return total, {k: float(v.detach()) for k, v in parts.items()}
