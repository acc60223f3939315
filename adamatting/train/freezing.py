"""Training only some parts of a model (``--train-only``)."""

from __future__ import annotations

from torch import nn


def _in(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def freeze_except(model: nn.Module, prefixes: tuple[str, ...]) -> list[nn.Parameter]:
    """The parameters to train: all of them, or (``prefixes`` given) those of the named modules, the others
    set to requires_grad=False. A name that matches no module raises ValueError listing the top-level ones that
    have parameters."""
    if not prefixes:
        return list(model.parameters())
    modules = dict(model.named_modules())
    unknown = [p for p in prefixes if p not in modules or p == ""]
    if unknown:
        top = ", ".join(n for n, m in model.named_children() if any(True for _ in m.parameters()))   # trainable
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

