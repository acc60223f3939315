"""Which device a latency number was measured on: CPU, cores, OS, accelerator and runtime versions.

:func:`device_fingerprint` reads only what the system exposes cheaply (``/proc/cpuinfo``, ``sysctl``,
``nvidia-smi`` with a short timeout, package metadata); it imports none of the runtimes it reports, so it
works on a phone under Termux as well as on a Jetson. :func:`fingerprint_id` turns it into a short,
filesystem-safe name whose hash covers every field that changes latency, so two different devices (or
one device after a runtime upgrade) never share an id.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from datetime import date
from importlib import metadata
from pathlib import Path

from benchmarks.measurements import FORMAT
from common.machine import usable_cores
from common.targets import fingerprint_packages

RUNTIMES = fingerprint_packages()   # every registered runtime's packages, and numpy
# Everything but the full OS string (kernel builds change it without changing the device).
_IDENTITY = ("cpu", "board", "logical_cores", "physical_cores", "os_family", "arch", "isa", "python", "runtimes",
             "gpu")
# Instruction-set extensions that select different int8/fp16/bf16 kernels. Cloud VMs report one CPU name
# ("AMD EPYC") for hosts with and without AVX512-VNNI, and int8 latency differs between them.
ISA_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_int8", "amx_bf16",                                  # x86 (/proc/cpuinfo "flags")
             "asimd", "asimddp", "asimdhp", "i8mm", "bf16", "sve", "sve2")        # ARM ("Features")


def _command(*args: str, timeout: float = 5.0) -> str | None:
    """The stripped stdout of a command, or None when it is missing, fails or hangs."""
    if shutil.which(args[0]) is None:
        return None
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def _cpuinfo() -> list[dict[str, str]]:
    """``/proc/cpuinfo`` as one dict per processor block (empty where the file does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    blocks = []
    for block in text.strip().split("\n\n"):
        pairs = (line.split(":", 1) for line in block.splitlines() if ":" in line)
        blocks.append({k.strip(): v.strip() for k, v in pairs})
    return blocks


def _isa(cpuinfo: list[dict[str, str]]) -> list[str]:
    """The ``ISA_FLAGS`` the CPU reports (Linux and Android; empty elsewhere)."""
    first = cpuinfo[0] if cpuinfo else {}
    flags = set((first.get("flags") or first.get("Features") or "").split())
    return [f for f in ISA_FLAGS if f in flags]


def _os_family() -> str:
    if platform.system() == "Darwin":
        return "macos"
    if hasattr(sys, "getandroidapilevel") or "ANDROID_ROOT" in os.environ:
        return "android"
    return platform.system().lower() or "unknown"


def _cpu_model(cpuinfo: list[dict[str, str]]) -> str:
    if platform.system() == "Darwin":
        model = _command("sysctl", "-n", "machdep.cpu.brand_string")
        if model:
            return model
    for key in ("model name", "Hardware", "Processor", "cpu model"):   # x86, then ARM kernels' variants
        for block in cpuinfo:
            if block.get(key):
                return block[key]
    return platform.processor() or platform.machine() or "unknown"


def _board() -> str | None:
    """The machine's product name where the CPU name does not identify it (Jetson, Raspberry Pi, phones)."""
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ") or None
    except OSError:
        return _command("getprop", "ro.product.model")


def _cores(cpuinfo: list[dict[str, str]]) -> tuple[int, int | None]:
    """(logical cores this process may use, physical cores or None where the system does not say)."""
    logical = usable_cores()
    if platform.system() == "Darwin":
        physical = _command("sysctl", "-n", "hw.physicalcpu")
        return logical, int(physical) if physical and physical.isdigit() else None
    pairs = {(b.get("physical id"), b.get("core id")) for b in cpuinfo if "core id" in b}
    return logical, len(pairs) or None


def _gpu(cpu: str) -> str | None:
    nvidia = _command("nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader")
    if nvidia:
        return "; ".join(line.strip() for line in nvidia.splitlines())
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return f"{cpu}: Apple silicon integrated GPU and Neural Engine"
    return None


def _versions() -> dict[str, str]:
    found = {}
    for package in RUNTIMES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def device_fingerprint() -> dict:
    """The device and software a benchmark runs on (see the module docstring for the sources)."""
    cpuinfo = _cpuinfo()
    cpu = _cpu_model(cpuinfo)
    logical, physical = _cores(cpuinfo)
    return {"cpu": cpu, "board": _board(), "logical_cores": logical, "physical_cores": physical,
            "os": platform.platform(), "os_family": _os_family(), "arch": platform.machine() or "unknown",
            "isa": _isa(cpuinfo),
            "python": platform.python_version(), "runtimes": _versions(), "gpu": _gpu(cpu)}


def _slug(text: str) -> str:
    text = re.sub(r"\((r|tm)\)|\bcpu\b|\bprocessor\b|@.*$", " ", text.lower())
    return re.sub(r"[^a-z0-9_]+", "-", text).strip("-")[:40].strip("-") or "unknown"


def fingerprint_id(fp: dict) -> str:
    """``<os>-<arch>-<cpu>-<N>c-<8 hex>``, e.g. ``linux-x86_64-intel-xeon-platinum-8481c-2c-1a2b3c4d``; the hex
    is a SHA-256 over CPU, board, cores, OS family, arch, ISA extensions, Python, GPU and runtime versions."""
    identity = json.dumps({k: fp.get(k) for k in _IDENTITY}, sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return f"{_slug(fp['os_family'])}-{_slug(fp['arch'])}-{_slug(fp['cpu'])}-{fp['logical_cores']}c-{digest}"


def measured_device(fp: dict | None = None) -> dict:
    """The ``device`` object of a measured-results file (:mod:`benchmarks.measurements`) for ``fp`` (this device)."""
    fp = fp if fp is not None else device_fingerprint()
    return {"cpu": fp["cpu"], "cores": fp["logical_cores"], "isa": fp["isa"], "os": fp["os_family"],
            "fingerprint_id": fingerprint_id(fp)}


def measured_header(kind: str, *, input_size, threads: int | None, model: str, method: str,
                    command: list[str] | None = None, runtimes: tuple[str, ...] = ("onnxruntime",),
                    fp: dict | None = None) -> dict:
    """The common fields of a measured-results table (:mod:`benchmarks.measurements`) measured here today;
    ``command``: the argv that reproduces it (recorded shell-quoted)."""
    fp = fp if fp is not None else device_fingerprint()
    head = {"format": FORMAT, "kind": kind, "date": date.today().isoformat(), "device": measured_device(fp),
            "input_size": [int(x) for x in input_size], "threads": threads,
            "runtimes": {k: fp["runtimes"][k] for k in runtimes if k in fp["runtimes"]}, "model": model,
            "method": method}
    return head | ({"command": shlex.join(command)} if command else {})
