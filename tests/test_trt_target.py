"""TensorRT target: FP16 and symmetric INT8 Q/DQ ONNX, the Q/DQ rule checker, accuracy gates under
onnxruntime, the engine-build fallback without TensorRT, and (skipped here) the engine build itself."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from common.manifest import check_expected, load_manifest
from export.errors import ExportError
from export.precision import PrecisionPolicy, onnx_fragment
from export.qdq_rules import check, check_or_raise, errors
from export.trt_engine import TRT_MISSING, tensorrt_or_none, trtexec_command

ROOT = Path(__file__).resolve().parent.parent
SIZE = (128, 128)
STEM = "/model/encoder/stem/"
_POLICY = PrecisionPolicy.load()
FLOAT_PARTS = tuple(onnx_fragment(m) for m in _POLICY.modules + _POLICY.modules_if_present)   # stem; upsampler if present


def _kept_float(node_name: str) -> bool:
    """A node of a part the precision policy keeps in float."""
    return any(f in node_name for f in FLOAT_PARTS)


needs_tensorrt = pytest.mark.skipif(tensorrt_or_none() is None, reason=TRT_MISSING)


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def trt_models(tmp_path_factory):
    """The shipped checkpoint at 128×128 (fast here): FP32 ONNX, 8 calibration and 8 validation composites,
    then the FP16 and INT8 Q/DQ models for TensorRT."""
    from conftest import shipped_onnx_and_sets

    from export.trt_models import make_fp16_onnx, make_int8_qdq_onnx

    root = tmp_path_factory.mktemp("trt")
    _, fp32, sets = shipped_onnx_and_sets(root, SIZE, count=8)
    fp16, int8 = root / "trt_fp16.onnx", root / "trt_int8.onnx"
    m16 = make_fp16_onnx(fp32, fp16, sets["val"])
    m8 = make_int8_qdq_onnx(fp32, int8, sets["cal"], sets["val"], quantizer="onnxruntime")
    return {"fp32": fp32, "fp16": fp16, "int8": int8, "m16": m16, "m8": m8, "sets": sets}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _copy(proto):
    p = onnx.ModelProto()
    p.CopyFrom(proto)
    return p


def _set_init(proto, name, array):
    for i, t in enumerate(proto.graph.initializer):
        if t.name == name:
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, name))
            return
    raise KeyError(name)


def _inits(proto):
    return {i.name: i for i in proto.graph.initializer}


# ------------------------------------------------------------------------------ the produced models
def test_int8_is_tensorrt_conformant_and_recorded(trt_models):
    proto = onnx.load(str(trt_models["int8"]))
    found = check(proto, trt_models["m8"].calibration["nodes_kept_float"])
    assert errors(found) == [], found
    inits = _inits(proto)
    qdq = [n for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) > 100 and all(n.domain == "" for n in qdq)
    for n in qdq:  # symmetric int8 everywhere: explicit int8 zero points, all 0
        zp = inits[n.input[2]]
        assert zp.data_type == TensorProto.INT8 and not numpy_helper.to_array(zp).any()
    # no int32 bias DequantizeLinear left (TensorRT dequantizes INT8 only); weights per output channel
    dq_inputs = [inits[n.input[0]] for n in qdq if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    assert {t.data_type for t in dq_inputs} == {TensorProto.INT8}
    producers = {o: n for n in proto.graph.node for o in n.output}
    per_channel = 0
    for conv in (n for n in proto.graph.node if n.op_type == "Conv"):
        dq = producers.get(conv.input[1])
        if dq is not None:
            scale = numpy_helper.to_array(inits[dq.input[1]])
            assert scale.shape == (inits[dq.input[0]].dims[0],)
            per_channel += 1
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    kept = set(trt_models["m8"].calibration["nodes_kept_float"])
    assert per_channel == sum(n.name not in kept for n in convs) > 40   # every quantized Conv per channel
    m = load_manifest(trt_models["int8"])
    check_expected(m, trt_models["int8"], backend="tensorrt", precision="int8", artifact_type="onnx", input_size=list(SIZE))
    assert m.calibration["activations"] == "int8 symmetric" and m.calibration["samples"] == 8
    assert m.extra["qdq"]["biases_folded_to_float"] > 0 and m.extra["qdq"]["rules"].endswith("conformant")
    assert m.validation["samples"] == 8 and m.extra["nodes"] == len(proto.graph.node)


def test_fp16_model_is_float16_inside_with_float32_io_and_runs_in_onnxruntime(trt_models):
    import onnxruntime as ort

    proto = onnx.load(str(trt_models["fp16"]))
    assert [i.type.tensor_type.elem_type for i in (*proto.graph.input, *proto.graph.output)] == [TensorProto.FLOAT] * 4
    weights = [i for i in proto.graph.initializer if i.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
    assert sum(i.data_type == TensorProto.FLOAT16 for i in weights) > 0.8 * len(weights)
    # the float32 weights left are the precision policy's (kept float32 on purpose) and nothing else
    kept = set(trt_models["m16"].extra["fp16"]["policy_nodes"])
    users = {}
    for node in proto.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node.name)
    fp32 = [i.name for i in weights if i.data_type == TensorProto.FLOAT and len(i.dims) > 1]
    assert fp32 and all(set(users.get(name, [])) <= kept for name in fp32), fp32
    sess = ort.InferenceSession(str(trt_models["fp16"]), providers=["CPUExecutionProvider"])
    item = trt_models["sets"]["val"][0]
    from common.encoding import encode_inputs

    img, tri = encode_inputs(item["image"], item["trimap"])
    alpha, prob = sess.run(None, {"image": img[None], "trimap": tri[None]})
    assert alpha.dtype == np.float32 and alpha.shape == (1, 1, *SIZE) and np.isfinite(alpha).all()
    assert np.allclose(prob.sum(1), 1.0, atol=1e-2)
    check_expected(load_manifest(trt_models["fp16"]), trt_models["fp16"], backend="tensorrt", precision="fp16",
                   artifact_type="onnx")


def test_precision_policy_keeps_the_named_layers_float32_in_both_models(trt_models):
    from export.trt_models import float_types

    # INT8: the stem conv reads float weights and bias, not dequantized int8
    int8 = onnx.load(str(trt_models["int8"]))
    kept = trt_models["m8"].calibration["nodes_kept_float"]
    assert kept and all(_kept_float(n) for n in kept) and any(STEM in n for n in kept)
    inits, producers = _inits(int8), {o: n for n in int8.graph.node for o in n.output}
    stems = [n for n in int8.graph.node if n.op_type == "Conv" and STEM in n.name]
    assert stems
    for conv in stems:
        assert all(i in inits and inits[i].data_type == TensorProto.FLOAT for i in conv.input[1:])
        assert all(producers.get(i) is None for i in conv.input[1:])
    others = [n for n in int8.graph.node if n.op_type == "Conv" and not _kept_float(n.name)]
    assert others
    assert all(producers[n.input[1]].op_type == "DequantizeLinear" for n in others)
    # FP16: every float input/output of the policy's nodes is float32; the other convs are float16
    fp16 = onnx.load(str(trt_models["fp16"]))
    policy_nodes = trt_models["m16"].extra["fp16"]["policy_nodes"]
    assert sorted(policy_nodes) == sorted(kept)
    types = float_types(fp16, policy_nodes)
    assert set(types) == set(policy_nodes) and all(set(t) == {TensorProto.FLOAT} for t in types.values())
    convs = [n.name for n in fp16.graph.node if n.op_type == "Conv" and not _kept_float(n.name)]
    assert all(set(t) == {TensorProto.FLOAT16} for t in float_types(fp16, convs).values())


def test_fp16_accuracy_vs_fp32_is_bounded(trt_models):
    # float16 rounding only (onnxruntime CPU computes each op in float32 on float16-rounded tensors):
    # measured max |Δα| 2.6e-3, mean 6.7e-5 on these composites (SAD unchanged to 4 digits). Bounds: 0.01 and
    # 5e-4 (4× and 7× headroom), and the SAD may not move by more than 1 %.
    v = trt_models["m16"].validation
    assert v["samples"] == 8
    assert v["alpha_vs_fp32"]["max_abs"] < 0.01, v
    assert v["alpha_vs_fp32"]["mean_abs"] < 5e-4, v
    assert abs(v["drop"]["SAD"]) <= 0.01 * v["fp32"]["SAD"], v


def test_int8_accuracy_vs_fp32_is_bounded(trt_models):
    # The ONNX-INT8 target's bound (tests/test_export_onnx.py): at most +10 % SAD (0.3 absolute floor) and
    # 0.03 mean |Δα|. Symmetric int8 activations (TensorRT) measured +3.8 % SAD (0.954 → 0.990) and 0.018
    # mean |Δα| on these composites.
    v = trt_models["m8"].validation
    assert v["drop"]["SAD"] <= max(0.10 * v["fp32"]["SAD"], 0.3), v
    assert v["alpha_vs_fp32"]["mean_abs"] < 0.03, v


# ------------------------------------------------------------------ the checker on hand-broken models
def test_checker_rejects_an_asymmetric_zero_point_naming_the_nodes(trt_models):
    proto = onnx.load(str(trt_models["int8"]))
    q = next(n for n in proto.graph.node if n.op_type == "QuantizeLinear")
    _set_init(proto, q.input[2], np.array(3, np.int8))  # shared by the Q and its DequantizeLinear
    users = [n.name for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
             and n.input[2] == q.input[2]]
    found = [v for v in check(proto) if v.rule == "zero-point-nonzero"]
    assert {v.node for v in found} == set(users) and q.name in users
    with pytest.raises(ExportError, match=rf"{q.name}: \[zero-point-nonzero\]"):
        check_or_raise(proto, "broken")


def test_checker_rejects_per_tensor_weights_naming_the_node(trt_models):
    proto = onnx.load(str(trt_models["int8"]))
    producers = {o: n for n in proto.graph.node for o in n.output}
    conv = next(n for n in proto.graph.node if n.op_type == "Conv" and n.input[1] in producers)
    dq = producers[conv.input[1]]
    scale = numpy_helper.to_array(_inits(proto)[dq.input[1]])
    _set_init(proto, dq.input[1], np.array(scale.max(), np.float32))
    _set_init(proto, dq.input[2], np.array(0, np.int8))
    found = [v for v in errors(check(proto))]
    assert [(v.node, v.rule) for v in found] == [(dq.name, "weights-per-channel")]
    assert conv.name in found[0].detail and "per tensor" in found[0].detail


def test_checker_rejects_uint8(trt_models):
    proto = onnx.load(str(trt_models["int8"]))
    q = next(n for n in proto.graph.node if n.op_type == "QuantizeLinear")
    _set_init(proto, q.input[2], np.array(0, np.uint8))
    found = [v for v in errors(check(proto))]
    assert found and {v.rule for v in found} == {"zero-point-int8"}
    assert q.name in {v.node for v in found} and "UINT8" in found[0].detail


def _tiny_qdq(bias_int32=True):
    """x → Q/DQ → Conv(W: int8 per channel via DQ, B: int32 via DQ, like onnxruntime writes it) → y."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    w_scale = (np.abs(w).reshape(4, -1).max(1) / 127).astype(np.float32)
    wq = np.clip(np.round(w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
    x_scale = np.array(0.02, np.float32)
    b = rng.normal(size=4).astype(np.float32)
    b_scale = (x_scale * w_scale).astype(np.float32)
    inits = [numpy_helper.from_array(wq, "w_q"), numpy_helper.from_array(w_scale, "w_s"),
             numpy_helper.from_array(np.zeros(4, np.int8), "w_z"), numpy_helper.from_array(x_scale, "x_s"),
             numpy_helper.from_array(np.array(0, np.int8), "x_z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["x_q"], name="q_x"),
             helper.make_node("DequantizeLinear", ["x_q", "x_s", "x_z"], ["x_dq"], name="dq_x"),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w_dq"], name="dq_w", axis=0)]
    if bias_int32:
        inits += [numpy_helper.from_array(np.round(b / b_scale).astype(np.int32), "b_q"),
                  numpy_helper.from_array(b_scale, "b_s"), numpy_helper.from_array(np.zeros(4, np.int32), "b_z")]
        nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_s", "b_z"], ["b_dq"], name="dq_b", axis=0))
    else:
        inits.append(numpy_helper.from_array(b, "b_dq"))
    nodes.append(helper.make_node("Conv", ["x_dq", "w_dq", "b_dq"], ["y"], name="conv", pads=[1, 1, 1, 1]))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(proto, x):
    import onnxruntime as ort

    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_int32_bias_is_refused_then_folded_to_float_without_changing_the_output():
    from export.trt_models import make_trt_conformant

    proto = _tiny_qdq(bias_int32=True)
    assert [(v.node, v.rule) for v in errors(check(proto))] == [("dq_b", "dq-input-type")]
    x = np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32)
    before = _run(proto, x)
    fixed, report = make_trt_conformant(_copy(proto))
    assert report["biases_folded_to_float"] == 1 and check(fixed) == []
    assert not any(n.op_type == "DequantizeLinear" and n.name == "dq_b" for n in fixed.graph.node)
    np.testing.assert_allclose(_run(fixed, x), before, atol=1e-5)


@pytest.mark.parametrize("breakage, rule", [
    ("no-zero-point", "zero-point-missing"),
    ("negative-scale", "scale-positive"),
    ("inf-scale", "scale-finite"),
    ("contrib-domain", "domain"),
    ("opset-12", "opset"),
    ("per-axis-activation", "activation-per-tensor"),
    ("q-into-conv", "q-without-dq"),
    ("policy", "policy-float"),
])
def test_checker_rules_on_a_tiny_graph(breakage, rule):
    proto = _tiny_qdq(bias_int32=False)
    assert check(proto) == []
    nodes = {n.name: n for n in proto.graph.node}
    if breakage == "no-zero-point":
        del nodes["q_x"].input[2]
    elif breakage == "negative-scale":
        _set_init(proto, "w_s", -numpy_helper.to_array(_inits(proto)["w_s"]))
    elif breakage == "inf-scale":
        _set_init(proto, "x_s", np.array(np.inf, np.float32))
    elif breakage == "contrib-domain":
        nodes["dq_x"].domain = "com.microsoft"
    elif breakage == "opset-12":
        proto.opset_import[0].version = 12
    elif breakage == "per-axis-activation":
        proto.graph.initializer.extend([numpy_helper.from_array(np.full(3, 0.02, np.float32), "x_s3"),
                                        numpy_helper.from_array(np.zeros(3, np.int8), "x_z3")])
        for k in ("q_x", "dq_x"):
            nodes[k].input[1], nodes[k].input[2] = "x_s3", "x_z3"
            nodes[k].attribute.append(helper.make_attribute("axis", 1))
    elif breakage == "q-into-conv":
        nodes["conv"].input[0] = "x_q"
    found = check(proto, float_nodes=["conv"] if breakage == "policy" else None)
    assert rule in {v.rule for v in found}, found
    assert all(v.node for v in found)


def test_fp16_conversion_of_a_consumed_output_and_a_shared_initializer():
    """The two cases onnxconverter-common got wrong on this model: a graph output that is also an input
    inside the graph, and an initializer shared by a float32-kept node and a converted one."""
    from export.trt_models import convert_to_fp16, float_types

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(1.0, np.float32), "hi")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["y", "lo", "hi"], ["a"], name="keep"),
             helper.make_node("Clip", ["y", "lo", "hi"], ["b"], name="half"),
             helper.make_node("Add", ["a", "b"], ["z"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8]),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    half, report = convert_to_fp16(proto, keep_float=["keep"])
    assert report["nodes_kept_fp32"] == ["keep"]
    types = float_types(half, ["keep", "half", "conv"])
    assert set(types["keep"]) == {TensorProto.FLOAT} and set(types["half"]) == set(types["conv"]) == {TensorProto.FLOAT16}
    import onnxruntime as ort

    x = rng.normal(size=(1, 3, 8, 8)).astype(np.float32)
    ref = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for r, g in zip(ref, got):
        assert g.dtype == np.float32 and np.abs(r - g).max() < 2e-2


def test_int8_gate_arithmetic():
    from export.trt_models import DEFAULT_GATES, _gate_int8

    report = {"fp32": {"SAD": 10.0}, "quantized": {"SAD": 10.5}, "drop": {"SAD": 0.5},
              "alpha_vs_fp32": {"mean_abs": 0.01}}
    assert _gate_int8(report, DEFAULT_GATES["int8"]) == []
    report["drop"]["SAD"], report["alpha_vs_fp32"]["mean_abs"] = 1.5, 0.05
    problems = _gate_int8(report, DEFAULT_GATES["int8"])
    assert len(problems) == 2 and "drop +1.500 > 1.000" in problems[0]


# ---------------------------------------------------------------- bad input: errors, nothing written
def test_bad_input_is_refused_and_nothing_is_written(trt_models, tmp_path):
    from calib_data.sets import SetConfig, build_set
    from export.precision import PrecisionPolicy
    from export.trt_models import make_fp16_onnx, make_int8_qdq_onnx

    fp32, sets = trt_models["fp32"], trt_models["sets"]
    out = tmp_path / "out"
    out.mkdir()
    wrong = build_set(SetConfig(name="c", count=2, size=(64, 64), seed=1, procedural=1.0).validated(),
                      tmp_path / "sets", progress=False)
    with pytest.raises(ExportError, match="calibration set .* is 64x64 but the model takes 128x128"):
        make_int8_qdq_onnx(fp32, out / "q.onnx", wrong, sets["val"])
    with pytest.raises(ExportError, match="validation set .* is 64x64 but the model takes 128x128"):
        make_fp16_onnx(fp32, out / "h.onnx", wrong)
    missing = PrecisionPolicy(modules=["model.no_such_layer"], source="test")
    with pytest.raises(ExportError, match="do not exist in the graph: /model/no_such_layer/"):
        make_int8_qdq_onnx(fp32, out / "q.onnx", sets["cal"], sets["val"], policy=missing, quantizer="onnxruntime")
    with pytest.raises(ExportError, match="do not exist in the graph: /model/no_such_layer/"):
        make_fp16_onnx(fp32, out / "h.onnx", sets["val"], policy=missing)
    with pytest.raises(ExportError, match=r"FP16 ONNX differs from FP32 beyond its gate .* max \|Δα\|"):
        make_fp16_onnx(fp32, out / "h.onnx", sets["val"], gate={"max_abs": -1.0})
    assert _leftovers(out) == []


# ------------------------------------------------------------------------- engine build / trtexec
def _io_model(path: Path, batch) -> Path:
    """A one-node graph with the exported models' inputs (batch fixed at 1, or symbolic)."""
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, 64, 96]),
              helper.make_tensor_value_info("trimap", TensorProto.FLOAT, [batch, 1, 64, 96])]
    out = helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [batch, 4, 64, 96])
    graph = helper.make_graph([helper.make_node("Concat", ["image", "trimap"], ["alpha"], axis=1)], "io", inputs, [out])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_trtexec_line_for_a_static_and_a_dynamic_batch_model(tmp_path):
    static, dynamic = _io_model(tmp_path / "s.onnx", 1), _io_model(tmp_path / "d.onnx", "batch")
    cmd = trtexec_command(static)
    assert cmd == ["trtexec", f"--onnx={static}", f"--saveEngine={tmp_path / 's.engine'}",
                   f"--timingCacheFile={tmp_path / 'timing.cache'}", "--stronglyTyped"]
    # trtexec refuses --shapes for a static model; a dynamic batch gets min = opt = max = 1
    assert trtexec_command(dynamic)[-1] == "--shapes=image:1x3x64x96,trimap:1x1x64x96"


