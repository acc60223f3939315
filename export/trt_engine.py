"""TensorRT engines from the TensorRT-ready ONNX models (export.trt_models); their runner is the TensorRT backend
(runtime/backends/tensorrt_backend.py).

UNVERIFIED. The ``tensorrt`` Python package installs only where NVIDIA's TensorRT and a GPU are, which the
project's CI does not have, so :func:`build_engine` and the backend's runner are written plainly against the TensorRT 11 Python API as documented (names checked against NVIDIA's API
reference and its 10.x → 11.x migration guide) and have never executed. What *is* verified here: the ONNX
they consume (Q/DQ rules, accuracy under onnxruntime, manifests), the ``trtexec`` command line this module
prints for building on the target, and the fallback when ``tensorrt`` does not import.

TensorRT 11 facts this follows: every network is strongly typed (``NetworkDefinitionCreationFlag.
STRONGLY_TYPED`` is deprecated in 11.0 and ignored; it is still passed, which TensorRT 10.x needs);
there are no FP16/INT8 builder flags or calibrators (precision is what the ONNX says: FP16 tensors, Q/DQ
nodes); a timing cache is created from bytes with ``IBuilderConfig.create_timing_cache``, attached with
``set_timing_cache(cache, ignore_mismatch=False)`` and written back from ``ITimingCache.serialize()``; it is
tied to the GPU and TensorRT version, so a cache from elsewhere is rejected and rebuilt.

Shapes: the exported ONNX has a fixed H×W and batch 1, i.e. no dynamic dimension, so no optimization profile
is needed and ``trtexec`` must not be given ``--shapes`` (trtexec refuses explicit shapes for a static
model: "Static model does not take explicit shapes ..."). For a ``--dynamic-batch`` export the profile is
min = opt = max = batch 1 at the fixed size, and the trtexec line carries ``--shapes=image:1x3xHxW,...``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import onnx

from common.manifest import (
    Manifest,
    check_expected,
    load_manifest,
    tool_versions,
    write_manifest,
)
from common.outputs import atomic_path
from common.targets import TARGETS
from export.errors import ExportError
from export.job import WORKSPACE_HELP, ExportJob, workspace_mib
from runtime.backends.tensorrt_backend import TRT_MISSING, tensorrt_or_none

ENGINE = TARGETS["tensorrt-engine"]

TIMING_CACHE_NAME = "timing.cache"


def engine_path_for(onnx_path: str | Path) -> Path:
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.name.removesuffix(".onnx") + ".engine")


def onnx_input_shapes(onnx_path: str | Path) -> dict[str, list[int | str]]:
    """Input name → dims (an int, or the symbolic name of a dynamic dimension)."""
    proto = onnx.load(str(onnx_path), load_external_data=False)
    return {i.name: [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                     for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}


def fixed_shapes(shapes: dict[str, list[int | str]], batch: int = 1) -> dict[str, list[int]]:
    """Dynamic dimensions (the batch only, in this project's exports) set to ``batch``."""
    out = {}
    for name, dims in shapes.items():
        if any(isinstance(d, str) for d in dims[1:]):
            raise ExportError(f"input {name} has dynamic dimensions other than the batch: {dims}; export at a "
                              f"fixed size")
        out[name] = [batch if isinstance(dims[0], str) else dims[0], *dims[1:]]
    return out


def trtexec_command(onnx_path: str | Path, engine_path: str | Path | None = None,
                    timing_cache: str | Path | None = None) -> list[str]:
    """The trtexec argv that builds ``onnx_path`` into an engine on the target (TensorRT 10.12+ / 11)."""
    onnx_path = Path(onnx_path)
    engine_path = Path(engine_path) if engine_path else engine_path_for(onnx_path)
    timing_cache = Path(timing_cache) if timing_cache else onnx_path.with_name(TIMING_CACHE_NAME)
    cmd = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}", f"--timingCacheFile={timing_cache}",
           "--stronglyTyped"]
    shapes = onnx_input_shapes(onnx_path)
    if any(isinstance(d, str) for dims in shapes.values() for d in dims):
        cmd.append("--shapes=" + ",".join(f"{n}:{'x'.join(map(str, d))}" for n, d in fixed_shapes(shapes).items()))
    return cmd


def trtexec_line(onnx_path: str | Path, engine_path: str | Path | None = None,
                 timing_cache: str | Path | None = None) -> str:
    return shlex.join(trtexec_command(onnx_path, engine_path, timing_cache))


def _source_manifest(onnx_path: Path) -> Manifest:
    m = load_manifest(onnx_path)
    check_expected(m, onnx_path, backend="tensorrt", artifact_type="onnx")
    return m


def _device_name() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    except Exception:
        return ""


