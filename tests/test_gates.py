"""The CI accuracy gate: the shipped checkpoint exported to every target that builds on a CPU, each artifact
scored against PyTorch FP32 and checked against benchmarks/gates.toml — plus the proof that the gate bites
(an INT8 ONNX with one quantization scale multiplied by 10 fails it).

CI cannot afford the 512×512 phone exports (``make demo`` / ``make gate`` run those); the gate here runs at
256×256 on 8 validation composites (procedural foregrounds; plus the held-back real images when
../shared/data is present), with the project's own gates.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from adamat.cli import main
from adamatting.checkpoint import load_model
from adamatting.config import DEFAULT_WEIGHTS, VARIANT_WEIGHTS
from benchmarks.gates import (
    GateConfigError,
    GateResult,
    Gates,
    check,
    failures,
    summary,
    violations,
)
from common.manifest import Manifest, load_manifest, manifest_path, write_manifest
from evaluation.accuracy import edge_band, evaluate_all, psnr
from export.all_targets import export_all
from export.job import artifact_name, composited_set
from runtime.artifacts import current, open_artifact, reference

SIZE = (256, 256)
STEM = artifact_name(load_model(DEFAULT_WEIGHTS)[0].cfg.name, SIZE, "x")[:-len("_x.onnx")]   # the shipped model's
CPU_KEYS = {"onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/fp16", "openvino/int8",
            "tensorrt/fp16", "tensorrt/int8", "coreml/fp16", "coreml/w8", "coreml/pal6", "coreml/w8a8",
            "executorch/fp32", "executorch/int8"}
SET_TOML = """name = "{name}"
count = 8
size = [{h}, {w}]
seed = {seed}
trimap = "{trimap}"

[foregrounds]
procedural = 1.0

