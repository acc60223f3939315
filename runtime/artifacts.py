"""The catalogue of exported artifacts in a folder, and how (or why not) each one runs on this machine.

Every benchmark, gate and report row starts here. An artifact is a file or package with a manifest
beside it (:mod:`common.manifest`); its gate key is ``<manifest backend>/<precision>``
(``onnxruntime/int8``, ``tensorrt/fp16``, ``coreml/w8a8``, ...), and ``run_backend`` says which of
:mod:`runtime.backends` executes it here:

- ``.onnx`` for onnxruntime: onnxruntime.
- ``.onnx`` for TensorRT (the FP16 and Q/DQ INT8 graphs): onnxruntime CPU, which runs the same graph
  (Q/DQ pairs are real int8 rounding there) — accuracy is meaningful, latency is *not* TensorRT's.
- ``.engine``: TensorRT where it imports (a machine with an NVIDIA GPU), else not run.
- ``.xml`` (OpenVINO IR): OpenVINO.
- ``.mlpackage``: CoreML on macOS; elsewhere not run, and its accuracy is the export's PyTorch
  simulation recorded in the manifest (``validation.simulated``).

The PyTorch FP32 checkpoint is always the reference row (:func:`reference`).

Importing this module imports neither torch nor any runtime: the on-device benchmark uses it too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from common.manifest import (
    Manifest,
    ManifestError,
    load_manifest,
    manifest_path,
    sha256_of,
)
from common.targets import (
    REFERENCE,
    RUNTIMES,
    TARGETS,
    Precision,
    artifact_suffixes,
    target_of,
)
from runtime.backends import open_backend

REFERENCE_KEY = f"{REFERENCE}/{Precision.FP32}"
SUFFIXES = artifact_suffixes()
EXPORT_FOLDER = Path("out/export")   # where ``make export-*`` writes; ``ADAMAT_ARTIFACTS`` names another
# The exports an app runs instead of the checkpoint, fastest first on a CPU (`make demo`'s latency table, 2 cores,
# 512×512: ExecuTorch INT8 24 ms, onnxruntime INT8 25 ms at a quarter of its peak memory, OpenVINO INT8 36 ms,
# the float graphs 43–59 ms). TensorRT's graphs are not here: onnxruntime runs them only to check accuracy.
CPU_PREFERENCE = ("onnxruntime/int8", "executorch/int8", "openvino/int8",
                  "onnxruntime/fp32", "openvino/fp16", "openvino/fp32", "executorch/fp32")


@dataclass
class Artifact:
    path: Path
    backend: str                      # what it was exported for (the manifest's backend)
    precision: str
    run_backend: str | None           # the runtime backend that executes it here; None: not run here
    note: str = ""                    # how it runs here, or why it does not
    manifest: Manifest | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """The gate key: ``<backend>/<precision>``."""
        return f"{self.backend}/{self.precision}"

    @property
    def label(self) -> str:
        kind = {".onnx": " ONNX", ".engine": " engine"}.get(self.path.suffix, "") if self.backend == "tensorrt" else ""
        runtime = RUNTIMES.get(self.backend)
        return f"{runtime.label if runtime else self.backend} {self.precision.upper()}{kind}"

    @property
    def size_bytes(self) -> int:
        """Bytes on disk: a package's files, or the file (an OpenVINO IR's .xml plus its .bin)."""
        p = self.path
        if p.is_dir():
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        weights = p.with_suffix(".bin") if p.suffix == ".xml" else None
        return p.stat().st_size + (weights.stat().st_size if weights is not None and weights.is_file() else 0)

    @property
    def runs_here(self) -> bool:
        return self.run_backend is not None

    @property
    def input_size(self) -> list[int] | None:
        return list(self.manifest.input_size) if self.manifest is not None and self.manifest.input_size else None

    @property
    def simulated_validation(self) -> dict | None:
        """The export's own accuracy measurement, when the artifact itself cannot run here (CoreML)."""
        v = (self.manifest.validation or {}) if self.manifest is not None else {}
        return v if v.get("simulated") else None


def _plan(path: Path, m: Manifest) -> tuple[str | None, str]:
    """(backend that runs ``path`` here, note), from the registry: the target of its manifest backend and
    suffix, and whether that target's runtime predicts here."""
    target = target_of(m.backend, path.suffix)
    if target is None:
        return None, f"no backend opens {path.suffix!r}"
    why_not = RUNTIMES[target.runtime].unavailable()
    return (None, why_not) if why_not else (target.runtime, target.run_note)


def open_artifact(path: str | Path) -> Artifact:
    """One artifact with its manifest (hash verified); ManifestError when it has none or it does not match."""
    path = Path(path)
    m = load_manifest(path)
    run, note = _plan(path, m)
    return Artifact(path, m.backend, m.precision, run, note, m)


