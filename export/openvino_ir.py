"""OpenVINO IR: FP32, FP16 (``compress_to_fp16``), INT8 (``nncf.quantize``) and accuracy-controlled INT8
(``nncf.quantize_with_accuracy_control``), all from the validated FP32 ONNX and its manifest.

An IR is a pair ``model.xml`` + ``model.bin``; the manifest sits beside the .xml and hashes both. INT8
keeps the precision policy's layers in float (NNCF ``IgnoredScope``). The accuracy-controlled variant
validates with −SAD (Composition-1k, unknown region) on the composited validation set and reverts the most
sensitive layers to float until the absolute drop is within ``max_drop``; when that cannot be met it
raises, reporting the best drop reached, and writes nothing.

NNCF draws its own progress bars (rich) during quantization: they show where NNCF's INFO logs do
(``adamat -v``; :func:`nncf_progress`), not by default, neither on a terminal nor as final lines in a log.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from common.arguments import Distinct, number, whole_number
from common.encoding import encode_inputs
from common.manifest import (
    Manifest,
    check_expected,
    load_manifest,
    tool_versions,
    write_manifest,
)
from common.outputs import check_folder, inside
from common.targets import TARGETS, Precision
from evaluation.protocol import evaluate_set
from export.errors import ExportError
from export.int8_qdq import check_set_size, ort_alpha_fn
from export.job import ExportJob, add_export_arguments, check_sets_readable, composited_set
from export.onnx_graph import check_checkpoint_size
from export.onnx_target import export_onnx_target
from export.precision import PrecisionPolicy


@contextmanager
def nncf_progress():
    """NNCF's progress bars while the block runs only where NNCF's INFO logs show: ``adamat -v``, or a
    program that has not quieted logging (the command line's default, :mod:`adamat.verbosity`, has). NNCF
    builds every bar through ``nncf.common.logging.track_progress.track``, whose ``disable`` its callers never
    set: it is set here. Where that module is missing (another NNCF), the bars are NNCF's."""
    if logging.getLogger("nncf").isEnabledFor(logging.INFO):
        yield
        return
    try:
        from nncf.common.logging.track_progress import track
    except ImportError:
        yield
        return
    init = track.__init__

    def quiet(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "disable": True})

    track.__init__ = quiet
    try:
        yield
    finally:
        track.__init__ = init


TARGET = TARGETS["openvino"]
PRECISIONS = (*TARGET.precisions, Precision.INT8_ACC)   # int8-acc on request: each reverted layer costs a pass
MAX_ITERATIONS = 1000   # --max-iterations: layers reverted to float, each a validation pass


def _encoded(item: dict) -> dict[str, np.ndarray]:
    img, tri = encode_inputs(item["image"], item["trimap"])
    return {"image": img[None], "trimap": tri[None]}


def _items(cset, limit: int | None = None) -> list[dict]:
    n = len(cset) if limit is None else min(limit, len(cset))
    return [cset[i] for i in range(n)]


def ov_alpha_fn(compiled):
    out = compiled.output("alpha")
    return lambda img, tri: compiled({"image": img, "trimap": tri})[out]


def save_ir(ov_model, out_xml: Path, manifest: Manifest, compress_to_fp16: bool, validate=None) -> Path:
    """Write the IR pair into a temporary folder, validate what was written (``validate(saved_model)`` may
    fill the manifest or raise), then move both files into place and write the manifest."""
    import openvino as ov
    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_xml.stem}.", dir=out_xml.parent))
    try:
        for k, v in manifest.metadata_props().items():
            ov_model.set_rt_info(v, ["adamatting", k])
        ov.save_model(ov_model, work / out_xml.name, compress_to_fp16=compress_to_fp16)
        if validate is not None:
            validate(ov.Core().read_model(work / out_xml.name))
        (work / out_xml.with_suffix(".bin").name).replace(out_xml.with_suffix(".bin"))
        (work / out_xml.name).replace(out_xml)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_manifest(out_xml, manifest)   # hashes the .xml and the .bin
    return out_xml


def _ir_name(fp32_onnx: Path, precision: str) -> str:
    """``<base>_openvino_<precision>.xml``, the base being the FP32 ONNX's name less ``_fp32.onnx``."""
    base = fp32_onnx.name[: -len("_fp32.onnx")] if fp32_onnx.name.endswith("_fp32.onnx") else fp32_onnx.stem
    return f"{base}_openvino_{precision.replace('-', '_')}.xml"


def _ir_manifest(src: Manifest, fp32_onnx: Path, precision: str) -> Manifest:
    """The IR's manifest: the FP32 ONNX's, as an OpenVINO IR of ``precision`` made now, not yet validated."""
    manifest = Manifest(**{**src.__dict__, "backend": "openvino", "precision": precision, "artifact_sha256": "",
                           "tools": tool_versions("openvino", "nncf"), "validation": {}, "calibration": None,
                           "extra": {**src.extra, "converted_from": fp32_onnx.name}})
    manifest.created = Manifest.__dataclass_fields__["created"].default_factory()
    return manifest


