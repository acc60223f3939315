"""ExecuTorch target: a tiny model exported to both .pte programs through the registry (``export all``), FP32
within 1e-3 of PyTorch through ``Matter``, INT8 calibrated with the policy's layers left float, the delegated
share in the manifest and the log, and a clear message where executorch is not installed.

(The INT8 accuracy gate of the shipped model runs in tests/test_gates.py; damaged programs in
tests/test_artifact_integrity.py.)"""

import sys

import numpy as np
import pytest
import torch

from adamat.cli import main
from adamatting.checkpoint import save_checkpoint
from calib_data.sets import SetConfig, build_set
from common.manifest import load_manifest
from runtime.artifacts import discover
from runtime.errors import BackendUnavailable
from runtime.matter import Matter

SIZE = (64, 64)
NAMES = {p: f"adamatting_tiny_64x64_executorch_{p}.pte" for p in ("fp32", "int8")}
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(seeded_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("executorch")
    model = seeded_model("tiny", pu_steps=1)   # one unrolled step: half the lowering time
    with torch.no_grad():   # an untrained tiny network's alpha hardly depends on its input (std 5e-6), so a
        for p in model.parameters():   # program that scrambled its input would still match; ×2 makes it follow
            if p.ndim == 4:            # the image (its alpha changes by ~0.06 when the image is mirrored)
                p.mul_(2.0)
    sets = [build_set(SetConfig(name=n, count=3, size=SIZE, seed=s, trimap=t, procedural=1.0,
                                bg_sources=("procedural",)).validated(), root / "sets", progress=False)
            for n, s, t in (("cal", 1, "mask"), ("val", 2, "validation"))]
    return model, save_checkpoint(root / "tiny.pt", model), sets, root


@pytest.fixture(scope="module")
def exported(tiny):
    pytest.importorskip("executorch", reason="executorch is the project's [android] extra (make setup installs it)")
    from export.all_targets import export_all

    _, ckpt, sets, root = tiny
    log: list[str] = []
    [result] = export_all(ckpt, root / "export", SIZE, *sets, targets=("executorch",), log=log.append)
    return result, root / "export", log


def _photo_and_trimap(seed=0):
    rng = np.random.default_rng(seed)
    photo = rng.random((96, 80, 3), dtype=np.float32)
    trimap = np.zeros((96, 80), np.uint8)
    trimap[20:76, 16:64] = 128
    trimap[36:60, 28:52] = 255
    return photo, trimap


def test_both_programs_are_built_with_manifests_and_delegation(exported):
    result, out, log = exported
    assert result.status == "built", result.reason
    assert sorted(p.name for p in result.artifacts) == sorted(NAMES.values())
    for precision, name in NAMES.items():
        m = load_manifest(out / name)
        assert (m.backend, m.precision, list(m.input_size)) == ("executorch", precision, list(SIZE))
        d = m.extra["delegation"]
        assert d["subgraphs"] >= 1 and 0.9 < d["share"] <= 1.0
        assert d["delegated_ops"] > 10 * d["undelegated_ops"]
        assert any(line.startswith(f"export executorch: {name}: ") and "delegated to XNNPACK" in line for line in log)
    calibration = load_manifest(out / NAMES["int8"]).calibration
    assert calibration["samples"] == 3 and "per output channel" in calibration["scheme"]
    assert calibration["policy"].endswith("precision.toml")


def test_fp32_program_matches_pytorch_through_matter(exported, tiny):
    model, ckpt, _, _ = tiny
    _, out, _ = exported
    v = load_manifest(out / NAMES["fp32"]).validation
    assert v["max_abs"] <= 1e-3 and v["samples"] == 4
    photo, trimap = _photo_and_trimap()
    program = Matter.from_artifact(out / NAMES["fp32"], refinement=None)
    reference = Matter.from_artifact(ckpt, expect={"input_size": list(SIZE)}, refinement=None)
    a = program.predict(photo, trimap=trimap).alpha
    b = reference.predict(photo, trimap=trimap).alpha
    assert a.shape == (96, 80) and np.abs(a - b).max() <= 1e-3
    mirrored = reference.predict(photo[:, ::-1].copy(), trimap=trimap).alpha
    assert np.abs(mirrored - b).max() > 0.01   # the comparison can see a wrong input


def test_int8_program_runs_and_is_compared_with_pytorch(exported):
    _, out, _ = exported
    v = load_manifest(out / NAMES["int8"]).validation
    assert v["reference"] == "pytorch fp32" and v["samples"] == 3
    assert set(v["drop"]) == {"SAD", "MSE", "Grad", "Conn"} and v["alpha_vs_fp32"]["mean_abs"] < 0.1
    photo, trimap = _photo_and_trimap(1)
    alpha = Matter.from_artifact(out / NAMES["int8"], backend_options={"threads": 1}).predict(photo, trimap=trimap).alpha
    assert alpha.shape == (96, 80) and np.isfinite(alpha).all() and 0 <= alpha.min() and alpha.max() <= 1
    [artifacts, problems] = discover(out, SIZE)
    assert problems == [] and {a.key for a in artifacts} == {"executorch/fp32", "executorch/int8"}
    assert all(a.run_backend == "executorch" and a.label.startswith("ExecuTorch ") for a in artifacts)


def test_a_program_runs_without_importing_the_exporter_which_still_imports_after(exported):
    """Opening a .pte imports ExecuTorch's runtime, not its exporter (executorch.exir's __init__: capture, passes,
    torchao, seconds and a hundred MB of a process that only runs a program); the exporter still imports whole after,
    its submodules bound to it."""
    import subprocess

    _, out, _ = exported
    code = ("import sys, numpy as np\n"
            "from runtime.matter import Matter\n"
            f"alpha = Matter.from_artifact({str(out / NAMES['fp32'])!r}, refinement=None).predict(\n"
            "    np.zeros((40, 50, 3), np.uint8)).alpha\n"
            "loaded = sorted(m for m in sys.modules if m.startswith(('executorch.exir', 'torchao')))\n"
            "import executorch.exir, executorch.exir._warnings\n"
            "from executorch.exir import to_edge\n"
            "print(alpha.shape, loaded, callable(to_edge), executorch.exir.__file__.endswith('__init__.py'),\n"
            "      executorch.exir._warnings.experimental.__name__)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "(40, 50) [] True True experimental"


def test_policy_layers_stay_float_and_the_rest_is_quantized(tiny):
    """The PT2E graph after convert: convolutions of the policy's stem read float weights, every other
    convolution reads a dequantized int8 weight."""
    pytest.importorskip("executorch", reason="executorch is the project's [android] extra (make setup installs it)")
    from export.precision import PrecisionPolicy
    from export.pte_program import export_module, quantize

    model, _, (cal, _), _ = tiny
    graph = quantize(export_module(model), SIZE, cal, PrecisionPolicy.load(), limit=1)
    convs = [n for n in graph.graph.nodes if n.op == "call_function" and "conv2d" in str(n.target)]
    weight_dequantized = {n.name: "dequantize" in str(getattr(n.args[1], "target", "")) for n in convs}

    def in_stem(node):
        return any(path.startswith("model.encoder.stem") for path, _ in node.meta.get("nn_module_stack", {}).values())

    stem = [n.name for n in convs if in_stem(n)]
    assert stem and not any(weight_dequantized[n] for n in stem)
    assert sum(weight_dequantized.values()) == len(convs) - len(stem) > 10


def test_without_executorch_the_target_says_what_to_install(tiny, monkeypatch, capsys):
    from export.all_targets import export_all

    model, ckpt, sets, root = tiny
    monkeypatch.setitem(sys.modules, "executorch", None)          # `import executorch` now fails
    code = main(["export", "executorch", "--checkpoint", str(ckpt), "--out", str(root / "none"),
                 "--size", *map(str, SIZE)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: the ExecuTorch target needs executorch (pip install 'executorch>=1.5.1,<1.6'")
    [result] = export_all(ckpt, root / "none", SIZE, *sets, targets=("executorch",), log=lambda _: None)
    assert result.status == "not built" and "[android]" in result.reason
    assert not (root / "none").exists() or not list((root / "none").iterdir())


def test_without_executorch_a_program_is_not_run_and_the_runtime_names_the_package(exported, monkeypatch):
    _, out, _ = exported
    monkeypatch.setitem(sys.modules, "executorch", None)
    [artifacts, _] = discover(out, SIZE)
    assert all(a.run_backend is None and a.note.startswith("ExecuTorch is not installed") for a in artifacts)
    with pytest.raises(BackendUnavailable, match=r"the executorch backend needs the 'executorch' package: pip install"):
        Matter.from_artifact(out / NAMES["int8"])


def test_runner_inputs_and_log_become_a_device_result_that_merges(exported, tmp_path):
    """What the Android workflow runs around ExecuTorch's executor_runner: the inputs it reads (raw float32,
    the tensors device_bench times) and its log turned into a device_bench JSON that merge takes."""
    from benchmarks.device_bench import load_result, merge_markdown
    from benchmarks.latency import synthetic_inputs
    from common.outputs import write_json
    from benchmarks.runner_log import convert, write_inputs

    _, out, _ = exported
    pte = out / NAMES["int8"]
    image, trimap = write_inputs(pte, tmp_path / "inputs")
    expected = synthetic_inputs(SIZE)
    assert np.array_equal(np.fromfile(image, np.float32).reshape(1, 3, *SIZE), expected[0])
    assert np.array_equal(np.fromfile(trimap, np.float32).reshape(1, 1, *SIZE), expected[1])
    times = [9.0, 8.0, 5.0, 6.0, 7.0]   # ms, as the runner prints them
    log = tmp_path / "runner.log"
    log.write_text("I 00:00:00.1 executorch:executor_runner.cpp:300] Model loaded in 3.2 ms.\n" + "".join(
        f"I 00:00:00.2 executorch:executor_runner.cpp:520] Iteration {i + 1} of 5: {t:f} ms\n"
        for i, t in enumerate(times)))
    result = convert(log, pte, warmup=2, threads=4)
    [row] = result["rows"]
    assert (row["id"], row["run_backend"], row["threads"], row["runs"]) == ("executorch/int8", "executor_runner", 4, 3)
    assert row["p50_ms"] == pytest.approx(6.0) and row["min_ms"] == pytest.approx(5.0)
    write_json(result, tmp_path / "phone.json")
    assert "executorch/int8" in merge_markdown([tmp_path / "phone.json"]) and load_result(tmp_path / "phone.json")
    with pytest.raises(ValueError, match="2 timed iterations"):
        log.write_text("Iteration 1 of 2: 5.0 ms\nIteration 2 of 2: 5.0 ms\n")
        convert(log, pte, warmup=2)
