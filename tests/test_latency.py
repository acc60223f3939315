"""The latency suite: statistics from known timings, ratios, device fingerprints, peak RSS per process, the
on-device command with and without torch, and the merge of several devices."""

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adamatting.checkpoint import save_checkpoint
from adamatting.config import get_config
from adamatting.model import build_model
from benchmarks.device_bench import main as device_bench
from benchmarks.fingerprint import device_fingerprint, fingerprint_id
from benchmarks.latency import (
    FORMAT,
    add_ratios,
    measure,
    peak_rss_mb,
    run_options,
    synthetic_inputs,
)
from common.manifest import Manifest, write_manifest
from export.onnx_graph import export_onnx
from runtime.artifacts import open_artifact

ROOT = Path(__file__).resolve().parent.parent
SIZE = (64, 64)


class FakeClock:
    """A clock that only moves when the fake workload says how long it took."""

    def __init__(self, durations):
        self.now, self.durations = 0.0, iter(durations)

    def __call__(self):
        return self.now

    def work(self, *inputs):
        self.now += next(self.durations)


def test_measure_statistics_from_known_durations():
    timed = [0.001 * k for k in (7, 1, 10, 4, 2, 9, 3, 8, 6, 5)]     # 1..10 ms, shuffled
    clock = FakeClock([5.0, 5.0] + timed)                            # two slow warm-up calls, not counted
    stats = measure(clock.work, (), warmup=2, runs=10, clock=clock)
    assert stats["runs"] == 10 and stats["warmup"] == 2
    assert stats["p50_ms"] == pytest.approx(5.5)
    assert stats["p90_ms"] == pytest.approx(9.1)
    assert stats["p99_ms"] == pytest.approx(9.91)
    assert stats["mean_ms"] == pytest.approx(5.5) and stats["min_ms"] == pytest.approx(1.0)
    assert stats["std_ms"] == pytest.approx(np.std(np.arange(1, 11), ddof=1))
    assert stats["throughput_ips"] == pytest.approx(1 / 0.0055)


def test_ratios_to_torch_and_to_the_same_runtime_fp32():
    def row(key, run_backend, p50=None):
        backend, precision = key.split("/")
        status = "ok" if p50 is not None else "not run"
        return {"key": key, "backend": backend, "precision": precision, "run_backend": run_backend,
                "status": status, **({"p50_ms": p50} if p50 is not None else {})}

    rows = add_ratios([row("torch/fp32", "torch", 100.0), row("onnxruntime/fp32", "onnxruntime", 50.0),
                       row("onnxruntime/int8", "onnxruntime", 20.0), row("tensorrt/fp16", "onnxruntime", 40.0),
                       row("openvino/int8", "openvino", 30.0), row("coreml/fp16", None)])
    to_torch = [r["ratio_to_torch_fp32"] for r in rows]
    same = [r["ratio_to_fp32_same_runtime"] for r in rows]
    assert to_torch[:5] == pytest.approx([1.0, 0.5, 0.2, 0.4, 0.3]) and to_torch[5] is None
    assert same[:4] == pytest.approx([1.0, 1.0, 0.4, 0.8]) and same[4:] == [None, None]


def test_ratios_without_a_reference_are_none():
    rows = add_ratios([{"key": "onnxruntime/fp32", "backend": "onnxruntime", "precision": "fp32",
                        "run_backend": "onnxruntime", "status": "ok", "p50_ms": 5.0}])
    assert rows[0]["ratio_to_torch_fp32"] is None and rows[0]["ratio_to_fp32_same_runtime"] == 1.0


def test_fingerprint_fields_and_id():
    fp = device_fingerprint()
    assert {"cpu", "board", "logical_cores", "physical_cores", "os", "os_family", "arch", "python", "runtimes",
            "gpu"} <= set(fp)
    assert fp["logical_cores"] >= 1 and fp["runtimes"]["numpy"] == np.__version__
    fid = fingerprint_id(fp)
    assert re.fullmatch(r"[a-z0-9_-]+", fid) and fid == fingerprint_id(dict(fp))
    assert fid.startswith(f"{fp['os_family']}-") and fid != fingerprint_id({**fp, "cpu": fp["cpu"] + " v2"})
    assert fid != fingerprint_id({**fp, "runtimes": {**fp["runtimes"], "onnxruntime": "0.0.1"}})
    assert fid != fingerprint_id({**fp, "gpu": "NVIDIA Orin (nvgpu), 540.4.0"})
    # same CPU name, other host: a machine with AVX512-VNNI is another device than one without
    assert fid != fingerprint_id({**fp, "isa": [f for f in fp["isa"] if f != "avx512_vnni"] + ["x"]})
    assert isinstance(fp["isa"], list)
    assert fid == fingerprint_id({**fp, "os": fp["os"] + "-another-kernel-build"})
    xeon = {**fp, "cpu": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", "os_family": "linux", "arch": "x86_64",
            "logical_cores": 2}
    assert re.fullmatch(r"linux-x86_64-intel-xeon-platinum-8481c-2c-[0-9a-f]{8}", fingerprint_id(xeon))


