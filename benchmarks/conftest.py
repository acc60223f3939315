"""pytest-benchmark hooks of the benchmarks: every saved result says which device it was measured on."""

from __future__ import annotations

import pytest

from benchmarks.fingerprint import device_fingerprint, fingerprint_id


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config, machine_info):
    """Add the device fingerprint and its id (:mod:`benchmarks.fingerprint`) to ``machine_info``: saved JSON
    carries them, and ``--benchmark-compare`` warns when a baseline comes from another device."""
    fp = device_fingerprint()
    machine_info["fingerprint"] = fp
    machine_info["fingerprint_id"] = fingerprint_id(fp)
