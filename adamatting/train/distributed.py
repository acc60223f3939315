"""The processes of a run, under torchrun (torch.distributed): who is who, and the few things they agree on.

    torchrun --nproc-per-node 2 -m adamat.cli train ...      # or: adamat train --nproc 2 ...

torchrun sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and the rendezvous; this module joins the process
group (``nccl`` on CUDA, ``gloo`` on the CPU). A process started without them is rank 0 of 1 and starts
nothing. Rank 0 alone validates, logs and writes; gradients are averaged by DistributedDataParallel, so the
weights, the learned σ's, the optimiser state and the weight average stay the same on every rank.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Processes:
    rank: int
    world: int
    local_rank: int
    local_world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any (a stop asked for by a signal or the budget)."""
        if not self.distributed:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def gather(self, value) -> list:
        """``value`` of every rank, in rank order (picklable values)."""
        if not self.distributed:
            return [value]
        out = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    @contextmanager
    def main_first(self):
        """Rank 0 runs the block first (it fills shared caches), then the others."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def choose_device(request: str) -> torch.device:
    """``auto``: CUDA when present. ``cuda`` where there is none is an error, not a silent CPU run."""
    if request == "cuda" and not torch.cuda.is_available():
        build = "a CPU build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ValueError(f"--device cuda: no CUDA device is available here (torch {torch.__version__} is {build})")
    if request == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def start(request: str = "auto") -> Processes:
    """This process's place in the run, joining the process group when torchrun started several."""
    device = choose_device(request)
    world, rank = _environ_count("WORLD_SIZE", 1, 1), _environ_count("RANK", 0, 0)
    local_rank, local_world = _environ_count("LOCAL_RANK", 0, 0), _environ_count("LOCAL_WORLD_SIZE", 1, 1)
    if rank >= world or local_rank >= local_world:
        raise ValueError(f"RANK {rank} and LOCAL_RANK {local_rank} must be below WORLD_SIZE {world} and "
                         f"LOCAL_WORLD_SIZE {local_world} (torchrun sets them)")
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                **({"device_id": device} if device.type == "cuda" else {}))
    return Processes(rank, world, local_rank, local_world, device)


def _environ_count(name: str, default: int, least: int) -> int:
    """The whole number in the environment variable ``name`` (torchrun's), ``default`` where it is unset;
    ValueError naming it where it is not a whole number of at least ``least``."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < least:
        raise ValueError(f"the environment variable {name} must be a whole number >= {least} (torchrun sets it), "
                         f"got {text!r}")
    return value