def _check_int8_sets(calib_set, val_set, input_size) -> None:
    """INT8 needs a calibration and a validation set, both of the model's input size."""
    if calib_set is None or val_set is None:
        raise ExportError("INT8 needs a calibration set and a validation set")
    check_set_size(calib_set, input_size, "calibration")
    check_set_size(val_set, input_size, "validation")


def _minus_sad(compiled, items) -> float:
    """NNCF's validation metric: −SAD of ``compiled`` on the validation items."""
    sad, _ = evaluate_set(ov_alpha_fn(compiled), _ListSet(list(items)))
    return -sad["SAD"]


def _quantize_with_accuracy_control(ov_model, calib, scope, subset: int, val_set, val_limit: int | None,
                                    max_drop: float, max_iterations: int):
    """``nncf.quantize_with_accuracy_control`` on −SAD; NNCF's RuntimeError becomes an ExportError."""
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedAccuracyRestorerParameters,
    )

    val_items = _items(val_set, val_limit)
    try:
        with nncf_progress():
            return nncf.quantize_with_accuracy_control(
                ov_model, calib, nncf.Dataset(val_items, _encoded), validation_fn=_minus_sad,
                max_drop=max_drop, drop_type=nncf.DropType.ABSOLUTE, preset=nncf.QuantizationPreset.MIXED,
                subset_size=subset, ignored_scope=scope,
                advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                    max_num_iterations=max_iterations, ranking_subset_size=min(len(val_items), 300)))
    except RuntimeError as e:
        raise ExportError(f"accuracy-controlled INT8 failed: {e}") from None


def _calibration_record(calib_set, precision: str, policy: PrecisionPolicy, max_drop: float,
                        max_iterations: int) -> dict:
    """The manifest's ``calibration``: the set, the NNCF call and the policy that kept layers float."""
    return {"set": str(calib_set.path), "key": calib_set.meta.get("key"),
            "config": calib_set.meta.get("config"), "samples": len(calib_set),
            "tool": "nncf.quantize" if precision == "int8" else "nncf.quantize_with_accuracy_control",
            "preset": "mixed", "policy": policy.source,
            **({"max_drop_sad": max_drop, "max_iterations": max_iterations} if precision == "int8-acc" else {})}


def _quantize(ov_model, precision: str, input_size, calib_set, val_set, policy: PrecisionPolicy | None, *,
              max_drop: float, subset_size: int, val_limit: int | None, max_iterations: int) -> tuple:
    """``ov_model`` quantized by NNCF (int8 | int8-acc), the policy's layers kept float; and its calibration record."""
    import nncf

    _check_int8_sets(calib_set, val_set, input_size)
    policy = policy if policy is not None else PrecisionPolicy.load(runtime="openvino")
    scope = policy.openvino_scope(ov_model)
    calib = nncf.Dataset(_items(calib_set), _encoded)
    subset = min(subset_size, len(calib_set))
    if precision == "int8":
        with nncf_progress():
            ov_model = nncf.quantize(ov_model, calib, preset=nncf.QuantizationPreset.MIXED, subset_size=subset,
                                     ignored_scope=scope)
    else:
        ov_model = _quantize_with_accuracy_control(ov_model, calib, scope, subset, val_set, val_limit, max_drop,
                                                   max_iterations)
    return ov_model, _calibration_record(calib_set, precision, policy, max_drop, max_iterations)


def _validator(manifest: Manifest, fp32_onnx: Path, out_xml: Path, precision: str, val_set, val_limit: int | None,
               max_drop: float):
    """``save_ir``'s check of the saved IR: its comparison with the FP32 ONNX goes into ``manifest`` (when there
    is a validation set); int8-acc raises when the SAD drop is over ``max_drop``."""
    def validate(saved_model) -> None:
        if val_set is None:
            return
        report = compare_ov_to_onnx(saved_model, fp32_onnx, val_set, val_limit)
        manifest.validation = {"reference": "onnxruntime fp32 (same export)", **report}
        if precision == "int8-acc" and report["drop"]["SAD"] > max_drop:
            raise ExportError(f"accuracy-controlled INT8 could not meet --max-drop {max_drop}: best SAD drop "
                              f"reached {report['drop']['SAD']:.4f}; {out_xml} not written")

    return validate


