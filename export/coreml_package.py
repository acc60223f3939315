"""CoreML ML Program packages (``.mlpackage``) for iOS/macOS: FP16, weight-compressed and W8A8 variants.

The BN-folded model (adamatting.fuse plus every Conv→BN pair folded here, so each MIL weight constant
keeps its PyTorch module path) is traced at a fixed size, the ConvLSTM unrolled, and converted with
coremltools to an ML Program (``minimum_deployment_target`` iOS17 by default, FP16 compute). Inputs:
``image`` is an RGB ImageType (scale 2/255, bias −1: the model's 2·I − 1 on 8-bit pixels, so an app feeds a
CVPixelBuffer), ``trimap`` a 1×1×H×W tensor (0 / 0.5 / 1). Outputs: ``alpha`` and ``trimap_prob``.

Variants (one package + manifest each):
- ``fp16``: FP16 weights and compute;
- ``w8``: ``linear_quantize_weights`` int8 symmetric per output channel;
- ``pal6`` / ``pal4``: ``palettize_weights`` k-means, 6 or 4 bits per weight (per-tensor LUT);
- ``w8a8``: activations calibrated in PyTorch with ``coremltools.optimize.torch`` LinearQuantizer
  (symmetric, per-tensor weights: per-channel fails inside torch.ao, see REFERENCE.md §4) on the composited
  calibration set, then traced and converted: the program holds ``quantize``/``dequantize`` around the convs.
The precision policy (export/precision.toml) keeps its layers in FP16 in every compressed variant.

Accuracy is *simulated*: coremltools cannot run models on Linux, so each variant's compression is
reproduced in PyTorch (FP16-rounded weights and inputs; the same int8 / k-means weight round trip; the
calibrated LinearQuantizer model itself) and compared with the FP32 model on the composited validation set.
The manifest says so. On macOS, :class:`runtime.backends.coreml_backend.CoreMLBackend` runs the package.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from adamatting.checkpoint import file_sha256, load_model
from adamatting.config import DEFAULT_WEIGHTS
from adamatting.fuse import fold_batchnorms
from adamatting.model import AdaMatting, ExportWrapper
from common.arguments import Distinct, out_folder, whole_number
from common.encoding import encode_inputs
from common.manifest import (
    INPUT_NAMES,
    OUTPUT_DOC,
    OUTPUT_NAMES,
    Manifest,
    tool_versions,
    write_manifest,
)
from common.outputs import inside
from common.targets import TARGETS, Precision
from runtime.quiet_import import quiet_runtime_import
from evaluation.protocol import evaluate_set
from export.errors import ExportError
from export.int8_qdq import check_set_size
from export.job import ExportJob, add_limit_arguments, add_size_argument, artifact_name, composited_set
from export.onnx_graph import check_input_size
from export.precision import PrecisionPolicy

# coremltools is optional (the [coreml] extra): imported where it is used.
TARGET = TARGETS["coreml"]
VARIANTS = tuple(str(p) for p in (Precision.FP16, Precision.W8, Precision.PAL6, Precision.PAL4, Precision.W8A8))
DEPLOYMENT_TARGETS = ("iOS17", "iOS18", "macOS14", "macOS15")
DEFAULT_VARIANTS = tuple(str(p) for p in TARGET.precisions)
# coremltools leaves constants with fewer elements than this uncompressed (its own default).
WEIGHT_THRESHOLD = 2048
WEIGHTS_FILE = Path("Data/com.apple.CoreML/weights/weight.bin")
VERSION = "1"
AUTHOR = "AdaMatting edge pipeline"
LICENSE = "see weights/README.md (model card) for the checkpoint's terms"
SHORT_DESCRIPTION = ("AdaMatting (Cai et al., ICCV 2019): alpha matte of a portrait photo from the photo and a "
                     "coarse trimap/person mask, for background blur")
INPUT_DOC = {
    "image": "RGB photo, H x W, 8-bit; the model applies 2*I/255 - 1 itself (ImageType scale 2/255, bias -1)",
    "trimap": "1 x 1 x H x W float: 0 = background, 0.5 = unknown, 1 = foreground (all 0.5 = no trimap)",
}
# the manifest's ``compression`` of each variant
COMPRESSION = {"fp16": "fp16 weights and compute",
               "w8": "int8 linear symmetric per-channel weights (linear_quantize_weights), fp16 compute",
               "pal6": "6-bit k-means palettized weights, per-tensor LUT (palettize_weights), fp16 compute",
               "pal4": "4-bit k-means palettized weights, per-tensor LUT (palettize_weights), fp16 compute",
               "w8a8": "int8 symmetric per-tensor weights and activations (coremltools.optimize.torch "
                       "LinearQuantizer, calibrated), fp16 elsewhere"}


# ------------------------------------------------------------------------------------------ model prep
def _fold_conv_bn_pairs(model: nn.Module) -> nn.Module:
    """Fold every Conv2d→BatchNorm2d pair inside a Sequential into the conv (BN becomes Identity), in place.

    The converter would fuse them too, but then names the fused weight ``const_N``; folding first keeps the
    module path in the MIL constant's name (``model_encoder_stem_0_weight``), which the policy matches."""

    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = nn.Identity()
    return model


