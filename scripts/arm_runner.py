"""The part of ``make verify-arm`` that runs on the (emulated) Arm CPU: one exported network on prepared inputs.

    python arm_runner.py probe
    python arm_runner.py run ARTIFACT INPUTS.npz OUTPUTS.npz [--config KEY=VALUE ...] [--threads N]
    python arm_runner.py loops TREE INPUTS.pickle OUTPUTS.pickle

``probe`` prints what the CPU advertises: the kernel's HWCAP / HWCAP2 bits by name and MIDR_EL1. ``run`` reads
``image`` (N, 1, 3, H, W) and ``trimap`` (N, 1, 1, H, W) float32 from INPUTS.npz, runs the artifact on each pair
(onnxruntime for ``.onnx``, with the session config entries given; ExecuTorch's runtime for ``.pte``) and writes
``alpha`` (N, 1, 1, H, W) to OUTPUTS.npz, then prints one JSON line: the runtime, its version and the kernels it
says it ran. The x86 side (``benchmarks.arm_emulation``) letterboxes the inputs before and scores the alphas after.
Imports numpy and the artifact's runtime only, never the project: it runs on an interpreter that has nothing else.
``loops`` is the exception, the project's compiled loops being what it verifies: in TREE, a copy of the project's
``runtime`` package and ``benchmarks/kernel_cases.py``, it builds the extension as ``make setup`` does
(``runtime.kernel_build``, with this CPU's compiler), runs every loop on the arguments of INPUTS.pickle (name →
argument tuple) through the extension and through numba's JIT, and writes, for each way, name → (the value
returned, the array arguments after) to OUTPUTS.pickle (``benchmarks.arm_loops`` compares them with x86's).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import pickle
import sys
import tempfile
from collections import Counter

import numpy as np

AT_HWCAP, AT_HWCAP2 = 16, 26
# Linux arm64 hwcap names, bit by bit (arch/arm64/kernel/cpuinfo.c), as /proc/cpuinfo spells them.
HWCAP = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop "
         "sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg").split()
HWCAP2 = ("dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm svef32mm svef64mm svebf16 "
          "i8mm bf16 dgh rng bti mte ecv afp rpres mte3 sme smei16i64 smef64f64 smei8i32 smef16f32 smeb16f32 "
          "smef32f32 smefa64 wfxt ebf16 sveebf16 cssc rprfm sve2p1 sme2 sme2p1 smei16i32 smebi32i32 smeb16b16 "
          "smef16f16").split()
MRS_X0_MIDR_EL1_RET = (0xD5380000).to_bytes(4, "little") + (0xD65F03C0).to_bytes(4, "little")


def bit_names(value: int, names: tuple | list) -> list[str]:
    return [n for i, n in enumerate(names) if value >> i & 1]


def read_midr() -> int:
    """MIDR_EL1, read the way Linux lets user space read it (HWCAP_CPUID: the kernel emulates the MRS)."""
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(MRS_X0_MIDR_EL1_RET)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    return int(ctypes.CFUNCTYPE(ctypes.c_uint64)(address)())


def probe() -> dict:
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    hwcap, hwcap2 = int(libc.getauxval(AT_HWCAP)), int(libc.getauxval(AT_HWCAP2))
    return {"hwcap": hex(hwcap), "hwcap2": hex(hwcap2), "features": bit_names(hwcap, HWCAP) + bit_names(hwcap2, HWCAP2),
            "midr": hex(read_midr()) if "cpuid" in bit_names(hwcap, HWCAP) else None}


def onnx_session(artifact: str, config: list[str], threads: int | None, profile_dir: str):
    import onnxruntime as ort
    options = ort.SessionOptions()
    for entry in config:
        key, _, value = entry.partition("=")
        options.add_session_config_entry(key, value)
    if threads:
        options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(profile_dir, "profile")
    return ort.InferenceSession(artifact, options, providers=["CPUExecutionProvider"]), ort.__version__


def run_onnx(artifact: str, images: np.ndarray, trimaps: np.ndarray, config: list[str], threads: int | None):
    with tempfile.TemporaryDirectory() as profile_dir:
        session, version = onnx_session(artifact, config, threads, profile_dir)
        alphas = [session.run(["alpha"], {"image": im, "trimap": tr})[0] for im, tr in zip(images, trimaps)]
        profile = session.end_profiling()
        with open(profile) as f:
            events = json.load(f)
    ops = Counter(f"{e['args']['op_name']} ({e['args'].get('provider', '?')})" for e in events
                  if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and "op_name" in e.get("args", {}))
    calls = max(len(alphas), 1)
    kernels = {op: n // calls for op, n in sorted(ops.items())}
    return np.stack(alphas), {"runtime": "onnxruntime", "version": version, "kernels": kernels}


def run_pte(artifact: str, images: np.ndarray, trimaps: np.ndarray, threads: int | None):
    """ExecuTorch's runtime itself (``executorch.runtime`` is a wrapper over the same calls that also imports the
    exporter's packages). Its pybindings take torch tensors: torch is imported for them, and nothing else."""
    import torch
    from importlib import metadata
    from executorch.extension.pybindings import _C
    if threads:
        _C._unsafe_reset_threadpool(threads)
    method = _C._load_program(artifact).load_method("forward")
    alphas = [method([torch.from_numpy(np.ascontiguousarray(im)), torch.from_numpy(np.ascontiguousarray(tr))])[0]
              .numpy() for im, tr in zip(images, trimaps)]
    return np.stack(alphas), {"runtime": "executorch", "version": metadata.version("executorch"),
                              "backends": list(_C._get_registered_backend_names()), "kernels": {}}


def run(args) -> dict:
    with np.load(args.inputs) as data:
        images, trimaps = data["image"].astype(np.float32), data["trimap"].astype(np.float32)
    if args.artifact.endswith(".onnx"):
        alphas, info = run_onnx(args.artifact, images, trimaps, args.config, args.threads)
    else:
        alphas, info = run_pte(args.artifact, images, trimaps, args.threads)
    partial = args.outputs + ".part.npz"
    np.savez(partial, alpha=alphas.astype(np.float32))
    os.replace(partial, args.outputs)
    return {**info, "calls": int(len(alphas))}


def loops(args) -> dict:
    sys.path.insert(0, args.tree)
    from benchmarks.kernel_cases import run_all
    from runtime import kernel_build, kernels

    extension = kernel_build.build()                      # RuntimeError naming what failed: the runner's last line
    if not kernels.ahead_of_time():
        raise RuntimeError(f"{extension.name} was built but the runtime did not load it")
    with open(args.inputs, "rb") as f:
        arguments = pickle.load(f)
    results = {way: run_all(compiled, arguments)
               for way, compiled in (("ahead of time", kernels.loops()), ("just in time", kernels._just_in_time()))}
    with open(args.outputs + ".part", "wb") as f:
        pickle.dump(results, f)
    os.replace(args.outputs + ".part", args.outputs)
    import numba
    return {"extension": extension.name, "numba": numba.__version__, "loops": len(arguments)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("probe")
    r = sub.add_parser("run")
    r.add_argument("artifact")
    r.add_argument("inputs")
    r.add_argument("outputs")
    r.add_argument("--config", action="append", default=[], help="an onnxruntime session config entry KEY=VALUE")
    r.add_argument("--threads", type=int, default=None)
    k = sub.add_parser("loops")
    k.add_argument("tree")
    k.add_argument("inputs")
    k.add_argument("outputs")
    args = parser.parse_args(argv)
    commands = {"probe": lambda _: probe(), "run": run, "loops": loops}
    print(json.dumps(commands[args.command](args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
