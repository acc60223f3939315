"""``adamat bokeh photos/`` on a folder of 12-megapixel photos: what one process costs against the photos alone.

    python -m benchmarks.folder_runs ARTIFACT [--photos 10] [--out FILE.json]

The photos: scikit-image's astronaut (a person, for the segmenter each photo runs), each 4032×3024 JPEG a crop of
it at its own place and scale. One ``adamat bokeh FOLDER -o OUT --timings --artifact ARTIFACT`` process is timed
from outside (its wall time, interpreter start and imports included) and its summed stages read; then each photo
alone, one process each, for its stages. The folder target: the folder's wall time at most the photos' own
compute + decode + encode, plus one open, plus one process's start (a photo's wall time less its stages: the
interpreter, the imports, the checks, the exit). Each photo alone is a first render in a cold process, so the
bound is lenient by what a warm process saves per photo (the folder's compute per photo is printed beside it). Writes a measured-results table (kind ``bokeh-folder``); no time is asserted anywhere.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from benchmarks.bokeh_runs import label, printed_stages
from benchmarks.fingerprint import measured_header
from benchmarks.measurements import save
from benchmarks.portrait import person_photos
from common.arguments import whole_number

H, W = 3024, 4032


def timed(command: list[str]) -> tuple[float, dict[str, float]]:
    """(wall seconds, ms per stage printed by --timings) of one process."""
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode:
        raise RuntimeError(f"{' '.join(command[:4])} ...: exit {run.returncode}: {run.stderr[-400:]}")
    return wall, printed_stages(run.stdout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.folder_runs", description=__doc__.split("\n\n")[0])
    p.add_argument("artifact", help="an exported artifact (with its manifest) or a checkpoint")
    p.add_argument("--photos", type=whole_number(1, 100), default=10, help="photos in the folder (default 10)")
    p.add_argument("--out", default=None, help="measured-results file (default benchmarks/measured/"
                                               "bokeh-folder-<date>-<device>.json)")
    args = p.parse_args(argv)
    adamat = [str(Path(sys.executable).with_name("adamat")), "bokeh"]     # the command a user runs
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp, "photos")
        folder.mkdir()
        photos = person_photos(folder, args.photos, (H, W))
        wall, summed = timed([*adamat, str(photos[0].parent), "-o", str(Path(tmp, "out")), "--timings",
                              "--artifact", args.artifact])
        alone = [timed([*adamat, str(p), "-o", str(Path(tmp, p.name)), "--timings", "--artifact", args.artifact])
                 for p in photos]
    stages = [{k: v / 1000 for k, v in t.items() if k != "compute"} for _, t in alone]
    own = sum(sum(v for k, v in t.items() if k != "open") for t in stages)
    opened = median(t["open"] for t in stages)
    start = median(w - sum(t.values()) for (w, _), t in zip(alone, stages))   # the process around the stages
    bound = own + opened + start
    row = {"photos": args.photos, "folder wall s": round(wall, 2),
           "folder stages s": round(sum(v for k, v in summed.items() if k != "compute") / 1000, 2),
           "photos alone: compute + decode + encode s": round(own, 2), "one open s": round(opened, 3),
           "process start s": round(start, 2), "bound s": round(bound, 2), "met": wall <= bound,
           **{f"folder {k} ms": round(v, 1) for k, v in summed.items()}}
    data = measured_header(
        "bokeh-folder", input_size=[512, 512], threads=None, runtimes=("onnxruntime", "openvino", "executorch"),
        model=args.artifact,
        method=(f"{args.photos} {W}x{H} JPEGs of scikit-image's astronaut (crops at their own place and scale, "
                f"upscaled), the person segmenter on each; {label(args.artifact)}; one `adamat bokeh FOLDER --timings` "
                "process timed from outside (wall) beside each photo alone in its own process (its stages but open "
                "summed: compute, decode, encode); the bound: those, one open and one process start (the photos' "
                "medians; a process's start: its wall time less its stages, the interpreter, imports, argument "
                "checks and exit); each photo alone is a cold process, so the bound counts ten first renders "
                "(cold pages and caches) where the folder has one"),
        command=["python", "-m", "benchmarks.folder_runs", *(sys.argv[1:] if argv is None else argv)])
    save(data | {"columns": list(row), "rows": [row]}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