def build_engine(onnx_path: str | Path, engine_path: str | Path | None = None,
                 timing_cache: str | Path | None = None, *, workspace_mib: int | None = None) -> Manifest:
    """Build a TensorRT engine from a TensorRT-ready ONNX (with manifest); write the engine, its manifest and
    the updated timing cache atomically. UNVERIFIED here: needs ``tensorrt`` and a GPU."""
    trt = tensorrt_or_none()
    if trt is None:
        raise ExportError(f"cannot build {onnx_path}: {TRT_MISSING}; on the target run: {trtexec_line(onnx_path)}")
    onnx_path = Path(onnx_path)
    engine_path = Path(engine_path) if engine_path else engine_path_for(onnx_path)
    timing_cache = Path(timing_cache) if timing_cache else onnx_path.with_name(TIMING_CACHE_NAME)
    src = _source_manifest(onnx_path)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(1 << int(strongly_typed) if strongly_typed is not None else 0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError(f"{onnx_path}: the TensorRT ONNX parser refused the model:\n  " + "\n  ".join(errors))
    config = builder.create_builder_config()
    if workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)

    # one optimization profile, min = opt = max, for inputs with a dynamic (batch) dimension
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    dynamic = {t.name: list(t.shape) for t in inputs if any(d < 0 for d in t.shape)}
    if dynamic:
        profile = builder.create_optimization_profile()
        for name, dims in fixed_shapes({n: [d if d >= 0 else "batch" for d in s] for n, s in dynamic.items()}).items():
            profile.set_shape(name, dims, dims, dims)
        config.add_optimization_profile(profile)

    # timing cache: reuse the file when it matches this GPU and TensorRT version, else start empty
    blob = timing_cache.read_bytes() if timing_cache.is_file() else b""
    cache = config.create_timing_cache(blob)
    cache_state = "loaded" if blob else "new"
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
        cache_state = "rebuilt (the file came from another GPU or TensorRT version)"

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"{onnx_path}: TensorRT could not build an engine (see the log above); "
                          f"{engine_path} not written")
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(memoryview(serialized))
    with atomic_path(timing_cache) as tmp:
        tmp.write_bytes(memoryview(config.get_timing_cache().serialize()))

    manifest = Manifest(**{**src.__dict__, "artifact_sha256": "",
                           "tools": {**tool_versions("onnx"), "tensorrt": trt.__version__},
                           "validation": {**src.validation, "engine": "not re-measured on the device by build_engine; "
                                          "the numbers are the ONNX's under onnxruntime"},
                           "extra": {**src.extra, "artifact_type": "engine", "built_from": onnx_path.name,
                                     "onnx_sha256": src.artifact_sha256, "device": _device_name(),
                                     "timing_cache": {"path": str(timing_cache), "state": cache_state},
                                     "strongly_typed": True, "optimization_profile": dynamic or None}})
    manifest.created = Manifest.__dataclass_fields__["created"].default_factory()
    write_manifest(engine_path, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python -m export.trt_engine MODEL.onnx [...]``: build engines (or print the trtexec lines)."""
    p = argparse.ArgumentParser(prog="python -m export.trt_engine",
                                description="Build TensorRT engines from TensorRT-ready ONNX models (with manifests).")
    p.add_argument("onnx", nargs="+", help="ONNX models written by `adamat export trt`")
    p.add_argument("--timing-cache", default=None, help=f"timing cache file (default: {TIMING_CACHE_NAME} beside "
                                                        f"the first model)")
    p.add_argument("--workspace-mib", type=workspace_mib, default=None, help=WORKSPACE_HELP)
    args = p.parse_args(argv)
    cache = args.timing_cache or str(Path(args.onnx[0]).with_name(TIMING_CACHE_NAME))
    if tensorrt_or_none() is None:
        print(f"error: {TRT_MISSING}; build on the target with:", file=sys.stderr)
        for path in args.onnx:
            print("  " + trtexec_line(path, timing_cache=cache), file=sys.stderr)
        return 3
    try:
        for path in args.onnx:
            m = build_engine(path, timing_cache=cache, workspace_mib=args.workspace_mib)
            print(f"{engine_path_for(path)}  ({m.precision}, TensorRT {m.tools.get('tensorrt')})")
    except (ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def build(job: ExportJob) -> None:
    """``export all``: an engine from each TensorRT-ready ONNX, sharing one timing cache. UNVERIFIED."""
    onnx_target = TARGETS[ENGINE.built_from]
    for precision in ENGINE.precisions:
        build_engine(job.artifact(onnx_target, precision), timing_cache=job.out_dir / TIMING_CACHE_NAME)


if __name__ == "__main__":
    sys.exit(main())
