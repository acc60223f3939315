"""The optional runtimes' logged warnings while they load, held back unless INFO logs show (``adamat -v``)."""

from __future__ import annotations

import logging
from contextlib import contextmanager


@contextmanager
def quiet_runtime_import():
    """While a runtime package is imported and opens its first model, its logged warnings are held back unless
    INFO logs show (``adamat -v``): coremltools on Linux names each native proxy it lacks, torch and torchao
    (under ExecuTorch) their untested versions and CUDA kernels — lines before the one that matters."""
    previous = logging.root.manager.disable
    if previous >= logging.INFO:
        logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
