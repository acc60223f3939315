"""The AdaMatting loss: trimap cross-entropy + alpha L1, weighted by learned uncertainties.

With s_i = log σ_i² learned (Kendall et al. 2018, the stable form):

    L = ½·exp(−s₁)·L_T + ½·exp(−s₂)·L_α + ½·(s₁ + s₂)

L_T: cross-entropy of the adapted trimap against the trimap of the ground truth (bg: α = 0, fg: α = 1,
unknown: everything between), over the whole image. L_α: L1 of the final alpha over the unknown region of
the *input* trimap, plus the same L1 on the alpha decoder's own output (deep supervision, weight
``aux_weight``), plus two optional terms that sharpen hair: a gradient term ``grad_weight``·L1(∇α − ∇α*)
(Sobel, unknown region) and a composition term ``comp_weight``·L1(αF + (1−α)B − I) when the training
sample's F and B are given.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

UNKNOWN = 0.5


class AdaMattingLoss(nn.Module):
    def __init__(self, aux_weight: float = 0.5, comp_weight: float = 0.0, grad_weight: float = 0.0):
        super().__init__()
        self.log_var_trimap = nn.Parameter(torch.zeros(()))  # s₁
        self.log_var_alpha = nn.Parameter(torch.zeros(()))   # s₂
        self.aux_weight, self.comp_weight, self.grad_weight = aux_weight, comp_weight, grad_weight
        sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4.0
        self.register_buffer("sobel", torch.stack([sobel, sobel.t()])[:, None], persistent=False)

    @property
    def sigmas(self) -> tuple[float, float]:
        """(σ₁, σ₂) = exp(s/2), what the paper reports (≈ 0.0995, 0.0878 at convergence)."""
        return math.exp(0.5 * self.log_var_trimap.item()), math.exp(0.5 * self.log_var_alpha.item())

    def forward(self, out: dict[str, torch.Tensor], alpha_gt: torch.Tensor, trimap_in: torch.Tensor,
                trimap_target: torch.Tensor, fg: torch.Tensor | None = None, bg: torch.Tensor | None = None,
                image01: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        unknown = (trimap_in - UNKNOWN).abs() < 0.25
        weight = unknown.float()
        denom = weight.sum().clamp_min(1.0)
        l_trimap = F.cross_entropy(out["trimap_logits"], trimap_target)
        l_alpha = ((out["alpha"] - alpha_gt).abs() * weight).sum() / denom
        aux = out["alpha_decoder"]
        if aux.shape[-2:] != alpha_gt.shape[-2:]:   # the network's resolution under a guided upsampler
            aux = F.interpolate(aux, size=alpha_gt.shape[-2:], mode="bilinear", align_corners=False)
        l_aux = ((aux - alpha_gt).abs() * weight).sum() / denom
        l_a = l_alpha + self.aux_weight * l_aux
        l_grad = torch.zeros(())
        if self.grad_weight > 0:
            g_pred = F.conv2d(out["alpha"], self.sobel, padding=1)
            g_gt = F.conv2d(alpha_gt, self.sobel, padding=1)
            l_grad = ((g_pred - g_gt).abs() * weight).sum() / (2 * denom)
            l_a = l_a + self.grad_weight * l_grad
        if self.comp_weight > 0 and fg is not None:
            a = out["alpha"]
            comp = a * fg + (1 - a) * bg
            l_a = l_a + self.comp_weight * (((comp - image01).abs() * weight).sum() / (3 * denom))
        s1, s2 = self.log_var_trimap, self.log_var_alpha
        total = 0.5 * torch.exp(-s1) * l_trimap + 0.5 * torch.exp(-s2) * l_a + 0.5 * (s1 + s2)
        sig1, sig2 = self.sigmas
        return total, {"loss": total.item(), "trimap_ce": l_trimap.item(), "alpha_l1": l_alpha.item(),
                       "alpha_l1_decoder": l_aux.item(), "alpha_grad": l_grad.item(), "sigma1": sig1,
                       "sigma2": sig2}
