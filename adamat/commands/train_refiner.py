"""``adamat train-refiner``: train the band refiner on a network's alphas, score it k-fold, ship its ONNX graph.

1. every photo of the folder (the alphamatting.com photos with ground truth by default) at each ``--scales``
   with each seed's ``phone`` mask, through the network's app path (:mod:`evaluation.refiner_data`);
2. ``--folds`` k-fold: the held-back photos are one fold, the others are dealt into the rest; each fold's
   refiner is trained without its photos and scored on them (mask seed 0), beside the network alone, the guided
   filter and the raw mask: the numbers to choose by, written as a measured table (``--measured``);
3. the refiner of the held-back fold (trained on the training photos only) is exported to ``--out``, and its
   INT8 graph for onnxruntime beside it (``<stem>_int8.onnx``: :mod:`export.band_refiner_int8`), calibrated on
   the band of the training photos. ``--quantize-only`` does only that, for the graph already at ``--out``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from adamatting.checkpoint import file_sha256
from adamatting.config import DEFAULT_WEIGHTS
from adamatting.train.band_refiner import RefinerRecipe, train_band_refiner
from calib_data.splits import REAL_VALIDATION, alphamatting_dev_dir
from common.arguments import file_named, number, path_text, positive_int, refuse_repeats, thread_count, whole_number
from common.errors import DataError
from common.outputs import check_writable, same_file, write_json
from evaluation.datasets import EvalFolder
from evaluation.refiner_data import (
    check_scale,
    folds,
    most_folds,
    phone_scale_items,
    refiner_samples,
    score_sample,
    see_through_items,
)
from export.band_refiner_graph import write_band_refiner
from export.band_refiner_int8 import CALIBRATION_TILES, calibration_batches, write_int8_refiner
from runtime.band_refiner import QUANTIZED_FROM, SHIPPED, BandRefiner, int8_graph
from runtime.matter import Matter
from runtime.refine import Refinement

METHODS = ("refined", "network", "guided filter", "raw mask")
FOLDS = 4
SEE_THROUGH = 48


MAX_SCALE = 4          # --scales: every sample stays in memory through training (4x: 16x a photo's pixels)
MAX_SUBJECTS = 256     # --see-through, --phone-scale: each subject's sample stays in memory through training
MAX_CHANNELS = 256     # --channels: the refiner is a small graph run on every band (16 by default)


def add_arguments(t) -> None:
    t.add_argument("--checkpoint", type=path_text, default=str(DEFAULT_WEIGHTS),
                   help="the network whose alpha it refines")
    t.add_argument("--folder", type=path_text, default=None,
                   help="photos with ground truth (default: the alphamatting.com dev set)")
    t.add_argument("--out", type=file_named(".onnx"), default=str(SHIPPED),
                   help="where the refiner's ONNX graph goes, a .onnx file (default: the runtime's); its INT8 graph "
                        "goes beside it as <stem>_int8.onnx")
    t.add_argument("--measured", type=file_named(".json"), default=None,
                   help="write the k-fold table here, a .json file (a benchmarks/measured/ JSON; needs --folds >= 2)")
    t.add_argument("--scales", type=number(0, MAX_SCALE, above=True), nargs="+", default=[1.0, 2.0],
                   help=f"photo scales (× native), each above 0 and at most {MAX_SCALE}: every sample stays in memory "
                        f"through training, and {MAX_SCALE}× is {MAX_SCALE ** 2}× a photo's pixels")
    t.add_argument("--seeds", type=whole_number(0), nargs="+", default=[0, 1, 2, 3],
                   help="phone-mask seeds per photo (whole numbers >= 0, each once)")
    t.add_argument("--see-through", type=whole_number(0, MAX_SUBJECTS), default=SEE_THROUGH, metavar="N",
                   help=f"also train on N procedural see-through subjects (nets, foliage), one mask each (0 to "
                        f"{MAX_SUBJECTS}: each one's sample stays in memory through training)")
    t.add_argument("--phone-scale", type=whole_number(0, MAX_SUBJECTS), default=0, metavar="N",
                   help="also train on N procedural subjects (hair, fur, ...) made at 12 megapixels and brought to "
                        f"the working resolution, one mask each (0 to {MAX_SUBJECTS}, as --see-through)")
    t.add_argument("--refine-tiles", type=whole_number(0), default=8, metavar="TILES",
                   help="the network's own refinement of the band (runtime.refine: at most this many tiles, >= 0; "
                        "0: off), as Matter will run it")
    t.add_argument("--folds", type=positive_int, default=FOLDS,
                   help="k of the k-fold scores, at most the folds the photos make (the held-back photos are one "
                        "fold, every other photo can be one); 1: one refiner, trained without the held-back photos "
                        "(scored on them where there are any)")
    t.add_argument("--steps", type=positive_int, default=RefinerRecipe.steps)
    t.add_argument("--channels", type=whole_number(1, MAX_CHANNELS), default=RefinerRecipe.channels,
                   help=f"the refiner's channels, 1 to {MAX_CHANNELS} (default {RefinerRecipe.channels})")
    t.add_argument("--threads", type=thread_count, default=0, help="torch CPU threads (default: torch's)")
    t.add_argument("--quantize-only", action="store_true",
                   help="train nothing: quantize the --out graph for onnxruntime (its INT8 graph beside it, "
                        "calibrated on the band of the training photos at --scales, first seed)")
    t.set_defaults(func=run)


def run(args) -> int:
    folder, out, int8, measured = check_before_work(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = RefinerRecipe(steps=args.steps, channels=args.channels)
    matter = Matter.from_artifact(args.checkpoint, band_refiner=None,
                                  refinement=Refinement(args.refine_tiles) if args.refine_tiles else None)
    if args.quantize_only:
        return quantize(args, out, int8, [item for item in folder if item.name not in REAL_VALIDATION], matter)
    samples = refiner_samples(folder, matter, args.scales, args.seeds, progress=lambda n: print(f"samples: {n}"))
    extra = refiner_samples(see_through_items(args.see_through, seed=1) + phone_scale_items(args.phone_scale, seed=2),
                            matter, [1.0], [0])
    names = sorted({s["name"] for s in samples})    # one fold: the held-back photos are still never trained on
    groups = folds(names, args.folds) if args.folds > 1 else [[n for n in names if n in REAL_VALIDATION]]
    trained_on = [n for n in names if n not in groups[0]]      # the shipped fold's photos
    # the INT8 graph's calibration tiles, before any training or writing: a band-less set fails here, not after
    # the FP32 graph at --out is written without its INT8 graph
    calibration = _calibration(args, [s for s in samples if s["name"] in trained_on and s["seed"] == args.seeds[0]])
    rows, shipped = [], None
    for i, held in enumerate(groups):
        model = train_band_refiner([s for s in samples if s["name"] not in held] + extra, recipe)
        rows += [score_row(model, s) for s in samples if s["name"] in held and s["seed"] == args.seeds[0]]
        shipped = shipped or model
        print(f"fold {i + 1}/{len(groups)} ({', '.join(held) or 'all photos'}) trained")
    table = summary(rows)
    print_table(table)
    meta = {"checkpoint": Path(args.checkpoint).name, "checkpoint_sha256": file_sha256(args.checkpoint),
            "recipe": vars(recipe), "network_refine_tiles": args.refine_tiles, "scales": args.scales,
            "seeds": args.seeds,
            "trained_on": trained_on, "see_through": args.see_through, "phone_scale": args.phone_scale}
    write_band_refiner(shipped, out, meta)
    print(f"wrote {out}")
    _write_int8(out, int8, calibration)
    if measured:
        write_json(measured_table(args, table, rows, meta), measured)
        print(f"wrote {measured}")
    return 0


def check_before_work(args) -> tuple[EvalFolder, Path, Path, Path | None]:
    """The photos, --out, its INT8 graph and --measured once every option is checked, and the outputs can be
    written apart from each other and from every input; ``--quantize-only``'s graph at --out checked (before
    the folder is read)."""
    check_options(args)
    root = Path(args.folder) if args.folder else alphamatting_dev_dir()
    check_apart(_outputs(args), _inputs(args), root)
    if args.quantize_only:
        check_fp32_graph(args.out)
    folder = EvalFolder(root)
    check_photos(args, folder)
    out = args.out if args.quantize_only else check_writable(args.out)    # named first: the one the user gave
    int8 = check_writable(int8_graph(args.out))
    measured = check_writable(args.measured) if args.measured else None
    return folder, out, int8, measured


def check_options(args) -> None:
    """The options checked together (ValueError naming them): no seed or scale twice, the options
    --quantize-only does not use refused beside it, and --measured only where there are scores to table."""
    refuse_repeats(args.seeds, "--seeds")
    refuse_repeats(args.scales, "--scales")
    if args.quantize_only:
        _refuse_training_options(args)
    elif args.measured and args.folds < 2:
        raise ValueError("--measured needs --folds >= 2: one fold scores no photo it could have been trained on")


def check_photos(args, folder: EvalFolder) -> None:
    """From the names and headers, before the model opens: ValueError where a --scales takes a photo below the
    runtime's 8 px or the photos of ``folder`` cannot make the --folds asked for; DataError where they are all of
    the held-back split (never trained or calibrated on)."""
    for name, size in folder.header_sizes().items():      # every photo at every scale, before the network runs
        for scale in args.scales:
            check_scale(name, size, scale)
    held = sum(name in REAL_VALIDATION for name in folder.names)
    if held == len(folder.names):        # never trained or calibrated on (calib_data.splits)
        what = "calibrate the INT8 graph" if args.quantize_only else "train"
        raise DataError(f"holds only held-back photos: none to {what} on", folder.root)
    if args.quantize_only:
        return
    most = most_folds(folder.names)
    if args.folds > most:
        one = f" (its {held} held-back photo{'s are' if held > 1 else ' is'} one)" if held else ""
        raise ValueError(f"--folds {args.folds}: the {len(folder.names)} photos of {folder.root} make at most {most} "
                         f"folds{one}")


TRAINING_DEFAULTS = {"--folds": ("folds", FOLDS), "--steps": ("steps", RefinerRecipe.steps),
                     "--channels": ("channels", RefinerRecipe.channels), "--see-through": ("see_through", SEE_THROUGH),
                     "--phone-scale": ("phone_scale", 0), "--measured": ("measured", None)}


def _refuse_training_options(args) -> None:
    """ValueError naming the training options given beside --quantize-only, which would ignore them."""
    given = [option for option, (name, default) in TRAINING_DEFAULTS.items() if getattr(args, name) != default]
    if given:
        raise ValueError(f"{', '.join(given)}: not used by --quantize-only (it trains and scores nothing)")


def _outputs(args) -> list[tuple[str, str, Path]]:
    """What this run writes: (what it is, the option that names it, path)."""
    int8 = ("--out's INT8 graph", "--out", int8_graph(args.out))
    if args.quantize_only:
        return [int8]
    return [("--out", "--out", args.out), int8] + ([("--measured", "--measured", args.measured)] if args.measured
                                                    else [])


def _inputs(args) -> list[tuple[str, Path]]:
    """The files this run reads, by the option that names them (the photos of --folder apart)."""
    return [("--checkpoint", Path(args.checkpoint))] + ([("--out (the graph it quantizes)", args.out)]
                                                        if args.quantize_only else [])


def check_apart(outputs: list[tuple[str, str, Path]], inputs: list[tuple[str, Path]], photos: Path) -> None:
    """DataError naming the output and the option to change where an output is an input, a file of the folder
    of ``photos`` or another output (the same path, or the same file through a symbolic or a hard link): it
    would be written over."""
    theirs = _file_ids(photos)
    for i, (what, option, path) in enumerate(outputs):
        for other, source in [(o[0], o[2]) for o in outputs[:i]] + inputs:
            if same_file(path, source):
                raise DataError(f"{what} is the same file as {other}: give another {option}", path)
        if path.exists() and _file_id(path) in theirs:
            raise DataError(f"{what} is a file of --folder {photos}: give another {option}", path)


def _file_id(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def _file_ids(folder: Path) -> set[tuple[int, int]]:
    """The files under ``folder`` (photos, ground truth, trimaps), as (device, inode)."""
    return {_file_id(p) for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()


def quantize(args, out: Path, int8: Path, items: list, matter: Matter) -> int:
    """``--quantize-only``: the INT8 graph of the existing ``out``, calibrated on ``items`` (the photos it may
    be trained on: not the held-back split) at ``--scales`` with the first seed's mask."""
    _write_int8(out, int8, _calibration(args, refiner_samples(items, matter, args.scales, args.seeds[:1])))
    return 0


