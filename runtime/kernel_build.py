"""``python -m runtime.kernel_build``: compile :mod:`runtime.kernel_source` ahead of time into the extension module
:mod:`runtime.kernels` loads (``make setup`` runs it: a few seconds, once per change of the source).

numba's ahead-of-time compiler (``numba.pycc``, with a C compiler) writes ``runtime/_kernels_<hash>.*.so``, one
export per entry of :data:`runtime.kernel_source.EXPORTS` at its one signature, for :func:`runtime.kernels.
target_cpu`. Its exports release the GIL while they run (the JIT's ``nogil``: pycc's default holds it, and the
strips on two threads would run one after the other). Nothing happens where the extension for this source, this
build and target exists already; one built from other source is removed once the new one is there. Exit 0 once
it is there; where it cannot be built (no C compiler), a warning and exit 0 as well: the runtime then compiles
the loops just in time, and ``make setup`` tries again.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from runtime.kernels import module_name, target_cpu

HERE = Path(__file__).parent


def built() -> Path | None:
    """The extension file for this source and target, where it exists."""
    return next((path for suffix in EXTENSION_SUFFIXES if (path := HERE / f"{module_name()}{suffix}").is_file()), None)


def build() -> Path:
    """Compile the extension (unless :func:`built`), remove those built from other source, and return its path;
    RuntimeError saying what failed (no numba, no C compiler, a folder it cannot write)."""
    existing = built()
    if existing is not None:
        return existing
    try:
        path = _compile()
    except Exception as error:                              # the toolchain's own errors, of many kinds
        raise RuntimeError(f"could not compile the runtime's loops: {error}") from error
    for stale in HERE.glob("_kernels_*"):
        if stale != path and stale.is_file():
            stale.unlink()
    return path


def _compile() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # pycc's pending deprecation
        import numba.pycc.compiler as pycc_compiler
        from numba.pycc import CC

        from runtime.kernel_source import EXPORTS

        class _ReleasingTheGil(pycc_compiler.Flags):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.release_gil = True

        pycc_compiler.Flags = _ReleasingTheGil
        compiler = CC(module_name())
        compiler.target_cpu = target_cpu()
        compiler.verbose = False
        for name, (function, signature) in EXPORTS.items():
            compiler.export(name, signature)(function)
        with tempfile.TemporaryDirectory(prefix=".kernel-build-", dir=HERE) as scratch:   # moved in whole, once built
            compiler.output_dir = scratch
            compiler.compile()
            made = next(path for path in Path(scratch).iterdir() if path.name.startswith(f"{module_name()}."))
            return made.replace(HERE / made.name)


def main() -> int:
    try:
        path = build()
    except RuntimeError as error:
        print(f"warning: {error}; the runtime will compile them just in time (slower to start)", file=sys.stderr)
        return 0
    print(f"runtime loops: {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
