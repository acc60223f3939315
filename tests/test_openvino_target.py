"""OpenVINO IR targets: FP32/FP16 match PyTorch, INT8 (plain and accuracy-controlled) drops are bounded."""


import numpy as np
import pytest

pytest.importorskip("openvino", reason="openvino is part of the project's export extra")

from adamatting.config import DEFAULT_WEIGHTS as WEIGHTS  # noqa: E402
from calib_data.sets import SetConfig, build_set  # noqa: E402
from common.manifest import load_manifest  # noqa: E402
from export.errors import ExportError  # noqa: E402
from export.onnx_graph import export_onnx, run_torch, validation_samples  # noqa: E402
from export.openvino_ir import export_openvino  # noqa: E402
from export.precision import PrecisionPolicy  # noqa: E402

SIZE = (128, 128)


@pytest.fixture(scope="module")
def onnx_and_sets(tmp_path_factory):
    from conftest import shipped_onnx_and_sets

    root = tmp_path_factory.mktemp("ov")
    model, fp32, sets = shipped_onnx_and_sets(root, SIZE, count=8, seeds=(31, 32),
                                              onnx_name="adamatting_mobile_128x128_fp32.onnx")
    return model, fp32, sets, root


def _ov_alpha(xml, samples):
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return [compiled({"image": s.image, "trimap": s.trimap})[compiled.output("alpha")] for s in samples]


@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-4), ("fp16", 1e-2)])
def test_float_irs_match_pytorch(onnx_and_sets, precision, tolerance):
    # FP32: float reassociation only. FP16 weights: ~1e-3 relative rounding of every weight; the
    # max over 2 samples stays well under 1e-2 (measured ~2e-3).
    model, fp32, sets, root = onnx_and_sets
    xml, manifest = export_openvino(fp32, root / "out", precision, val_set=sets["val"])
    assert xml.name == f"adamatting_mobile_128x128_openvino_{precision}.xml" and xml.with_suffix(".bin").is_file()
    assert load_manifest(xml).precision == precision and manifest.validation["samples"] == 8
    samples = validation_samples(SIZE, count=2, seed=5)
    for a, b in zip(run_torch(model, samples), _ov_alpha(xml, samples)):
        assert np.abs(a - b).max() < tolerance


def test_fp16_ir_stores_half_weights(onnx_and_sets):
    _, fp32, sets, root = onnx_and_sets
    x32, _ = export_openvino(fp32, root / "sizes", "fp32")
    x16, _ = export_openvino(fp32, root / "sizes", "fp16")
    ratio = x16.with_suffix(".bin").stat().st_size / x32.with_suffix(".bin").stat().st_size
    assert 0.45 < ratio < 0.6


@pytest.mark.parametrize("precision", ["int8", "int8-acc"])
def test_int8_drops_are_bounded_and_policy_layers_stay_float(onnx_and_sets, precision):
    # Bound as for onnxruntime INT8: at most 10 % of the FP32 SAD (0.3 absolute floor) on the validation
    # composites; NNCF's mixed preset measured ~3 % here.
    _, fp32, sets, root = onnx_and_sets
    xml, m = export_openvino(fp32, root / "q", precision, calib_set=sets["cal"], val_set=sets["val"],
                             max_drop=0.3, subset_size=8)
    v = m.validation
    assert v["drop"]["SAD"] <= max(0.10 * v["fp32"]["SAD"], 0.3), v
    assert m.calibration["samples"] == 8 and m.calibration["key"] == sets["cal"].meta["key"]
    import openvino as ov

    ops = ov.Core().read_model(str(xml)).get_ops()
    fq_consumers = set()
    for op in ops:
        if op.get_type_name() == "FakeQuantize":
            for out in op.outputs():
                fq_consumers |= {t.get_node().get_friendly_name() for t in out.get_target_inputs()}
    assert any(op.get_type_name() == "FakeQuantize" for op in ops)
    stem = [n for n in fq_consumers if "/model/encoder/stem/" in n]
    assert stem == [], f"policy layer quantized: {stem}"
    # ... and the CPU plugin, opened as the runtime opens it, runs it in f32 too (its low-precision
    # transformations could propagate u8; on AVX512-BF16 CPUs its default precision would be bf16)
    from runtime.backends.openvino_backend import OpenVinoBackend

    compiled = OpenVinoBackend.open(xml, {}).compiled
    convs = {op.get_friendly_name(): op.get_rt_info()["runtimePrecision"].astype(str)
             for op in compiled.get_runtime_model().get_ordered_ops()
             if op.get_rt_info()["layerType"].astype(str) == "Convolution"}
    stem_rt = {n: p for n, p in convs.items() if "/model/encoder/stem/" in n}
    assert stem_rt and set(stem_rt.values()) == {"f32"}, stem_rt
    assert "u8" in convs.values() or "i8" in convs.values(), convs