def check_fp32_graph(out: Path) -> None:
    """``--quantize-only``'s input, before any work: an FP32 band refiner graph onnxruntime reads (a file that
    is no graph is a ValueError naming it, an INT8 graph a DataError), not a traceback from the quantizer."""
    if not out.is_file():
        raise DataError("no band refiner graph to quantize (train one first)", out)
    if BandRefiner.open(out, "onnxruntime").name != "band refiner":
        raise DataError(f"is an INT8 graph already: give the FP32 graph it was quantized from ({QUANTIZED_FROM} in "
                        f"its metadata)", out)


def _calibration(args, samples: list[dict]) -> tuple[list, str]:
    """The INT8 graph's calibration batches from ``samples`` and their description; DataError naming the photos
    where their masks make no band (a ground truth with no subject): no tile to calibrate on."""
    if not any(s["band"].any() for s in samples):
        names = sorted({s["name"] for s in samples})
        raise DataError(f"no band to calibrate the INT8 graph on: the masks of {', '.join(names[:6])}"
                        f"{', ...' if len(names) > 6 else ''} mark no edge (a ground truth with no subject?)",
                        args.folder or alphamatting_dev_dir())
    return calibration_batches(samples), (f"{CALIBRATION_TILES} band tiles of {len(samples)} photos (scales "
                                          f"{args.scales}, seed {args.seeds[0]}) through the app path of "
                                          f"{Path(args.checkpoint).name}")


