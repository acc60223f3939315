"""The INT8 and FP32 artifacts on Arm CPU kernels, without a phone: run under qemu's aarch64 emulation and gated.

    python -m benchmarks.arm_emulation [--cpus cortex-a76 max] [--artifacts out/export] [--out out/arm]

(``make verify-arm`` builds the aarch64 interpreter and its wheels in ``.arm/`` first: ``scripts/verify_arm.sh``.)
The x86 side does everything but the network: it builds the gate sets and runs the app's path
(:class:`runtime.matter.Matter`: letterbox, guided upsampling, the band's tiles, the band refiner, the clamp) and
the scores of :mod:`evaluation.accuracy`, exactly as ``adamat gate``. Each network call goes to :class:`ArmReplay`,
which answers with the alpha the Arm run computed for those very inputs; inputs it has no answer for are
collected, run in one batch by ``scripts/arm_runner.py`` on the emulated CPU (numpy and the runtime only), and
the sets are scored again, until every alpha came from Arm (the band's tiles depend on the first alpha: two or
three rounds). Then ``benchmarks/gates.toml`` applies to the Arm rows as to x86's. The adapted trimap output is
not used by the gated path and comes from x86.

Emulated time says nothing about a phone's latency: nothing here is timed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from adamatting.config import DEFAULT_WEIGHTS
from benchmarks.fingerprint import measured_header
from benchmarks.gates import GATES_TOML, Gates, check, failures, table
from common.outputs import write_json, write_text
from evaluation.accuracy import AccuracyRow, Evaluator, drops, mask_samples, real_samples, val_samples
from export.job import composited_set
from runtime.artifacts import Artifact, current, open_runner, reference
from runtime.backends.onnxruntime_backend import SESSION_CONFIG

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "scripts" / "arm_runner.py"
QEMU = "qemu-aarch64-static"
CPUS = ("cortex-a76", "max")
KEYS = ("onnxruntime/fp32", "onnxruntime/int8", "executorch/fp32", "executorch/int8")
MAX_ROUNDS = 4


def cpu_slug(cpu: str) -> str:
    """A qemu CPU with its properties as a file name: ``max,sme=off`` → ``max-sme-off``."""
    return cpu.replace(",", "-").replace("=", "-")


class EmulationError(RuntimeError):
    """Emulation cannot run (no qemu, no aarch64 interpreter, a runner that failed): one line for the user."""


@dataclass
class ArmCpu:
    """One emulated CPU: ``qemu-aarch64-static -cpu <cpu>`` over the aarch64 sysroot in ``root``. Each CPU has its
    own view of the sysroot (links to it) with the ``/proc/cpuinfo`` and MIDR files of that CPU: qemu 7.2 shows
    the host's, on which onnxruntime's and torch's CPU detection crash."""

    cpu: str
    root: Path = ROOT / ".arm"
    threads: int = 1

    @property
    def view(self) -> Path:
        return self.root / f"cpu-{cpu_slug(self.cpu)}"

    def check(self) -> None:
        if shutil.which(QEMU) is None:
            raise EmulationError(f"{QEMU} not found: run `make verify-arm` (it installs qemu-user-static)")
        if not (self.root / "site" / ".complete").is_file() or not (self.root / "sysroot" / "usr" / "bin" / "python3.11").is_file():
            raise EmulationError(f"{self.root}: no aarch64 Python with the runtimes: run `make verify-arm` "
                                 f"(or scripts/verify_arm.sh --setup-only) first")

    def _prepare_view(self) -> None:
        self.view.mkdir(parents=True, exist_ok=True)
        for entry in (self.root / "sysroot").iterdir():
            link = self.view / entry.name
            if entry.name not in ("proc", "sys") and not link.exists():
                link.symlink_to(entry.resolve())

    def call(self, *args: str, env: dict[str, str] | None = None) -> dict:
        """Run the runner with ``args`` (and the variables ``env``) on this CPU; its JSON line. EmulationError with
        its last line on failure."""
        command = [QEMU, "-L", str(self.view), "-cpu", self.cpu, str(self.view / "usr/bin/python3.11"), str(RUNNER), *args]
        env = {**os.environ, "PYTHONPATH": str((self.root / "site").resolve()), "PYTHONNOUSERSITE": "1", **(env or {})}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise EmulationError(f"-cpu {self.cpu}: the Arm runner failed: {why}")
        return json.loads(lines[-1]) | {"log": _runtime_log(done.stderr)}

    def start(self) -> dict:
        """Prepare the view, read what the CPU advertises and write its cpuinfo; the probe's JSON."""
        self.check()
        self._prepare_view()
        found = self.call("probe")
        write_cpu_files(self.view, found, os.cpu_count() or 1)
        return found

    def run(self, artifact: Path, inputs: Path, outputs: Path) -> dict:
        config = [a for k, v in SESSION_CONFIG.items() for a in ("--config", f"{k}={v}")] if artifact.suffix == ".onnx" else []
        return self.call("run", str(artifact.resolve()), str(inputs), str(outputs), "--threads", str(self.threads), *config)