@pytest.mark.skipif(tensorrt_or_none() is not None, reason="tensorrt is installed: the fallback is not taken")
def test_without_tensorrt_build_and_run_say_so(trt_models, capsys):
    from export.trt_engine import build_engine, main
    from runtime.backends.tensorrt_backend import TrtEngineRunner
    from runtime.errors import BackendUnavailable

    with pytest.raises(ExportError, match=r"tensorrt not installed .* trtexec --onnx="):
        build_engine(trt_models["int8"])
    with pytest.raises(BackendUnavailable, match="tensorrt not installed"):
        TrtEngineRunner(trt_models["int8"].with_suffix(".engine"))
    assert main([str(trt_models["fp16"]), str(trt_models["int8"])]) == 3
    err = capsys.readouterr().err
    assert err.count("trtexec --onnx=") == 2 and "--stronglyTyped" in err


def _write_toml(path: Path, name: str, seed: int, trimap: str) -> Path:
    path.write_text(f'name = "{name}"\ncount = 2\nsize = [64, 64]\nseed = {seed}\ntrimap = "{trimap}"\n'
                    f'[foregrounds]\nprocedural = 1.0\n[backgrounds]\nsources = ["procedural"]\n')
    return path


@pytest.mark.skipif(tensorrt_or_none() is not None, reason="tensorrt is installed: the fallback is not taken")
def test_export_trt_flow_without_tensorrt(tmp_path, monkeypatch, capsys):
    """What `make export-trt` runs, on a tiny checkpoint at 64×64: the ONNX models and manifests are written,
    then exit 3 naming them and the trtexec lines; TRT_OPTIONAL=1 turns that into a warning and exit 0."""
    from adamatting.checkpoint import save_checkpoint
    from adamatting.config import get_config
    from adamatting.model import build_model

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", build_model(get_config("tiny")).eval())
    calib, val = _write_toml(tmp_path / "c.toml", "c", 1, "mask"), _write_toml(tmp_path / "v.toml", "v", 2, "validation")
    out = tmp_path / "out"
    argv = ["--checkpoint", str(ckpt), "--size", "64", "64", "--out", str(out), "--calib", str(calib),
            "--val", str(val), "--cache", str(tmp_path / "sets"), "--simplifier", "none"]
    env = {k: v for k, v in os.environ.items() if k != "TRT_OPTIONAL"}
    run = subprocess.run([sys.executable, "-m", "export.trt_target", *argv], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stderr
    names = ["adamatting_tiny_64x64_fp32.onnx", "adamatting_tiny_64x64_trt_fp16.onnx",
             "adamatting_tiny_64x64_trt_int8.onnx"]
    for name in names:
        assert (out / name).is_file() and (out / (name + ".manifest.json")).is_file()
        assert str(out / name) in run.stderr
    for name in names[1:]:
        engine = name.removesuffix(".onnx") + ".engine"
        assert (f"trtexec --onnx={out / name} --saveEngine={out / engine} "
                f"--timingCacheFile={out / 'timing.cache'} --stronglyTyped") in run.stderr
    assert "error: TensorRT engines not built: tensorrt not installed" in run.stderr
    assert not list(out.glob("*.engine"))

    # the same end with TRT_OPTIONAL=1, in-process on the models just written (no second export)
    import export.trt_target as target

    written = [(out / name, load_manifest(out / name)) for name in names]
    monkeypatch.setattr(target, "export_trt_models", lambda args: written)
    monkeypatch.setenv("TRT_OPTIONAL", "1")
    assert target.main(argv) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: TensorRT engines not built") and err.count("trtexec --onnx=") == 2


# ------------------------------------------------------------------ needs TensorRT (skipped here)
@needs_tensorrt
def test_engines_build_reuse_the_timing_cache_and_match_fp32(trt_models, tmp_path):
    import shutil

    from evaluation.protocol import evaluate_set
    from export.int8_qdq import ort_alpha_fn
    from export.trt_engine import build_engine
    from runtime.backends.tensorrt_backend import TrtEngineRunner

    cache = tmp_path / "timing.cache"
    val = trt_models["sets"]["val"]
    _, ref = evaluate_set(ort_alpha_fn(trt_models["fp32"]), val, keep=True)
    for key, max_mean in (("fp16", 1e-3), ("int8", 0.03)):
        onnx_path = tmp_path / trt_models[key].name
        for suffix in ("", ".manifest.json"):
            shutil.copy(str(trt_models[key]) + suffix, str(onnx_path) + suffix)
        m = build_engine(onnx_path, timing_cache=cache)
        assert cache.is_file() and m.extra["artifact_type"] == "engine"
        engine = onnx_path.with_suffix(".engine")
        runner = TrtEngineRunner(engine, precision=m.precision)
        _, alphas = evaluate_set(runner.alpha, val, keep=True)
        diff = np.mean([np.abs(a - b).mean() for a, b in zip(ref, alphas)])
        assert diff < max_mean, (key, diff)
    again = build_engine(tmp_path / trt_models["int8"].name, timing_cache=cache)
    assert again.extra["timing_cache"]["state"] == "loaded"


@needs_tensorrt
def test_tensorrt_parser_accepts_both_models(trt_models):
    trt = tensorrt_or_none()
    logger = trt.Logger(trt.Logger.WARNING)
    for key in ("fp16", "int8"):
        network = trt.Builder(logger).create_network(0)
        parser = trt.OnnxParser(network, logger)
        assert parser.parse_from_file(str(trt_models[key])), [str(parser.get_error(i)) for i in range(parser.num_errors)]