def _write_int8(out: Path, int8: Path, calibration: tuple[list, str]) -> None:
    check = write_int8_refiner(out, int8, *calibration)
    print(f"wrote {int8} (against the FP32 graph: mean |Δ| {check['mean_abs_vs_fp32']:.1e}, "
          f"max {check['max_abs_vs_fp32']:.1e})")


@torch.no_grad()
def refine_whole(model, s: dict) -> np.ndarray:
    """The refiner on the whole photo (PyTorch), applied inside the band: what the runtime's tiles compute."""
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x))[None]  # noqa: E731
    out = model(t(s["image"].transpose(2, 0, 1) * 2 - 1), t(s["alpha"][None]), t(s["prior"][None]),
                t(s["mask"][None]))[0, 0].numpy()
    return np.where(s["band"] > 0, out, s["alpha"])


def score_row(model, s: dict) -> dict:
    raw = (s["mask"] > 0.5).astype(np.float32)
    preds = dict(zip(METHODS, (refine_whole(model, s), s["alpha"], s["prior"], raw)))
    return {"image": s["name"], "scale": s["scale"],
            **{m: _sad_grad(score_sample(a, s)) for m, a in preds.items()}}


def _sad_grad(metrics: dict[str, float]) -> dict[str, float]:
    return {k: metrics[k] for k in ("SAD", "Grad")}