def test_unmeetable_max_drop_reports_the_best_and_writes_nothing(tmp_path):
    # NNCF ranks every quantizer group with a validation pass each: the tiny model at 64x64 keeps that short
    import torch

    from adamatting.config import get_config
    from adamatting.model import build_model

    torch.manual_seed(0)
    fp32 = tmp_path / "tiny_fp32.onnx"
    export_onnx(build_model(get_config("tiny")).eval(), fp32, (64, 64))
    sets = [build_set(SetConfig(name=n, count=3, size=(64, 64), seed=s, procedural=1.0).validated(), tmp_path / "s",
                      progress=False) for n, s in (("c", 1), ("v", 2))]
    out = tmp_path / "unmeetable"
    with pytest.raises(ExportError, match=r"could not meet --max-drop -1.0: best SAD drop reached"):
        export_openvino(fp32, out, "int8-acc", calib_set=sets[0], val_set=sets[1], max_drop=-1.0, subset_size=3,
                        max_iterations=1)
    assert not out.exists() or not any(p.suffix in (".xml", ".bin") for p in out.iterdir())


def test_policy_naming_a_missing_layer_is_refused(onnx_and_sets):
    _, fp32, sets, root = onnx_and_sets
    with pytest.raises(ExportError, match="do not exist in the OpenVINO model: /model/nope/"):
        export_openvino(fp32, root / "bad", "int8", calib_set=sets["cal"], val_set=sets["val"],
                        policy=PrecisionPolicy(modules=["model.nope"]))


def test_runtime_openvino_backend_matches_torch_and_refuses_a_truncated_bin(onnx_and_sets, tmp_path):
    import shutil

    from common.manifest import ManifestError
    from runtime.matter import Matter

    model, fp32, sets, root = onnx_and_sets
    xml, _ = export_openvino(fp32, tmp_path, "fp32")
    image = np.random.default_rng(0).random((128, 128, 3)).astype(np.float32)
    trimap = np.full((128, 128), 128, np.uint8)
    trimap[:28], trimap[-28:] = 0, 255
    ov_alpha = Matter.from_artifact(xml, backend_options={"hint": "THROUGHPUT", "threads": 1}).predict(image, trimap=trimap).alpha
    pt_alpha = Matter.from_artifact(WEIGHTS, expect={"input_size": [128, 128]}).predict(image, trimap=trimap).alpha
    assert np.abs(ov_alpha - pt_alpha).max() < 1e-3
    bin_path = xml.with_suffix(".bin")
    shutil.copy(bin_path, tmp_path / "backup.bin")
    bin_path.write_bytes(bin_path.read_bytes()[:1000])
    with pytest.raises(ManifestError, match="openvino_fp32.bin was changed"):
        Matter.from_artifact(xml)


def test_the_tile_batching_benchmark_times_every_way(onnx_and_sets, tmp_path):
    """benchmarks.tile_batching: the tiles one call each, in one call, and in flight together, per runtime."""
    import json

    import openvino as ov

    from benchmarks.measurements import load
    from benchmarks.tile_batching import main as tile_batching

    _, fp32, _, _ = onnx_and_sets
    xml = tmp_path / "tiny.xml"
    ov.save_model(ov.convert_model(str(fp32)), str(xml))
    out = tmp_path / "tiles.json"
    assert tile_batching([str(xml), str(fp32), "--rounds", "1", "--tiles", "3", "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert [r["way"] for r in table["rows"]] == ["one call per tile", "one call of 3", "two streams, two in flight",
                                                 "one call per tile", "two threads, two in flight"]
    assert all(r["ms"] > 0 and r["tiles"] == 3 for r in table["rows"]) and table["input_size"] == list(SIZE)
    load(out)                                   # a table the measured-results reader accepts
    with pytest.raises(SystemExit):             # not a network file: refused by the argument parser
        tile_batching([str(tmp_path / "tiles.json")])
