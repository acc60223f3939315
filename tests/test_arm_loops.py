"""The runtime's compiled loops on Arm (``benchmarks.arm_loops``): the extension built by ``runtime.kernel_build``
on an emulated Cortex-A76 and numba's JIT there, each loop's outputs against x86's. Needs the aarch64 interpreter
with numba and the aarch64 compilers that ``make verify-arm`` installs; skips, saying so, without them. The
comparison's rules run everywhere."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchmarks.arm_loops import FLOAT_TOLERANCE, difference, main
from tests.test_arm_emulation import ARM, HAVE_ARM

HAVE_LOOPS = HAVE_ARM and (ARM / "site" / "numba").is_dir() and shutil.which("aarch64-linux-gnu-g++") is not None


def test_a_loop_differs_where_an_index_moves_a_pixel_changes_by_two_levels_or_a_float_by_more_than_the_tolerance():
    index, pixels, light = np.arange(5, dtype=np.int64), np.full(4, 100, np.uint8), np.ones(3, np.float32)
    x86 = (3, [index, pixels, light])
    assert difference(x86, (3, [index.copy(), pixels.copy(), light.copy()]))["identical"]
    one_level = difference(x86, (3, [index, pixels + np.uint8(1), light + np.float32(FLOAT_TOLERANCE / 2)]))
    assert not one_level["identical"] and one_level["within tolerance"] and one_level["elements differing"] == 7
    for changed in ((3, [index + 1, pixels, light]), (3, [index, pixels + np.uint8(2), light]),
                    (3, [index, pixels, light + np.float32(1e-3)]), (4, [index, pixels, light]),
                    (3, [index, pixels.astype(np.int64), light]), (3, [index, pixels])):
        assert not difference(x86, changed)["within tolerance"] and not difference(x86, changed)["identical"]


@pytest.mark.skipif(not HAVE_LOOPS, reason="no aarch64 interpreter with numba in .arm/, or no aarch64 compilers: "
                                           "`make verify-arm` (or scripts/verify_arm.sh --setup-only) installs them")
def test_the_loops_built_on_an_emulated_cortex_a76_give_x86s_results(tmp_path):
    assert main(["--cpus", "cortex-a76", "--out", str(tmp_path)]) == 0
    data = json.loads(next(tmp_path.glob("arm-loops-*-cortex-a76.json")).read_text())
    details = data["details"]
    assert details["extension"].endswith("-aarch64-linux-gnu.so") and "asimddp" in details["emulated_cpu"]["features"]
    assert {(r["way"], r["loop"]) for r in data["rows"]} >= {("ahead of time", "block_light"), ("just in time", "fuse_at")}
    assert all(r["within tolerance"] for r in data["rows"])
