"""``adamat eval FOLDER``: the model (any artifacts, through the app's path) beside the raw mask, a guided filter
and closed-form matting on a folder of photos with ground truth, in the trimap or the mask protocol."""

from __future__ import annotations

import sys
from math import isqrt
from pathlib import Path

from tqdm import tqdm

from adamatting.config import DEFAULT_WEIGHTS
from calib_data.phone_set import PhoneSetConfig, build_phone_set, build_upscaled_set
from calib_data.procedural import MIN_SIZE
from calib_data.segmenter_masks import RECIPES
from calib_data.splits import alphamatting_dev_dir
from common.arguments import (
    chosen,
    number,
    or_none,
    out_folder,
    path_text,
    positive_int,
    refuse_repeats,
    whole_number,
)
from common.errors import DataError
from common.image_files import MAX_PIXELS
from common.outputs import check_writable, one_file_twice, same_file
from evaluation.clip_eval import CLIP_RESULT_FILES, ClipSet, clip_methods, evaluate_clips, write_clip_results
from evaluation.clip_eval import markdown as clip_markdown
from evaluation.datasets import MIN_LONG_SIDE, EvalFolder
from evaluation.folder_eval import (
    PROTOCOLS,
    RESULT_FILES,
    EvalSettings,
    evaluate_folder,
    markdown,
    write_results,
)
from evaluation.methods import BASELINES, CLOSED_FORM_CAP, ClosedForm, Model, artifact_labels
from runtime.clip import CLIP_REFINEMENT
from runtime.matter import Matter
from runtime.matting_laplacian import MAX_WEIGHT
from runtime.matting_laplacian import WEIGHT as LAPLACIAN_WEIGHT
from runtime.preprocess import MIN_SIDE
from runtime.refine import DEFAULT_REFINEMENT, Refinement

NAMED_SETS = {
    "phone": "the 12-megapixel procedural set with segmenter masks (calib_data/configs/phone.toml)",
    "real": "the real alphamatting.com photos with ground truth (../shared/data)",
    "real-2x": "the same, upscaled 2x (soft ground truth)",
    "real-4x": "the same, upscaled 4x (soft ground truth)",
    "clips": "procedural video clips with exact alpha (calib_data/procedural_clips.py): temporal coherence",
}
MAX_LONG_SIDE = isqrt(MAX_PIXELS)     # a square photo at this long side is the 50-megapixel limit of image_files
MAX_CLOSED_FORM = 16_000_000          # closed-form matting's memory grows with its pixels (12 MP whole fits)
MAX_FRAMES, MAX_CLIP_SIDE = 600, 4096
MAX_CLIP_PIXELS = MAX_FRAMES * 1080 * 1920   # a clip is held in memory whole: MAX_FRAMES of 1080p, or as many pixels