def export_openvino(fp32_onnx: str | Path, out_dir: str | Path, precision: str, *, calib_set=None, val_set=None,
                    policy: PrecisionPolicy | None = None, max_drop: float = 0.5, subset_size: int = 300,
                    val_limit: int | None = None, max_iterations: int = 20) -> tuple[Path, Manifest]:
    """One OpenVINO IR of ``precision`` (fp32 | fp16 | int8 | int8-acc) from the FP32 ONNX.

    int8-acc: at most ``max_iterations`` layers are reverted to float (each costs a validation pass)."""
    import openvino as ov
    if precision not in PRECISIONS:
        raise ExportError(f"unknown OpenVINO precision {precision!r}; use one of {', '.join(map(str, PRECISIONS))}")
    precision = str(precision)
    fp32_onnx = Path(fp32_onnx)
    src = load_manifest(fp32_onnx)
    check_expected(src, fp32_onnx, backend="onnxruntime", precision="fp32")
    ov_model = ov.convert_model(str(fp32_onnx))
    out_xml = inside(out_dir, _ir_name(fp32_onnx, precision))
    manifest = _ir_manifest(src, fp32_onnx, precision)
    if precision in ("int8", "int8-acc"):
        ov_model, manifest.calibration = _quantize(
            ov_model, precision, src.input_size, calib_set, val_set, policy, max_drop=max_drop,
            subset_size=subset_size, val_limit=val_limit, max_iterations=max_iterations)
    validate = _validator(manifest, fp32_onnx, out_xml, precision, val_set, val_limit, max_drop)
    save_ir(ov_model, out_xml, manifest, compress_to_fp16=(precision == "fp16"), validate=validate)
    return out_xml, manifest


class _ListSet:
    """A list of set items with the CompositedSet interface evaluate_set needs."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def compare_ov_to_onnx(ov_model, fp32_onnx: Path, val_set, limit: int | None = None) -> dict:
    import openvino as ov


    ref, ref_alphas = evaluate_set(ort_alpha_fn(fp32_onnx), val_set, limit, keep=True)
    compiled = ov.Core().compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    cand, cand_alphas = evaluate_set(ov_alpha_fn(compiled), val_set, limit, keep=True)
    diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(ref_alphas, cand_alphas)])
    return {"samples": len(ref_alphas), "fp32": ref, "quantized": cand, "drop": {k: cand[k] - ref[k] for k in ref},
            "alpha_vs_fp32": {"max_abs": float(diffs.max()), "mean_abs": float(diffs.mean())}}


def build(job: ExportJob) -> None:
    """``export all``: the FP32, FP16 and INT8 IRs from the FP32 ONNX."""
    for precision in TARGET.precisions:
        export_openvino(job.fp32_onnx(), job.out_dir, precision, calib_set=job.cal, val_set=job.val)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_export_arguments(p, calib_method=False)  # NNCF calibrates its own way
    p.add_argument("--precisions", nargs="+", action=Distinct, choices=[str(x) for x in PRECISIONS], default=None,
                   help="which IRs (default: all four)")
    p.add_argument("--max-drop", type=number(0), default=0.5,
                   help="int8-acc: largest allowed absolute drop of mean SAD on the validation composites, a finite "
                        "number >= 0")
    p.add_argument("--max-iterations", type=whole_number(0, MAX_ITERATIONS), default=20,
                   help=f"int8-acc: most layers reverted to float, 0 to {MAX_ITERATIONS} (each costs a validation "
                        f"pass; the network has far fewer quantized layers)")


def run(args) -> int:
    """``adamat export openvino``: the FP32 ONNX, then each IR, printing how it compares with the FP32 ONNX."""
    size, out = tuple(args.size), Path(args.out)
    check_checkpoint_size(args.checkpoint, size)   # a bad checkpoint or size, or a set that cannot be read or built,
    check_sets_readable(args.calib, args.val)      # fails before the sets are built and the FP32 ONNX is written
    check_folder(out)
    vset = composited_set(args.val, size, Path(args.cache))
    cal = composited_set(args.calib, size, Path(args.cache))
    [(fp32, _)] = export_onnx_target(Path(args.checkpoint), out, size, steps=args.steps,
                                     dynamic_batch=args.dynamic_batch, simplifier=args.simplifier, int8=False)
    for precision in args.precisions or PRECISIONS:
        xml, m = export_openvino(fp32, out, precision, calib_set=cal, val_set=vset, max_drop=args.max_drop,
                                 max_iterations=args.max_iterations)
        v = m.validation
        print(f"{xml}  vs FP32 ONNX on {v['samples']} composites: mean |Δα| {v['alpha_vs_fp32']['mean_abs']:.4f}, "
              f"SAD drop {v['drop']['SAD']:+.4f}")
    return 0


def band_refiner(model, out: Path, metadata: dict) -> dict:
    """The band refiner as an FP32 OpenVINO IR (any batch and size) converted from its ONNX graph, checked by
    the runtime's OpenVINO loader against PyTorch; the .xml and .bin are published together or not at all."""
    import openvino as ov

    from export.band_refiner_graph import checked, write_band_refiner

    work = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", dir=out.parent))
    try:
        graph = write_band_refiner(model, work / "band_refiner.onnx", metadata)
        staged = work / out.name
        ov.save_model(ov.convert_model(str(graph)), str(staged), compress_to_fp16=False)
        facts = checked(model, staged, 1e-4)
        for suffix in (".bin", ".xml"):                 # the weights first: an .xml is never without them
            shutil.move(str(staged.with_suffix(suffix)), str(out.with_suffix(suffix)))
        return facts
    finally:
        shutil.rmtree(work, ignore_errors=True)
