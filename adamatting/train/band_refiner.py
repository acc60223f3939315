"""Training of the band refiner (:mod:`adamatting.model.band_refiner`) on full-resolution patches of the band.

A sample is one photo at one scale with one simulated mask: ``image`` (H, W, 3) float in [0, 1], the
network's ``alpha`` through the app's path, the guided-filter ``prior`` of the mask, the ``mask`` upsampled
to the photo, the ground truth ``gt`` and the ``band`` (the mask trimap's unknown region), all float32 (H, W)
(:func:`evaluation.refiner_data.refiner_samples` builds them). Each step draws ``batch`` patches of ``patch``²
pixels centred near a random band pixel of a random sample, flipped at random; the loss is the L1 error over
the band plus the L1 error of the alpha's finite differences (hair and holes are edges). Adam with a
one-cycle schedule; every draw comes from one seeded generator, so a run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from adamatting.model.band_refiner import BandRefiner

PLANES = ("alpha", "prior", "mask", "gt", "band")


@dataclass(frozen=True)
class RefinerRecipe:
    steps: int = 1500
    batch: int = 16
    patch: int = 96
    lr: float = 2e-3
    grad_weight: float = 0.5
    channels: int = 16
    seed: int = 0


def _patch(sample: dict, p: int, rng: np.random.Generator) -> list[np.ndarray]:
    ys, xs = sample["band_pixels"]
    h, w = sample["gt"].shape
    j = rng.integers(len(ys))
    y = int(np.clip(ys[j] - p // 2 + rng.integers(-p // 4, p // 4 + 1), 0, h - p))
    x = int(np.clip(xs[j] - p // 2 + rng.integers(-p // 4, p // 4 + 1), 0, w - p))
    planes = [sample["image"][y:y + p, x:x + p].transpose(2, 0, 1)] + [sample[k][None, y:y + p, x:x + p]
                                                                        for k in PLANES]
    if rng.random() < 0.5:
        planes = [q[:, :, ::-1] for q in planes]
    if rng.random() < 0.5:
        planes = [q[:, ::-1] for q in planes]
    return planes


def draw_batch(samples: list[dict], batch: int, patch: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """(image encoded as 2·I − 1, alpha, prior, mask, gt, band), each (batch, C, patch, patch), from
    :func:`prepare`'s samples."""
    drawn = [_patch(samples[rng.integers(len(samples))], patch, rng) for _ in range(batch)]
    image, *rest = (torch.from_numpy(np.ascontiguousarray(np.stack(col))) for col in zip(*drawn))
    return [image * 2 - 1, *rest]


def refiner_loss(out: torch.Tensor, gt: torch.Tensor, band: torch.Tensor, grad_weight: float) -> torch.Tensor:
    loss = ((out - gt).abs() * band).sum() / band.sum().clamp(min=1)
    for dim in (2, 3):
        loss = loss + grad_weight * (out.diff(dim=dim) - gt.diff(dim=dim)).abs().mean()
    return loss


def prepare(samples: list[dict], patch: int) -> list[dict]:
    """The samples a ``patch``² crop can be drawn from (a band, at least ``patch`` px on each side), with the
    coordinates of their band pixels (drawn from at every step)."""
    usable = [{**s, "band_pixels": np.nonzero(s["band"] > 0)} for s in samples if min(s["gt"].shape) >= patch]
    usable = [s for s in usable if s["band_pixels"][0].size]
    if not usable:
        raise ValueError(f"no training sample has a band and is at least {patch} px on each side")
    return usable


def train_band_refiner(samples: list[dict], recipe: RefinerRecipe = RefinerRecipe(), progress=None) -> BandRefiner:
    """A refiner trained on ``samples`` (see the module docstring); ``progress(step, loss)`` after each step."""
    rng = np.random.default_rng(recipe.seed)
    torch.manual_seed(recipe.seed)
    samples = prepare(samples, recipe.patch)
    model = BandRefiner(recipe.channels)
    opt = torch.optim.Adam(model.parameters(), recipe.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr, total_steps=recipe.steps, pct_start=0.1)
    for step in range(recipe.steps):
        image, alpha, prior, mask, gt, band = draw_batch(samples, recipe.batch, recipe.patch, rng)
        loss = refiner_loss(model(image, alpha, prior, mask), gt, band, recipe.grad_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(step, float(loss))
    return model.eval()
