"""Every export target this machine can build, in one call: what ``make demo`` and ``make gate`` run.

    results = export_all("weights/mobile.pt", "out/export", (512, 512), cal, val)

The targets and what each writes come from the registry (:data:`common.targets.TARGETS`); each target's
exporter module builds its artifacts from one :class:`export.job.ExportJob`. A target that raises is recorded
as ``failed`` with the error and the others still run (the report lists it; ``adamat export all`` exits 1).
A target built from another one (the TensorRT engines, from the TensorRT-ready ONNX) runs only where that one
was built or reused. Each gives a :class:`TargetResult`: built, reused, or not built with the reason (a
missing package, no TensorRT). An artifact is *reused* when it is already in ``out_dir`` with a manifest that
matches it (every file's hash), the checkpoint (hash), the input size, the export code and, when calibrated,
the calibration set — so a second ``make demo`` skips the minutes of export and a changed checkpoint
re-exports.
"""

from __future__ import annotations

import importlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from adamatting.checkpoint import file_sha256, load_model
from common.targets import TARGETS as REGISTRY
from common.targets import Target
from export.job import ExportJob, is_current

# What ``adamat export all --targets`` chooses from; the targets built from these follow them.
TARGETS = tuple(name for name, t in REGISTRY.items() if t.built_from is None)


@dataclass
class TargetResult:
    target: str
    status: str                          # built | reused | not built | failed
    artifacts: list[Path] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0


def planned_artifacts(job: ExportJob) -> dict[str, list[Path]]:
    """The files each target writes."""
    return {name: job.artifacts(t) for name, t in REGISTRY.items()}


def export_all(checkpoint: str | Path, out_dir: str | Path, size=(512, 512), cal=None, val=None, *,
               targets=TARGETS, reuse: bool = True, log: Callable[[str], None] = tqdm.write) -> list[TargetResult]:
    """Export ``checkpoint`` to every target in ``targets`` possible here; see the module doc.

    ``cal`` / ``val``: composited calibration and validation sets at ``size`` (calib_data.sets)."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown export target(s) {unknown}; known: {', '.join(TARGETS)}")
    model, _ = load_model(checkpoint)
    job = ExportJob(model, file_sha256(checkpoint), Path(out_dir), tuple(size), cal, val, reuse, log)
    results: dict[str, TargetResult] = {}
    with tqdm(total=len(targets), desc="exports", unit="target", leave=False, file=sys.stderr) as bar:
        for name, target in REGISTRY.items():
            source = results.get(target.built_from) if target.built_from else None
            if name in targets or (source is not None and source.status in ("built", "reused")):
                bar.set_postfix_str(name)
                results[name] = _export_target(job, target, log)
                bar.update(name in targets)
    return list(results.values())


def _export_target(job: ExportJob, target: Target, log: Callable[[str], None]) -> TargetResult:
    paths = job.artifacts(target)
    why_not = target.not_buildable()
    if why_not:
        log(f"export {target.name}: not built: {why_not}")
        return TargetResult(target.name, "not built", reason=why_not)
    calib_key = job.cal.meta.get("key") if job.cal is not None else None
    if job.reuse and all(is_current(p, job.checkpoint_sha, job.size, calib_key) for p in paths):
        log(f"export {target.name}: reused {len(paths)} artifact(s) in {job.out_dir}")
        return TargetResult(target.name, "reused", paths)
    log(f"export {target.name}: building {', '.join(p.name for p in paths)}")
    t0 = time.perf_counter()
    try:
        importlib.import_module(target.exporter).build(job)
    except Exception as e:  # one target's tool failing must not cost the others (nor the report)
        result = TargetResult(target.name, "failed", reason=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0)
        log(f"export {target.name}: FAILED: {result.reason}")
        return result
    result = TargetResult(target.name, "built", paths, seconds=time.perf_counter() - t0)
    log(f"export {target.name}: built in {result.seconds:.0f} s")
    return result
