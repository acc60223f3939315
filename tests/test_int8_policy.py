"""benchmarks.int8_policy: each variant keeps float what it says (and nothing of the policy is lost), and the
run writes a valid measured table with one ratio per variant."""

import onnx
import pytest

from adamatting.checkpoint import save_checkpoint
from benchmarks.int8_policy import VARIANTS, main, quantize_variant
from benchmarks.measurements import load
from benchmarks.variant_search import small_set
from export.onnx_graph import export_onnx

SIZE = (64, 64)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fused(seeded_model, tmp_path_factory):
    """(checkpoint, FP32 ONNX, calibration set) of the tiny stand-in for mobile-int8."""
    root = tmp_path_factory.mktemp("int8-policy")
    model = seeded_model("tiny-fused")
    save_checkpoint(root / "fused.pt", model)
    export_onnx(model, root / "fp32.onnx", SIZE)
    return root / "fused.pt", root / "fp32.onnx", small_set("calib", SIZE, 2, root / "sets")


def weights_quantized(path, where):
    """For each convolution ``where(node)`` selects: whether its weights come dequantized (it runs in int8)."""
    g = onnx.load(str(path)).graph
    made_by = {o: n.op_type for n in g.node for o in n.output}
    return [made_by.get(n.input[1]) == "DequantizeLinear" for n in g.node if where(n)]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_variant_keeps_float_what_it_names(fused, tmp_path, name):
    _, fp32, cal = fused
    _, modules, op_types, extra = VARIANTS[name]
    q = quantize_variant(fp32, tmp_path / f"{name}.onnx", cal, modules, op_types, extra)
    conv_t = weights_quantized(q, lambda n: n.op_type == "ConvTranspose")
    assert len(conv_t) == 6 and set(conv_t) == {name == "int8-conv-transpose"}
    stem = weights_quantized(q, lambda n: n.op_type == "Conv" and n.name.startswith("/model/encoder/stem/"))
    assert len(stem) == 1 and set(stem) == {name == "int8-stem"}
    refiner = weights_quantized(q, lambda n: n.op_type == "Conv" and n.name.startswith("/model/refiner/"))
    assert refiner and not any(refiner)   # the guided upsampler stays float in every variant
    gcn = weights_quantized(q, lambda n: n.op_type == "Conv" and "/gcn" in n.name)
    assert gcn and set(gcn) == {name != "float-gcn"}
    g = onnx.load(str(q)).graph
    made_by = {o: n for n in g.node for o in n.output}
    upsampling = [n for n in g.node if n.op_type == "Resize" and "/trimap_outputs/" in n.name]
    assert len(upsampling) == 1   # the graph's output trimap_prob: the Resize's own, or dequantized from it
    assert made_by["trimap_prob"].op_type == ("DequantizeLinear" if name == "quantized-upsampling" else "Resize")
    inputs_quantized = any(n.op_type == "QuantizeLinear" and {"image", "trimap"} & set(n.input) for n in g.node)
    assert inputs_quantized == (name == "quantized-inputs")


def test_the_run_writes_one_ratio_per_variant(fused, tmp_path):
    checkpoint, _, _ = fused
    out = tmp_path / "int8-policy.json"
    assert main(["--checkpoint", str(checkpoint), "--size", "64", "--threads", "1", "--rounds", "1", "--runs", "1",
                 "--cache", str(tmp_path / "sets"), "--out", str(out)]) == 0
    data = load(out)
    assert [r["variant"] for r in data["rows"]] == list(VARIANTS)
    assert all(r["ORT INT8 / ORT FP32"] > 0 for r in data["rows"]) and data["kind"] == "int8-policy"
    assert main(["--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.json")]) == 2