[backgrounds]
sources = ["natural", "procedural"]
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(root, export dir, calibration TOML, validation TOML, validation set, export results)."""
    root = tmp_path_factory.mktemp("gate")
    tomls = {}
    for name, seed, trimap in (("gcal", 31, "mask"), ("gval", 32, "validation")):
        tomls[name] = root / f"{name}.toml"
        tomls[name].write_text(SET_TOML.format(name=name, h=SIZE[0], w=SIZE[1], seed=seed, trimap=trimap))
    cal = composited_set(str(tomls["gcal"]), SIZE, root / "sets", progress=False)
    val = composited_set(str(tomls["gval"]), SIZE, root / "sets", progress=False)
    results = export_all(DEFAULT_WEIGHTS, root / "export", SIZE, cal, val, log=lambda m: None)
    return root, root / "export", tomls["gcal"], tomls["gval"], val, results


@pytest.fixture(scope="module")
def gated(exported):
    _, export_dir, _, _, val, _ = exported
    artifacts, problems = current(export_dir, SIZE, DEFAULT_WEIGHTS)
    assert problems == []
    rows = evaluate_all(reference(DEFAULT_WEIGHTS), artifacts, SIZE, val)
    return rows, check(rows, Gates.load())


def test_every_cpu_target_is_exported(exported):
    *_, results = exported
    by = {r.target: r for r in results}
    assert all(by[t].status == "built" for t in ("onnx", "openvino", "tensorrt", "coreml", "executorch"))
    assert by["tensorrt-engine"].status == "not built" and "TensorRT" in by["tensorrt-engine"].reason


def test_shipped_artifacts_pass_the_gates(gated):
    rows, results = gated
    assert {r.artifact.key for r in rows} >= CPU_KEYS | {"torch/fp32"}
    assert violations(results) == []
    status = {s["key"]: s for s in summary(rows, results)}
    for key in CPU_KEYS:
        assert status[key]["gate"] == "pass", status[key]
    # the ones that run here are measured on every gated metric; the CoreML simulations on SAD/Grad/Conn/MSE
    assert all(s["n/a"] == 0 for k, s in status.items() if not k.startswith("coreml/"))
    assert all(s["status"] == "simulated" and s["passed"] >= 4 for k, s in status.items() if k.startswith("coreml/"))


def test_fp32_exports_match_pytorch(gated):
    rows, _ = gated
    for row in rows:
        if row.artifact.precision == "fp32" and row.artifact.backend != "torch":
            assert abs(row.sets["val"].drop["SAD"]) < 1e-3, row.artifact.key
            assert row.sets["val"].metrics["BokehPSNR"] > 60


def _damage_scale(src: Path, dst: Path, factor: float = 10.0) -> str:
    """Copy an INT8 QDQ ONNX with the weight scale of the first quantized encoder convolution × ``factor``
    (its weights dequantize ×10), and re-hash its manifest: a broken change that still 'exports fine'.
    (An activation's scale is shared by its Q and DQ pair, so scaling it only coarsens the rounding.)"""
    proto = onnx.load(str(src))
    conv = next(n for n in proto.graph.node if n.op_type == "Conv" and "/encoder/stages" in n.name)
    dq = next(n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == conv.input[1])
    init = next(i for i in proto.graph.initializer if i.name == dq.input[1])
    value = onnx.numpy_helper.to_array(init) * np.float32(factor)
    init.CopyFrom(onnx.numpy_helper.from_array(value.astype(np.float32), init.name))
    onnx.save(proto, str(dst))
    write_manifest(dst, load_manifest(src))
    return dq.input[1]


def _gate_command(exported, folder: Path, *extra: str) -> int:
    """``adamat gate`` over ``folder`` with the module's size, validation set and cache, no real images."""
    root, _, _, val_toml, _, _ = exported
    return main(["gate", "--artifacts", str(folder), "--size", *map(str, SIZE), "--val", str(val_toml),
                 "--cache", str(root / "sets"), "--no-real", "--quiet", *extra])


def _folder_with(exported, name: str, pattern: str) -> Path:
    """A new folder under the module's root holding copies of the exports matching ``pattern``."""
    root, export_dir, *_ = exported
    folder = root / name
    folder.mkdir()
    for p in export_dir.glob(pattern):
        shutil.copy2(p, folder / p.name)
    return folder


def test_a_damaged_int8_artifact_fails_the_gate(exported, capsys):
    root, export_dir, _, _, val, _ = exported
    bad_dir = root / "damaged"
    bad_dir.mkdir()
    name = f"{STEM}_int8.onnx"
    _damage_scale(export_dir / name, bad_dir / name)
    damaged = open_artifact(bad_dir / name)
    rows = evaluate_all(reference(DEFAULT_WEIGHTS), [damaged], SIZE, val, real=False)
    failed = violations(check(rows, Gates.load()))
    assert failed and all(line.startswith("onnxruntime INT8") for line in failed)
    assert any("sad_drop_pct" in line for line in failed)
    # the command says so too: exit 1, every violation listed
    code = _gate_command(exported, bad_dir)
    err = capsys.readouterr().err
    assert code == 1
    assert "accuracy gate(s) violated" in err and "onnxruntime INT8 on val" in err


def test_gate_command_passes_on_the_exports(exported, capsys):
    root = exported[0]
    only = _folder_with(exported, "onnx_only", f"{STEM}_int8.onnx*")
    code = _gate_command(exported, only, "--json", str(root / "gate.json"))
    out = capsys.readouterr().out
    assert code == 0 and "all accuracy gates pass" in out and (root / "gate.json").is_file()


@pytest.mark.parametrize("damage, words", [
    (lambda model, manifest: model.write_bytes(model.read_bytes()[:4]), "does not match its manifest"),
    (lambda model, manifest: manifest.write_text("{not json"), "unreadable manifest: not JSON"),
    (lambda model, manifest: manifest.unlink(), "no manifest beside it"),
])
def test_a_damaged_artifact_is_bad_input_not_a_gate_failure(tmp_path, capsys, monkeypatch, damage, words):
    """A file that no longer matches its manifest (truncated after export), an unreadable manifest or none: one
    error line naming the artifact, exit 2, before any set is built; exit 1 stays for accuracy below a gate."""
    model = tmp_path / "export" / f"{STEM}_fp32.onnx"
    model.parent.mkdir()
    model.write_bytes(b"an exported graph" * 64)
    write_manifest(model, Manifest(backend="onnxruntime", precision="fp32", model_config={}, input_size=list(SIZE)))
    damage(model, manifest_path(model))
    monkeypatch.setattr("adamat.commands.gate.composited_set", lambda *a, **k: pytest.fail("the gate ran"))
    assert main(["gate", "--artifacts", str(model.parent), "--size", *map(str, SIZE), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {model}") and words in err and err.count("\n") == 1


def test_an_artifact_of_another_checkpoint_fails_the_gate(exported, capsys):
    """A failed re-export leaves the previous checkpoint's artifact behind: gating it against this
    checkpoint would compare two models, so it is a violation naming the file."""
    name = f"{STEM}_int8.onnx"
    old = _folder_with(exported, "stale", name + "*")
    m = load_manifest(old / name)
    m.checkpoint_sha256 = "0" * 64
    write_manifest(old / name, m)
    code = _gate_command(exported, old, "--val-limit", "2")
    err = capsys.readouterr().err
    assert code == 1 and "exported from another checkpoint" in err and name in err


def test_gate_command_without_artifacts(tmp_path, capsys):
    assert main(["gate", "--artifacts", str(tmp_path), "--quiet"]) == 2
    assert "no 512x512 artifacts" in capsys.readouterr().err


@pytest.mark.parametrize("where, words", [("folder.json", "is a directory"), ("file/gate.json", "file is a file, not a folder"),
                                         ("m.onnx.manifest.JSON", "an artifact's manifest")])
def test_gate_json_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, where, words):
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "file").write_text("a file, not a folder")
    json_path = tmp_path / where
    assert main(["gate", "--artifacts", str(tmp_path / "no-artifacts"), "--json", str(json_path), "--quiet"]) == 2
    err = capsys.readouterr().err   # refused first: not the missing artifacts, which the run would report next
    assert err.startswith(f"error: {json_path}: ") and words in err and err.count("\n") == 1


@pytest.mark.parametrize("where", ["gate.txt", "out/", "gate.json/.", "gate.json/.."])
def test_gate_json_must_name_a_json_file(tmp_path, capsys, where):
    with pytest.raises(SystemExit) as exit_info:
        main(["gate", "--artifacts", str(tmp_path), "--json", f"{tmp_path}/{where}", "--quiet"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--json: must be a .json file" in err and err.count("\n") == 1


def test_gate_json_never_replaces_the_manifest_it_checks(tmp_path, capsys, monkeypatch):
    model = tmp_path / "export" / f"{STEM}_fp32.onnx"
    model.parent.mkdir()
    model.write_bytes(b"an exported graph" * 64)
    write_manifest(model, Manifest(backend="onnxruntime", precision="fp32", model_config={}, input_size=list(SIZE)))
    before = manifest_path(model).read_bytes()
    monkeypatch.setattr("adamat.commands.gate.composited_set", lambda *a, **k: pytest.fail("the gate ran"))
    assert main(["gate", "--artifacts", str(model.parent), "--size", *map(str, SIZE), "--json",
                 str(manifest_path(model)), "--quiet"]) == 2
    assert "an artifact's manifest" in capsys.readouterr().err and manifest_path(model).read_bytes() == before


@pytest.mark.parametrize("folder, size, words", [
    ("missing", SIZE, "folder of artifacts not found"), ("file", SIZE, "is a file, not a folder of artifacts"),
    ("empty", (0, 0), "argument --size: must be >= 1, got 0"), ("empty", (100, 100), "must be positive multiples"),
    ("empty", (-128, 128), "argument --size: must be >= 1, got -128"),
])
def test_gate_says_what_is_wrong_with_its_folder_or_size(tmp_path, capsys, folder, size, words):
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    try:
        code = main(["gate", "--artifacts", str(tmp_path / folder), "--size", *map(str, size), "--quiet"])
    except SystemExit as e:                 # the parser's own refusals
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert words in err and "adamat export" not in err and err.count("\n") == 1, err


def test_second_export_reuses_up_to_date_artifacts(exported):
    root, export_dir, cal_toml, val_toml, val, _ = exported
    cal = composited_set(str(cal_toml), SIZE, root / "sets", progress=False)
    again = export_all(DEFAULT_WEIGHTS, export_dir, SIZE, cal, val, log=lambda m: None)
    assert [r.status for r in again if r.target != "tensorrt-engine"] == ["reused"] * 5


def test_artifacts_of_other_export_code_are_rebuilt_not_reused(exported, tmp_path):
    """After a change to an exporter (a graph rewrite, a quantizer), reusing an artifact would measure and
    gate the old graph: each manifest records the export code's hash, and another hash means re-export."""
    from common.manifest import export_code_sha

    root, _, cal_toml, _, val, _ = exported
    stale = _folder_with(exported, "code", f"{STEM}_*.onnx*")
    m = load_manifest(stale / f"{STEM}_int8.onnx")
    assert m.export_code_sha256 == export_code_sha()
    m.export_code_sha256 = "0" * 64
    write_manifest(stale / f"{STEM}_int8.onnx", m)
    cal = composited_set(str(cal_toml), SIZE, root / "sets", progress=False)
    again = export_all(DEFAULT_WEIGHTS, stale, SIZE, cal, val, targets=("onnx",), log=lambda m: None)
    assert again[0].status == "built"
    assert load_manifest(stale / f"{STEM}_int8.onnx").export_code_sha256 == export_code_sha()


def test_gate_precedence_and_bad_config(tmp_path):
    g = tmp_path / "g.toml"
    g.write_text('[default]\nsad_drop_pct = 10.0\nbokeh_psnr_min = 30.0\n[precision.int8]\nsad_drop_pct = 6.0\n'
                 '[artifact."openvino/int8"]\nsad_drop_pct = 4.0\n')
    gates = Gates.load(g)
    assert gates.thresholds("onnxruntime/int8") == {"sad_drop_pct": 6.0, "bokeh_psnr_min": 30.0}
    assert gates.thresholds("openvino/int8")["sad_drop_pct"] == 4.0
    assert gates.thresholds("openvino/fp32")["sad_drop_pct"] == 10.0
    g.write_text("[default]\nsad_drop = 1.0\n")
    with pytest.raises(GateConfigError, match="unknown gate"):
        Gates.load(g)
    g.write_text("[default]\nsad_drop_pct = 'ten'\n")
    with pytest.raises(GateConfigError, match="must be numbers"):
        Gates.load(g)
    with pytest.raises(GateConfigError, match="not found"):
        Gates.load(tmp_path / "missing.toml")
    for bad in ("nan", "inf", "-1.0"):     # NaN failed every artifact after the whole evaluation
        g.write_text(f"[default]\nsad_drop_pct = 10.0\n[precision.int8]\nedge_mae_drop = {bad}\n")
        with pytest.raises(GateConfigError, match=r"\[precision.int8\]: gate\(s\) \['edge_mae_drop'\] must be finite"):
            Gates.load(g)
    for empty in ("", "[default]\n[precision.int8]\n"):   # nothing gated: every artifact would "fail" to be gated
        g.write_text(empty)
        with pytest.raises(GateConfigError, match="no gate set"):
            Gates.load(g)


def test_failures_lists_every_reason_and_refuses_an_empty_gate():
    def result(status, value=None):
        return GateResult("onnxruntime/int8", "onnxruntime INT8", "a.onnx", "val", "sad_drop_pct", value, 10.0, status)

    assert failures([], [result("pass", 1.0)]) == []
    assert failures([], [result("n/a"), result("not run")]) == [
        "no gate was evaluated: none of the artifacts runs here and none has a simulated accuracy"]
    failed = failures(["b.onnx: does not match its manifest's hash"], [result("fail", 97.0), result("pass", 1.0)])
    assert failed == ["unusable artifact: b.onnx: does not match its manifest's hash",
                      "onnxruntime INT8 on val: SAD drop +97 % > 10 % (sad_drop_pct)"]


def test_the_temporal_gate_applies_to_the_clip_set_only():
    from types import SimpleNamespace

    from evaluation.accuracy import AccuracyRow, SetScore

    artifact = SimpleNamespace(backend="onnxruntime", key="onnxruntime/int8", label="onnxruntime INT8",
                               path=Path("a.onnx"))
    gates = Gates.load()
    limit = gates.thresholds("onnxruntime/int8")["dtssd_drop_pct"]
    flicker = 2.0 * (1 + 1.2 * limit / 100)                   # 1.2 × the allowed dtSSD increase over FP32's 2.0
    row = AccuracyRow(artifact, "measured", sets={
        "clip": SetScore(2, {"SAD": 1.0, "dtSSD": flicker}, {"SAD": 0.0, "dtSSD": flicker - 2.0}),
        "val": SetScore(3, {"SAD": 1.0, "MSE": 0.1, "Grad": 1.0, "Conn": 1.0, "EdgeMAE": 0.1, "BokehPSNR": 60.0},
                        {"SAD": 0.0, "MSE": 0.0, "Grad": 0.0, "Conn": 0.0, "EdgeMAE": 0.0})})
    results = check([row], gates)
    assert {(r.set, r.gate) for r in results if r.set == "clip"} == {("clip", "sad_drop_pct"), ("clip", "dtssd_drop_pct")}
    assert not any(r.gate == "dtssd_drop_pct" for r in results if r.set == "val")
    assert violations(results) == [f"onnxruntime INT8 on clip: dtSSD drop +{1.2 * limit:.4g} % > "
                                   f"{limit:g} % (dtssd_drop_pct)"]
    assert all(r.status == "pass" for r in results if r.gate != "dtssd_drop_pct")


def test_edge_band_and_psnr():
    alpha = np.zeros((64, 64), np.float32)
    alpha[16:48, 16:48] = 1.0
    band = edge_band(alpha, width=4)
    assert band[16, 30] and band[12, 30] and not band[32, 32] and not band[2, 2]
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 0] = 110
    assert psnr(a, a) == 100.0
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / (100 / 192)))