def add_arguments(p) -> None:
    p.add_argument("folder", help="photos with ground truth: image/ + alpha/ [+ trimap/] [+ mask/], or the "
                                  "alphamatting.com layout (input/ + gt/ + trimap1/ ...); or a named set: "
                                  f"{', '.join(NAMED_SETS)}")
    p.add_argument("--cache", type=out_folder, default="cache/phone", help="where named sets are built (default cache/phone)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="mask",
                   help="mask: a coarse mask (mask/ or simulated), whole image and band metrics; trimap: "
                        "Composition-1k on each given trimap (default: mask)")
    p.add_argument("--recipe", choices=list(RECIPES), default="phone",
                   help="how a mask is simulated from the ground truth where mask/ is absent: phone (256 px, outline "
                        "jittered by a pixel) or down8 (1/8 of the photo) (default: phone)")
    p.add_argument("--seed", type=whole_number(0), default=0, help="seed of the simulated masks (>= 0)")
    p.add_argument("--long-side", type=whole_number(MIN_LONG_SIDE, MAX_LONG_SIDE), default=None,
                   help=f"scale every photo to this long side first ({MIN_LONG_SIDE} to {MAX_LONG_SIDE}: a photo up to "
                        f"2:1 then keeps its short side at the {MIN_SIDE} px the runtime mattes at least, and a square "
                        f"photo stays within the {MAX_PIXELS // 1_000_000}-megapixel limit of every image read)")
    p.add_argument("--artifacts", nargs="+", type=path_text, default=[str(DEFAULT_WEIGHTS)],
                   help="models to score, each through the app's path: checkpoints or exported artifacts")
    p.add_argument("--refine-tiles", type=whole_number(0), default=DEFAULT_REFINEMENT.tiles, metavar="TILES",
                   help=f"the models' refinement of the band: at most this many tiles (>= 0) at a higher resolution "
                        f"(runtime.refine; 0: off; default {DEFAULT_REFINEMENT.tiles})")
    p.add_argument("--band-refiner", type=path_text, default="shipped", metavar="shipped|none|PATH",
                   help="the band refiner the models run where a mask is given (runtime.band_refiner; default: "
                        "the shipped one)")
    p.add_argument("--laplacian", type=or_none(number(0, MAX_WEIGHT, above=True)), default=None,
                   metavar="WEIGHT|none",
                   help=f"trimap protocol: the network's weight in the matting Laplacian's solve of each trimap's band "
                        f"(runtime.matting_laplacian; none: the network's alpha as is; default {LAPLACIAN_WEIGHT:g})")
    p.add_argument("--also-unrefined", action="store_true",
                   help="also score each model without any refinement (tiles, band refiner, matting Laplacian)")
    p.add_argument("--refine-zoom", type=number(1, above=True), default=DEFAULT_REFINEMENT.zoom,
                   help=f"refinement resolution: the photo's long side at this (> 1) × the model's input side, never "
                        f"above the photo's own (default {DEFAULT_REFINEMENT.zoom:g})")
    p.add_argument("--baselines", nargs="*", choices=list(BASELINES), default=list(BASELINES),
                   help="baselines beside the models (mask-only ones are skipped in the trimap protocol)")
    p.add_argument("--closed-form-cap", type=whole_number(1, MAX_CLOSED_FORM), default=CLOSED_FORM_CAP,
                   help=f"pixels closed-form matting solves at most; larger photos are scaled down for it (default "
                        f"{CLOSED_FORM_CAP}; at most {MAX_CLOSED_FORM}: its memory grows with the pixels it solves)")
    p.add_argument("--images", nargs="+", default=None, metavar="NAME",
                   help="these images only (file stems), e.g. the held-back split GT03 GT15 GT19 GT25")
    p.add_argument("--limit", type=positive_int, default=None, help="the first N images only")
    p.add_argument("--frames", type=whole_number(2, MAX_FRAMES), default=ClipSet.frames,
                   help=f"clips: frames per clip (default {ClipSet.frames}; at least 2, the temporal metrics compare "
                        f"consecutive frames; at most {MAX_FRAMES}: a clip is held in memory whole, at most "
                        f"{MAX_FRAMES} frames of 1080p or as many pixels)")
    p.add_argument("--clip-size", type=whole_number(MIN_SIZE, MAX_CLIP_SIDE), nargs=2, default=list(ClipSet.size),
                   metavar=("H", "W"), help=f"clips: frame size, each side {MIN_SIZE} to {MAX_CLIP_SIDE} (default "
                                            f"1080 1920)")
    p.add_argument("--out", type=out_folder, default="out/eval", help="folder for eval.json and eval.md (eval-clips.json and .md for clips; default out/eval, in the "
                        "current folder)")
    p.set_defaults(func=run)


def resolve(folder: str, cache: str) -> Path:
    """A folder, or a named set (built into ``cache`` on first use)."""
    if Path(folder).exists() or folder not in NAMED_SETS:
        return Path(folder)
    if folder == "phone":
        return build_phone_set(PhoneSetConfig.load("phone"), cache)
    if folder == "real":
        return alphamatting_dev_dir()
    return build_upscaled_set(alphamatting_dev_dir(), int(folder[-2]), cache)


def run(args) -> int:
    clips = args.folder == "clips" and not Path(args.folder).exists()
    _refuse_options_of_the_other_kind(args, clips)
    for option in ("--artifacts", "--baselines", "--images"):
        refuse_repeats(getattr(args, option[2:]) or [], option)
    _refuse_one_file_twice(args.artifacts)
    if clips:
        _check_clip_size(args)
    for name in CLIP_RESULT_FILES if clips else RESULT_FILES:  # before any work
        check_writable(Path(args.out) / name)
    _check_outputs_are_not_inputs(args, clips)
    if clips:
        return run_clips(args)
    folder = EvalFolder(resolve(args.folder, args.cache), args.long_side, args.limit, args.images)
    refinement = Refinement(args.refine_tiles, args.refine_zoom) if args.refine_tiles else None
    # the band refiner runs where a mask is given: not in the trimap protocol, nor named there
    band_refiner = None if args.band_refiner == "none" or args.protocol == "trimap" else args.band_refiner
    labels = artifact_labels(args.artifacts)    # two models of one file name are two methods, told apart
    laplacian = chosen(args.laplacian, LAPLACIAN_WEIGHT) if args.protocol == "trimap" else None
    methods = [Model.open(a, refinement, band_refiner, label, laplacian) for a, label in zip(args.artifacts, labels)]
    if args.also_unrefined and (refinement is not None or band_refiner is not None or laplacian is not None):
        methods += [Model.open(a, None, None, label) for a, label in zip(args.artifacts, labels)]
    methods += [ClosedForm(args.closed_form_cap) if b == "closed-form" else BASELINES[b]() for b in args.baselines]
    settings = EvalSettings(args.protocol, args.recipe, args.seed, args.long_side)
    with tqdm(total=len(folder), desc="eval", unit="image", file=sys.stderr) as bar:   # closed before any error line
        result = evaluate_folder(folder, methods, settings, progress=lambda _: bar.update())
    print(markdown(result), end="")
    for path in write_results(result, Path(args.out)):
        print(f"wrote {path}")
    return 0