def export_module(model: AdaMatting) -> nn.Module:
    """ExportWrapper over a BN-free eval copy of ``model`` (same function)."""
    return ExportWrapper(_fold_conv_bn_pairs(fold_batchnorms(model))).eval()


def check_target(target: str):
    import coremltools as ct

    if target not in DEPLOYMENT_TARGETS:
        raise ExportError(f"unsupported deployment target {target!r}; use one of {', '.join(DEPLOYMENT_TARGETS)}")
    return getattr(ct.target, target)


def _mil_fragment(module_path: str) -> str:
    return module_path.replace(".", "_") + "_"


def policy_mil_consts(mlmodel, module_paths: list[str], op_types: list[str] = ()) -> list[str]:
    """Names of the MIL weight constants that belong to the policy's modules (or feed its op types)."""
    frags = [_mil_fragment(p) for p in module_paths]
    found, hit = [], set()
    for op in mlmodel._mil_program.functions["main"].operations:
        if op.op_type != "const":
            continue
        for f in frags:
            if op.name.startswith(f):
                found.append(op.name)
                hit.add(f)
        if op_types and any(c.op_type in op_types for o in op.outputs for c in o.child_ops):
            found.append(op.name)
    missing = [p for p, f in zip(module_paths, frags) if f not in hit]
    if missing:
        raise ExportError(f"precision policy layers {', '.join(missing)} have no weights in the converted program")
    return sorted(set(found))


# ------------------------------------------------------------------------------------------- convert
def _convert(traced, size, target: str):
    import coremltools as ct

    h, w = size
    inputs = [ct.ImageType(name="image", shape=(1, 3, h, w), color_layout=ct.colorlayout.RGB, scale=2 / 255.0,
                           bias=[-1.0, -1.0, -1.0]),
              ct.TensorType(name="trimap", shape=(1, 1, h, w))]
    outputs = [ct.TensorType(name=n) for n in OUTPUT_NAMES]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ct.convert(traced, inputs=inputs, outputs=outputs, convert_to="mlprogram",
                              minimum_deployment_target=check_target(target),
                              compute_precision=ct.precision.FLOAT16)
    except ExportError:
        raise
    except Exception as e:  # the converter raises many types (ValueError, RuntimeError, NotImplementedError)
        raise ExportError(f"coremltools cannot convert the model: {type(e).__name__}: {e}") from None


def _trace(module: nn.Module, size) -> torch.jit.ScriptModule:
    h, w = size
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            return torch.jit.trace(module, (torch.zeros(1, 3, h, w), torch.full((1, 1, h, w), 0.5)))
    except Exception as e:
        raise ExportError(f"cannot trace the model at {h}x{w}: {type(e).__name__}: {e}") from None


def _set_calib_inputs(cset, limit):

    n = len(cset) if limit is None else min(limit, len(cset))
    for i in range(n):
        item = cset[i]
        img, tri = encode_inputs(item["image"], item["trimap"])
        yield torch.from_numpy(img[None]), torch.from_numpy(tri[None])


