"""``adamat bokeh`` on a 12-megapixel photo, whole, per model: the per-stage medians a user of the command sees.

    python -m benchmarks.bokeh_runs ARTIFACT [ARTIFACT ...] [--runs 5] [--before TREE] [--size W H] [--out FILE.json]

The synthetic 4032×3024 portrait (:mod:`benchmarks.portrait`; ``--size 8000 6000``: 48 megapixels) is written as a JPEG with its subject's mask at
the segmenter's 256 px; each run is one ``adamat bokeh --timings`` process (so ``open`` and the first call's
costs are in every run, as for a user), the artifacts interleaved run by run. Per artifact: the median of each
stage, of ``compute`` (every stage between decode and encode) and the peak RSS of the process. ``--before``
runs each artifact from another source tree too (a checkout of the code before a change, e.g. ``git worktree
add``), interleaved with this one, so a change is measured against what it replaced in one run. ``--warm N``
measures what an app that keeps the model open sees instead: each process opens the artifact once and renders
the photo N + 1 times (``runtime.pipeline.bokeh_file``, as a folder's photos are rendered), the medians taken
over the last N (no first-touch memory, no first call). Writes a measured-results table
(:mod:`benchmarks.measurements`, kind ``bokeh-runs``); no time is asserted anywhere.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

import cv2

from benchmarks.fingerprint import measured_header
from benchmarks.measurements import save
from benchmarks.portrait import person_photos, segmenter_mask, synthetic_portrait
from common.arguments import whole_number
from runtime.artifacts import open_artifact
from runtime.pipeline import AUTO

H, W = 3024, 4032
STAGE = re.compile(r"^\s+(\w+)\s+([\d.]+) ms")


def printed_stages(stdout: str) -> dict[str, float]:
    """ms per stage, as ``adamat bokeh --timings`` prints them."""
    return {m[1]: float(m[2]) for m in map(STAGE.match, stdout.splitlines()) if m}


# ``adamat bokeh`` in a fresh process that prints its peak RSS last (VmHWM: the process's own, where ru_maxrss
# would carry this parent's over fork and exec); the current folder's code first on the path.
_CHILD = """
import sys
from adamat.cli import main
code = main(sys.argv[1:])
print("peak", next(int(line.split()[1]) // 1024 for line in open("/proc/self/status") if line.startswith("VmHWM")))
sys.exit(code)
"""


# The same photo rendered ``renders`` + 1 times with the artifact (and the segmenter, for AUTO) opened once; the
# stages' medians over all but the first render, printed as ``adamat bokeh --timings`` prints them (compute: all but
# opening, decoding, encoding).
# The process is set up as the adamat command sets itself up (adamat.cli.process_defaults: numpy's huge-page
# requests, the C library's large blocks), each tree's command as it does.
_WARM_CHILD = """
import sys
from adamat.cli import process_defaults
try:
    process_defaults("bokeh")
except TypeError:                  # a tree whose command sets every process up the same way
    process_defaults()
from statistics import median
from runtime.matter import Matter
from runtime.person_mask import PersonSegmenter
from runtime.pipeline import AUTO, bokeh_file
photo, mask, out, artifact, renders = sys.argv[1:]
matter = Matter.from_artifact(artifact)
segmenter = PersonSegmenter() if mask == AUTO else None      # opened once too, as a folder's photos share it
runs = [bokeh_file(photo, out, mask_path=mask, artifact=matter, segmenter=segmenter)
        for _ in range(int(renders) + 1)][1:]
stages = {s: median(r[s] for r in runs) for s in runs[0]}
for stage, seconds in stages.items():
    print(f"  {stage} {seconds * 1000:.1f} ms")
print(f"  compute {1000 * median(sum(t for s, t in r.items() if s not in ('open', 'load', 'write')) for r in runs):.1f} ms")
print("peak", next(int(line.split()[1]) // 1024 for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def one_run(artifact: str, photo: Path, mask: Path | None, out: Path, tree: Path | None = None,
            warm: int = 0) -> tuple[dict[str, float], int]:
    """(ms per stage, peak RSS in MiB) of one ``adamat bokeh --timings`` process (run from ``tree``'s code), or
    with ``warm`` renders, of one process that renders the photo ``warm`` + 1 times (its medians); ``mask`` None:
    the person segmenter's."""
    given = [] if mask is None else ["--mask", str(mask)]      # none: the person segmenter finds it
    command = ([sys.executable, "-c", _WARM_CHILD, str(photo), str(mask or AUTO), str(out), artifact, str(warm)]
               if warm else [sys.executable, "-c", _CHILD, "bokeh", str(photo), *given, "-o", str(out), "--overwrite",
                             "--timings", "--artifact", artifact])
    run = subprocess.run(command, capture_output=True, text=True, cwd=tree)
    if run.returncode:
        raise RuntimeError(f"adamat bokeh with {artifact}: exit {run.returncode}: {run.stderr[-500:]}")
    stages = printed_stages(run.stdout)
    return stages, int(run.stdout.split()[-1])


def label(artifact: str) -> str:
    return "PyTorch FP32 (checkpoint)" if artifact.endswith(".pt") else open_artifact(artifact).label


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bokeh_runs", description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", nargs="+", help="checkpoints or exported artifacts (with their manifests)")
    p.add_argument("--runs", type=whole_number(1, 1000), default=5,
                   help="processes per artifact, interleaved (default 5)")
    p.add_argument("--before", type=Path, default=None, help="also run each artifact from this source tree")
    p.add_argument("--warm", type=whole_number(0, 1000), default=0, metavar="N", help="each process opens the artifact once and "
                   "renders N + 1 times, the medians of the last N (default 0: one render per process)")
    p.add_argument("--size", type=whole_number(8, 20000), nargs=2, default=[W, H], metavar=("W", "H"),
                   help=f"the synthetic portrait's size (default {W} {H})")
    p.add_argument("--segmenter", action="store_true", help="a photo of a person (scikit-image's astronaut, a 4:3 "
                   "crop stretched to --size) without a mask: the person segmenter finds it, as `adamat bokeh "
                   "IMG.jpg` does")
    p.add_argument("--out", default=None, help="measured-results file (default benchmarks/measured/"
                                               "bokeh-runs-<date>-<device>.json)")
    args = p.parse_args(argv)
    width, height = args.size
    artifacts = [str(Path(a).resolve()) for a in args.artifacts]
    trees = [None] + ([args.before.resolve()] if args.before else [])
    runs: dict[tuple, list[tuple[dict, int]]] = {(a, t): [] for a in artifacts for t in trees}
    with tempfile.TemporaryDirectory() as tmp:
        photo, mask, out = Path(tmp, "photo.jpg"), Path(tmp, "mask.png"), Path(tmp, "out.jpg")
        if args.segmenter:
            photo, mask = person_photos(Path(tmp), 1, (height, width))[0], None
        else:
            image, alpha = synthetic_portrait(height, width)
            cv2.imwrite(str(photo), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(str(mask), segmenter_mask(alpha))
            del image, alpha
        for _ in range(args.runs):
            for (a, tree), done in runs.items():
                done.append(one_run(a, photo, mask, out, tree, args.warm))
    rows = [row(a, r, ("before" if tree else "this") if args.before else None) for (a, tree), r in runs.items()]
    data = measured_header(
        "bokeh-runs", input_size=[512, 512], threads=None, runtimes=("onnxruntime", "openvino", "executorch"),
        model=", ".join(args.artifacts),
        method=(f"adamat bokeh --timings on a {width}x{height} JPEG of scikit-image's astronaut, the person "
                "segmenter finding the mask" if args.segmenter else
                f"adamat bokeh --timings on a synthetic {width}x{height} JPEG with a 256-px mask")
               + ", one process per run, "
               f"{args.runs} runs per model interleaved; medians; peak RSS the largest VmHWM of its processes"
               + (f"; warm: each process opens the artifact once and renders {args.warm + 1} times, its medians "
                  f"over the last {args.warm}, the process set up as adamat bokeh sets itself up"
                  if args.warm else "")
               + (f"; 'before': the same command from {described(args.before)}" if args.before else ""),
        command=["python", "-m", "benchmarks.bokeh_runs", *recorded(sys.argv[1:] if argv is None else argv)])
    order = columns(rows)
    save(data | {"columns": order, "rows": [{c: r.get(c, 0.0) for c in order} for r in rows]},   # a stage not run: 0 ms
         args.out)
    return 0


def recorded(argv: list[str]) -> list[str]:
    """The arguments as a measured file records them: ``--before``'s tree (a folder of this machine) as TREE, the
    commit it held being in the method's text."""
    return ["--before=TREE" if a.startswith("--before=") else "TREE" if i and argv[i - 1] == "--before" else a
            for i, a in enumerate(argv)]


def described(tree: Path) -> str:
    """A source tree as its commit ("the code of commit 0d2abd5"), or its path where it is not a git checkout."""
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"the code of commit {head.stdout.strip()}" if head.returncode == 0 else str(tree)


def row(artifact: str, runs: list[tuple[dict, int]], code: str | None = None) -> dict:
    """Medians of each stage over the runs (ms), and the peak RSS (MiB) of the largest run; ``code``: which
    source tree ran them, where there were two."""
    stages = list(dict.fromkeys(s for timings, _ in runs for s in timings))
    medians = {f"{s} ms": round(median(t.get(s, 0.0) for t, _ in runs), 1) for s in stages}
    return {"model": label(artifact), **({"code": code} if code else {}), "runs": len(runs), **medians, "peak RSS MiB": max(rss for _, rss in runs)}


def columns(rows: list[dict]) -> list[str]:
    """Every key of ``rows``, each after the key it follows in the first row that has it: a stage that only the
    code before a change runs (or only the new code) keeps its place in the table."""
    order: list[str] = []
    for r in rows:
        keys = list(r)
        for i, key in enumerate(keys):
            if key not in order:
                order.insert(max((order.index(k) + 1 for k in keys[:i] if k in order), default=0), key)
    return order


if __name__ == "__main__":
    raise SystemExit(main())
