"""The int8/NPU variant (``mobile-int8``, its tiny twin ``tiny-fused``): its structure, its budget, and its export
to every target at 64×64 — ONNX FP32 (validated against PyTorch) and INT8 QDQ, OpenVINO FP32 and INT8, the
TensorRT INT8 Q/DQ graph through the rule checker, CoreML."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from adamatting.budget import MOBILE_BUDGET, count_config
from adamatting.config import get_config
from adamatting.model import FusedEncoder, build_model
from calib_data.sets import SetConfig, build_set
from common.manifest import load_manifest
from export.int8_qdq import quantize_onnx_int8
from export.onnx_graph import export_onnx
from export.openvino_ir import export_openvino
from export.precision import PrecisionPolicy
from export.qdq_rules import check, errors
from export.trt_models import make_int8_qdq_onnx

SIZE = (64, 64)
# What every target runs well (and the ops the guided upsampler and the ConvLSTM are made of).
ALLOWED_OPS = {"Conv", "ConvTranspose", "DepthToSpace", "Resize", "Add", "Sub", "Mul", "Div", "Sigmoid", "Tanh",
               "Softmax", "Concat", "Split", "Slice", "Clip", "Relu", "AveragePool", "ReduceSum"}


def test_the_variant_is_within_the_phone_budget_and_runs_the_network_at_a_quarter():
    cfg = get_config("mobile-int8")
    size = count_config(cfg, (512, 512))
    assert size["gmacs"] <= MOBILE_BUDGET["gmacs"] and size["params"] <= MOBILE_BUDGET["params"]
    assert cfg.decoder_stride == 4 and cfg.encoder_scale == 1 and cfg.stride == 32
    out = build_model(get_config("tiny-fused")).eval()(torch.zeros(1, 3, 64, 96), torch.full((1, 1, 64, 96), 0.5))
    assert out["alpha"].shape == (1, 1, 64, 96) and out["trimap_prob"].shape == (1, 3, 64, 96)
    assert out["alpha_pu"].shape == (1, 1, 16, 24)   # the propagation unit at 1/4 of the input


def test_the_stem_sees_every_full_resolution_pixel_and_no_stride_2_feature_is_made():
    cfg = get_config("tiny-fused")
    enc = FusedEncoder(cfg).eval()
    feats = enc(torch.zeros(1, 4, 64, 64))
    assert feats[0] is None and enc.channels[0] == 0
    assert [f.shape[-1] for f in feats[1:]] == [16, 8, 4, 2]
    conv = enc.stem[0]
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.zeros(1, 4, 64, 64, requires_grad=True)
    conv(x).sum().backward()
    # 4×4 stride-4 patches: every input pixel lands in exactly one patch of every output channel
    assert torch.equal(x.grad, torch.full_like(x, float(conv.out_channels)))


def test_thin_depthwise_convolutions_are_left_only_in_the_global_convolution_blocks():
    # The encoder's stages to stride 16, the decoders' upsampling and refinement and the ConvLSTM gates are
    # dense; depthwise convolutions on fewer than 64 channels (no faster in int8) remain only in the GCN's
    # k×1 / 1×k branches, where dense ones cost 0.8 GMACs more (benchmarks/measured/variant-search-*.json).
    model = build_model(get_config("mobile-int8"))
    thin = {n.split(".gcn.")[0] + ".gcn" if ".gcn." in n else n for n, m in model.named_modules()
            if isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.in_channels < 64}
    assert thin == {"trimap_decoder.gcn", "alpha_decoder.gcn"}


@pytest.mark.parametrize("changes, message", [
    ({"decoder_channels": (16, 8)}, "3 to 5 entries"),
    ({"guided_scale": 2}, "guided_scale = 4"),
    ({"subpixel_kernel": 2}, "subpixel_kernel"),
])
def test_bad_variant_configs_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        get_config("tiny-fused", **changes)


@pytest.mark.parametrize("stages, message", [
    ((("fused", 1, 8, 1, 2), ("fused", 1, 8, 1, 2)), "reach stride 32"),
    ((("dw", 1, 8, 1, 2), ("fused", 1, 8, 2, 2)), "unknown fused_stages block kind"),
])
def test_bad_fused_stages_are_refused(stages, message):
    with pytest.raises(ValueError, match=message):
        build_model(get_config("tiny-fused", fused_stages=stages))


# ------------------------------------------------------------------------------------------ exports
def _set(root: Path, name: str, seed: int, trimap: str):
    cfg = SetConfig(name=name, count=3, size=SIZE, seed=seed, trimap=trimap, procedural=1.0,
                    bg_sources=("procedural",)).validated()
    return build_set(cfg, root / "sets", progress=False)


@pytest.fixture(scope="module")
def exported(seeded_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("fused")
    model = seeded_model("tiny-fused")
    fp32 = root / "adamatting_tiny-fused_64x64_fp32.onnx"
    export_onnx(model, fp32, SIZE)   # validated against PyTorch inside (max |Δα| ≤ 1e-3)
    return model, fp32, _set(root, "cal", 1, "mask"), _set(root, "val", 2, "validation"), root


def test_fp32_onnx_uses_only_ops_every_target_runs(exported):
    _, fp32, *_ = exported
    ops = {n.op_type for n in onnx.load(str(fp32)).graph.node}
    assert ops <= ALLOWED_OPS, ops - ALLOWED_OPS
    assert "ConvTranspose" in ops and "DepthToSpace" not in ops   # 1×1 sub-pixel convs → 2×2 transposed
    assert load_manifest(fp32).validation["max_abs"] <= 1e-3


def test_onnxruntime_int8_is_quantized_and_close(exported):
    _, fp32, cal, val, root = exported
    m = quantize_onnx_int8(fp32, root / "int8.onnx", cal, val)
    ops = [n.op_type for n in onnx.load(str(root / "int8.onnx")).graph.node]
    assert ops.count("QuantizeLinear") > 10 and m.validation["alpha_vs_fp32"]["mean_abs"] < 0.05
    assert any("encoder/stem" in n for n in m.calibration["nodes_kept_float"])


def test_openvino_fp32_and_int8(exported):
    import openvino as ov

    _, fp32, cal, val, root = exported
    xml32, m32 = export_openvino(fp32, root / "ov", "fp32", val_set=val)
    xml8, m8 = export_openvino(fp32, root / "ov", "int8", calib_set=cal, val_set=val)
    assert m32.validation["alpha_vs_fp32"]["max_abs"] < 1e-4
    assert m8.validation["alpha_vs_fp32"]["mean_abs"] < 0.05
    fq = [op for op in ov.Core().read_model(xml8).get_ops() if op.get_type_name() == "FakeQuantize"]
    assert len(fq) > 10


def test_tensorrt_int8_qdq_passes_the_rule_checker(exported):
    _, fp32, cal, _, root = exported
    m = make_int8_qdq_onnx(fp32, root / "trt_int8.onnx", cal, quantizer="onnxruntime")
    proto = onnx.load(str(root / "trt_int8.onnx"))
    assert errors(check(proto, m.calibration.get("nodes_kept_float"))) == []
    assert sum(n.op_type == "QuantizeLinear" for n in proto.graph.node) > 10


def test_coreml_conversion(exported):
    pytest.importorskip("coremltools", reason="coremltools is the project's [coreml] extra")
    from export.coreml_package import export_coreml

    model, _, cal, val, root = exported
    path, m = export_coreml(model, root / "coreml", "fp16", SIZE, val_set=val, weight_threshold=64)
    assert path.is_dir() and m.extra["ops"]["by_type"]["conv"] > 0
    assert m.validation["alpha_vs_fp32"]["max_abs"] < 0.05


def test_the_precision_policy_applies_to_the_variant(exported):
    model, fp32, *_ = exported
    kept = PrecisionPolicy.load().float_nodes(onnx.load(str(fp32)))
    assert any("encoder/stem" in n for n in kept) and any("refiner" in n for n in kept)
    assert np.isfinite(sum(p.sum().item() for p in model.parameters()))