def _w8a8_config(policy_modules: list[str]):
    """LinearQuantizerConfig: symmetric int8 per-tensor weights and activations, the policy's modules float."""
    from coremltools.optimize.torch.quantization import LinearQuantizerConfig, ModuleLinearQuantizerConfig

    return LinearQuantizerConfig(
        global_config=ModuleLinearQuantizerConfig(quantization_scheme="symmetric", weight_per_channel=False,
                                                  milestones=[0, 1000, 1000, 0]),
        # torch.cat: None keeps the concatenated image+trimap (the stem's input) and every other concat
        # output float, so the policy's stem sees unquantized pixels (a cat only copies data anyway)
        module_type_configs={torch.cat: None},
        module_name_configs={name: None for name in policy_modules})


def calibrate_w8a8(module: nn.Module, calib_set, policy_modules: list[str], limit: int | None = None) -> nn.Module:
    """LinearQuantizer (symmetric int8 weights per tensor and activations), calibrated on ``calib_set``,
    the policy's modules left in float; returns the finalized (fake-quantized) model, eval mode."""
    from coremltools.optimize.torch.quantization import LinearQuantizer

    size = calib_set.size
    config = _w8a8_config(policy_modules)
    example = (torch.zeros(1, 3, *size), torch.full((1, 1, *size), 0.5))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantizer = LinearQuantizer(copy.deepcopy(module), config)
            prepared = quantizer.prepare(example_inputs=example)
            prepared.train()  # observers record only in train mode; milestones freeze BN/none to update
            with torch.no_grad():
                for img, tri in _set_calib_inputs(calib_set, limit):
                    quantizer.step()
                    prepared(img, tri)
            final = quantizer.finalize(inplace=False)
    except Exception as e:
        raise ExportError(f"coremltools.optimize.torch could not calibrate the model: {type(e).__name__}: {e}") from None
    return final.eval()


# ------------------------------------------------------------------------------ simulated accuracy (torch)
@torch.no_grad()
def _round_trip_weights(module: nn.Module, skip: list[str], fn: Callable[[torch.Tensor], torch.Tensor],
                        threshold: int) -> nn.Module:
    """A copy with every conv weight of at least ``threshold`` elements (outside ``skip``) replaced by fn(w)."""
    module = copy.deepcopy(module)
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d) and m.weight.numel() >= threshold and not any(
                name == s or name.startswith(s + ".") for s in skip):
            m.weight.copy_(fn(m.weight))
    return module


def _fp16(t: torch.Tensor) -> torch.Tensor:
    return t.half().float()


def _int8_per_channel(w: torch.Tensor) -> torch.Tensor:
    scale = w.abs().amax(dim=tuple(range(1, w.ndim)), keepdim=True).clamp_min(1e-12) / 127.0
    return (torch.clamp(torch.round(w / scale), -127, 127) * scale).half().float()