def test_peak_rss_is_the_processs_own():
    ballast = np.ones(256 << 20, dtype=np.uint8)                     # this process: at least 256 MiB
    child = subprocess.run([sys.executable, "-c", "from benchmarks.latency import peak_rss_mb; print(peak_rss_mb())"],
                           capture_output=True, text=True, cwd=ROOT, check=True)
    assert peak_rss_mb() >= 256 + float(child.stdout) / 2
    assert float(child.stdout) < 200 and ballast.sum() == ballast.size


def test_synthetic_inputs_are_encoded_and_seeded():
    image, trimap = synthetic_inputs((64, 96), seed=3)
    assert image.shape == (1, 3, 64, 96) and trimap.shape == (1, 1, 64, 96)
    assert image.dtype == trimap.dtype == np.float32 and -1 <= image.min() and image.max() <= 1
    assert set(np.unique(trimap)) == {0.0, 0.5, 1.0}
    assert trimap[0, 0, 32, 48] == 1.0 and trimap[0, 0, 0, 0] == 0.0
    assert np.array_equal(image, synthetic_inputs((64, 96), seed=3)[0])
    assert not np.array_equal(image, synthetic_inputs((64, 96), seed=4)[0])


def test_run_options_only_what_the_backend_takes():
    assert run_options("openvino", 2, "THROUGHPUT") == {"threads": 2, "hint": "THROUGHPUT"}
    assert run_options("onnxruntime", 2, "THROUGHPUT") == {"threads": 2}
    assert run_options("torch", None, "LATENCY") == {}
    assert run_options("tensorrt", 2, "LATENCY") == {} and run_options(None, 2, None) == {}


# --- the on-device command, on a tiny model at 64x64 ---------------------------------------------------------


def _fake_artifact(path: Path, backend: str, precision: str) -> None:
    """Bytes that are no model, with a manifest whose hash matches them: discovered like a real export."""
    if path.suffix == ".mlpackage":
        (path / "Data").mkdir(parents=True)
        (path / "Data" / "model.mlmodel").write_bytes(b"not a model")
    else:
        path.write_bytes(b"not a model")
    write_manifest(path, Manifest(backend=backend, precision=precision, model_config=get_config("tiny").to_dict(),
                                  input_size=list(SIZE)))


@pytest.fixture(scope="module")
def exported(seeded_model, tmp_path_factory):
    """A tiny checkpoint, and a folder with its FP32 ONNX, an unloadable ONNX and a CoreML-looking package."""
    root = tmp_path_factory.mktemp("latency")
    model = seeded_model("tiny")
    save_checkpoint(root / "tiny.pt", model)
    export_onnx(model, root / "export" / "tiny_fp32.onnx", SIZE)
    _fake_artifact(root / "export" / "tiny_int8.onnx", "onnxruntime", "int8")
    _fake_artifact(root / "export" / "tiny_fp16.mlpackage", "coreml", "fp16")
    return root


def _bench_args(root: Path, out: Path) -> list[str]:
    return ["--artifacts", str(root / "export"), "--checkpoint", str(root / "tiny.pt"), "--out", str(out),
            "--warmup", "1", "--runs", "3", "--threads", "1"]


@pytest.fixture(scope="module")
def with_torch(exported):
    """device_bench in this process: (the JSON it wrote, what it printed). The unloadable INT8 ONNX fails: the
    JSON is written all the same, and the exit code is 1, naming it, on stderr's last line."""
    out, printed, errors = exported / "with_torch.json", io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
        assert device_bench(_bench_args(exported, out)) == 1
    last = errors.getvalue().strip().splitlines()[-1]
    assert last.startswith("error: 1 artifact(s) failed: onnxruntime/int8: ") and "cannot load it" in last
    return json.loads(out.read_text()), printed.getvalue()


