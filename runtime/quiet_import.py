"""The optional runtimes' logged warnings while they load, and what their native code writes to the process's
stderr, held back unless INFO logs show (``adamat -v``)."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator


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


@contextmanager
def native_stderr_captured(log: logging.Logger) -> Iterator[list[str]]:
    """Capture what native code writes to file descriptor 2 (LiteRT announces its CPU delegate there, OpenVINO's
    frontends their failed parses of a file that is none of their formats) unless ``log`` shows INFO (``adamat
    -v``); the text is yielded after the block, for an error message."""
    captured: list[str] = []
    if log.isEnabledFor(logging.INFO):
        yield captured
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace").strip())
