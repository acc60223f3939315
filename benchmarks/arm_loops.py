"""The runtime's compiled loops on Arm CPUs, without an Arm machine: built and run under qemu's aarch64 emulation.

    python -m benchmarks.arm_loops [--cpus cortex-a76 max] [--out out/arm]

(``make verify-arm`` runs it after the artifacts' verification; ``scripts/verify_arm.sh --setup-only`` builds the
aarch64 interpreter, numba and the cross compilers in ``.arm/`` first.) On each emulated CPU, in a copy of the
``runtime`` package, ``scripts/arm_runner.py loops`` builds the loops' extension as ``make setup`` does on an Arm
machine (``runtime.kernel_build``: numba's ahead-of-time compiler for the architecture's baseline, the aarch64 C
compiler the interpreter names), checks that the runtime loads it, and runs every loop of
:data:`runtime.kernel_source.EXPORTS` through it and through numba's JIT (where the extension is missing) on the
arguments of :func:`benchmarks.kernel_cases.cases`. Each output is compared with the x86 extension's on the
same arguments: the indices and counts exactly, the pixels (uint8) within one level, the floats within
:data:`FLOAT_TOLERANCE`. One measured-results file per CPU (``arm-loops-<date>-<cpu>.json``); exit 1 where a
loop differs beyond that, 2 where emulation cannot run. Nothing is timed.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.arm_emulation import CPUS, ROOT, ArmCpu, EmulationError, cpu_slug
from benchmarks.fingerprint import measured_header
from benchmarks.kernel_cases import cases, run_all
from common.outputs import write_json
from runtime import kernels

FLOAT_TOLERANCE = 1e-5        # largest |Δ| of a float32 output (values of order 1): a last bit, not a wrong pixel
WAYS = ("ahead of time", "just in time")


def project_copy(folder: Path) -> Path:
    """``runtime`` (no extension, no caches) and ``benchmarks/kernel_cases.py`` copied into ``folder``: the tree the
    emulated build writes into, so the x86 extension beside the real source is never touched."""
    shutil.copytree(ROOT / "runtime", folder / "runtime",
                    ignore=shutil.ignore_patterns("_kernels_*", ".kernel-build-*", "__pycache__"))
    (folder / "benchmarks").mkdir()
    (folder / "benchmarks" / "__init__.py").touch()
    shutil.copy2(ROOT / "benchmarks" / "kernel_cases.py", folder / "benchmarks")
    return folder


def compiler_flags(cpu: ArmCpu) -> dict[str, str]:
    """Where the emulated interpreter's compiler finds Python's headers: the aarch64 sysroot's (the cross compiler
    runs natively and would read the host's /usr/include), the sysroot's other headers searched after the cross
    compiler's own C library (``-idirafter``: only for pyconfig.h's architecture folder); the user's CFLAGS kept."""
    include = (cpu.root / "sysroot" / "usr" / "include").resolve()
    return {"CFLAGS": f"{os.environ.get('CFLAGS', '')} -I{include / 'python3.11'} -idirafter {include}".strip()}


def difference(x86: tuple, arm: tuple) -> dict:
    """How one loop's outputs on Arm differ from x86's: the value returned and each array argument after the call."""
    (value, arrays), (arm_value, arm_arrays) = x86, arm
    largest, differing, within = 0.0, 0, value == arm_value and len(arrays) == len(arm_arrays)
    for a, b in zip(arrays, arm_arrays):
        if a.shape != b.shape or a.dtype != b.dtype:
            return {"identical": False, "within tolerance": False, "largest |Δ|": None, "elements differing": None}
        delta = np.abs(a.astype(np.float64) - b.astype(np.float64))
        largest, differing = max(largest, float(delta.max(initial=0.0))), differing + int(np.count_nonzero(delta))
        limit = FLOAT_TOLERANCE if a.dtype.kind == "f" else 1.0 if a.dtype == np.uint8 else 0.0
        within = within and bool(delta.max(initial=0.0) <= limit)
    return {"identical": within and differing == 0 and value == arm_value, "within tolerance": within,
            "largest |Δ|": largest, "elements differing": differing}


def rows(x86: dict, arm: dict) -> list[dict]:
    return [{"loop": name, "way": way, **difference(x86[name], arm[way][name])} for way in WAYS for name in x86]


def verify(args) -> int:
    cpus = [ArmCpu(c, Path(args.arm_dir)) for c in args.cpus]
    for cpu in cpus:
        cpu.check()
    arguments = {name: make() for name, make in cases(np.random.default_rng(0)).items()}
    x86 = run_all(kernels.loops(), arguments)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp, "inputs.pickle")
        inputs.write_bytes(pickle.dumps(arguments))
        for cpu in cpus:
            probe = cpu.start()
            tree = project_copy(Path(tmp, cpu_slug(cpu.cpu)))
            outputs = Path(tmp, f"{cpu_slug(cpu.cpu)}.pickle")
            info = cpu.call("loops", str(tree), str(inputs), str(outputs), env=compiler_flags(cpu))
            table = rows(x86, pickle.loads(outputs.read_bytes()))
            failed += [f"-cpu {cpu.cpu}: {r['loop']} ({r['way']}) differs from x86: largest |Δ| {r['largest |Δ|']}"
                       for r in table if not r["within tolerance"]]
            path = Path(args.out) / f"arm-loops-{date.today().isoformat()}-{cpu_slug(cpu.cpu)}.json"
            write_json(measured(cpu, probe, info, table, x86_ahead_of_time=kernels.ahead_of_time()), path)
            same = sum(r["identical"] for r in table)
            print(f"-cpu {cpu.cpu}: {info['extension']} built and loaded; {same} of {len(table)} loop runs identical "
                  f"to x86's ({path})")
    for line in failed:
        print(f"  {line}", file=sys.stderr)
    print(f"{len(failed)} loop run(s) differ on Arm" if failed else "every loop gives x86's results on Arm")
    return 1 if failed else 0


def measured(cpu: ArmCpu, probe: dict, info: dict, table: list[dict], x86_ahead_of_time: bool) -> dict:
    head = measured_header(
        "arm-loops", input_size=[24, 30], threads=None, model="runtime/kernel_source.py", runtimes=(),
        method=(f"the runtime's loops built by runtime.kernel_build on qemu-aarch64 -cpu {cpu.cpu} (numba "
                f"{info['numba']}'s pycc, the aarch64 C compiler the interpreter names) and run through that extension "
                "and through numba's JIT, each on benchmarks.kernel_cases' arguments (seed 0), against the x86 "
                + ("extension" if x86_ahead_of_time else "JIT") + " on the same arguments; tolerance: indices and "
                f"counts exact, uint8 within 1, float32 within {FLOAT_TOLERANCE:g}"),
        command=["python", "-m", "benchmarks.arm_loops", "--cpus", cpu.cpu])
    details = {"emulated_cpu": {"cpu": cpu.cpu, "features": probe["features"], "midr": probe["midr"]},
               "extension": info["extension"]}
    return head | {"details": details, "columns": list(table[0]), "rows": table}


def parse(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.arm_loops", description=__doc__.split("\n\n")[0])
    p.add_argument("--cpus", nargs="+", default=list(CPUS), help="qemu CPU models (`qemu-aarch64-static -cpu help`)")
    p.add_argument("--arm-dir", default=str(ROOT / ".arm"))
    p.add_argument("--out", default="out/arm", help="one measured-results JSON per CPU goes here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return verify(args)
    except (EmulationError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