def _kmeans_lut(nbits: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """1-D k-means (Lloyd, quantile init) with 2**nbits centres per tensor; nearest centre by bisection."""
    def fn(w: torch.Tensor) -> torch.Tensor:
        x = w.detach().double().flatten().numpy()
        k = min(2 ** nbits, len(np.unique(x)))
        centers = np.unique(np.quantile(x, (np.arange(k) + 0.5) / k))
        xs = np.sort(x)
        for _ in range(50):
            cuts = np.searchsorted(xs, (centers[1:] + centers[:-1]) / 2)
            sums = np.add.reduceat(xs, np.r_[0, cuts]) if len(xs) else xs
            counts = np.diff(np.r_[0, cuts, len(xs)])
            new = np.where(counts > 0, sums / np.maximum(counts, 1), centers)
            new = np.unique(new)
            if len(new) == len(centers) and np.allclose(new, centers):
                break
            centers = new
        idx = np.searchsorted((centers[1:] + centers[:-1]) / 2, x)
        return torch.from_numpy(centers[idx]).float().view_as(w).half().float()
    return fn


def fp32_reference(module, val_set, limit=None) -> tuple:

    return evaluate_set(simulated_runner(module, "fp32", [], 0), val_set, limit, keep=True)


def simulated_runner(module: nn.Module, variant: str, skip: list[str], threshold: int, w8a8_model=None):
    """``run_alpha(image, trimap) -> alpha`` of the PyTorch simulation of ``variant``."""
    if variant == "fp32":
        sim, cast = module, False
    elif variant == "fp16":
        sim, cast = _round_trip_weights(module, [], _fp16, 0), True
    elif variant == "w8":
        sim, cast = _round_trip_weights(_round_trip_weights(module, [], _fp16, 0), skip, _int8_per_channel, threshold), True
    elif variant in ("pal6", "pal4"):
        sim = _round_trip_weights(_round_trip_weights(module, [], _fp16, 0), skip, _kmeans_lut(int(variant[3:])), threshold)
        cast = True
    elif variant == "w8a8":
        sim, cast = w8a8_model, False
    else:
        raise ExportError(f"unknown CoreML variant {variant!r}; use one of {', '.join(VARIANTS)}")
    sim = sim.eval()

    @torch.no_grad()
    def run(img: np.ndarray, tri: np.ndarray) -> np.ndarray:
        i, t = torch.from_numpy(img), torch.from_numpy(tri)
        if cast:  # the package gets 8-bit pixels and computes in fp16: round the inputs as it would
            i, t = _fp16(i), _fp16(t)
        return sim(i, t)[0].numpy()
    return run


def simulated_validation(module, variant, val_set, skip, threshold, w8a8_model=None, limit=None,
                         reference: tuple | None = None) -> dict:
    """Metrics of the PyTorch simulation of ``variant`` vs the FP32 model on ``val_set``. ``reference``:
    the FP32 ``evaluate_set(..., keep=True)`` result, when already computed (see :func:`fp32_reference`)."""

    ref, ref_a = reference if reference is not None else fp32_reference(module, val_set, limit)
    cand, cand_a = evaluate_set(simulated_runner(module, variant, skip, threshold, w8a8_model), val_set, limit, keep=True)
    diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(ref_a, cand_a)])
    return {"reference": "pytorch fp32", "simulated": True,
            "method": {"fp16": "pytorch fp32 with fp16-rounded weights and inputs",
                       "w8": "pytorch with int8 symmetric per-channel round-tripped conv weights (as linear_quantize_weights)",
                       "pal6": "pytorch with 6-bit k-means (per-tensor LUT) round-tripped conv weights (as palettize_weights)",
                       "pal4": "pytorch with 4-bit k-means (per-tensor LUT) round-tripped conv weights (as palettize_weights)",
                       "w8a8": "the calibrated coremltools.optimize.torch LinearQuantizer model before conversion"}[variant],
            "note": "coremltools cannot run CoreML models on Linux; predictions on macOS may differ slightly",
            "samples": len(ref_a), "fp32": ref, "quantized": cand, "drop": {k: cand[k] - ref[k] for k in ref},
            "alpha_vs_fp32": {"max_abs": float(diffs.max()), "mean_abs": float(diffs.mean())}}


# ------------------------------------------------------------------------------------------ inspection
def op_counts(spec) -> dict:
    """Op counts of the ML Program by type and by ``type/output dtype`` (FLOAT16, FLOAT32, INT8, ...)."""
    from coremltools.proto import MIL_pb2

    by_type, by_prec = Counter(), Counter()

    def walk(block):
        for op in block.operations:
            by_type[op.type] += 1
            dtype = "none"
            if op.outputs and op.outputs[0].type.HasField("tensorType"):
                dtype = MIL_pb2.DataType.Name(op.outputs[0].type.tensorType.dataType)
            by_prec[f"{op.type}/{dtype}"] += 1
            for b in op.blocks:
                walk(b)

    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            walk(block)
    return {"by_type": dict(sorted(by_type.items())), "by_type_precision": dict(sorted(by_prec.items()))}