def discover(folder: str | Path, input_size: list[int] | tuple[int, int] | None = None) -> tuple[list[Artifact], list[str]]:
    """Every artifact with a manifest in ``folder`` (optionally only those of one input size), sorted by
    backend then precision, and one problem line per artifact that has no usable manifest."""
    folder = Path(folder)
    found, problems = [], []
    if not folder.is_dir():
        return found, problems
    for p in sorted(folder.iterdir()):
        if p.suffix not in SUFFIXES:
            continue
        if not manifest_path(p).is_file():
            problems.append(f"{p}: no manifest beside it; not benchmarked (re-export it)")
            continue
        try:
            a = open_artifact(p)
        except ManifestError as e:
            problems.append(str(e))
            continue
        if input_size is not None and a.input_size != list(input_size):
            continue
        found.append(a)
    order = {b: i for i, b in enumerate(dict.fromkeys(t.backend for t in TARGETS.values()))}
    found.sort(key=lambda a: (order.get(a.backend, 9), a.path.suffix, a.precision))
    return found, problems


def split_stale(artifacts: list[Artifact], checkpoint: str | Path) -> tuple[list[Artifact], list[str]]:
    """(artifacts exported from ``checkpoint``, one problem line per artifact exported from another one).

    An export that failed leaves the previous checkpoint's artifact in place; comparing it with this
    checkpoint would measure the difference between two models, not what the export changed."""
    sha = sha256_of(checkpoint)
    current = [a for a in artifacts if a.manifest is None or a.manifest.checkpoint_sha256 == sha]
    stale = [f"{a.path}: exported from another checkpoint (sha256 {a.manifest.checkpoint_sha256[:12]}, "
             f"not {Path(checkpoint).name}'s {sha[:12]}); re-export it" for a in artifacts if a not in current]
    return current, stale


def current(folder: str | Path, input_size: list[int] | tuple[int, int], checkpoint: str | Path) -> tuple[list[Artifact], list[str]]:
    """``discover`` + ``split_stale``: the artifacts in ``folder`` exported from ``checkpoint`` at
    ``input_size``, and one problem line for each unusable or stale one."""
    artifacts, problems = discover(folder, input_size)
    artifacts, stale = split_stale(artifacts, checkpoint)
    return artifacts, problems + stale


def reference(checkpoint: str | Path, input_size: list[int] | tuple[int, int] | None = None) -> Artifact:
    """The PyTorch FP32 eager row every other row is compared with."""
    why_not = RUNTIMES[REFERENCE].unavailable()
    return Artifact(Path(checkpoint), REFERENCE, Precision.FP32.value, None if why_not else REFERENCE,
                    why_not or "PyTorch FP32 eager: the reference row", None)


def open_runner(a: Artifact, input_size: list[int] | tuple[int, int] | None = None, **options):
    """The runtime backend for ``a`` (``run(image, trimap) -> (alpha, prob)``). A checkpoint gets
    ``input_size`` as its fixed size, so it is compared with the exports on identical inputs."""
    if a.run_backend is None:
        raise RuntimeError(f"{a.path}: not runnable here: {a.note}")
    expect = {"input_size": list(input_size)} if (a.backend == "torch" and input_size is not None) else {}
    return open_backend(a.path, a.run_backend, expect, **options)


def export_folder() -> Path:
    """The folder of exported artifacts: ``$ADAMAT_ARTIFACTS``, else (unset or empty) :data:`EXPORT_FOLDER`."""
    return Path(os.environ.get("ADAMAT_ARTIFACTS") or EXPORT_FOLDER)


def fastest_export(checkpoint: str | Path, folder: str | Path | None = None,
                   input_size: list[int] | tuple[int, int] | None = None) -> Artifact | None:
    """The export of ``checkpoint`` in ``folder`` (default :func:`export_folder`) that runs here and comes first
    in :data:`CPU_PREFERENCE`, its manifest verified (bytes, and ``checkpoint``'s sha256) and, when given, of
    ``input_size``; None when there is none. Only the candidates' files are hashed, best first."""
    folder = Path(folder or export_folder())
    sha = sha256_of(checkpoint) if folder.is_dir() and Path(checkpoint).is_file() else None
    for key in CPU_PREFERENCE if sha else ():
        backend, precision = key.split("/")
        target = next(t for t in TARGETS.values() if t.backend == backend and t.runtime == backend)
        for path in sorted(folder.glob(f"*_{target.file_tag(precision)}{target.suffix}")):
            try:
                a = open_artifact(path)
            except ManifestError:
                continue
            if (a.key == key and a.runs_here and a.manifest.checkpoint_sha256 == sha
                    and (input_size is None or a.input_size == list(input_size))):
                return a
    return None
