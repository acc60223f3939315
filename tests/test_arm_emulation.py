"""Arm kernels without a phone (``benchmarks.arm_emulation``): the shipped model's INT8 ONNX at 128×128 run by
onnxruntime's Arm kernels under qemu's aarch64 emulation (a Cortex-A76: dot product, no i8mm), gated through the
same path as x86 and compared with x86's output. Needs the aarch64 interpreter ``make verify-arm`` caches in
``.arm/``; skips, saying so, without it. The bad-input checks run everywhere."""

from __future__ import annotations

import shutil

import pytest

from adamatting.config import DEFAULT_WEIGHTS
from benchmarks.arm_emulation import (
    ROOT,
    ArmCpu,
    ArmResult,
    EmulationError,
    ReplayEvaluator,
    gate_lines,
    main,
    verify_artifact,
)
from benchmarks.gates import Gates
from evaluation.accuracy import val_samples
from export.int8_qdq import quantize_onnx_int8
from runtime.artifacts import open_artifact, reference

SIZE = (128, 128)
ARM = ROOT / ".arm"
HAVE_ARM = (ARM / "site" / ".complete").is_file() and shutil.which("qemu-aarch64-static") is not None
needs_arm = pytest.mark.skipif(not HAVE_ARM, reason="no aarch64 interpreter in .arm/ or no qemu-aarch64-static: "
                                                    "`make verify-arm` (or scripts/verify_arm.sh --setup-only) builds it")


@pytest.fixture(scope="module")
def int8_onnx(tmp_path_factory):
    """(the shipped model's INT8 ONNX at 128×128, its validation set of 2 composites)."""
    from conftest import shipped_onnx_and_sets
    root = tmp_path_factory.mktemp("arm")
    _, fp32, sets = shipped_onnx_and_sets(root, SIZE, count=2)
    int8 = root / "int8.onnx"
    quantize_onnx_int8(fp32, int8, sets["cal"], sets["val"])
    return int8, sets["val"]


@needs_arm
def test_int8_onnx_on_emulated_arm_matches_x86_and_passes_the_gates(int8_onnx):
    path, vset = int8_onnx
    cpu = ArmCpu("cortex-a76", ARM)
    probe = cpu.start()
    assert "asimddp" in probe["features"] and "i8mm" not in probe["features"]
    assert probe["midr"] == "0x414fd0b1"       # an Arm Cortex-A76 r4p1
    ev = ReplayEvaluator(reference(DEFAULT_WEIGHTS), SIZE, {"val": val_samples(vset)})
    results = {"cortex-a76": ArmResult("cortex-a76")}
    verify_artifact(ev, open_artifact(path), [cpu], results, lambda message: None)
    result = results["cortex-a76"]
    deltas = result.deltas["onnxruntime/int8"]
    assert deltas["calls"] == 2 and result.rounds["onnxruntime/int8"] == 2   # every alpha scored came from Arm
    assert deltas["mean_abs_dalpha"] < 0.01 and deltas["max_abs_dalpha"] < 0.5   # other int8 kernels, same model
    assert result.runtime["onnxruntime/int8"]["kernels"].get("QLinearConv (CPUExecutionProvider)", 0) > 0
    table, violations = gate_lines(result.rows, ev.ref_row, Gates.load())
    assert violations == [] and table[1]["gate"] == "pass"


def test_no_interpreter_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--arm-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "make verify-arm" in err[0]


def test_no_qemu_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmulationError, match="qemu-aarch64-static not found"):
        ArmCpu("max", tmp_path).check()


@needs_arm
def test_missing_artifact_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--artifacts", str(tmp_path), "--cpus", "cortex-a76"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "make export-all" in err[0]