def load_program(path: str | Path):
    """The MIL program (pymil) of a saved package, for inspection on any OS."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

    mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
    spec = mlmodel.get_spec()
    return milproto_load(spec, spec.specificationVersion, mlmodel.weights_dir)


def package_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def weights_size(path: Path) -> int:
    f = Path(path) / WEIGHTS_FILE
    return f.stat().st_size if f.is_file() else 0


# ------------------------------------------------------------------------------------------- writing
def _save_atomic(mlmodel, out: Path) -> None:
    """Save into a temp dir beside ``out``, then rename: ``out`` is either complete or untouched."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        staged = work / out.name
        try:
            mlmodel.save(str(staged))
        except Exception as e:
            raise ExportError(f"{out}: coremltools could not save the package: {type(e).__name__}: {e}") from None
        if not (staged / "Manifest.json").is_file():
            raise ExportError(f"{out}: coremltools wrote an incomplete package")
        old = None
        if out.exists():
            old = work / "previous"
            os.replace(out, old)
        os.replace(staged, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _set_metadata(mlmodel, manifest: Manifest) -> None:
    mlmodel.short_description = SHORT_DESCRIPTION
    mlmodel.author = AUTHOR
    mlmodel.license = LICENSE
    mlmodel.version = VERSION
    for n in INPUT_NAMES:
        mlmodel.input_description[n] = INPUT_DOC[n]
    for n in OUTPUT_NAMES:
        mlmodel.output_description[n] = OUTPUT_DOC[n]
    meta = manifest.metadata_props()
    meta["variant"] = manifest.precision
    meta["deployment_target"] = manifest.extra.get("deployment_target", "")
    mlmodel.user_defined_metadata.update({k: str(v) for k, v in meta.items()})


def _check_request(model: AdaMatting, variant: str, size, target: str, calib_set, val_set):
    """Variant, target, input size and set sizes, before anything is built; returns the checked size."""
    if variant not in VARIANTS:
        raise ExportError(f"unknown CoreML variant {variant!r}; use one of {', '.join(VARIANTS)}")
    check_target(target)
    size = check_input_size(model.cfg, size)
    if variant == "w8a8":
        if calib_set is None:
            raise ExportError("the w8a8 variant needs a calibration set")
        check_set_size(calib_set, list(size), "calibration")
    if val_set is not None:
        check_set_size(val_set, list(size), "validation")
    return size


def _policy_module(model: AdaMatting, policy: PrecisionPolicy) -> tuple[nn.Module, list[str], list[str]]:
    """The export module, the policy's modules in it, and those of them that hold weights (have MIL consts)."""
    module = export_module(model.eval())
    skip = policy.torch_modules(module)
    weighted = [m for m in skip if any(True for _ in module.get_submodule(m).parameters())]
    return module, skip, weighted


def _program(model: AdaMatting, module: nn.Module, w8a8_model, size, target: str, converted: dict | None):
    """The calibrated model's program when there is one, else the FP16 one, shared through ``converted``."""
    if w8a8_model is not None:
        return _convert(_trace(w8a8_model, size), size, target)
    key = (id(model), size, target)
    if converted is not None and key in converted:
        return converted[key]
    mlmodel = _convert(_trace(module, size), size, target)
    if converted is not None:
        converted[key] = mlmodel
    return mlmodel


def _compress_weights(mlmodel, variant: str, kept: list[str], weight_threshold: int):
    """int8 (``w8``) or k-means palettized (``pal6``/``pal4``) weights, the ``kept`` constants left alone."""
    import coremltools.optimize.coreml as cto

    if variant == "w8":
        op_cfg = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                             weight_threshold=weight_threshold)
    else:
        op_cfg = cto.OpPalettizerConfig(mode="kmeans", nbits=int(variant[3:]), granularity="per_tensor",
                                        weight_threshold=weight_threshold)
    config = cto.OptimizationConfig(global_config=op_cfg, op_name_configs={n: None for n in kept})
    return (cto.linear_quantize_weights if variant == "w8" else cto.palettize_weights)(mlmodel, config)


def _compress(mlmodel, variant: str, weighted: list[str], policy: PrecisionPolicy, weight_threshold: int):
    """The variant's weight compression, the policy's constants kept FP16; returns (model, kept const names)."""
    if variant not in ("w8", "pal6", "pal4", "w8a8"):
        return mlmodel, []
    try:
        kept = policy_mil_consts(mlmodel, weighted, policy.op_types)
        if variant != "w8a8":
            mlmodel = _compress_weights(mlmodel, variant, kept, weight_threshold)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"coremltools could not compress the weights ({variant}): {type(e).__name__}: {e}") from None
    return mlmodel, kept