@pytest.fixture(scope="module")
def without_torch(exported):
    """device_bench where torch does not import, in this process or the ones it starts (sitecustomize)."""
    block = exported / "no_torch"
    block.mkdir()
    (block / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None\n")
    out = exported / "without_torch.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(block), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.device_bench", *_bench_args(exported, out),
                           "--keep-going"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr   # the INT8 ONNX failed, but --keep-going
    return json.loads(out.read_text()), proc.stdout


def test_device_bench_rows(with_torch, exported):
    r, printed = with_torch
    assert r["format"] == FORMAT and r["reference"] == "torch/fp32" and r["reference_note"] == ""
    assert {"fingerprint", "fingerprint_id", "created", "settings", "rows", "problems"} <= set(r)
    assert r["settings"]["input_size"] == list(SIZE) and r["settings"]["runs"] == 3
    rows = {row["id"]: row for row in r["rows"]}
    assert list(rows) == ["torch/fp32", "onnxruntime/fp32", "onnxruntime/int8", "coreml/fp16"]
    ref, fp32 = rows["torch/fp32"], rows["onnxruntime/fp32"]
    for row in (ref, fp32):
        assert row["status"] == "ok" and row["runs"] == 3 and row["warmup"] == 1 and row["threads"] == 1
        assert 0 < row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["peak_rss_mb"] > 0 and row["gmacs"] > 0 and row["size_bytes"] > 0
    assert ref["peak_rss_mb"] > fp32["peak_rss_mb"]                     # each process its own: torch is larger
    assert fp32["ratio_to_torch_fp32"] == pytest.approx(fp32["p50_ms"] / ref["p50_ms"])
    broken = rows["onnxruntime/int8"]
    assert broken["status"] == "failed" and "onnxruntime cannot load it" in broken["reason"]
    assert broken["ratio_to_torch_fp32"] is None
    coreml = rows["coreml/fp16"]
    expected = open_artifact(exported / "export" / "tiny_fp16.mlpackage")
    if not expected.runs_here:
        assert coreml["status"] == "not run" and coreml["reason"] == expected.note and "p50_ms" not in coreml
    assert "| torch/fp32" in printed and "not run" in printed and f"wrote {exported / 'with_torch.json'}" in printed


def test_device_bench_without_torch(without_torch):
    r, printed = without_torch
    assert r["reference"] is None and "torch is not installed" in r["reference_note"]
    rows = {row["id"]: row for row in r["rows"]}
    assert "torch/fp32" not in rows and rows["onnxruntime/fp32"]["status"] == "ok"
    assert rows["onnxruntime/fp32"]["ratio_to_torch_fp32"] is None and rows["onnxruntime/fp32"]["gmacs"] is None
    assert "no PyTorch FP32 reference row (torch is not installed" in printed


def test_merge_two_devices(with_torch, without_torch, tmp_path, capsys):
    pc, _ = with_torch
    phone = {**without_torch[0], "fingerprint": {**without_torch[0]["fingerprint"], "cpu": "Snapdragon 8 Gen 3"}}
    phone["fingerprint_id"] = fingerprint_id(phone["fingerprint"])
    (tmp_path / "pc.json").write_text(json.dumps(pc))
    (tmp_path / "phone.json").write_text(json.dumps(phone))
    out = tmp_path / "merged.md"
    assert device_bench(["merge", str(tmp_path / "pc.json"), str(tmp_path / "phone.json"), "--out", str(out)]) == 0
    text = out.read_text()
    tables = [t for t in text.split("\n\n") if t.startswith("| artifact")]
    assert len(tables) == 1
    header, _, *lines = tables[0].splitlines()
    assert f"{pc['fingerprint_id']} p50 ms" in header and f"{phone['fingerprint_id']} p50 ms" in header
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines}
    assert list(cells) == ["torch/fp32", "onnxruntime/fp32", "onnxruntime/int8", "coreml/fp16"]
    assert cells["torch/fp32"][2:] == ["—", "—"]                         # the phone has no reference row
    fp32 = {r["id"]: r for r in pc["rows"]}["onnxruntime/fp32"]
    assert cells["onnxruntime/fp32"][:2] == [f"{fp32['p50_ms']:.1f}", f"{fp32['ratio_to_torch_fp32']:.3g}×"]
    assert cells["onnxruntime/fp32"][3] == "—" and cells["coreml/fp16"][0] in ("not run", "failed")
    assert "Snapdragon 8 Gen 3" in text and capsys.readouterr().out.strip() == f"wrote {out}"


