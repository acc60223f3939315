"""Make the aarch64 torch wheel load without CUDA, for ExecuTorch's Python runtime under emulation.

    python3 arm_torch_cpu_only.py SITE_PACKAGES SYSROOT

PyPI's aarch64 torch is a CUDA build: its libraries need libcudart, cuDNN, NCCL, ... which no CPU machine has.
ExecuTorch's pybindings link libtorch and use CPU tensors only. This builds ``torch/lib/libcuda_absent.so``, which
defines every symbol the torch libraries import and no library here has, each a function that returns
cudaErrorNoDevice (100), then in every torch library replaces the missing libraries by it (``patchelf``) and
removes their symbol-version requirements (``.gnu.version_r``: those symbols become unversioned), which the
dynamic loader would otherwise still check. Nothing calls CUDA on a CPU tensor. Runs on the host (the standard
library, patchelf and aarch64-linux-gnu-gcc); a second run changes nothing.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
from pathlib import Path

SHT_DYNSYM, SHT_DYNAMIC, SHT_VERNEED, SHT_VERSYM = 11, 6, 0x6FFFFFFE, 0x6FFFFFFF
DT_NEEDED, DT_VERNEEDNUM = 1, 0x6FFFFFFF
STUB = "libcuda_absent.so"
SYSTEM_LIBS = ("libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2",
               "librt.so.1", "ld-linux-aarch64.so.1")


def section_headers(data: bytes) -> list[int]:
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    return [shoff + i * shentsize for i in range(shnum)]


def sections(data: bytes) -> list[tuple]:
    """(type, offset, size, link, entsize) of every section of a little-endian ELF64 file."""
    out = []
    for at in section_headers(data):
        _, kind, _, _, off, size, link, _, _, entsize = struct.unpack_from("<IIQQQQIIQQ", data, at)
        out.append((kind, off, size, link, entsize))
    return out


def c_string(data: bytes, at: int) -> str:
    return data[at:data.index(b"\0", at)].decode()


def needed(data: bytes) -> list[str]:
    secs = sections(data)
    for kind, off, size, link, _ in secs:
        if kind == SHT_DYNAMIC:
            strtab = secs[link][1]
            tags = [struct.unpack_from("<qQ", data, off + i) for i in range(0, size, 16)]
            return [c_string(data, strtab + v) for t, v in tags if t == DT_NEEDED]
    return []


def dynamic_symbols(data: bytes) -> list[tuple[str, bool]]:
    """(name, defined) of every dynamic symbol."""
    secs = sections(data)
    _, off, size, link, entsize = next(s for s in secs if s[0] == SHT_DYNSYM)
    strtab = secs[link][1]
    return [(c_string(data, strtab + name), shndx != 0)
            for name, _, _, shndx in (struct.unpack_from("<IBBH", data, at) for at in range(off, off + size, entsize))]


def verneed_entries(data: bytes, off: int, strtab: int) -> list[dict]:
    entries, at = [], off
    while True:
        _, cnt, file, aux, nxt = struct.unpack_from("<HHIII", data, at)
        others, a = [], at + aux
        for _ in range(cnt):
            _, _, other, _, anext = struct.unpack_from("<IHHII", data, a)
            others.append(other)
            a += anext
        entries.append({"at": at, "aux": at + aux, "cnt": cnt, "file_off": file, "others": others,
                        "file": c_string(data, strtab + file)})
        if nxt == 0:
            return entries
        at += nxt


def drop_version_needs(data: bytearray, dropped: set[str]) -> bool:
    """Unlink the .gnu.version_r entries of ``dropped`` files, make their symbols unversioned and fix
    DT_VERNEEDNUM and the section's entry count. False when there was nothing to drop."""
    secs = sections(data)
    index = next((i for i, s in enumerate(secs) if s[0] == SHT_VERNEED), None)
    if index is None:
        return False
    vn = secs[index]
    entries = verneed_entries(data, vn[1], secs[vn[3]][1])
    kept = [e for e in entries if e["file"] not in dropped]
    gone = {o for e in entries if e["file"] in dropped for o in e["others"]}
    if not gone:
        return False
    slots = [e["at"] for e in entries]
    for j, e in enumerate(kept):
        nxt = slots[j + 1] - slots[j] if j + 1 < len(kept) else 0
        struct.pack_into("<HHIII", data, slots[j], 1, e["cnt"], e["file_off"], e["aux"] - slots[j], nxt)
    struct.pack_into("<I", data, section_headers(data)[index] + 0x2C, len(kept))   # sh_info
    for kind, off, size, _, _ in secs:
        if kind == SHT_VERSYM:
            for at in range(off, off + size, 2):
                if struct.unpack_from("<H", data, at)[0] & 0x7FFF in gone:
                    struct.pack_into("<H", data, at, 1)
        if kind == SHT_DYNAMIC:
            for at in range(off, off + size, 16):
                if struct.unpack_from("<q", data, at)[0] == DT_VERNEEDNUM:
                    struct.pack_into("<Q", data, at + 8, len(kept))
    return True


