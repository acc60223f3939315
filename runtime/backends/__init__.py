"""Opening an artifact with its runtime backend, as the registry (:data:`common.targets.RUNTIMES`) says.

Optional runtimes (onnxruntime, OpenVINO, TensorRT, CoreML) are imported when their backend
is requested, never when ``runtime`` is imported, so a missing package is an error — a clear
:class:`runtime.errors.BackendUnavailable` saying what to install — only for the backend that needs it.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path
from typing import Any

from common.targets import RUNTIMES, Runtime, runtime_for_suffix
from common.values import is_whole_number
from runtime.backends.base import Backend
from runtime.errors import ArtifactError, BackendUnavailable
from runtime.quiet_import import quiet_runtime_import

BACKENDS: dict[str, Runtime] = RUNTIMES   # the registry's runtimes (common.targets), by name


def backend_class(name: str) -> type:
    """The backend class registered as ``name``, importing its runtime now."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    spec = BACKENDS[name]
    for package in spec.requires:
        try:
            importlib.import_module(package)
        except ImportError as e:
            raise BackendUnavailable(f"the {name} backend needs the {package!r} package: {spec.install}") from e
    return getattr(importlib.import_module(spec.module), spec.cls)


def backend_for(artifact: str | Path) -> str:
    """The backend that opens ``artifact``, from its suffix."""
    suffix = Path(artifact).suffix.lower()
    runtime = runtime_for_suffix(suffix)
    if runtime is not None:
        return runtime.name
    known = ", ".join(f"{s} ({n})" for n, spec in BACKENDS.items() for s in spec.suffixes)
    what = (f"{suffix!r} artifacts" if suffix else
            "a folder as an artifact (an exported model is a file, or a .mlpackage folder)" if Path(artifact).is_dir()
            else "files without a suffix")
    raise ArtifactError(f"{artifact}: no backend opens {what}; known: {known}")


def open_backend(artifact: str | Path, backend: str | None = None, expect: dict[str, Any] | None = None,
                 **options: Any) -> Backend:
    """Open ``artifact`` with ``backend`` (default: chosen by suffix), refusing it unless it matches ``expect``."""
    artifact = Path(artifact)
    name = backend or backend_for(artifact)
    with quiet_runtime_import():
        cls = backend_class(name)
        check_options(name, cls.open, options)
        return cls.open(artifact, dict(expect or {}), **options)


def check_options(name: str, opener, options: dict[str, Any]) -> None:
    """ValueError naming an option the ``name`` backend's ``opener`` does not take, or a ``threads`` that is not a
    whole number from 1 to this machine's cores (a runaway count started that many threads; 0 and -1 were taken
    as the runtime's default, a float failed inside the runtime's bindings)."""
    takes = [p for p in inspect.signature(opener).parameters if p not in ("artifact", "expect")]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ValueError(f"the {name} backend takes no option {', '.join(map(repr, unknown))}; its options: "
                         f"{', '.join(takes) or 'none'}")
    threads, cores = options.get("threads"), os.cpu_count() or 1
    if threads is not None and not (is_whole_number(threads) and 1 <= threads <= cores):
        raise ValueError(f"threads must be a whole number from 1 to {cores} (the CPU cores of this machine), "
                         f"got {threads!r}")


__all__ = ["BACKENDS", "Backend", "backend_class", "backend_for", "check_options", "open_backend"]
