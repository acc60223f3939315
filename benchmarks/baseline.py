"""Per-device latency baselines for ``make bench``: where they live and the pytest-benchmark options that
save or compare against them.

A baseline is only meaningful on the device that recorded it, so each device fingerprint
(:mod:`benchmarks.fingerprint`) has its own storage, ``benchmarks/baselines/<fingerprint id>/``; pytest-benchmark
adds its own ``<OS>-<Python>`` folder below it. A device without a saved baseline is compared with nothing
(and says so) — never with another device's numbers.

    python -m benchmarks.baseline compare   # options for `make bench`: compare, fail on a regression
    python -m benchmarks.baseline save      # options for `make bench-baseline`: save as this device's baseline
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.fingerprint import device_fingerprint, fingerprint_id

BASELINES = Path(__file__).resolve().parent / "baselines"
NAME = "baseline"
# A regression: the median of a benchmark more than this much above the baseline's (noisy shared CPUs:
# smaller differences are not reliable).
TOLERANCE = "median:30%"


def storage(root: Path = BASELINES) -> Path:
    return root / fingerprint_id(device_fingerprint())


def saved_baseline(store: Path) -> str | None:
    """The run number (``0003``) of the newest baseline saved in ``store``, or None."""
    runs = sorted(p.name.split("_", 1)[0] for p in store.glob(f"*/*_{NAME}.json"))
    return runs[-1] if runs else None


def pytest_args(mode: str, root: Path = BASELINES) -> list[str]:
    store = storage(root)
    args = [f"--benchmark-storage=file://{store}"]
    if mode == "save":
        return args + [f"--benchmark-save={NAME}"]
    run = saved_baseline(store)
    if run is None:
        print(f"note: no latency baseline for this device in {store}: nothing to compare with "
              f"(`make bench-baseline` saves one)", file=sys.stderr)
        return args
    return args + [f"--benchmark-compare={run}", f"--benchmark-compare-fail={TOLERANCE}"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv not in (["compare"], ["save"]):
        print("usage: python -m benchmarks.baseline compare|save", file=sys.stderr)
        return 2
    print(" ".join(pytest_args(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