def _runtime_log(stderr: str) -> list[str]:
    """The runtime's own lines about kernels and CPU detection (ExecuTorch logs them), deduplicated."""
    keep = [ln.strip() for ln in stderr.splitlines() if any(w in ln.lower() for w in ("xnn", "kernel", "cpuinfo", "kleidi"))]
    return list(dict.fromkeys(keep))[:40]


def write_cpu_files(view: Path, probe: dict, count: int) -> None:
    """``/proc/cpuinfo`` and ``/sys/.../midr_el1`` for ``count`` cores of the probed CPU, as Linux on Arm writes them."""
    midr = int(probe["midr"] or "0", 16)
    block = (f"BogoMIPS\t: 50.00\nFeatures\t: {' '.join(probe['features'])}\nCPU implementer\t: 0x{midr >> 24:02x}\n"
             f"CPU architecture: 8\nCPU variant\t: 0x{midr >> 20 & 0xF:x}\nCPU part\t: 0x{midr >> 4 & 0xFFF:03x}\n"
             f"CPU revision\t: {midr & 0xF}\n")
    (view / "proc").mkdir(exist_ok=True)
    write_text("".join(f"processor\t: {i}\n{block}\n" for i in range(count)), view / "proc" / "cpuinfo")
    for i in range(count):
        regs = view / "sys" / "devices" / "system" / "cpu" / f"cpu{i}" / "regs" / "identification"
        regs.mkdir(parents=True, exist_ok=True)
        write_text(f"0x{midr:016x}\n", regs / "midr_el1")


@dataclass
class Deltas:
    """|Δα| between the Arm and the x86 network outputs over every call of a round."""

    max: float = 0.0
    total: float = 0.0
    pixels: int = 0
    calls: int = 0

    def add(self, arm: np.ndarray, x86: np.ndarray) -> None:
        d = np.abs(arm.astype(np.float64) - x86)
        self.max, self.total = max(self.max, float(d.max())), self.total + float(d.sum())
        self.pixels, self.calls = self.pixels + d.size, self.calls + 1

    def summary(self) -> dict:
        return {"max_abs_dalpha": self.max, "mean_abs_dalpha": self.total / max(self.pixels, 1), "calls": self.calls}