def _calibration(calib_set, calib_limit: int | None, policy: PrecisionPolicy, skip: list[str]) -> dict:
    """The manifest's record of the w8a8 calibration."""
    return {"set": str(calib_set.path), "key": calib_set.meta.get("key"),
            "config": calib_set.meta.get("config"), "method": "coremltools.optimize.torch LinearQuantizer",
            "samples": min(len(calib_set), calib_limit or len(calib_set)),
            "activations": "int8 symmetric per-tensor", "weights": "int8 symmetric per-tensor",
            "policy": policy.source, "modules_kept_float": skip}


def _manifest_extra(variant: str, target: str, policy: PrecisionPolicy, skip: list[str], kept: list[str],
                    weight_threshold: int, counts: dict) -> dict:
    """The manifest's CoreML-specific fields (package sizes are added once it is saved)."""
    return {"deployment_target": target, "compute_precision": "fp16", "compression": COMPRESSION[variant],
            "image_input": {"type": "ImageType", "color_layout": "RGB", "scale": 2 / 255.0,
                            "bias": [-1.0, -1.0, -1.0]},
            "policy": policy.source, "policy_modules": skip, "policy_consts_kept_fp16": kept,
            "weight_threshold": weight_threshold, "ops": counts}


def _write_package(mlmodel, out: Path, manifest: Manifest) -> None:
    """Metadata, the package (atomically), its sizes into the manifest, then the manifest."""
    _set_metadata(mlmodel, manifest)
    _save_atomic(mlmodel, out)
    manifest.extra["package_bytes"] = package_size(out)
    manifest.extra["weights_bytes"] = weights_size(out)
    write_manifest(out, manifest)


