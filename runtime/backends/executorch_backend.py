"""The ExecuTorch backend: a ``.pte`` program (FP32 or INT8, XNNPACK-delegated) with its manifest, run by
ExecuTorch's Python runtime (``executorch.runtime``) — the same runtime and XNNPACK kernels an Android app
links (``libexecutorch`` / the ``org.pytorch.executorch`` AAR).

``threads`` sizes ExecuTorch's CPU thread pool (the one XNNPACK runs on). The pool belongs to the process,
so the last backend opened with ``threads`` decides for every program in it; the latency benchmark times
each artifact in its own process. Without ``threads`` ExecuTorch picks its default (the performant cores).
The manifest's hashes are checked before the program is read; a program ExecuTorch still refuses (another
format version, a corrupt header) is an :class:`runtime.errors.ArtifactError` naming the file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.manifest import Manifest, ManifestError
from runtime.backends.base import INPUT_NAMES, ManifestBackend
from runtime.errors import ArtifactError

METHOD = "forward"


def _runtime_without_the_exporter():
    """(``portable_lib``, ``Runtime``): ExecuTorch's pybindings and runtime, imported without its exporter.

    ``portable_lib`` imports ``executorch.exir._warnings`` (two decorators), and importing that runs
    ``executorch.exir``'s ``__init__``, which imports the whole exporter (capture, passes, torchao): ``adamat bokeh``
    with an INT8 program at 12 MP opened in 7.1 s, peak RSS 734 MiB, and opens in 1.07 s, 625 MiB without it
    (``benchmarks/measured/bokeh-runs-…-executorch-runtime-alone.json``). While they load, a bare package stands in
    for ``executorch.exir`` (its folder, its ``__init__`` not run); it and what was loaded under it are removed
    after, so an exporter in the same process imports it whole, as before. Where ``exir`` is loaded already, or the
    bare package does not do (a later ExecuTorch needing more of it), the ordinary import. It runs once, as this
    module is imported: another thread importing ``executorch.exir`` in that moment would be given the bare package
    (the backends are opened from the caller's thread; the runtime's own threads only compute)."""
    if "executorch.exir" not in sys.modules:
        spec = importlib.util.find_spec("executorch.exir")        # its folder; the package is not run
        bare = types.ModuleType("executorch.exir")
        bare.__path__ = list(spec.submodule_search_locations)
        sys.modules["executorch.exir"] = bare
        try:
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime
            return portable_lib, Runtime
        except ImportError:
            pass
        finally:
            for name in [n for n in sys.modules if n == "executorch.exir" or n.startswith("executorch.exir.")]:
                del sys.modules[name]                 # all of it loaded under the bare package
            import executorch
            if getattr(executorch, "exir", None) is bare:
                del executorch.exir
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime
    return portable_lib, Runtime


portable_lib, Runtime = _runtime_without_the_exporter()


def load_method(artifact: str | Path, threads: int | None = None):
    """(program, its ``forward`` method), the thread pool sized to ``threads`` first (when given).

    ExecuTorch logs through Python's stderr (CPU probing, why a program is refused): the log is kept out of
    the user's terminal, and its last line joins the error when the program cannot be loaded."""
    log = io.StringIO()
    try:
        with contextlib.redirect_stderr(log):
            if threads:
                portable_lib._unsafe_reset_threadpool(int(threads))
            program = Runtime.get().load_program(Path(artifact))
            if METHOD not in program.method_names:
                raise ArtifactError(f"{artifact}: the program has no {METHOD!r} method (it has "
                                    f"{', '.join(sorted(program.method_names)) or 'none'})")
            return program, program.load_method(METHOD)
    except RuntimeError as e:   # the pybindings raise RuntimeError('Failed to load program, error: 0x..')
        lines = log.getvalue().strip().splitlines()
        why = f" ({lines[-1].split('] ', 1)[-1]})" if lines else ""
        raise ArtifactError(f"{artifact}: ExecuTorch cannot load it: {e}{why}") from None


def execute(method, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, trimap_prob) of one call. ExecuTorch reads a tensor's memory as contiguous whatever its strides,
    so views (an HWC image transposed to CHW) are copied first."""
    alpha, prob = method.execute([torch.from_numpy(np.ascontiguousarray(image, np.float32)),
                                  torch.from_numpy(np.ascontiguousarray(trimap, np.float32))])
    return alpha.numpy(), prob.numpy()




class ExecuTorchBackend(ManifestBackend):
    name = "executorch"

    def __init__(self, program, method, manifest: Manifest, threads: int | None):
        super().__init__(manifest)
        self.program, self.method = program, method   # the program owns the method's memory: keep both
        self.threads = threads

    @classmethod
    def open(cls, artifact: Path, expect: dict[str, Any], threads: int | None = None) -> "ExecuTorchBackend":
        """ManifestError for a missing manifest, a hash mismatch or facts that differ from ``expect`` (or a
        program whose inputs are not the manifest's); ArtifactError when ExecuTorch cannot load it."""
        manifest = cls.read_manifest(artifact, {"backend": "executorch", **expect})
        program, method = load_method(artifact, threads)
        meta = method.metadata
        if meta.num_inputs() != len(INPUT_NAMES):
            raise ManifestError(f"{artifact}: the program takes {meta.num_inputs()} inputs, not {len(INPUT_NAMES)} "
                                f"({', '.join(INPUT_NAMES)})")
        h, w = manifest.input_size
        image_size = list(meta.input_tensor_meta(0).sizes())
        if image_size[2:] != [h, w]:
            raise ManifestError(f"{artifact}: program input size {image_size[2:]} differs from the manifest's "
                                f"{manifest.input_size}")
        return cls(program, method, manifest, threads)

    def run(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return execute(self.method, image, trimap)


def band_refiner_runner(path: Path):
    """The band refiner's ExecuTorch program (``adamat export band-refiner``): a fixed batch of tiles, its
    inputs in :data:`runtime.band_refiner.INPUTS` order."""
    from runtime.band_refiner import INPUTS, Runner

    program, method = load_method(path)
    if method.metadata.num_inputs() != len(INPUTS):
        raise ArtifactError(f"{path}: the program takes {method.metadata.num_inputs()} inputs, not the band "
                            f"refiner's {len(INPUTS)} ({', '.join(INPUTS)})")

    def run(inputs: dict[str, np.ndarray], program=program) -> np.ndarray:   # the program owns the method
        return method.execute([torch.from_numpy(np.ascontiguousarray(inputs[n], np.float32)) for n in INPUTS])[0].numpy()
    return Runner(run, "executorch", batch=int(method.metadata.input_tensor_meta(0).sizes()[0]))