def _refuse_options_of_the_other_kind(args, clips: bool) -> None:
    """ValueError naming the options given that the evaluation asked for does not use, which would be ignored
    without a word: clips take one model, no photo selection, trimap protocol, refinement or closed-form matting
    (their baselines are fixed), photos no frames, and the trimap protocol simulates no masks."""
    if clips:
        given = {"--images": args.images, "--limit": args.limit, "--long-side": args.long_side,
                 "--protocol trimap": args.protocol == "trimap", "--recipe": args.recipe != "phone",
                 "a second --artifacts": len(args.artifacts) > 1, "--baselines": args.baselines != list(BASELINES),
                 "--refine-tiles": args.refine_tiles != DEFAULT_REFINEMENT.tiles,
                 "--refine-zoom": args.refine_zoom != DEFAULT_REFINEMENT.zoom, "--also-unrefined": args.also_unrefined,
                 "--closed-form-cap": args.closed_form_cap != CLOSED_FORM_CAP,
                 "--laplacian": args.laplacian is not None}
        what = "clips (one model, with --frames, --clip-size, --seed, --band-refiner)"
    else:
        given = {"--frames": args.frames != ClipSet.frames, "--clip-size": list(args.clip_size) != list(ClipSet.size)}
        what = "photos (--frames, --clip-size: clips)"
        if args.protocol == "mask":
            given |= {"--laplacian": args.laplacian is not None}
            what = "photos in the mask protocol (--laplacian: the trimap protocol's; --frames, --clip-size: clips)"
        if args.protocol == "trimap":
            given |= {"--recipe": args.recipe != "phone", "--seed": args.seed != 0,
                      "--band-refiner": args.band_refiner != "shipped"}
            what = "the trimap protocol (--recipe, --seed: the masks the mask protocol simulates; --band-refiner: " \
                   "it runs with a mask; --frames, --clip-size: clips)"
    unused = [name for name, value in given.items() if value]
    if unused:
        raise ValueError(f"{', '.join(unused)}: not used by {what}")


def _refuse_one_file_twice(artifacts: list[str]) -> None:
    """ValueError naming two --artifacts that are one file under two paths (``A/x.onnx ./A/x.onnx``, a link):
    one model scored twice."""
    twice = one_file_twice(artifacts)
    if twice:
        raise ValueError(f"--artifacts: {twice[0]} and {twice[1]} are the same file, given twice")


def _check_clip_size(args) -> None:
    """ValueError where the clips of --frames and --clip-size would not fit in memory (each is held whole)."""
    (h, w), frames = args.clip_size, args.frames
    if frames * h * w > MAX_CLIP_PIXELS:
        raise ValueError(f"--frames {frames} --clip-size {h} {w}: {frames * h * w:,} pixels a clip, at most "
                         f"{MAX_CLIP_PIXELS:,} (a clip is held in memory whole: {MAX_FRAMES} frames of 1080p)")


def _check_outputs_are_not_inputs(args, clips: bool) -> None:
    """DataError naming an output file in --out that is a model or band refiner this evaluation reads."""
    names = CLIP_RESULT_FILES if clips else RESULT_FILES
    inputs = [("--artifacts", a) for a in args.artifacts]
    if args.band_refiner not in ("shipped", "none"):
        inputs.append(("--band-refiner", args.band_refiner))
    for out in (Path(args.out) / name for name in names):
        for option, source in inputs:
            if out.exists() and same_file(out, Path(source)):
                raise DataError(f"is {option} {source}: give another --out", out)


def run_clips(args) -> int:
    """The first artifact through the clip path (runtime.clip), with and without its state, beside the per-frame
    baselines, on the procedural clips."""
    band_refiner = None if args.band_refiner == "none" else args.band_refiner
    matter = Matter.from_artifact(args.artifacts[0], refinement=CLIP_REFINEMENT, band_refiner=band_refiner)
    clip_set = ClipSet(tuple(args.clip_size), args.frames, seed=args.seed)
    methods = clip_methods(matter)
    with tqdm(total=len(clip_set.kinds) * len(methods), desc="eval clips", unit="run", file=sys.stderr) as bar:
        result = evaluate_clips(clip_set, methods, progress=lambda _: bar.update())
    result["artifact"] = str(args.artifacts[0])
    print(clip_markdown(result), end="")
    for path in write_clip_results(result, Path(args.out)):
        print(f"wrote {path}")
    return 0
