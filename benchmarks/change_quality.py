"""What a change to the pipeline does to its output: the alpha and the bokeh of this tree against another's.

    python -m benchmarks.change_quality ARTIFACT --before TREE [--label TEXT] [--out FILE.json]

``Matter.predict`` (the shipped band refiner, ``with_trimap_prob=False``) and ``render_bokeh`` (default strength)
run on the same inputs in this source tree and in ``TREE`` (a checkout of the code before the change, e.g. ``git
worktree add``), one process each: the 12-megapixel procedural set with its masks (:mod:`calib_data.phone_set`,
built on first use into ``cache/phone``), scored against its ground truth, and the demo's three portraits plus
the synthetic 12-megapixel portrait (:mod:`benchmarks.portrait`) with the person segmenter's masks. Per set: how
many alphas and bokeh images are identical, the largest mean |Δα| per image, the lowest bokeh PSNR, and the
whole-image SAD and Grad before and now. Writes a measured-results table (:mod:`benchmarks.measurements`, kind
``change-quality``). The speed of a change is :mod:`benchmarks.bokeh_runs`' ``--before``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.bokeh_runs import described
from benchmarks.fingerprint import measured_header
from benchmarks.measurements import save
from calib_data.phone_set import PhoneSetConfig, build_phone_set
from common.metrics import gradient_error, sad
from evaluation.accuracy import psnr
from evaluation.datasets import EvalFolder

PHONE_CACHE = Path("cache/phone")   # where the 12-megapixel set is built, as make demo builds it
SETS = ("12-megapixel procedural set (its masks)",
        "the demo's three portraits and the synthetic 12-megapixel portrait (segmenter masks)")

# One tree's outputs: for each image, its set, alpha (float32) and bokeh (uint8) saved under the folder given,
# and the list of them in index.json. Run with the tree as the working folder, its code first on the path.
_CHILD = """
import json, sys
from pathlib import Path
import numpy as np
from adamat.figures import sample_portraits
from benchmarks.portrait import segmenter_mask, synthetic_portrait
from calib_data.phone_set import PhoneSetConfig, build_phone_set
from evaluation.datasets import EvalFolder
from runtime.bokeh import render_bokeh
from runtime.matter import Matter
from runtime.person_mask import MASK_SIDE, PersonSegmenter, segmenter_band
artifact, out, cache = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
matter, segmenter, index = Matter.from_artifact(artifact), PersonSegmenter(), []
def save(kind, name, photo, alpha):
    np.save(out / f"{name}.alpha.npy", alpha)
    np.save(out / f"{name}.bokeh.npy", render_bokeh(photo, alpha)[0])
    index.append([kind, name])
for item in EvalFolder(build_phone_set(PhoneSetConfig(), cache, progress=False)):
    photo = np.round(item.image * 255).astype(np.uint8)
    save(0, item.name, photo, matter.predict(photo, mask=item.mask, with_trimap_prob=False).alpha)
portrait, truth = synthetic_portrait()
for name, photo in [*sample_portraits(), ("synthetic", portrait)]:
    mask = (segmenter_mask(truth, MASK_SIDE) if name == "synthetic" else
            segmenter.mask(photo, require_person=False, long_side=MASK_SIDE))
    band = segmenter_band(photo.shape[:2])
    save(1, name, photo, matter.predict(photo, mask=mask, band=band, with_trimap_prob=False).alpha)
(out / "index.json").write_text(json.dumps(index))
"""


def outputs(artifact: str, tree: Path, folder: Path) -> list[tuple[int, str]]:
    """Run the child in ``tree``; the (set, name) of what it saved in ``folder``."""
    folder.mkdir(parents=True)
    command = [sys.executable, "-c", _CHILD, artifact, str(folder), str(PHONE_CACHE.resolve())]
    run = subprocess.run(command, cwd=tree, capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"the outputs of {tree}: exit {run.returncode}: {run.stderr[-800:]}")
    return [tuple(x) for x in json.loads((folder / "index.json").read_text())]


def compared(names: list[tuple[int, str]], now: Path, before: Path, truth: dict[str, np.ndarray]) -> list[dict]:
    """One row per set: identical alphas and bokeh images, the largest mean |Δα|, the lowest PSNR, and (the
    first set, whose ground truth ``truth`` holds by name) the mean whole-image SAD and Grad of both."""
    rows = []
    for kind, label in enumerate(SETS):
        mine = [name for k, name in names if k == kind]
        if not mine:
            continue
        diffs, psnrs, same_alpha, same_bokeh, scores = [], [], 0, 0, {"before": [], "now": []}
        for name in mine:
            alpha = {w: np.load(f / f"{name}.alpha.npy") for w, f in (("now", now), ("before", before))}
            bokeh = [np.load(f / f"{name}.bokeh.npy") for f in (now, before)]
            diffs.append(float(np.mean(np.abs(alpha["now"] - alpha["before"]))))
            same_alpha += int(np.array_equal(alpha["now"], alpha["before"]))
            same_bokeh += int(np.array_equal(*bokeh))
            psnrs.append(psnr(*bokeh))
            if kind == 0:
                for w, a in alpha.items():
                    scores[w].append((sad(a, truth[name], region="all"),
                                      gradient_error(a, truth[name], region="all")))
        mean = {w: np.mean(s, axis=0).round(3).tolist() if s else [None, None] for w, s in scores.items()}
        rows.append({"set": label, "images": len(mine), "identical alpha": same_alpha,
                     "largest mean |Δα|": float(f"{max(diffs):.2g}"), "identical bokeh": same_bokeh,
                     "lowest bokeh PSNR dB": round(min(psnrs), 1), "SAD before": mean["before"][0],
                     "SAD now": mean["now"][0], "Grad before": mean["before"][1], "Grad now": mean["now"][1]})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.change_quality", description=__doc__.split("\n\n")[0])
    p.add_argument("artifact", help="a checkpoint or exported artifact (with its manifest)")
    p.add_argument("--before", type=Path, required=True, help="the source tree of the code before the change")
    p.add_argument("--label", default="", help="what the change is, for the method text")
    p.add_argument("--out", default=None, help="measured-results file (default benchmarks/measured/"
                                               "change-quality-<date>-<device>.json)")
    args = p.parse_args(argv)
    artifact = str(Path(args.artifact).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        names = outputs(artifact, Path.cwd(), Path(tmp, "now"))
        outputs(artifact, args.before.resolve(), Path(tmp, "before"))
        truth = {item.name: item.alpha for item in EvalFolder(build_phone_set(PhoneSetConfig(), PHONE_CACHE,
                                                                              progress=False))}
        rows = compared(names, Path(tmp, "now"), Path(tmp, "before"), truth)
    method = ("runtime.matter.Matter.predict (the shipped band refiner, with_trimap_prob=False) and "
              "runtime.bokeh.render_bokeh (default strength), this tree" + (f" ({args.label})" if args.label else "")
              + f" against {described(args.before)}, on the same inputs, one process each; whole-image SAD / Grad "
              "against the ground truth; mean |Δα| per image; PSNR of each bokeh against the one before")
    command = ["python", "-m", "benchmarks.change_quality", args.artifact, "--before", "TREE"]
    table = measured_header("change-quality", input_size=[512, 512], threads=None, model=args.artifact,
                            method=method, command=command + (["--label", args.label] if args.label else []))
    save(table | {"columns": list(rows[0]), "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
