"""ONNX export: round trips, manifests, atomic writes, and the INT8 QDQ target's accuracy."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from adamatting.checkpoint import save_checkpoint
from adamatting.model import build_model
from common.manifest import (
    ENCODING_VERSION,
    ManifestError,
    check_expected,
    load_manifest,
    manifest_path,
)
from export.errors import ExportError
from export.int8_qdq import SetReader, quantize_with_policy
from export.onnx_graph import export_onnx, run_onnx, run_torch, validation_samples
from export.precision import PrecisionPolicy, onnx_fragment


@pytest.fixture(scope="module")
def tiny_model(seeded_model):
    model = seeded_model("tiny", pu_steps=3)
    # non-trivial propagation so the unrolled steps matter numerically
    torch.nn.init.normal_(model.propagation.out.weight, std=0.2)
    return model


def _with_steps(model, steps):
    m = build_model(model.cfg.replace(pu_steps=steps)).eval()
    m.load_state_dict(model.state_dict())
    return m


@pytest.mark.parametrize("size", [(64, 64), (64, 96)])
@pytest.mark.parametrize("steps", [1, 3])
def test_round_trip_sizes_and_steps(tmp_path, tiny_model, size, steps):
    model = _with_steps(tiny_model, steps)
    out = tmp_path / "m.onnx"
    manifest = export_onnx(model, out, size)
    assert out.is_file() and manifest_path(out).is_file()
    assert manifest.input_size == list(size) and manifest.pu_steps == steps
    assert manifest.validation["max_abs"] <= 1e-3 and manifest.validation["samples"] == 4
    proto = onnx.load(str(out))
    assert [i.name for i in proto.graph.input] == ["image", "trimap"]
    assert [o.name for o in proto.graph.output] == ["alpha", "trimap_prob"]
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, *size]
    assert not any(n.op_type == "BatchNormalization" for n in proto.graph.node)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["pu_steps"] == str(steps) and meta["input_size"] == f"{size[0]}x{size[1]}"
    assert json.loads(meta["adamatting_manifest"])["model_config"]["name"] == "tiny"
    # fresh samples, not the ones the export validated on: ORT FP32 equals PyTorch
    samples = validation_samples(size, count=2, seed=123)
    for a, b in zip(run_torch(model, samples), run_onnx(out, samples)):
        assert np.abs(a - b).max() < 1e-4


@pytest.mark.parametrize("scale, size, stride", [(2, (128, 64), 64), (4 / 3, (128, 256), 128)], ids=["2", "4/3"])
def test_guided_model_round_trip(seeded_model, tmp_path, scale, size, stride):
    # 2: the input average-pooled; 4/3 (the mobile config): resized bilinearly to 3/4 and back
    model = seeded_model("tiny-guided", guided_scale=scale)
    torch.nn.init.normal_(model.propagation.out.weight, std=0.2)
    torch.nn.init.normal_(model.refiner.conv[-1].weight, std=0.2)   # non-trivial guided filter coefficients
    out = tmp_path / "g.onnx"
    manifest = export_onnx(model, out, size)
    assert manifest.validation["max_abs"] <= 1e-3
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"AveragePool", "Resize"} <= ops
    samples = validation_samples(size, count=2, seed=5)
    for a, b in zip(run_torch(model, samples), run_onnx(out, samples)):
        assert np.abs(a - b).max() < 1e-4
    with pytest.raises(ExportError, match=f"encoder stride {stride}"):
        export_onnx(model, tmp_path / "bad.onnx", (96, 64))


def test_step_count_changes_the_exported_graph(tmp_path, tiny_model):
    sizes = {}
    for steps in (1, 3):
        export_onnx(_with_steps(tiny_model, steps), tmp_path / f"s{steps}.onnx", (64, 64), simplifier="none")
        sizes[steps] = len(onnx.load(str(tmp_path / f"s{steps}.onnx")).graph.node)
    assert sizes[3] > sizes[1]


def test_no_folded_zero_states_in_the_file(tmp_path, tiny_model):
    out = tmp_path / "m.onnx"
    export_onnx(tiny_model, out, (256, 256))
    params = sum(p.numel() for p in tiny_model.parameters())
    # a folded 2 × hidden × 256 × 256 zero state would dwarf the weights
    assert out.stat().st_size < 4 * params * 1.5 + 200_000


def test_onnxsim_and_dynamic_batch(tmp_path, tiny_model):
    out = tmp_path / "m.onnx"
    export_onnx(tiny_model, out, (64, 64), simplifier="onnxsim", dynamic_batch=True)
    assert load_manifest(out).batch == "dynamic"
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    alpha, prob = sess.run(None, {"image": np.zeros((2, 3, 64, 64), np.float32),
                                  "trimap": np.full((2, 1, 64, 64), 0.5, np.float32)})
    assert alpha.shape == (2, 1, 64, 64) and prob.shape == (2, 3, 64, 64)
    assert np.allclose(prob.sum(1), 1.0, atol=1e-5)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_validation_failure_prints_both_numbers_and_writes_nothing(tmp_path, tiny_model):
    with pytest.raises(ExportError, match=r"max \|Δα\| .* mean \|Δα\|"):
        export_onnx(tiny_model, tmp_path / "m.onnx", (64, 64), tolerance={"max_abs": -1.0})
    assert _leftovers(tmp_path) == []


def test_interrupted_write_leaves_nothing_under_the_final_name(tmp_path, tiny_model, monkeypatch):
    real_save = onnx.save

    def failing_save(proto, path, *a, **k):
        real_save(proto, path, *a, **k)
        Path(path).write_bytes(Path(path).read_bytes()[:100])  # half-written
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(tiny_model, tmp_path / "m.onnx", (64, 64))
    assert _leftovers(tmp_path) == []


def test_bad_size_is_refused(tmp_path, tiny_model):
    with pytest.raises(ExportError, match="multiples of the encoder stride 32"):
        export_onnx(tiny_model, tmp_path / "m.onnx", (70, 64))


def test_consumers_refuse_mismatching_truncated_or_unmanifested_artifacts(tmp_path, tiny_model):
    out = tmp_path / "m.onnx"
    export_onnx(tiny_model, out, (64, 64))
    m = load_manifest(out)
    check_expected(m, out, input_size=[64, 64], pu_steps=3)
    with pytest.raises(ManifestError, match=r"input_size is \[64, 64\], expected \[128, 128\]"):
        check_expected(m, out, input_size=[128, 128])
    # a manifest from another encoding version
    raw = json.loads(manifest_path(out).read_text())
    raw["encoding_version"] = ENCODING_VERSION + 1
    manifest_path(out).write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="encoding_version"):
        check_expected(load_manifest(out), out)
    # truncated artifact
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(ManifestError, match=r"does not match its manifest \(m.onnx was changed\)"):
        load_manifest(out)
    manifest_path(out).unlink()
    with pytest.raises(ManifestError, match="no manifest"):
        load_manifest(out)


def test_cli_export_onnx_fp32_only(tmp_path, tiny_model, capsys):
    from adamat.cli import main

    ckpt = save_checkpoint(tmp_path / "tiny.pt", tiny_model)
    code = main(["export", "onnx", "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--size", "64", "64",
                 "--no-int8", "--steps", "2"])
    assert code == 0
    out = tmp_path / "out" / "adamatting_tiny_64x64_s2_fp32.onnx"
    assert out.is_file() and load_manifest(out).pu_steps == 2
    assert "max |Δα|" in capsys.readouterr().out
    assert main(["export", "onnx", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o2")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    # a bad calibration set name or output folder fails before the FP32 model is written
    assert main(["export", "onnx", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o3"), "--size", "64", "64",
                 "--calib", "nope"]) == 2
    assert "nope: config file not found" in capsys.readouterr().err and not (tmp_path / "o3").exists()
    with pytest.raises(SystemExit) as exit_info:       # an output folder that is a file: as the line is read
        main(["export", "onnx", "--checkpoint", str(ckpt), "--out", str(out), "--size", "64", "64"])
    assert exit_info.value.code == 2 and "is a file, not a folder" in capsys.readouterr().err


def test_an_artifact_whose_manifest_cannot_be_written_is_removed(tmp_path, tiny_model):
    from common.errors import DataError

    out = tmp_path / "tiny.onnx"
    manifest_path(out).mkdir(parents=True)             # the manifest's name is taken by a folder
    with pytest.raises(DataError, match="is a directory"):
        export_onnx(tiny_model, out, (64, 64))
    assert not out.exists()                            # no artifact without its manifest (every loader refuses one)


# --------------------------------------------------------------------------------------------- INT8
# The shipped checkpoint, exported at 128x128 (fast here), calibrated on 12 composites, measured on 12 others.
INT8_SIZE = (128, 128)


@pytest.fixture(scope="module")
def int8_artifacts(tmp_path_factory):
    from conftest import shipped_onnx_and_sets

    from export.int8_qdq import quantize_onnx_int8

    root = tmp_path_factory.mktemp("int8")
    _, fp32, sets = shipped_onnx_and_sets(root, INT8_SIZE, count=12)
    q = root / "int8.onnx"
    manifest = quantize_onnx_int8(fp32, q, sets["cal"], sets["val"])
    return fp32, q, manifest, sets


def test_int8_is_qdq_per_channel_and_recorded(int8_artifacts):
    fp32, q, manifest, sets = int8_artifacts
    proto = onnx.load(str(q))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    inits = {i.name: i for i in proto.graph.initializer}
    # per-channel weights: some DequantizeLinear of an int8 initializer has a vector scale
    per_channel = [n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
                   and len(inits[n.input[1]].dims) == 1 and inits[n.input[1]].dims[0] > 1]
    assert per_channel
    assert manifest.precision == "int8" and manifest.calibration["samples"] == 12
    assert manifest.calibration["key"] == sets["cal"].meta["key"]
    assert load_manifest(q).validation["samples"] == 12
    # the policy's float layers really are float: the stem conv's weights are float initialisers, not
    # dequantized int8 (its input may pass a Q/DQ pair: 8-bit pixels and a 3-level trimap quantize exactly)
    kept = manifest.calibration["nodes_kept_float"]
    policy = PrecisionPolicy.load(runtime="onnxruntime")
    assert any("/model/inputs/" in n for n in kept)   # onnxruntime's own entry (export/precision.toml)
    op_of = {n.name: n.op_type for n in proto.graph.node}
    assert kept and all(any(onnx_fragment(m) in n for m in policy.modules + policy.modules_if_present)
                        or op_of[n] in policy.op_types for n in kept)
    stem = next(n for n in proto.graph.node if n.op_type == "Conv" and "/model/encoder/stem/" in n.name)
    producers = {o: n for n in proto.graph.node for o in n.output}
    assert stem.input[1] in inits and inits[stem.input[1]].data_type == onnx.TensorProto.FLOAT
    assert all(producers.get(i) is None for i in stem.input[1:])


def _optimized_graph(model_path, tmp_path, options):
    """The graph onnxruntime actually runs (its optimized model)."""
    import onnxruntime as ort

    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return onnx.load(options.optimized_model_filepath).graph


def _optimized_ops(model_path, tmp_path, options) -> dict[str, str]:
    """Node name → op type of the graph onnxruntime actually runs."""
    return {n.name: n.op_type for n in _optimized_graph(model_path, tmp_path, options).node}


def _conv_transpose_weights(graph) -> set[str]:
    """What makes the weights of each ConvTranspose: an initializer ("float") or an operator."""
    made_by = {o: n.op_type for n in graph.node for o in n.output}
    return {made_by.get(n.input[1], "float") for n in graph.node if n.op_type == "ConvTranspose"}


def test_policy_layers_run_in_float_under_onnxruntime(int8_artifacts, tmp_path):
    # A float weight in the file is not enough: onnxruntime's WeightBiasQuantization transformer quantizes
    # DQ -> Conv -> Q groups at load time. The project's session options switch it off; the manifest says so.
    import onnxruntime as ort

    from runtime.backends.onnxruntime_backend import SESSION_CONFIG, session_options

    _, q, manifest, _ = int8_artifacts
    ours = _optimized_ops(q, tmp_path, session_options())
    stem = {n: op for n, op in ours.items() if "/model/encoder/stem/" in n and op in ("Conv", "QLinearConv")}
    assert stem and set(stem.values()) == {"Conv"}, stem
    assert "QLinearConv" in ours.values()          # the rest of the network does run in int8
    assert manifest.extra["onnxruntime_session_config"] == SESSION_CONFIG
    # With the policy's inputs quantized, the float stem sits between quantized tensors (DQ -> Conv -> Q):
    # onnxruntime's own options quantize it at load time, the project's keep it float.
    fp32, _, _, sets = int8_artifacts
    quantized_inputs = PrecisionPolicy.load(runtime="onnxruntime").without(("model.inputs",))
    grouped = quantize_with_policy(fp32, tmp_path / "grouped.onnx", SetReader(sets["cal"]), quantized_inputs)
    assert not any("/model/inputs/" in n for n in grouped)
    plain = ort.SessionOptions()
    plain.log_severity_level = 3
    stem_ops = lambda ops: {op for n, op in ops.items() if "/model/encoder/stem/" in n and "Conv" in op}  # noqa: E731
    assert stem_ops(_optimized_ops(tmp_path / "grouped.onnx", tmp_path, session_options())) == {"Conv"}
    assert "QLinearConv" in stem_ops(_optimized_ops(tmp_path / "grouped.onnx", tmp_path, plain)), \
        "onnxruntime no longer quantizes float-weight QDQ groups by itself; SESSION_CONFIG can go"
    # The shipped policy's graphs have such groups too: its float ConvTransposes sit between quantized tensors,
    # and onnxruntime's own options would round their weights to int8 at load time.
    assert _conv_transpose_weights(_optimized_graph(q, tmp_path, session_options())) == {"float"}
    assert _conv_transpose_weights(_optimized_graph(q, tmp_path, plain)) == {"DequantizeLinear"}


def test_policy_parts_only_some_configs_have_apply_where_present(tmp_path):
    from onnx import helper

    def graph(*names):
        nodes = [helper.make_node("Relu", ["x"], [f"y{i}"], name=n) for i, n in enumerate(names)]
        return helper.make_model(helper.make_graph(nodes, "g", [], []))

    policy = PrecisionPolicy(modules=["model.encoder.stem"], modules_if_present=["model.refiner"])
    with_refiner = graph("/model/encoder/stem/stem.0/Conv", "/model/refiner/Mul", "/model/decoder/Conv")
    assert policy.float_nodes(with_refiner) == ["/model/encoder/stem/stem.0/Conv", "/model/refiner/Mul"]
    assert policy.float_nodes(graph("/model/encoder/stem/stem.0/Conv")) == ["/model/encoder/stem/stem.0/Conv"]
    with pytest.raises(ExportError, match="/model/encoder/stem/"):     # required names stay required
        policy.float_nodes(graph("/model/refiner/Mul"))
    shipped = PrecisionPolicy.load()
    assert "model.refiner" in shipped.modules_if_present
    # [float.<runtime>] adds to [float] for that runtime only; an unknown table or key is refused
    ort_policy = PrecisionPolicy.load(runtime="onnxruntime")
    assert ort_policy.modules == shipped.modules + ["model.inputs"]
    assert ort_policy.modules_if_present == shipped.modules_if_present + ["model.trimap_outputs"]
    assert ort_policy.op_types == shipped.op_types + ["ConvTranspose"]
    assert ort_policy.without(("model.trimap_outputs",), ("ConvTranspose",)).op_types == shipped.op_types
    assert "model.trimap_outputs" not in ort_policy.without(("model.trimap_outputs",)).modules_if_present
    assert PrecisionPolicy.load(runtime="openvino").modules == shipped.modules
    with pytest.raises(ValueError, match="unknown runtime 'ort'"):
        PrecisionPolicy.load(runtime="ort")
    bad = tmp_path / "bad.toml"
    bad.write_text('[float]\nmodules = []\n[float.tflite]\nmodules = ["model.inputs"]\n')
    with pytest.raises(ExportError, match=r"unknown keys in \[float\]: tflite"):
        PrecisionPolicy.load(bad)
    bad.write_text('[float]\nmodules = []\n[float.onnxruntime]\nmodule = ["model.inputs"]\n')
    with pytest.raises(ExportError, match=r"unknown keys in \[float.onnxruntime\]: module"):
        PrecisionPolicy.load(bad, runtime="onnxruntime")


def test_policy_naming_a_missing_layer_is_refused(int8_artifacts, tmp_path):
    from export.int8_qdq import quantize_onnx_int8
    from export.precision import PrecisionPolicy

    fp32, _, _, sets = int8_artifacts
    with pytest.raises(ExportError, match="do not exist in the graph: /model/no_such_layer/"):
        quantize_onnx_int8(fp32, tmp_path / "q.onnx", sets["cal"],
                           policy=PrecisionPolicy(modules=["model.no_such_layer"]))
    assert not (tmp_path / "q.onnx").exists()


def test_int8_accuracy_drop_is_bounded(int8_artifacts):
    # Bound: INT8 may add at most 10 % to the FP32 SAD on the validation composites (0.3 absolute floor
    # for near-zero SAD) and move alpha by 0.03 on average. Measured with the policy's float stem: about
    # 6 % and 0.02; quantizing the stem too doubles both, which this bound catches.
    _, _, manifest, _ = int8_artifacts
    v = manifest.validation
    assert v["drop"]["SAD"] <= max(0.10 * v["fp32"]["SAD"], 0.3), v
    assert v["alpha_vs_fp32"]["mean_abs"] < 0.03, v


def test_int8_refuses_a_calibration_set_of_another_size(int8_artifacts, tmp_path):
    from calib_data.sets import SetConfig, build_set
    from export.int8_qdq import quantize_onnx_int8

    fp32, _, _, _ = int8_artifacts
    cfg = SetConfig(name="c", count=2, size=(64, 64), seed=1, procedural=1.0).validated()
    wrong = build_set(cfg, tmp_path / "sets", progress=False)
    with pytest.raises(ExportError, match="is 64x64 but the model takes 128x128"):
        quantize_onnx_int8(fp32, tmp_path / "q.onnx", wrong)
    assert not (tmp_path / "q.onnx").exists()


def test_op_profile_splits_kernel_time_by_stage_and_operator(int8_artifacts, tmp_path, capsys):
    from benchmarks.measurements import load
    from benchmarks.op_profile import conv_share, main, profile_onnx

    fp32, q, _, _ = int8_artifacts
    f, i = profile_onnx(fp32, runs=3, warmup=1, threads=1), profile_onnx(q, runs=3, warmup=1, threads=1)
    for p in (f, i):
        assert abs(sum(p["by_stage"].values()) - p["kernel_ms"]) < 1e-6 * max(1.0, p["kernel_ms"])
        assert abs(sum(p["by_op"].values()) - p["kernel_ms"]) < 1e-6 * max(1.0, p["kernel_ms"])
        assert {"encoder/stages", "propagation/cell", "refiner"} <= set(p["by_stage"]), p["by_stage"]
        assert 0 < conv_share(p) < 1
    # the INT8 graph runs QLinearConv and (de)quantizes; the FP32 graph does neither
    assert i["by_op"].get("QLinearConv", 0) > 0 and i["by_stage"].get("(de)quantize", 0) > 0
    assert "QLinearConv" not in f["by_op"] and "(de)quantize" not in f["by_stage"]
    assert f["nodes"] < i["nodes"]
    assert main([str(fp32), str(q), "--runs", "2", "--warmup", "1", "--json", str(tmp_path / "p.json"),
                 "--measured", str(tmp_path / "op-profile.json"), "--model", "tiny, random weights"]) == 0
    out = capsys.readouterr().out
    assert f"| stage | {fp32.name} | {q.name} |" in out and "Amdahl" in out
    measured = load(tmp_path / "op-profile.json")   # a valid measured-results file
    assert measured["kind"] == "op-profile" and measured["input_size"] == [128, 128]
    assert measured["columns"] == ["by", "name", f"{fp32.name} ms", f"{q.name} ms"]
    kernel = next(r for r in measured["rows"] if r["name"] == "kernel time")
    stages = [r for r in measured["rows"] if r["by"] == "stage"]
    assert sum(r[f"{q.name} ms"] for r in stages) == pytest.approx(kernel[f"{q.name} ms"], abs=0.01 * len(stages))
    assert main([str(tmp_path / "missing.onnx")]) == 2
    assert "no such ONNX file" in capsys.readouterr().err


def test_conv_kernels_times_each_distinct_convolution_in_float_and_int8(tmp_path, capsys):
    from benchmarks.conv_kernels import conv_shapes, main, time_convs

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
                              torch.nn.Conv2d(8, 8, 1), torch.nn.Conv2d(8, 8, 1, bias=False),
                              torch.nn.ConvTranspose2d(8, 4, 2, stride=2), torch.nn.Conv2d(4, 4, 3, 2, 1, groups=2))
    torch.onnx.export(net.eval(), torch.zeros(1, 3, 16, 16), str(tmp_path / "m.onnx"), input_names=["x"],
                      dynamo=False, opset_version=17)
    shapes = list(conv_shapes(onnx.load(str(tmp_path / "m.onnx"))).values())
    # the two 1x1 8->8 convolutions differ in their bias: two rows; every layer is counted once
    assert [r["weight"] for r in shapes] == [[8, 3, 3, 3], [8, 1, 3, 3], [8, 8, 1, 1], [8, 8, 1, 1], [8, 4, 2, 2],
                                             [4, 2, 3, 3]]
    rows = time_convs(tmp_path / "m.onnx", runs=3, warmup=1, threads=1)
    assert [r["kind"] for r in rows] == ["dense", "depthwise", "dense", "dense", "transposed", "grouped"]
    assert [r["input"] for r in rows][-2:] == [[1, 8, 16, 16], [1, 4, 32, 32]]
    assert all(r["fp32_ms"] > 0 and r["int8_ms"] > 0 and r["count"] == 1 for r in rows)
    assert all(r["int8_around_ms"] > 0 for r in rows)       # the one-node int8 graph (de)quantizes around it
    assert main([str(tmp_path / "m.onnx"), "--runs", "2", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 3x3 8→8 @16x16 | depthwise | 1 |" in out and "| 2x2 8→4 @16x16 x2 | transposed | 1 |" in out
    assert "| **all** | 6 |" in out and "more)" not in out
    assert main([str(tmp_path / "m.onnx"), "--runs", "2", "--warmup", "1", "--top", "4",
                 "--measured", str(tmp_path / "kernels.json"), "--model", "six convolutions"]) == 0
    assert "| (2 more) |" in capsys.readouterr().out
    from benchmarks.measurements import load

    measured = load(tmp_path / "kernels.json")   # a valid measured-results file: every layer, then the kinds
    assert measured["input_size"] == [16, 16] and measured["model"] == "six convolutions"
    assert [r["layer"] for r in measured["rows"]][-5:] == ["all dense", "all depthwise", "all grouped",
                                                          "all transposed", "all"]
    assert len(measured["rows"]) == 6 + 5 and measured["rows"][-1]["count"] == 6
    assert main([str(tmp_path / "missing.onnx")]) == 2
    assert "no such ONNX file" in capsys.readouterr().err
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    assert main([str(tmp_path / "bad.onnx")]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err


def test_sub_pixel_upsampling_is_exported_as_the_identical_transposed_convolution(tmp_path, tiny_model):
    from onnx import helper, numpy_helper

    from export.onnx_graph import subpixel_as_conv_transpose

    export_onnx(tiny_model, tmp_path / "m.onnx", (64, 64))   # validated against PyTorch inside
    ops = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert "DepthToSpace" not in ops and ops.count("ConvTranspose") == 2 * len(tiny_model.cfg.decoder_channels)

    def graph(bias):   # Conv 1x1 (2 -> 8 channels) -> DepthToSpace(2, CRD)
        rng = np.random.default_rng(0)
        inits = [numpy_helper.from_array(rng.standard_normal((8, 2, 1, 1)).astype(np.float32), "w"),
                 numpy_helper.from_array(bias.astype(np.float32), "b")]
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="/up/conv/Conv", kernel_shape=[1, 1]),
                 helper.make_node("DepthToSpace", ["y"], ["z"], name="/up/shuffle/DepthToSpace", blocksize=2,
                                  mode="CRD")]
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 5, 7])],
                              [helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [1, 2, 10, 14])], inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    x = np.random.default_rng(1).standard_normal((1, 2, 5, 7)).astype(np.float32)
    from runtime.backends.onnxruntime_backend import inference_session

    run = lambda proto: inference_session(proto.SerializeToString()).run(None, {"x": x})[0]  # noqa: E731
    same_in_groups = graph(np.repeat([0.5, -1.0], 4))   # a BatchNorm after the shuffle, folded
    before = run(same_in_groups)
    assert subpixel_as_conv_transpose(same_in_groups) == 1
    assert [n.op_type for n in same_in_groups.graph.node] == ["ConvTranspose"]
    assert sorted(i.name for i in same_in_groups.graph.initializer) == ["/up/shuffle/ConvTranspose.bias",
                                                                      "/up/shuffle/ConvTranspose.weight"]
    np.testing.assert_allclose(run(same_in_groups), before, atol=1e-5)
    per_position = graph(np.arange(8.0))   # a bias per sub-pixel position has no transposed-conv form
    assert subpixel_as_conv_transpose(per_position) == 0
    assert [n.op_type for n in per_position.graph.node] == ["Conv", "DepthToSpace"]


def test_interleave_keeps_one_row_per_path_even_where_keys_repeat(int8_artifacts):
    from benchmarks.interleaved import interleave

    fp32, q, _, _ = int8_artifacts   # the same key twice: two models' exports share keys
    result = interleave([fp32, q, fp32], rounds=2, warmup=1, runs=1, threads=1)
    assert [r["key"] for r in result["rows"]] == ["onnxruntime/fp32", "onnxruntime/int8", "onnxruntime/fp32"]
    assert all(len(r["p50_ms_rounds"]) == 2 for r in result["rows"])
