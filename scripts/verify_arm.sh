#!/usr/bin/env bash
# `make verify-arm`: the exported ONNX and ExecuTorch artifacts on Arm CPU kernels, under qemu's aarch64 emulation,
# gated as `adamat gate` gates them on x86 (docs/ARM.md).
#
#   scripts/verify_arm.sh [--setup-only] [arguments of python -m benchmarks.arm_emulation]
#
# Once, cached in .arm/ (git-ignored): qemu-user-static, patchelf and the aarch64 C and C++ compilers from apt;
# Debian's arm64 python3.11 and its headers unpacked into .arm/sysroot (a private apt state: the host's apt
# configuration is not changed); the aarch64 wheels of numpy, onnxruntime, executorch and torch, and of numba,
# OpenCV and setuptools for the runtime's loops (benchmarks.arm_loops), at the versions .venv has, in .arm/site,
# torch made to load without CUDA (scripts/arm_torch_cpu_only.py); wheels or versions changed since install them
# again. Then the verification itself.
set -euo pipefail

ARM=$(realpath -m "${ARM_DIR:-.arm}")
PY=${PY:-.venv/bin/python}
ARCH_OPTS=(-o "Dir::State=$ARM/apt/state" -o "Dir::State::status=$ARM/apt/state/status" -o "Dir::Cache=$ARM/apt/cache"
           -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1 -q)
DEBS=(python3.11-minimal libpython3.11-stdlib libpython3.11-dev libstdc++6 libgomp1)
WHEELS=(numpy onnxruntime executorch torch typing_extensions filelock sympy mpmath networkx jinja2 markupsafe fsspec
        numba llvmlite opencv-python-headless setuptools)

fail() { echo "error: $*" >&2; exit 2; }

host_tools() {
    local missing=()
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v patchelf >/dev/null || missing+=(patchelf)
    command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
    command -v aarch64-linux-gnu-g++ >/dev/null || missing+=(g++-aarch64-linux-gnu)   # numba's pycc checks both
    [ ${#missing[@]} -eq 0 ] && return
    echo "installing ${missing[*]} (apt)" >&2
    { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; } || fail "cannot install ${missing[*]} with apt-get (root and the Debian registry are needed)"
}

sysroot() {
    [ -x "$ARM/sysroot/usr/bin/python3.11" ] && [ -f "$ARM/sysroot/usr/include/python3.11/Python.h" ] && return
    echo "building the aarch64 sysroot ($ARM/sysroot)" >&2
    mkdir -p "$ARM/apt/state/lists/partial" "$ARM/apt/cache/archives/partial"
    touch "$ARM/apt/state/status"
    apt-get "${ARCH_OPTS[@]}" update >/dev/null || fail "apt-get update for arm64 failed"
    rm -f "$ARM"/apt/cache/archives/*.deb      # an older build of a package would be unpacked over the newer
    apt-get "${ARCH_OPTS[@]}" install --download-only -y --no-install-recommends "${DEBS[@]}" >/dev/null \
        || fail "cannot download the arm64 packages ${DEBS[*]}"
    rm -rf "$ARM/sysroot.tmp" && mkdir -p "$ARM/sysroot.tmp"
    for deb in "$ARM"/apt/cache/archives/*.deb; do dpkg -x "$deb" "$ARM/sysroot.tmp"; done
    rm -rf "$ARM/sysroot" && mv "$ARM/sysroot.tmp" "$ARM/sysroot"
}

pinned() {   # name==version as .venv has it, else the name alone
    "$PY" - "$@" <<'EOF'
import sys
from importlib import metadata
for name in sys.argv[1:]:
    try:
        print(f"{name}=={metadata.version(name).split('+')[0]}")
    except metadata.PackageNotFoundError:
        print(name)
EOF
}

site() {
    local wanted
    wanted=$(pinned "${WHEELS[@]}")
    [ "$(cat "$ARM/site/.complete" 2>/dev/null)" = "$wanted" ] && return
    echo "installing the aarch64 wheels ($ARM/site)" >&2
    local platforms=(--platform manylinux2014_aarch64)
    for v in 17 24 26 27 28 31 34 35 36; do platforms+=(--platform "manylinux_2_${v}_aarch64"); done
    rm -rf "$ARM/site.tmp"
    # shellcheck disable=SC2046
    "$PY" -m pip install -q --target "$ARM/site.tmp" --no-deps --only-binary=:all: --python-version 3.11 \
        --implementation cp --abi cp311 "${platforms[@]}" $(pinned "${WHEELS[@]}") \
        || fail "cannot install the aarch64 wheels of ${WHEELS[*]}"
    "$PY" scripts/arm_torch_cpu_only.py "$ARM/site.tmp" "$ARM/sysroot" >/dev/null || fail "cannot make torch load without CUDA"
    echo "$wanted" > "$ARM/site.tmp/.complete"
    rm -rf "$ARM/site" && mv "$ARM/site.tmp" "$ARM/site"
}

[ -x "$PY" ] || fail "$PY not found: run make setup"
host_tools
sysroot
site
if [ "${1:-}" = "--setup-only" ]; then exit 0; fi
exec "$PY" -m benchmarks.arm_emulation "$@"
