"""The runtime's compiled loops: the extension ``make setup`` builds, and numba's JIT of the same source where it is
missing."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks.kernel_cases import cases, run_all
from runtime import kernel_build, kernels
from runtime.kernel_source import EXPORTS


def test_make_setup_built_the_extension_and_the_runtime_loads_it_without_numba():
    """The loops are the extension's (``make test`` runs ``make setup``, which builds it), loaded in a process that
    never imports numba: the JIT would cost 0.4 s and 130 MB a process."""
    assert kernel_build.built() is not None and kernels.ahead_of_time()
    code = ("import sys, numpy as np\nfrom runtime import kernels\nkernels.prepare()\n"
            "v = np.zeros(2, np.uint8)\nkernels.brightest(np.arange(6, dtype=np.uint8), v)\n"
            "print(v.tolist(), 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[0] == "[2, 5] False"


def test_numbas_jit_of_the_source_gives_the_extensions_results_loop_by_loop():
    """Where the extension is missing, the same source compiled just in time: every loop writes the same arrays
    and returns the same value (the JIT's first run compiles, then caches beside the source)."""
    inputs = {name: make() for name, make in cases(np.random.default_rng(0)).items()}
    assert {name.split()[0] for name in inputs} == set(EXPORTS)
    ours, theirs = run_all(kernels.loops(), inputs), run_all(kernels._just_in_time(), inputs)
    for name, (value, arrays) in ours.items():
        assert value == theirs[name][0], name
        for a, b in zip(arrays, theirs[name][1], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_an_extension_of_other_source_is_never_loaded(tmp_path, monkeypatch):
    """The extension's name carries the hash of the loops' source: changed source, another name, and the one built
    before is not found (the JIT runs until ``make setup`` builds the new one)."""
    name = kernels.module_name()
    changed = tmp_path / "kernel_source.py"
    changed.write_bytes(kernels.SOURCE.read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(kernels, "SOURCE", changed)
    assert kernels.module_name() != name and kernels._compiled() is None
    assert kernel_build.built() is None


def test_the_build_does_nothing_once_the_extension_is_there():
    """A second ``make setup`` compiles nothing: the extension for this source and target is returned untouched."""
    existing = kernel_build.built()
    stamp = existing.stat().st_mtime_ns
    assert kernel_build.build() == existing and existing.stat().st_mtime_ns == stamp


@pytest.fixture
def bounds_checked(monkeypatch):
    """The loops compiled by numba with bounds checks (no cache), in place of the extension: a read or write
    outside an array is an IndexError, not a wrong pixel or a crash."""
    from numba import njit

    compiled: dict = {}
    loops = {name: compiled.setdefault(function, njit(boundscheck=True)(function))
             for name, (function, _) in EXPORTS.items()}
    monkeypatch.setattr(kernels, "_loops", [SimpleNamespace(**loops)])


def test_every_loop_stays_inside_its_arrays_at_a_photos_edges(bounds_checked):
    """The renderer and the guided filter on photos whose band touches the last rows and columns (those blur
    fusion's box and the lens blur's blocks leave out: 601 × 603 is reduced by 2), on thin and tiny photos, and
    with a decided label at a third of the resolution: every loop's reads and writes inside its arrays (blur
    fusion's read past its maps there, and its bokeh changed from run to run)."""
    from runtime.bokeh import render_bokeh
    from runtime.upsample import OPEN, upsample_alpha

    rng = np.random.default_rng(8)
    for h, w in ((601, 603), (8, 700), (700, 8), (8, 8)):
        photo = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        alpha = np.zeros((h, w), np.float32)
        alpha[:, : w // 2] = 1.0
        alpha[:, w // 2] = alpha[h - 1, :] = alpha[:, w - 1] = 0.5      # the band reaches the bottom and right edges
        first, _ = render_bokeh(photo, alpha, 0.05)
        assert np.array_equal(first, render_bokeh(photo, alpha, 0.05)[0])
    guide = rng.integers(0, 256, (301, 427, 3), dtype=np.uint8)
    label = np.where(rng.random((100, 142)) < 0.5, OPEN, 255).astype(np.uint8)
    assert upsample_alpha(rng.random((75, 107), dtype=np.float32), guide, decided=label).shape == (301, 427)


def test_an_export_refuses_arrays_it_would_misread_and_the_public_functions_convert_or_name_them():
    """A compiled export reads whatever memory it is given (an int32 index as int64, a strided view as contiguous:
    wrong pixels or a crash): it refuses them, naming the loop and the argument. The public functions convert
    what they can (an int32 index) and name what they cannot (a float photo, an alpha or colours of another
    size), where a loop would have read past its arrays."""
    from runtime.foreground import foreground_at
    from runtime.lens_blur import lens_blur

    with pytest.raises(TypeError, match=r"kernels.brightest: argument 1 must be a C-contiguous 1-D uint8 array"):
        kernels.brightest(np.zeros(12, np.uint8)[::2], np.zeros(2, np.uint8))
    with pytest.raises(TypeError, match=r"kernels.partly_transparent_at: argument 4 must be .* int64 array, got int32"):
        kernels.partly_transparent_at(np.zeros(4, np.float32), 0, 4, np.zeros(4, np.int32))
    rng = np.random.default_rng(9)
    photo = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    alpha = np.clip(rng.random((60, 80)) * 3 - 1, 0, 1).astype(np.float32)
    index = np.flatnonzero((alpha > 0) & (alpha < 1))
    for ours, theirs in zip(foreground_at(photo, alpha, index.astype(np.int32)), foreground_at(photo, alpha, index)):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(TypeError, match=r"photo must be uint8 RGB \(H, W, 3\), got float32"):
        lens_blur(photo.astype(np.float32), alpha, 0.1)
    with pytest.raises(TypeError, match=r"alpha must be float \(H, W\) of the photo's \(60, 80\), got float32 \(30, 40\)"):
        lens_blur(photo, alpha[:30, :40].copy(), 0.1)
    with pytest.raises(ValueError, match="one colour per masked pixel, got .* colours \\(3, 3\\)"):
        lens_blur(photo, alpha, 0.1, background=(index, np.zeros((3, 3), np.float32)))