def export_coreml(model: AdaMatting, out_dir: str | Path, variant: str = "fp16", size=(512, 512), *,
                  target: str = "iOS17", calib_set=None, val_set=None, calib_limit: int | None = None,
                  val_limit: int | None = None, policy: PrecisionPolicy | None = None,
                  weight_threshold: int = WEIGHT_THRESHOLD, checkpoint_sha256: str = "",
                  name: str | None = None, converted: dict | None = None) -> tuple[Path, Manifest]:
    """Convert ``model`` to the CoreML ``variant`` and write ``<name>.mlpackage`` + manifest into ``out_dir``.

    Checks everything it can before converting (variant, target, size, set sizes); any failure raises
    ExportError and leaves nothing under the final name. ``converted``: a dict shared between calls for the
    same model, size and target, so the weight-only variants reuse one FP16 conversion (the compressors
    return new models and leave their input untouched)."""
    import coremltools.optimize.coreml  # noqa: F401  (without coremltools: fail before any check)

    size = _check_request(model, variant, size, target, calib_set, val_set)
    out = inside(out_dir, name or artifact_name(model.cfg.name, size, f"coreml_{variant}", suffix=".mlpackage"))
    policy = policy if policy is not None else PrecisionPolicy.load(runtime="coreml")
    module, skip, weighted = _policy_module(model, policy)
    w8a8_model = calibrate_w8a8(module, calib_set, skip, calib_limit) if variant == "w8a8" else None
    mlmodel = _program(model, module, w8a8_model, size, target, converted)
    mlmodel, kept = _compress(mlmodel, variant, weighted, policy, weight_threshold)
    validation = (simulated_validation(module, variant, val_set, skip, weight_threshold, w8a8_model, val_limit)
                  if val_set is not None else {})
    counts = op_counts(mlmodel.get_spec())
    calibration = _calibration(calib_set, calib_limit, policy, skip) if variant == "w8a8" else None
    manifest = Manifest(backend="coreml", precision=variant, model_config=model.cfg.to_dict(), input_size=list(size),
                        batch=1, pu_steps=model.cfg.pu_steps, checkpoint_sha256=checkpoint_sha256,
                        tools=tool_versions("coremltools"), validation=validation, calibration=calibration,
                        extra=_manifest_extra(variant, target, policy, skip, kept, weight_threshold, counts))
    _write_package(mlmodel, out, manifest)
    return out, manifest


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(p) -> None:

    p.add_argument("--checkpoint", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--out", type=out_folder, default="out/export", help="folder for the .mlpackage files and their manifests")
    add_size_argument(p)
    p.add_argument("--variants", nargs="+", action=Distinct, default=list(DEFAULT_VARIANTS), choices=VARIANTS,
                   help=f"what to write (default: {' '.join(DEFAULT_VARIANTS)})")
    p.add_argument("--target", default="iOS17", choices=DEPLOYMENT_TARGETS, help="minimum deployment target")
    p.add_argument("--calib", default="calib", help="calibration set config for w8a8 (TOML or embedded name)")
    p.add_argument("--val", default="val", help="validation set config for the simulated accuracy reports")
    add_limit_arguments(p)
    p.add_argument("--weight-threshold", type=whole_number(0), default=WEIGHT_THRESHOLD,
                   help="leave weight tensors with fewer elements uncompressed, 0 or more (coremltools' default "
                        "2048)")
    p.add_argument("--cache", type=out_folder, default="cache/sets")


def run_export_coreml(args) -> int:
    try:
        with quiet_runtime_import():   # its version warnings and absent native proxies: lines before the error
            import coremltools  # noqa: F401
    except ImportError:
        raise ExportError("the CoreML target needs coremltools: pip install 'coremltools>=9,<10' "
                          "(or the project's [coreml] extra)") from None

    check_target(args.target)
    model, _ = load_model(args.checkpoint)
    size = check_input_size(model.cfg, args.size)
    cal = composited_set(args.calib, size, Path(args.cache)) if "w8a8" in args.variants else None
    vset = composited_set(args.val, size, Path(args.cache)) if args.val else None
    sha = file_sha256(args.checkpoint)
    converted: dict = {}
    for variant in args.variants:
        path, m = export_coreml(model, Path(args.out), variant, size, target=args.target, calib_set=cal, val_set=vset,
                                calib_limit=args.calib_limit, val_limit=args.val_limit,
                                weight_threshold=args.weight_threshold, checkpoint_sha256=sha,
                                converted=converted)
        line = f"{path}  {m.extra['package_bytes'] / 1e6:.2f} MB"
        if m.validation:
            d = m.validation["drop"]
            line += (f"  simulated SAD drop {d['SAD']:+.3f}, MSE drop {d['MSE']:+.2e}, "
                     f"max |Δα| vs fp32 {m.validation['alpha_vs_fp32']['max_abs']:.3g}")
        print(line)
    return 0


run = run_export_coreml


def build(job: ExportJob) -> None:
    """``export all``: every default variant, converting the model once."""
    converted: dict = {}
    for variant in DEFAULT_VARIANTS:
        export_coreml(job.model, job.out_dir, variant, job.size, calib_set=job.cal, val_set=job.val,
                      checkpoint_sha256=job.checkpoint_sha, converted=converted)


def band_refiner(model, out: Path, metadata: dict) -> dict:
    """The band refiner as a CoreML ML Program, FP16, of the runtime's fixed batch of tiles
    (:func:`export.band_refiner_graph.tile_batch`). CoreML predicts on macOS only: its accuracy here is the
    PyTorch model computed in float16 against float32 (UNVERIFIED on a device)."""
    import coremltools as ct

    from adamatting.model.band_refiner import INPUTS
    from export.band_refiner_graph import example_inputs, tile_batch

    example = example_inputs(*tile_batch())
    model = model.eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, tuple(example))
        want = model(*example)
        half = copy.deepcopy(model).half()(*(x.half() for x in example)).float()
    mlmodel = ct.convert(traced, inputs=[ct.TensorType(name=n, shape=tuple(x.shape)) for n, x in zip(INPUTS, example)],
                         outputs=[ct.TensorType(name="refined")], convert_to="mlprogram",
                         compute_precision=ct.precision.FLOAT16, minimum_deployment_target=ct.target.iOS16)
    mlmodel.user_defined_metadata.update({k: json.dumps(v) for k, v in metadata.items()})
    _save_atomic(mlmodel, out)
    return {"simulated_max_abs_vs_pytorch": float((half - want).abs().max()), "simulation": "PyTorch in float16",
            "shapes": [list(tile_batch())]}
