"""MACs and parameters counted by ``torch.utils.flop_counter`` (FLOPs / 2), not estimated."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from adamatting.config import ModelConfig, get_config
from adamatting.model import build_model

MOBILE_BUDGET = {"gmacs": 3.0, "params": 4_000_000}   # at 1x3x512x512
MAX_SIDE = 4096                                        # the count runs the model: bounded memory


@torch.no_grad()
def count_config(cfg: ModelConfig, size: tuple[int, int]) -> dict:
    """GMACs (total and per top-level module) and parameters of ``cfg`` on one 1×3×H×W input."""
    h, w = size
    if not (cfg.stride <= h <= MAX_SIDE and cfg.stride <= w <= MAX_SIDE):
        raise ValueError(f"size {h}x{w}: each side must be from the {cfg.name!r} model's stride {cfg.stride} to "
                         f"{MAX_SIDE} (the count runs the model on a zero input of that size)")
    if h % cfg.stride or w % cfg.stride:
        raise ValueError(f"size {h}x{w} is not a multiple of the {cfg.name!r} model's stride {cfg.stride}")
    model = build_model(cfg).eval()
    image, trimap = torch.zeros(1, 3, h, w), torch.full((1, 1, h, w), 0.5)
    with FlopCounterMode(display=False, depth=2) as fc:
        model(image, trimap)
    by_module = {k.split(".", 1)[1]: sum(v.values()) / 2e9 for k, v in fc.get_flop_counts().items()
                 if k.count(".") == 1}
    return {"gmacs": fc.get_total_flops() / 2e9, "params": sum(p.numel() for p in model.parameters()),
            "by_module": by_module}


def count(config: str = "mobile", size: int = 512) -> dict:
    return count_config(get_config(config), (size, size))
