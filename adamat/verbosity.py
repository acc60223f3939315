"""How much the command line says: quiet by default, everything with ``adamat -v``.

Libraries the pipeline uses announce routine work at INFO level: NNCF a line per quantization step
(``INFO:nncf:...``) during exports, coremltools its conversion passes, OpenCV its plugins, LiteRT its CPU
delegate (on the native stderr: :mod:`runtime.person_mask` holds that back unless its logger is at INFO).
Warnings and errors always show, but for routine ones that are not this code's (``-v`` shows them): a library
naming each optional native library it lacks (torchao's CUDA kernels, coremltools' macOS proxies) and torch's
pytree deprecation inside ExecuTorch's lowering. Progress bars are the commands' own. A Python warning is one line,
``warning: <message>`` (:func:`plain_warnings`), not the source line that raised it; ``-v`` adds its category
and origin.
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager


def set_verbosity(verbose: bool) -> None:
    """Quiet (WARNING and above) unless ``verbose`` (INFO and above, from every library). Call before the
    command's modules are imported: OpenCV reads its log level when it loads."""
    if verbose:
        logging.disable(logging.NOTSET)
        logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
        logging.getLogger().setLevel(logging.INFO)
    else:
        # logging.disable holds whatever level a library sets on its own logger when it is imported later
        # (NNCF sets INFO on "nncf" with a handler of its own).
        logging.disable(logging.INFO)
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
        for name in ABSENT_NATIVE_LOGGERS:
            logging.getLogger(name).addFilter(_not_an_absent_native_library)
        for message in ROUTINE_LIBRARY_WARNINGS:
            warnings.filterwarnings("ignore", message=message)


ABSENT_NATIVE_LOGGERS = ("torchao", "coremltools")   # each names every optional native library it lacks, at import
# Deprecations inside the libraries, not in this code: torch's pytree, a dozen times per ExecuTorch lowering.
ROUTINE_LIBRARY_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)


def _not_an_absent_native_library(record: logging.LogRecord) -> bool:
    """False for a library's "Failed to load <native library>" line (torchao's CUDA kernels, coremltools' macOS
    proxies: absent by design on a Linux CPU); True for every record while INFO logs show (``-v``)."""
    return logging.root.manager.disable < logging.INFO or not record.getMessage().startswith("Failed to load")


def warning_line(message, category: type[Warning], filename: str, lineno: int, verbose: bool = False) -> str:
    """A warning as the command line prints it: ``warning: <message>``, one line (the message's lines joined),
    with ``(<category> at <file>:<line>)`` when ``verbose``."""
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    origin = f" ({category.__name__} at {filename}:{lineno})" if verbose else ""
    return f"warning: {text}{origin}\n"


@contextmanager
def plain_warnings(verbose: bool = False):
    """Python warnings printed by :func:`warning_line` while the block runs (the command line's entry)."""
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, category, filename, lineno, line=None: warning_line(
        message, category, filename, lineno, verbose)
    try:
        yield
    finally:
        warnings.formatwarning = previous
