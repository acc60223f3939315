"""``adamat train --nproc N``: torchrun's engine (torch.distributed's elastic launcher) started in-process, so
that ``adamat train --nproc 2 ARGS`` is ``torchrun --standalone --nproc-per-node 2 -m adamat.cli train ARGS``
with one summary line instead of a report when a process fails."""

from __future__ import annotations

import logging
import os
import sys
import uuid

from common.machine import usable_cores


def without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--nproc 2`` or ``--nproc=2``)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == option:
            skip = True
        elif not a.startswith(option + "="):
            out.append(a)
    return out


def launch(nproc: int, args: list[str]) -> int:
    """Run ``python -m adamat.cli ARGS`` in ``nproc`` processes on this machine; their exit status."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # as torchrun: the cores are shared between the processes unless the caller chose
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cores() // nproc)))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.5)
    try:
        elastic_launch(config, sys.executable)("-m", "adamat.cli", *args)
    except ChildFailedError as e:
        codes = {rank: f.exitcode for rank, f in sorted(e.failures.items())}
        print("error: training process(es) failed: " + ", ".join(f"rank {r} exit {c}" for r, c in codes.items())
              + " (their messages are above)", file=sys.stderr)
        return 2 if set(codes.values()) == {2} else 1
    except SignalException as e:   # handed on to the processes, which stopped at one step and saved last.pt
        print(f"stopped by signal {int(e.sigval)}", file=sys.stderr)
        return 128 + int(e.sigval)
    return 0