def test_merge_refuses_other_json(with_torch, exported, tmp_path):
    (tmp_path / "ok.json").write_text(json.dumps(with_torch[0]))
    (tmp_path / "corrupt.json").write_text('{"format": ')
    manifest = exported / "export" / "tiny_fp32.onnx.manifest.json"
    for bad, says in ((manifest, "not a latency result"), (tmp_path / "corrupt.json", "not readable JSON"),
                      (tmp_path / "missing.json", "not found")):
        proc = subprocess.run([sys.executable, "-m", "benchmarks.device_bench", "merge", str(tmp_path / "ok.json"),
                               str(bad)], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.startswith(f"error: {bad}: {says}") and proc.stderr.count("\n") == 1


def test_device_bench_bad_folders(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for folder, says in ((tmp_path / "missing", "no such folder"), (tmp_path / "empty", "no artifacts in")):
        assert device_bench(["--artifacts", str(folder), "--out", str(tmp_path / "r.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and says in err and err.count("\n") == 1
    assert not (tmp_path / "r.json").exists()
    # an output that cannot be written fails before the artifacts are even looked at, naming the output
    (tmp_path / "taken.json").mkdir()
    assert device_bench(["--artifacts", str(tmp_path / "missing"), "--out", str(tmp_path / "taken.json")]) == 2
    assert "taken.json: is a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        device_bench(["--artifacts", str(tmp_path / "empty"), "--threads", "0"])
    assert "--threads: must be >= 1" in capsys.readouterr().err


def test_device_bench_exit_code_follows_failures_and_damage(seeded_model, tmp_path, capsys):
    """Exit 0 when everything that should run here ran (a runtime that is absent is "not run", not a failure);
    exit 1 when an artifact is damaged or fails, unless --keep-going."""
    model = seeded_model("tiny")
    fp32 = tmp_path / "export" / "tiny_fp32.onnx"
    export_onnx(model, fp32, SIZE)
    _fake_artifact(tmp_path / "export" / "tiny_fp16.mlpackage", "coreml", "fp16")
    save_checkpoint(tmp_path / "tiny.pt", model)
    args = ["--artifacts", str(tmp_path / "export"), "--checkpoint", str(tmp_path / "tiny.pt"), "--out", str(tmp_path / "r.json"),
            "--warmup", "0", "--runs", "1", "--threads", "1"]
    coreml_runs_here = open_artifact(tmp_path / "export" / "tiny_fp16.mlpackage").runs_here
    assert device_bench(args) == (1 if coreml_runs_here else 0)
    capsys.readouterr()
    fp32.write_bytes(fp32.read_bytes()[:-10])   # truncated after export: damaged, not silently skipped
    assert device_bench(args) == 1
    err = capsys.readouterr().err
    assert "error: " in err and "tiny_fp32.onnx: does not match its manifest" in err
    assert device_bench(args + ["--keep-going"]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["problems"]


def test_a_reference_checkpoint_of_another_model_is_not_used(seeded_model, tmp_path):
    from adamatting.checkpoint import CheckpointError
    from benchmarks.latency import bench_all

    model = seeded_model("tiny")
    ours = save_checkpoint(tmp_path / "ours.pt", model)
    resaved = save_checkpoint(tmp_path / "resaved.pt", model, note="same weights, other bytes")
    other = save_checkpoint(tmp_path / "other.pt", build_model(get_config("tiny-guided")).eval())
    export_onnx(model, tmp_path / "export" / "tiny_fp32.onnx", SIZE)
    for same in (ours, resaved):   # the same network: its reference row is timed
        assert bench_all(tmp_path / "export", same, warmup=0, runs=1, threads=1)["reference"] == "torch/fp32"
    r = bench_all(tmp_path / "export", other, warmup=0, runs=1, threads=1)
    # another network: the ONNX row is timed, the checkpoint is not timed as its reference, no ratio made up
    assert [row["id"] for row in r["rows"]] == ["onnxruntime/fp32"] and r["reference"] is None
    assert ("other.pt is another model than the artifacts were exported from (name 'tiny-guided' vs 'tiny'; "
            "guided_scale 2 vs 1") in r["reference_note"]
    assert r["rows"][0]["ratio_to_torch_fp32"] is None
    with pytest.raises(CheckpointError, match="nope.pt: checkpoint not found"):
        bench_all(tmp_path / "export", tmp_path / "nope.pt", warmup=0, runs=1)