def library_dirs(site: Path, sysroot: Path) -> list[Path]:
    return [site / "torch" / "lib", sysroot / "lib" / "aarch64-linux-gnu", sysroot / "usr" / "lib" / "aarch64-linux-gnu"]


def absent_symbols(libs: list[Path], sysroot: Path) -> set[str]:
    """What the torch libraries import that neither they nor the system libraries define (Python's API aside)."""
    system = [d / n for d in library_dirs(Path("-"), sysroot)[1:] for n in SYSTEM_LIBS if (d / n).is_file()]
    defined, wanted = set(), set()
    for lib in libs + system:
        for name, is_defined in dynamic_symbols(lib.read_bytes()):
            (defined if is_defined else wanted).add(name)
    return {n for n in wanted - defined if n and not n.startswith(("Py", "_Py", "__gmon", "_ITM", "__cxa_finalize"))}


def build_stub(names: set[str], out: Path) -> None:
    """One library defining each name as a function returning cudaErrorNoDevice (an error string for the
    functions that name an error)."""
    text = ['static const char absent[] = "CUDA is absent";']
    for n in sorted(names):
        body = "return (long)absent;" if ("ErrorString" in n or "ErrorName" in n or "GetErrorString" in n) else "return 100;"
        text.append(f"long {n}(void) {{ {body} }}")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "absent.c"
        source.write_text("\n".join(text) + "\n")
        subprocess.run(["aarch64-linux-gnu-gcc", "-shared", "-fPIC", "-O1", "-fno-builtin", "-w",
                        f"-Wl,-soname,{STUB}", "-o", str(out), str(source)], check=True)


def patch(lib: Path, have: set[str]) -> list[str]:
    missing = [n for n in needed(lib.read_bytes()) if n not in have]
    if not missing:
        return []
    data = bytearray(lib.read_bytes())
    if drop_version_needs(data, set(missing)):   # first: patchelf renames the version needs it replaces
        lib.write_bytes(data)
    subprocess.run(["patchelf", "--replace-needed", missing[0], STUB, str(lib)], check=True)
    for name in missing[1:]:
        subprocess.run(["patchelf", "--remove-needed", name, str(lib)], check=True)
    return missing


def main(argv: list[str]) -> int:
    site, sysroot = Path(argv[0]), Path(argv[1])
    lib_dir = site / "torch" / "lib"
    if (lib_dir / STUB).is_file():
        return 0
    libs = sorted(p for p in lib_dir.glob("*.so*") if p.is_file())
    build_stub(absent_symbols(libs, sysroot), lib_dir / STUB)
    have = {p.name for d in library_dirs(site, sysroot) if d.is_dir() for p in d.iterdir()}
    for lib in libs:
        replaced = patch(lib, have)
        if replaced:
            print(f"{lib.name}: {', '.join(replaced)} → {STUB}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
