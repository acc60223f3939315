"""The target registry: one record per runtime and one per deployment target.

Everything that knows about formats derives from these records: ``adamat export all`` and the export
subcommands (:mod:`export.all_targets`), the runtime backend chosen for an artifact
(:mod:`runtime.backends`), artifact discovery and what runs here (:mod:`runtime.artifacts`), the options a
latency row is measured with (:mod:`benchmarks.latency`), the runtime versions in a device fingerprint
(:mod:`benchmarks.fingerprint`) and the report. A new target is its exporter module, its backend module, one
:class:`Runtime` entry (if it brings a runtime), one :class:`Target` entry here, and docs.

Records name modules as strings: this module imports no runtime, exporter or torch, so every layer can read
it; the layer that uses an exporter or a backend imports it (``importlib``) when asked for it.
"""

from __future__ import annotations

import importlib.util
import platform
from dataclasses import dataclass
from enum import Enum

EXECUTORCH = "executorch>=1.5.1,<1.6"   # the range tested, with torch 2.13


class Precision(str, Enum):
    """What an artifact computes in. Its value is what manifests, file names and gate keys say."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"            # static INT8 (onnxruntime QDQ, OpenVINO NNCF, TensorRT Q/DQ)
    INT8_ACC = "int8-acc"    # OpenVINO INT8 with accuracy control (layers reverted to float)
    W8 = "w8"                # CoreML: 8-bit weights, float activations
    W8A8 = "w8a8"            # CoreML: 8-bit weights and activations
    PAL6 = "pal6"            # CoreML: 6-bit palettized weights
    PAL4 = "pal4"            # CoreML: 4-bit palettized weights

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Runtime:
    """A runtime backend (:mod:`runtime.backends`): what it needs and where it predicts."""

    name: str                       # registry name, as manifests and ``--backend`` say it
    label: str                      # as a person writes it
    module: str                     # its backend module
    cls: str                        # its class there, implementing runtime.backends.base.Backend
    requires: tuple[str, ...]       # packages it imports (checked first, for a clear error)
    install: str                    # how to get them
    suffixes: tuple[str, ...]       # artifact suffixes it opens by default
    options: tuple[str, ...] = ()   # of the benchmarks' options (threads, hint), those it takes
    missing: str = ""               # why an artifact does not run here when ``requires`` do not import
    system: str | None = None       # the only OS it predicts on (``platform.system()``); None: any
    elsewhere: str = ""             # why an artifact does not run on another OS

    def unavailable(self) -> str:
        """Why this runtime cannot predict here; "" when it can."""
        if self.system is not None and platform.system() != self.system:
            return self.elsewhere
        if any(importlib.util.find_spec(p) is None for p in self.requires):
            return self.missing
        return ""


RUNTIMES: dict[str, Runtime] = {r.name: r for r in (
    Runtime("torch", "PyTorch", "runtime.backends.torch_backend", "TorchBackend", ("torch",),
            "pip install torch==2.13.0", (".pt", ".pth"), ("threads",), missing="torch is not installed"),
    Runtime("onnxruntime", "onnxruntime", "runtime.backends.onnxruntime_backend", "OnnxRuntimeBackend",
            ("onnxruntime",), "pip install 'onnxruntime>=1.20,<1.33' (or the project's [export] extra)", (".onnx",),
            ("threads",), missing="onnxruntime is not installed"),
    Runtime("openvino", "OpenVINO", "runtime.backends.openvino_backend", "OpenVinoBackend", ("openvino",),
            "pip install 'openvino>=2025.1,<2027' (or the project's [export] extra)", (".xml",), ("threads", "hint"),
            missing="OpenVINO is not installed"),
    # UNVERIFIED: TensorRT installs only on machines with an NVIDIA GPU (runtime/backends/tensorrt_backend.py)
    Runtime("tensorrt", "TensorRT", "runtime.backends.tensorrt_backend", "TensorRtBackend", ("tensorrt",),
            "install TensorRT 11 from NVIDIA on the target (a machine with an NVIDIA GPU)", (".engine",),
            missing="TensorRT does not import here (it needs NVIDIA's TensorRT on a GPU machine)"),
    # UNVERIFIED: CoreML predicts on macOS only; elsewhere open() checks the manifest, then refuses
    Runtime("coreml", "CoreML", "runtime.backends.coreml_backend", "CoreMLBackend", ("coremltools",),
            "pip install 'coremltools>=9,<10' (or the project's [coreml] extra); predicts on macOS only",
            (".mlpackage",), missing="coremltools is not installed", system="Darwin",
            elsewhere="CoreML prediction needs macOS; accuracy is the export's PyTorch simulation"),
    Runtime("executorch", "ExecuTorch", "runtime.backends.executorch_backend", "ExecuTorchBackend", ("executorch",),
            f"pip install '{EXECUTORCH}' (or the project's [android] extra)", (".pte",), ("threads",),
            missing="ExecuTorch is not installed (the project's [android] extra)"),
)}


@dataclass(frozen=True)
class Target:
    """A deployment target: the artifacts ``adamat export <command>`` writes and what runs them."""

    name: str                          # ``adamat export all --targets`` name
    command: str                       # ``adamat export <command>`` (and ``make export-<command>``)
    backend: str                       # the backend its manifests record (the first half of a gate key)
    suffix: str                        # its artifacts' file suffix
    tag: str                           # file-name tag, ``{precision}`` filled in
    precisions: tuple[Precision, ...]  # what ``export all`` builds
    runtime: str                       # the runtime (RUNTIMES) that runs its artifacts here
    exporter: str                      # its module in export/: add_arguments(p), run(args), build(job)
    requires: tuple[str, ...]          # packages the exporter imports
    help: str                          # one line for ``adamat export --help``
    run_note: str = ""                 # how its artifacts run here, when not as on the device
    built_from: str | None = None      # the target whose artifacts it is built from (engines from TRT ONNX)
    absent: str = ""                   # why it is not built where ``requires`` are missing (default: "needs ...")
    refiner: str = ""                  # its band refiner's file (``adamat export band-refiner``); "": none

    def file_tag(self, precision: Precision | str) -> str:
        return self.tag.format(precision=str(precision).replace("-", "_"))

    def not_buildable(self) -> str:
        """Why this target cannot be exported here; "" when it can."""
        missing = [p for p in self.requires if importlib.util.find_spec(p) is None]
        if not missing:
            return ""
        return self.absent or f"needs {', '.join(missing)} ({EXPORT_EXTRAS})"


EXPORT_EXTRAS = "pip install -e '.[export,coreml]'"
P = Precision
TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("onnx", "onnx", "onnxruntime", ".onnx", "{precision}", (P.FP32, P.INT8), "onnxruntime", "export.onnx_target",
           ("onnx", "onnxruntime"), "FP32 ONNX validated against PyTorch, plus a calibrated INT8 QDQ ONNX",
           refiner="band_refiner.onnx"),
    Target("openvino", "openvino", "openvino", ".xml", "openvino_{precision}", (P.FP32, P.FP16, P.INT8), "openvino",
           "export.openvino_ir", ("openvino", "nncf"),
           "OpenVINO IR: FP32, FP16, INT8 (NNCF) and accuracy-controlled INT8", refiner="band_refiner_openvino.xml"),
    Target("tensorrt", "trt", "tensorrt", ".onnx", "trt_{precision}", (P.FP16, P.INT8), "onnxruntime",
           "export.trt_target", ("onnx", "onnxruntime"),
           "FP16 + INT8 Q/DQ ONNX for TensorRT (gated vs FP32 under onnxruntime); engines where TensorRT is "
           "installed, else the trtexec lines (exit 3)",
           run_note="the TensorRT graph run by onnxruntime CPU: accuracy is meaningful, latency is not TensorRT's",
           refiner="band_refiner_trt_fp16.onnx"),
    Target("coreml", "coreml", "coreml", ".mlpackage", "coreml_{precision}", (P.FP16, P.W8, P.PAL6, P.W8A8), "coreml",
           "export.coreml_package", ("coremltools",),
           "CoreML ML Program packages (fp16, w8, pal6/pal4, w8a8) with simulated accuracy",
           refiner="band_refiner_coreml_fp16.mlpackage"),
    Target("executorch", "executorch", "executorch", ".pte", "executorch_{precision}", (P.FP32, P.INT8), "executorch",
           "export.pte_program", ("executorch", "torchao"),
           "ExecuTorch .pte programs for Android, XNNPACK-delegated: FP32 and PT2E static INT8",
           absent=f"needs executorch (pip install '{EXECUTORCH}', or pip install -e '.[android]')",
           refiner="band_refiner_executorch.pte"),
    # UNVERIFIED: built only where TensorRT imports (an NVIDIA GPU machine)
    Target("tensorrt-engine", "trt", "tensorrt", ".engine", "trt_{precision}", (P.FP16, P.INT8), "tensorrt",
           "export.trt_engine", ("tensorrt",), "TensorRT engines from the TensorRT-ready ONNX",
           built_from="tensorrt",
           absent="TensorRT does not import here (it needs NVIDIA's TensorRT and a GPU): build on the target with "
                  "`make export-trt` or trtexec"),
)}
del P

REFERENCE = "torch"   # the runtime of the FP32 reference every artifact is compared with


def export_commands() -> str:
    """``make export-<command>`` of every target, for messages that say how to make artifacts."""
    commands = dict.fromkeys(t.command for t in TARGETS.values())
    return "make " + " / ".join(f"export-{c}" for c in commands)


def artifact_suffixes() -> tuple[str, ...]:
    """Every suffix an exported artifact has (the checkpoint's excluded)."""
    return tuple(dict.fromkeys(t.suffix for t in TARGETS.values()))


def target_of(backend: str, suffix: str) -> Target | None:
    """The target whose artifacts have this manifest backend and file suffix."""
    return next((t for t in TARGETS.values() if t.backend == backend and t.suffix == suffix), None)


def runtime_for_suffix(suffix: str) -> Runtime | None:
    """The runtime that opens artifacts with this suffix by default."""
    return next((r for r in RUNTIMES.values() if suffix.lower() in r.suffixes), None)


def fingerprint_packages() -> tuple[str, ...]:
    """The packages whose versions a device fingerprint records: every runtime's, and numpy."""
    return tuple(dict.fromkeys([p for r in RUNTIMES.values() for p in r.requires] + ["numpy"]))
