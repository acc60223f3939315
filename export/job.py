"""What every exporter shares: its common command-line options, artifact names (always a file directly in the
folder the user named), the composited sets it calibrates and validates on, and the :class:`ExportJob` that
``adamat export all`` hands each target's ``build``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from adamatting.config import DEFAULT_WEIGHTS, MAX_PU_STEPS, NAME_PATTERN
from calib_data.sets import SetConfig, build_set
from common.arguments import out_folder, positive_int, whole_number
from common.manifest import ManifestError, export_code_sha, load_manifest
from common.outputs import inside
from common.targets import Target
from export.errors import ExportError
from export.onnx_graph import export_onnx


# Bounds of the export options, refused as the command line is read (exit 2, before any work):
MAX_SIDE = 4096    # 64 times the phone case's pixels: the export's checks and the composited sets run at this size
MAX_STEPS = MAX_PU_STEPS   # the checkpoints unroll 2 or 3; each step adds its cell to the graph (100000 never finishes)
SIZE_HELP = (f"fixed input size, each side a multiple of the checkpoint's stride (32 for the default mobile-int8, "
             f"128 for mobile, whose network runs at 3/4 of the input) and at most {MAX_SIDE}")
side = whole_number(1, MAX_SIDE)
unrolled_steps = whole_number(0, MAX_STEPS)
MAX_WORKSPACE_MIB = 1 << 20   # 1 TiB: more than any GPU's memory
WORKSPACE_HELP = f"TensorRT builder workspace limit in MiB, 1 to {MAX_WORKSPACE_MIB} (default: TensorRT's)"
workspace_mib = whole_number(1, MAX_WORKSPACE_MIB)


def add_size_argument(p, default=(512, 512), help: str = "default: the phone case, 512 512") -> None:
    """``--size H W``: each side from 1 to MAX_SIDE (the stride is checked against the checkpoint's config)."""
    p.add_argument("--size", type=side, nargs=2, default=list(default), metavar=("H", "W"),
                   help=f"{SIZE_HELP}; {help}")


def add_limit_arguments(p) -> None:
    """``--calib-limit`` and ``--val-limit``: how many samples of each set, at least 1."""
    p.add_argument("--calib-limit", type=positive_int, default=None,
                   help="calibration samples to use, at least 1 (default: all)")
    p.add_argument("--val-limit", type=positive_int, default=None,
                   help="validation samples to use, at least 1 (default: all)")


def add_export_arguments(p, *, dynamic_batch_help: str = "dynamic batch dimension (default: batch 1)",
                         val_help: str = "validation set config for the accuracy reports",
                         calib_method: bool = True) -> None:
    """The options every ``adamat export <target>`` shares."""
    p.add_argument("--checkpoint", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--out", type=out_folder, default="out/export", help="folder for the artifacts and their manifests")
    add_size_argument(p)
    p.add_argument("--steps", type=unrolled_steps, default=None,
                   help=f"propagation steps to unroll, 0 to {MAX_STEPS} (each adds its cell to the graph; "
                        f"default: the checkpoint's)")
    p.add_argument("--dynamic-batch", action="store_true", help=dynamic_batch_help)
    p.add_argument("--simplifier", default="onnxslim", choices=["onnxslim", "onnxsim", "none"])
    p.add_argument("--calib", default="calib", help="calibration set config (TOML or embedded name)")
    p.add_argument("--val", default="val", help=val_help)
    if calib_method:
        p.add_argument("--calib-method", default="minmax", choices=["minmax", "entropy", "percentile"])
    p.add_argument("--cache", type=out_folder, default="cache/sets")


def artifact_name(config: str, size: tuple[int, int], precision: str, steps: int | None = None, suffix: str = ".onnx") -> str:
    if not NAME_PATTERN.fullmatch(config):   # a name read from a checkpoint is data: it must not make a path
        raise ValueError(f"model config name {config!r} is not allowed in a file name")
    steps_tag = f"_s{steps}" if steps is not None else ""
    return f"adamatting_{config}_{size[0]}x{size[1]}{steps_tag}_{precision}{suffix}"


def artifact_path(out_dir: str | Path, config: str, size: tuple[int, int], precision: str, steps: int | None = None,
                  suffix: str = ".onnx") -> Path:
    """Where an artifact is written: always a file directly in ``out_dir``."""
    return inside(out_dir, artifact_name(config, size, precision, steps, suffix))


def check_set_size(cset, input_size: list[int], role: str) -> None:
    """ExportError unless ``cset`` (a calibration or validation set) has samples at the model's input size."""
    if list(cset.size) != list(input_size):
        raise ExportError(f"{role} set {cset.path} is {cset.size[1]}x{cset.size[0]} but the model takes "
                          f"{input_size[1]}x{input_size[0]}; build the set at the model's size "
                          f"(size = {list(input_size)} in its config)")
    if len(cset) == 0:
        raise ExportError(f"{role} set {cset.path} has no samples")


def composited_set(name_or_path: str, size: tuple[int, int], cache: Path, progress: bool = True):
    """A calibration/validation set from its config, built at the model's input size."""
    cfg = SetConfig.from_toml(name_or_path)
    cfg = dataclasses.replace(cfg, size=tuple(size)).validated()
    return build_set(cfg, cache, progress=progress)


def check_sets_readable(*names_or_paths: str) -> None:
    """Read each set's config (a calibration or validation set, TOML or embedded name), building nothing: one
    that cannot be read fails before any export work."""
    for name_or_path in names_or_paths:
        SetConfig.from_toml(name_or_path)


def is_current(path: Path, checkpoint_sha: str, size, calib_key: str | None = None) -> bool:
    """Is ``path`` an intact export of this checkpoint at this size by this export code (and, if calibrated,
    with this set)?"""
    try:
        m = load_manifest(path)
    except ManifestError:
        return False
    if (m.checkpoint_sha256 != checkpoint_sha or list(m.input_size) != list(size)
            or m.export_code_sha256 != export_code_sha()):
        return False
    return m.calibration is None or calib_key is None or m.calibration.get("key") == calib_key


@dataclass
class ExportJob:
    """One checkpoint exported to several targets (``adamat export all``): each target's ``build(job)`` writes
    :meth:`artifacts` for it; the FP32 ONNX several targets start from is written once (or reused)."""

    model: Any                    # adamatting.model.AdaMatting, eval mode
    checkpoint_sha: str
    out_dir: Path
    size: tuple[int, int]
    cal: Any = None               # composited calibration set at ``size`` (calib_data.sets.CompositedSet)
    val: Any = None               # composited validation set at ``size``
    reuse: bool = True
    log: Callable[[str], None] = print   # the export log (what a target reports beyond its files)

    def artifact(self, target: Target, precision) -> Path:
        return artifact_path(self.out_dir, self.model.cfg.name, self.size, target.file_tag(precision),
                             suffix=target.suffix)

    def artifacts(self, target: Target) -> list[Path]:
        return [self.artifact(target, p) for p in target.precisions]

    def fp32_onnx(self) -> Path:
        """The validated FP32 ONNX every ONNX-based target starts from, exported unless an up-to-date one exists."""
        path = artifact_path(self.out_dir, self.model.cfg.name, self.size, "fp32")
        if not (self.reuse and is_current(path, self.checkpoint_sha, self.size)):
            export_onnx(self.model, path, self.size, checkpoint_sha256=self.checkpoint_sha)
        return path


def describe_validation(v: dict, reference: str = "FP32") -> str:
    """One line of an artifact's validation record: an INT8 one against ``reference``, or a float one."""
    if "alpha_vs_fp32" in v:
        d = v["drop"]
        return (f"INT8 vs {reference} on {v['samples']} validation composites: max |Δα| "
                f"{v['alpha_vs_fp32']['max_abs']:.4f}, mean |Δα| {v['alpha_vs_fp32']['mean_abs']:.4f}; "
                f"SAD {v['fp32']['SAD']:.3f} → {v['quantized']['SAD']:.3f} (drop {d['SAD']:+.3f}), "
                f"Grad drop {d['Grad']:+.3f}")
    return f"vs PyTorch on {v['samples']} composites: max |Δα| {v['max_abs']:.2e}, mean |Δα| {v['mean_abs']:.2e}"
