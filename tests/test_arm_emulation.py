"""Arm kernels without a phone (``benchmarks.arm_emulation``): the shipped model's INT8 ONNX at 128×128 run by
onnxruntime's Arm kernels under qemu's aarch64 emulation (a Cortex-A76: dot product, no i8mm), gated through the
same path as x86 and compared with x86's output. Needs the aarch64 interpreter ``make verify-arm`` caches in
``.arm/``; skips, saying so, without it. The bad-input checks run everywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

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
from export.onnx_target import export_onnx_target
from runtime.artifacts import open_artifact, reference

SIZE = (128, 128)
ARM = ROOT / ".arm"
HAVE_ARM = (ARM / "site" / ".complete").is_file() and shutil.which("qemu-aarch64-static") is not None
needs_arm = pytest.mark.skipif(not HAVE_ARM, reason="no aarch64 interpreter in .arm/ or no qemu-aarch64-static: "
                                                    "`make verify-arm` (or scripts/verify_arm.sh --setup-only) builds it")
SET_TOML = """name = "{name}"
count = {count}
size = [128, 128]
seed = {seed}
trimap = "{trimap}"

[foregrounds]
procedural = 1.0

[backgrounds]
sources = ["natural", "procedural"]
"""


def _set(root: Path, name: str, count: int, seed: int, trimap: str) -> str:
    path = root / f"{name}.toml"
    path.write_text(SET_TOML.format(name=name, count=count, seed=seed, trimap=trimap))
    return str(path)


@pytest.fixture(scope="module")
def int8_onnx(tmp_path_factory):
    """(the shipped model's INT8 ONNX at 128×128, its validation set)."""
    root = tmp_path_factory.mktemp("arm")
    cal, val = _set(root, "cal", 4, 11, "mask"), _set(root, "val", 2, 22, "validation")
    written = export_onnx_target(DEFAULT_WEIGHTS, root / "export", SIZE, calib=cal, val=val, cache=root / "sets",
                                 progress=False)
    from export.job import composited_set
    return written[1][0], composited_set(val, SIZE, root / "sets", progress=False)


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