def test_main_job_writes_the_report(exported, tmp_path):
    """The end-to-end job on the exports above (reused): every artifact has an accuracy row and a latency
    row or a reason, the gates pass, and the report holds the tables, the plot and the not-run reasons."""
    from adamat.main_job import JobConfig, run_main_job
    from evaluation.clip_eval import ClipSet

    root, export_dir, cal_toml, val_toml, _, _ = exported
    cfg = JobConfig(weights=DEFAULT_WEIGHTS, export_dir=export_dir, reports=tmp_path / "reports",
                    cache=root / "sets", size=SIZE, calib=str(cal_toml), val=str(val_toml),
                    real=False, warmup=1, runs=3, threads=1, pipeline=False, phone=False,
                    variant=VARIANT_WEIGHTS, variant_rounds=1, clips=ClipSet(size=(64, 96), frames=3, kinds=("fur",)))
    logged = []
    code, report = run_main_job(cfg, log=logged.append)
    assert code == 0, [line for line in logged if "FAILED" in line or "warning" in line]
    text = report.read_text()
    assert (report.parent / "latency_vs_accuracy.png").is_file()
    assert "**Accuracy gates: PASS**" in text
    for label in ("PyTorch FP32", "onnxruntime INT8", "OpenVINO INT8", "TensorRT INT8 ONNX", "CoreML W8A8",
                  "ExecuTorch INT8"):
        assert f"| {label} " in text
    assert "OpenVINO INT8 vs PyTorch FP32 eager" in text and "onnxruntime INT8 vs onnxruntime FP32" in text
    assert "**tensorrt-engine** (export not built): TensorRT does not import here" in text
    assert "AMD" in text or "Intel" in text or "device**: ?" not in text
    assert "CoreML prediction needs macOS" in text
    # the video clip: its temporal table, the rendered clip and its frames
    assert "## A video clip" in text and "| model, state across frames |" in text
    assert (report.parent / "clip.mp4").stat().st_size > 0 and (report.parent / "clip_frames.png").is_file()
    assert any(line.startswith("export onnx: reused") for line in logged)
    import json

    latency = json.loads((report.parent / "latency.json").read_text())
    rows = {r["id"]: r for r in latency["rows"]}
    assert rows["torch/fp32"]["status"] == "ok" and rows["onnxruntime/int8"]["status"] == "ok"
    assert rows["executorch/int8"]["status"] == "ok" and rows["executorch/int8"]["threads"] == 1
    assert rows["onnxruntime/int8"]["ratio_to_torch_fp32"] > 0 and rows["onnxruntime/int8"]["peak_rss_mb"] > 0
    assert rows["coreml/w8a8"]["status"] == "not run"
    # the second model: exported beside the first, gated, and both compared in one interleaved run
    assert f"## The second model ({VARIANT_WEIGHTS.name})" in text
    comparison = json.loads((report.parent / "model-comparison.json").read_text())
    second = load_model(VARIANT_WEIGHTS)[0].cfg.name
    assert [r["model"] for r in comparison["rows"]] == [load_model(DEFAULT_WEIGHTS)[0].cfg.name, second]
    assert comparison["rows"][1]["OV INT8 / first OV INT8"] > 0 and "ORT INT8/FP32 <= 0.6" in text
    assert (export_dir / VARIANT_WEIGHTS.stem / artifact_name(second, SIZE, "openvino_int8", suffix=".xml")).is_file()


