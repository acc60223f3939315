"""One entry per export target, shared by the CLI and ``make export-*``: checkpoint in, artifacts with
manifests out, a summary of what was written and how it was checked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from adamatting.checkpoint import file_sha256, load_model
from adamatting.config import DEFAULT_WEIGHTS, NAME_PATTERN
from calib_data.outputs import check_folder, inside
from calib_data.sets import SetConfig, build_set


def add_export_arguments(p, *, dynamic_batch_help: str = "dynamic batch dimension (default: batch 1)",
                         val_help: str = "validation set config for the accuracy reports",
                         calib_method: bool = True) -> None:
    """The options every ``adamat export <target>`` shares."""
    p.add_argument("--checkpoint", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--out", default="out/export", help="folder for the artifacts and their manifests")
    p.add_argument("--size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"),
                   help="fixed input size, multiples of the model's stride (128 for mobile, 32 without the guided "
                        "upsampler; default: the phone case, 512 512)")
    p.add_argument("--steps", type=int, default=None, help="propagation steps to unroll (default: the checkpoint's)")
    p.add_argument("--dynamic-batch", action="store_true", help=dynamic_batch_help)
    p.add_argument("--simplifier", default="onnxslim", choices=["onnxslim", "onnxsim", "none"])
    p.add_argument("--calib", default="calib", help="calibration set config (TOML or embedded name)")
    p.add_argument("--val", default="val", help=val_help)
    if calib_method:
        p.add_argument("--calib-method", default="minmax", choices=["minmax", "entropy", "percentile"])
    p.add_argument("--cache", default="cache/sets")


def artifact_name(config: str, size: tuple[int, int], precision: str, steps: int | None = None, suffix: str = ".onnx") -> str:
    if not NAME_PATTERN.fullmatch(config):   # a name read from a checkpoint is data: it must not make a path
        raise ValueError(f"model config name {config!r} is not allowed in a file name")
    steps_tag = f"_s{steps}" if steps is not None else ""
    return f"adamatting_{config}_{size[0]}x{size[1]}{steps_tag}_{precision}{suffix}"


def artifact_path(out_dir: str | Path, config: str, size: tuple[int, int], precision: str, steps: int | None = None,
                  suffix: str = ".onnx") -> Path:
    """Where an artifact is written: always a file directly in ``out_dir``."""
    return inside(out_dir, artifact_name(config, size, precision, steps, suffix))


def composited_set(name_or_path: str, size: tuple[int, int], cache: Path, progress: bool = True):
    """A calibration/validation set from its config, built at the model's input size."""
    cfg = SetConfig.from_toml(name_or_path)
    cfg = dataclasses.replace(cfg, size=tuple(size)).validated()
    return build_set(cfg, cache, progress=progress)


def export_onnx_target(checkpoint: Path, out_dir: Path, size: tuple[int, int] = (512, 512), *, steps: int | None = None,
                       dynamic_batch: bool = False, simplifier: str = "onnxslim", int8: bool = True,
                       calib: str = "calib", val: str = "val", cache: Path = Path("cache/sets"),
                       calib_method: str = "minmax", progress: bool = True) -> list[tuple[Path, dict]]:
    """FP32 ONNX (validated against PyTorch) and, with ``int8``, its calibrated QDQ INT8 twin."""
    from export.int8_qdq import quantize_onnx_int8
    from export.onnx_graph import export_onnx

    check_folder(out_dir)   # before any work
    if int8:   # and the sets' names, before the FP32 export is written
        for name_or_path in (calib, val):
            SetConfig.from_toml(name_or_path)
    model, _ = load_model(checkpoint)
    if steps is not None and steps != model.cfg.pu_steps:
        from adamatting.checkpoint import load_state
        from adamatting.model import build_model

        state = model.state_dict()
        model = build_model(model.cfg.replace(pu_steps=steps))
        load_state(model, state, checkpoint)
        model.eval()
    name = model.cfg.name
    fp32 = artifact_path(out_dir, name, size, "fp32", steps)
    m32 = export_onnx(model, fp32, size, dynamic_batch=dynamic_batch, simplifier=simplifier,
                      checkpoint_sha256=file_sha256(checkpoint))
    written = [(fp32, m32.validation)]
    if int8:
        cal = composited_set(calib, size, cache, progress)
        vset = composited_set(val, size, cache, progress)
        q = artifact_path(out_dir, name, size, "int8", steps)
        m8 = quantize_onnx_int8(fp32, q, cal, vset, method=calib_method)
        written.append((q, m8.validation))
    return written