def _ratio(a: float, b: float) -> float | None:
    """a / b, None where the filter's error is 0 (photos with no subject: nothing to compare)."""
    return a / b if b else None


def summary(rows: list[dict]) -> list[dict]:
    """Per scale: mean SAD and Grad of each method, the refined/filter ratios and the photos worse than the mask."""
    out = []
    for scale in sorted({r["scale"] for r in rows}):
        sel = [r for r in rows if r["scale"] == scale]
        mean = {m: {k: float(np.mean([r[m][k] for r in sel])) for k in ("SAD", "Grad")} for m in METHODS}
        worse = [r["image"] for r in sel if r["refined"]["SAD"] > r["raw mask"]["SAD"]]
        out.append({"scale": scale, "photos": len(sel), **{m: mean[m] for m in METHODS},
                    "sad_vs_filter": _ratio(mean["refined"]["SAD"], mean["guided filter"]["SAD"]),
                    "grad_vs_filter": _ratio(mean["refined"]["Grad"], mean["guided filter"]["Grad"]),
                    "worse_than_mask": worse})
    return out


def print_table(table: list[dict]) -> None:
    for t in table:
        cells = "  ".join(f"{m} {t[m]['SAD']:.2f}/{t[m]['Grad']:.2f}" for m in METHODS)
        print(f"scale {t['scale']:g} ({t['photos']} photos, SAD/Grad): {cells}  refined/filter SAD "
              f"x{t['sad_vs_filter']:.3f} Grad x{t['grad_vs_filter']:.3f}; worse than the mask: "
              f"{', '.join(t['worse_than_mask']) or 'none'}")


def measured_table(args, table: list[dict], rows: list[dict], meta: dict) -> dict:
    from benchmarks.fingerprint import measured_header   # the device facts, only when a table is written

    head = measured_header("band-refiner-kfold", input_size=[512, 512], threads=args.threads or None,
                           model=f"band refiner on {meta['checkpoint']}", method=(
                               f"{args.folds}-fold over the photos (held-back split as one fold), phone masks, "
                               "whole-image SAD/Grad of held-out photos, mask seed 0"), command=_argv())
    columns = ["scale", "photos", *(f"{m} {k}" for m in METHODS for k in ("SAD", "Grad")),
               "refined/filter SAD", "refined/filter Grad", "worse than mask"]
    body = [{"scale": t["scale"], "photos": t["photos"],
             **{f"{m} {k}": round(t[m][k], 3) for m in METHODS for k in ("SAD", "Grad")},
             "refined/filter SAD": round(t["sad_vs_filter"], 3), "refined/filter Grad": round(t["grad_vs_filter"], 3),
             "worse than mask": ", ".join(t["worse_than_mask"]) or "none"} for t in table]
    note = (f"refiner trained on {meta['checkpoint']}'s alphas; the shipped one is the first fold's (trained on "
            f"{', '.join(meta['trained_on'])} and {meta['see_through']} see-through subjects)")
    return head | {"columns": columns, "rows": body, "note": note, "details": {"per_photo": rows, "refiner": meta}}


def _argv() -> list[str]:
    import sys

    return ["adamat", *sys.argv[1:]]