def test_a_failing_second_model_is_reported_not_raised(monkeypatch, tmp_path):
    from adamat import main_job
    from benchmarks.report import variant_section

    def no_openvino(*args, **kwargs):
        raise RuntimeError("openvino does not import")

    monkeypatch.setattr(main_job, "export_all", no_openvino)
    cfg = main_job.JobConfig(weights=DEFAULT_WEIGHTS, variant=VARIANT_WEIGHTS, export_dir=tmp_path)
    logged = []
    done = main_job.variant_stage(cfg, None, None, Gates.load(), logged.append)
    assert done["failed"] == "RuntimeError: openvino does not import" and done["comparison"] is None
    assert logged == ["second model: failed: RuntimeError: openvino does not import"]
    text = variant_section(done)
    assert f"## The second model ({VARIANT_WEIGHTS.name})" in text and "**Failed**: RuntimeError: openvino" in text


@pytest.mark.parametrize("kind, words", [("missing", "the FP32 reference checkpoint is missing"),
                                         ("folder", "is a folder, not the FP32 reference checkpoint")])
def test_a_reference_that_is_missing_or_a_folder_is_named_as_such(tmp_path, capsys, kind, words):
    reference = tmp_path / "reference.pt"
    if kind == "folder":
        reference.mkdir()
    assert main(["gate", "--checkpoint", str(reference), "--artifacts", str(tmp_path), "--quiet"]) == 2
    assert capsys.readouterr().err == f"error: {reference}: {words}\n"
