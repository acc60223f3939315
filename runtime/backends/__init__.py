"""The backend registry: which runtime opens which artifact, imported only when asked for.

Optional runtimes (onnxruntime, OpenVINO, TensorRT, CoreML) are imported when their backend
is requested, never when ``runtime`` is imported, so a missing package is an error — a clear
:class:`runtime.errors.BackendUnavailable` saying what to install — only for the backend that needs it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.backends.base import Backend
from runtime.errors import ArtifactError, BackendUnavailable


@dataclass(frozen=True)
class BackendSpec:
    module: str                  # the backend's module in this package
    cls: str                     # its class, implementing runtime.backends.base.Backend
    requires: tuple[str, ...]    # packages it imports (checked first, for a clear error)
    install: str                 # how to get them
    suffixes: tuple[str, ...]    # artifact file suffixes it opens by default


BACKENDS: dict[str, BackendSpec] = {
    "torch": BackendSpec("runtime.backends.torch_backend", "TorchBackend", ("torch",),
                         "pip install torch==2.13.0", (".pt", ".pth")),
    "onnxruntime": BackendSpec("runtime.backends.onnxruntime_backend", "OnnxRuntimeBackend", ("onnxruntime",),
                               "pip install 'onnxruntime>=1.20,<1.33' (or the project's [export] extra)", (".onnx",)),
    "openvino": BackendSpec("runtime.backends.openvino_backend", "OpenVinoBackend", ("openvino",),
                            "pip install 'openvino>=2025.1,<2027' (or the project's [export] extra)", (".xml",)),
    # unverified here: tensorrt cannot be installed on the project machines (see export/trt_engine.py)
    "tensorrt": BackendSpec("runtime.backends.tensorrt_backend", "TensorRtBackend", ("tensorrt",),
                            "install TensorRT 11 from NVIDIA on the target (a machine with an NVIDIA GPU)",
                            (".engine",)),
    # prediction needs macOS; elsewhere open() checks the manifest, then raises BackendUnavailable
    "coreml": BackendSpec("runtime.backends.coreml_backend", "CoreMLBackend", ("coremltools",),
                          "pip install 'coremltools>=9,<10' (or the project's [coreml] extra); predicts on macOS only",
                          (".mlpackage",)),
}


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
    for name, spec in BACKENDS.items():
        if suffix in spec.suffixes:
            return name
    known = ", ".join(f"{s} ({n})" for n, spec in BACKENDS.items() for s in spec.suffixes)
    raise ArtifactError(f"{artifact}: no backend opens {suffix or 'files without a suffix'!r} artifacts; "
                        f"known: {known}")


def open_backend(artifact: str | Path, backend: str | None = None, expect: dict[str, Any] | None = None,
                 **options: Any) -> Backend:
    """Open ``artifact`` with ``backend`` (default: chosen by suffix), refusing it unless it matches ``expect``."""
    artifact = Path(artifact)
    return backend_class(backend or backend_for(artifact)).open(artifact, dict(expect or {}), **options)


__all__ = ["BACKENDS", "Backend", "BackendSpec", "backend_class", "backend_for", "open_backend"]
