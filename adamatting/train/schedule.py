"""When to do what: the learning rate of a step, and when a time budget says to stop."""

from __future__ import annotations

import math
import time

from adamatting.train.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then a cosine decay to 2 % of ``cfg.lr`` at ``cfg.steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


class Budget:
    """A deadline ``minutes`` from now (None: none), and the slowest step, validation and checkpoint seen so
    far: the run stops while the next step plus a last validation and checkpoint still fit."""

    def __init__(self, minutes: float | None, clock=time.monotonic):
        self.clock = clock
        self.deadline = None if minutes is None else clock() + 60.0 * minutes
        self.longest = {"step": 0.0, "validation": 0.0, "checkpoint": 0.0}

    def took(self, what: str, seconds: float) -> None:
        self.longest[what] = max(self.longest[what], seconds)

    def spent(self) -> bool:
        if self.deadline is None:
            return False
        reserve = 2 * self.longest["step"] + self.longest["validation"] + 2 * self.longest["checkpoint"]
        return self.clock() + reserve > self.deadline

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock()
