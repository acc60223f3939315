"""``adamat flops``: MACs and parameters of a model config, counted by ``torch.utils.flop_counter``."""

from __future__ import annotations

from adamatting.budget import count
from adamatting.config import CONFIGS


def add_arguments(f) -> None:
    f.add_argument("--config", default="mobile", help=f"the model config ({', '.join(CONFIGS)}; default mobile)")
    f.add_argument("--size", type=int, default=512,
                   help="the square input's side in pixels, from the model's stride to 4096 (default 512)")
    f.set_defaults(func=run)


def run(args) -> int:
    stats = count(args.config, args.size)
    print(f"{args.config} at 1x3x{args.size}x{args.size}: {stats['gmacs']:.3f} GMACs, {stats['params'] / 1e6:.3f} M params")
    for name, g in stats["by_module"].items():
        print(f"  {name:<16} {g:.3f} GMACs")
    return 0