class ArmReplay:
    """A backend answering each network call with the Arm run's alpha for the same inputs. A call it has no
    answer for is kept in ``pending`` and answered with x86's, so the pass goes on; the next round has it."""

    def __init__(self, x86):
        self.x86 = x86
        self.arm: dict[str, np.ndarray] = {}
        self.pending: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.deltas = Deltas()

    def __getattr__(self, name):   # name, precision, input_size, stride, manifest: the artifact's
        return getattr(self.x86, name)

    def run(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = hashlib.sha256(np.ascontiguousarray(image).tobytes() + np.ascontiguousarray(trimap).tobytes()).hexdigest()
        alpha, prob = self.x86.run(image, trimap)
        if key not in self.arm:
            self.pending[key] = (np.array(image, np.float32), np.array(trimap, np.float32))
            return alpha, prob
        self.deltas.add(self.arm[key], alpha)
        return self.arm[key], prob

    def write_pending(self, path: Path) -> list[str]:
        keys = list(self.pending)
        np.savez(path, image=np.stack([self.pending[k][0] for k in keys]),
                 trimap=np.stack([self.pending[k][1] for k in keys]))
        return keys

    def take(self, keys: list[str], outputs: Path) -> None:
        with np.load(outputs) as data:
            self.arm.update(zip(keys, data["alpha"]))
        self.pending.clear()


class ReplayEvaluator(Evaluator):
    """:class:`evaluation.accuracy.Evaluator` scoring a backend it is given (the Arm replay) on the same sets,
    against the same FP32 reference."""

    def score_backend(self, a: Artifact, backend, note: str) -> AccuracyRow:
        scores = {name: self._score_set(name, predict, False) for name, predict in self._predictors(backend)}
        for name, sc in scores.items():
            sc.drop = drops(sc.metrics, self.ref_row.sets[name].metrics)
        return AccuracyRow(a, "measured", note, scores)


@dataclass
class ArmResult:
    cpu: str
    rows: list[AccuracyRow] = field(default_factory=list)
    deltas: dict[str, dict] = field(default_factory=dict)
    runtime: dict[str, dict] = field(default_factory=dict)
    rounds: dict[str, int] = field(default_factory=dict)


def emulate_round(cpu: ArmCpu, replay: ArmReplay, artifact: Path, work: Path) -> dict:
    inputs, outputs = work / f"{cpu.cpu}-in.npz", work / f"{cpu.cpu}-out.npz"
    keys = replay.write_pending(inputs)
    info = cpu.run(artifact, inputs, outputs)
    replay.take(keys, outputs)
    return info


def verify_artifact(ev: ReplayEvaluator, a: Artifact, cpus: list[ArmCpu], results: dict[str, ArmResult],
                    progress) -> None:
    """Rounds of scoring and emulating, every CPU's batch in parallel, until each CPU's pass ran on Arm alone."""
    replays = {c.cpu: ArmReplay(open_runner(a, ev.input_size)) for c in cpus}
    with tempfile.TemporaryDirectory(prefix="arm-") as work, ThreadPoolExecutor(len(cpus)) as pool:
        for round_no in range(1, MAX_ROUNDS + 1):
            rows = {}
            for c in cpus:
                replays[c.cpu].deltas = Deltas()
                rows[c.cpu] = ev.score_backend(a, replays[c.cpu], f"Arm -cpu {c.cpu} (emulated)")
            todo = [c for c in cpus if replays[c.cpu].pending]
            if not todo:
                break
            progress(f"{a.label}: round {round_no}, " + ", ".join(f"{len(replays[c.cpu].pending)} calls on -cpu {c.cpu}"
                                                                  for c in todo))
            infos = pool.map(lambda c: (c.cpu, emulate_round(c, replays[c.cpu], a.path, Path(work))), todo)
            for name, info in infos:
                results[name].runtime.setdefault(a.key, info)
        else:
            raise EmulationError(f"{a.path}: still calls without an Arm answer after {MAX_ROUNDS} rounds")
    for c in cpus:
        results[c.cpu].rows.append(rows[c.cpu])
        results[c.cpu].deltas[a.key] = replays[c.cpu].deltas.summary()
        results[c.cpu].rounds[a.key] = round_no


def gate_lines(rows: list[AccuracyRow], ref_row: AccuracyRow, gates: Gates) -> tuple[list[dict], list[str]]:
    results = check([ref_row, *rows], gates)
    return table([ref_row, *rows], results), failures([], results)


def summary_rows(result: ArmResult, x86: list[AccuracyRow], gates: Gates) -> list[dict]:
    """One line per artifact: |Δα| against x86 and the gate values of each set on Arm, x86's verdict beside."""
    arm_table = {line["artifact"]: line for line in gate_lines(result.rows, x86[0], gates)[0][1:]}
    x86_table = {line["artifact"]: line for line in gate_lines(x86[1:], x86[0], gates)[0][1:]}
    out = []
    for row in result.rows:
        a, d = row.artifact, result.deltas[row.artifact.key]
        line = {"artifact": a.key, "max abs Δα vs x86": round(d["max_abs_dalpha"], 6),
                "mean abs Δα vs x86": round(d["mean_abs_dalpha"], 8), "network calls": d["calls"],
                "samples": ", ".join(f"{k} {v.samples}" for k, v in row.sets.items())}
        line |= {k: v for k, v in arm_table[a.label].items() if k not in ("artifact", "status", "gate")}
        out.append(line | {"gate on Arm": arm_table[a.label]["gate"], "gate on x86": x86_table[a.label]["gate"]})
    return out


def measured(result: ArmResult, probe: dict, x86: list[AccuracyRow], gates: Gates, args, input_size) -> dict:
    rows = summary_rows(result, x86, gates)
    head = measured_header("arm-emulated", input_size=input_size, threads=args.threads, runtimes=("onnxruntime", "executorch"),
                           model=f"{_relative(args.checkpoint)} at {input_size[0]}x{input_size[1]}: its ONNX and ExecuTorch "
                                 f"exports (the gate keys in the rows)",
                           method="the gate sets of adamat gate; network calls on the emulated CPU (scripts/arm_runner.py), "
                                  "everything else on x86; |Δα| over the network outputs of every call; not timed",
                           command=["python", "-m", "benchmarks.arm_emulation", *sys.argv[1:]])
    host = head["device"]
    head["device"] = {"cpu": f"Arm -cpu {result.cpu} emulated by {_qemu_version()} on {host['cpu']}",
                      "cores": host["cores"], "isa": probe["features"], "os": "linux",
                      "isa_note": f"HWCAP {probe['hwcap']}, HWCAP2 {probe['hwcap2']}, MIDR_EL1 {probe['midr']}"}
    details = {"violations": {r.artifact.key: gate_lines([r], x86[0], gates)[1] for r in result.rows},
               "rounds": result.rounds,
               "runtimes": result.runtime, "gates": _relative(gates.source),
               "sets": {r.artifact.key: {k: vars(v) for k, v in r.sets.items()} for r in result.rows},
               "x86_sets": {r.artifact.key: {k: vars(v) for k, v in r.sets.items()} for r in x86[1:]}}
    return head | {"columns": list(rows[0]), "rows": rows, "details": details}


def _relative(path: str | Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _qemu_version() -> str:
    done = subprocess.run([QEMU, "--version"], capture_output=True, text=True)
    return (done.stdout.splitlines() or [QEMU])[0].replace(" version ", " ")


def select(args, input_size) -> list[Artifact]:
    artifacts, problems = current(args.artifacts, input_size, args.checkpoint)
    if problems:
        raise EmulationError(f"unusable artifact: {problems[0]}")
    chosen = [a for a in artifacts if a.key in args.keys]
    missing = sorted(set(args.keys) - {a.key for a in chosen})
    if missing:
        raise EmulationError(f"{args.artifacts}: no {input_size[0]}x{input_size[1]} artifact for {', '.join(missing)} "
                             f"of {args.checkpoint}: run `make export-all` first")
    return sorted(chosen, key=lambda a: args.keys.index(a.key))


def parse(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.arm_emulation", description=__doc__.split("\n\n")[0])
    p.add_argument("--cpus", nargs="+", default=list(CPUS), help="qemu CPU models (`qemu-aarch64-static -cpu help`)")
    p.add_argument("--artifacts", default="out/export")
    p.add_argument("--checkpoint", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"))
    p.add_argument("--keys", nargs="+", default=list(KEYS), choices=KEYS, help="which artifacts (gate keys)")
    p.add_argument("--val", default="val")
    p.add_argument("--val-limit", type=int, default=None, help="validation composites to use (default: all)")
    p.add_argument("--no-real", action="store_true", help="skip the held-back real photos")
    p.add_argument("--cache", default="cache/sets")
    p.add_argument("--threads", type=int, default=1, help="threads of each emulated runtime")
    p.add_argument("--arm-dir", default=str(ROOT / ".arm"))
    p.add_argument("--out", default="out/arm", help="one measured-results JSON per CPU goes here")
    p.add_argument("--tag", default="", help="appended to the JSON names (the host, e.g. epyc-2c)")
    return p.parse_args(argv)


def verify(args) -> int:
    size = tuple(args.size)
    gates = Gates.load(GATES_TOML)
    cpus = [ArmCpu(c, Path(args.arm_dir), args.threads) for c in args.cpus]
    for c in cpus:
        c.check()
    if not Path(args.checkpoint).is_file():
        raise EmulationError(f"{args.checkpoint}: the FP32 reference checkpoint is missing")
    artifacts = select(args, size)
    probes = {c.cpu: c.start() for c in cpus}
    for name, found in probes.items():
        print(f"-cpu {name}: {' '.join(found['features'])} (MIDR_EL1 {found['midr']})", file=sys.stderr)
    cset = composited_set(args.val, size, Path(args.cache), progress=False)
    sets = {"val": val_samples(cset, args.val_limit), "real": [] if args.no_real else real_samples(),
            "mask": [] if args.no_real else mask_samples()}
    ev = ReplayEvaluator(reference(args.checkpoint), size, sets)
    x86 = [ev.ref_row, *(ev.evaluate(a) for a in artifacts)]
    results = {c.cpu: ArmResult(c.cpu) for c in cpus}
    for a in artifacts:
        verify_artifact(ev, a, cpus, results, lambda m: print(m, file=sys.stderr, flush=True))
    return report(results, probes, x86, gates, args, size)


def merged(data: dict, path: Path) -> dict:
    """``data`` with the rows of artifacts it lacks from the file already at ``path`` (another run of the day on the
    same CPU: the FP32 programs on fewer samples than the INT8 ones, say)."""
    if not path.is_file():
        return data
    old = json.loads(path.read_text())
    mine = {r["artifact"] for r in data["rows"]}
    kept = [r for r in old.get("rows", []) if r["artifact"] not in mine and set(r) == set(data["columns"])]
    details = data["details"]
    for section in ("violations", "rounds", "runtimes", "sets", "x86_sets"):
        details[section] = {k: v for k, v in old["details"].get(section, {}).items() if k not in mine} | details[section]
    rows = sorted(kept + data["rows"], key=lambda r: KEYS.index(r["artifact"]) if r["artifact"] in KEYS else len(KEYS))
    return data | {"rows": rows, "command": "; ".join(dict.fromkeys([old.get("command", ""), data.get("command", "")]))}


def report(results: dict[str, ArmResult], probes: dict, x86: list[AccuracyRow], gates: Gates, args, size) -> int:
    from benchmarks.report import md_table
    failed = []
    for name, result in results.items():
        path = Path(args.out) / f"arm-emulated-{date.today().isoformat()}-{cpu_slug(name)}{'-' + args.tag if args.tag else ''}.json"
        data = merged(measured(result, probes[name], x86, gates, args, size), path)
        write_json(data, path)
        print(f"\n## -cpu {name} ({path})\n\n{md_table(data['rows'])}")
        failed += [f"-cpu {name}: {v}" for lines in data["details"]["violations"].values() for v in lines]
    for line in failed:
        print(f"  {line}", file=sys.stderr)
    print(f"\n{len(failed)} accuracy gate(s) violated on Arm" if failed else "\nall accuracy gates pass on Arm")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return verify(args)
    except (EmulationError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
