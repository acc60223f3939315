"""``adamat eval FOLDER``: the model (any artifacts, through the app's path) beside the raw mask, a guided filter
and closed-form matting on a folder of photos with ground truth, in the trimap or the mask protocol."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from adamatting.config import DEFAULT_WEIGHTS
from calib_data.phone_set import PhoneSetConfig, build_phone_set, build_upscaled_set
from calib_data.segmenter_masks import RECIPES
from calib_data.splits import alphamatting_dev_dir
from common.arguments import out_folder, positive_int
from common.outputs import check_folder
from evaluation.clip_eval import ClipSet, clip_methods, evaluate_clips, write_clip_results
from evaluation.clip_eval import markdown as clip_markdown
from evaluation.datasets import EvalFolder
from evaluation.folder_eval import (
    PROTOCOLS,
    EvalSettings,
    evaluate_folder,
    markdown,
    write_results,
)
from evaluation.methods import BASELINES, CLOSED_FORM_CAP, ClosedForm, Model
from runtime.clip import CLIP_REFINEMENT
from runtime.matter import Matter
from runtime.refine import DEFAULT_REFINEMENT, Refinement

NAMED_SETS = {
    "phone": "the 12-megapixel procedural set with segmenter masks (calib_data/configs/phone.toml)",
    "real": "the real alphamatting.com photos with ground truth (../shared/data)",
    "real-2x": "the same, upscaled 2x (soft ground truth)",
    "real-4x": "the same, upscaled 4x (soft ground truth)",
    "clips": "procedural video clips with exact alpha (calib_data/procedural_clips.py): temporal coherence",
}


def add_arguments(p) -> None:
    p.add_argument("folder", help="photos with ground truth: image/ + alpha/ [+ trimap/] [+ mask/], or the "
                                  "alphamatting.com layout (input/ + gt/ + trimap1/ ...); or a named set: "
                                  f"{', '.join(NAMED_SETS)}")
    p.add_argument("--cache", default="cache/phone", help="where named sets are built (default cache/phone)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="mask",
                   help="mask: a coarse mask (mask/ or simulated), whole image and band metrics; trimap: "
                        "Composition-1k on each given trimap (default: mask)")
    p.add_argument("--recipe", choices=list(RECIPES), default="phone",
                   help="how a mask is simulated from the ground truth where mask/ is absent: phone (256 px, outline "
                        "jittered by a pixel) or down8 (1/8 of the photo) (default: phone)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated masks")
    p.add_argument("--long-side", type=positive_int, default=None, help="scale every photo to this long side first")
    p.add_argument("--artifacts", nargs="+", default=[str(DEFAULT_WEIGHTS)],
                   help="models to score, each through the app's path: checkpoints or exported artifacts")
    p.add_argument("--refine-tiles", type=int, default=DEFAULT_REFINEMENT.tiles,
                   help=f"the models' refinement of the band: at most this many tiles at a higher resolution "
                        f"(runtime.refine; 0: off; default {DEFAULT_REFINEMENT.tiles})")
    p.add_argument("--band-refiner", default="shipped", metavar="shipped|none|PATH",
                   help="the band refiner the models run where a mask is given (runtime.band_refiner; default: "
                        "the shipped one)")
    p.add_argument("--also-unrefined", action="store_true",
                   help="also score each model without either refinement (tiles and band refiner)")
    p.add_argument("--refine-zoom", type=float, default=DEFAULT_REFINEMENT.zoom,
                   help=f"refinement resolution: the photo's long side at this × the model's input side "
                        f"(default {DEFAULT_REFINEMENT.zoom:g})")
    p.add_argument("--baselines", nargs="*", choices=list(BASELINES), default=list(BASELINES),
                   help="baselines beside the models (mask-only ones are skipped in the trimap protocol)")
    p.add_argument("--closed-form-cap", type=positive_int, default=CLOSED_FORM_CAP,
                   help=f"pixels closed-form matting solves at most; larger photos are scaled down for it "
                        f"(default {CLOSED_FORM_CAP})")
    p.add_argument("--images", nargs="+", default=None, metavar="NAME",
                   help="these images only (file stems), e.g. the held-back split GT03 GT15 GT19 GT25")
    p.add_argument("--limit", type=positive_int, default=None, help="the first N images only")
    p.add_argument("--frames", type=positive_int, default=ClipSet.frames, help=f"clips: frames per clip (default "
                                                                              f"{ClipSet.frames})")
    p.add_argument("--clip-size", type=positive_int, nargs=2, default=list(ClipSet.size), metavar=("H", "W"),
                   help="clips: frame size (default 1080 1920)")
    p.add_argument("--out", type=out_folder, default="out/eval", help="folder for eval.json and eval.md")
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
    check_folder(args.out)                                   # before any work
    clips = args.folder == "clips" and not Path(args.folder).exists()
    _refuse_options_of_the_other_kind(args, clips)
    if clips:
        return run_clips(args)
    folder = EvalFolder(resolve(args.folder, args.cache), args.long_side, args.limit, args.images)
    if args.refine_tiles < 0:
        raise ValueError(f"--refine-tiles must be >= 0, got {args.refine_tiles}")
    refinement = Refinement(args.refine_tiles, args.refine_zoom) if args.refine_tiles else None
    band_refiner = None if args.band_refiner == "none" else args.band_refiner
    methods = [Model.open(a, refinement, band_refiner) for a in args.artifacts]
    if args.also_unrefined and (refinement is not None or band_refiner is not None):
        methods += [Model.open(a, None, None) for a in args.artifacts]
    methods += [ClosedForm(args.closed_form_cap) if b == "closed-form" else BASELINES[b]() for b in args.baselines]
    settings = EvalSettings(args.protocol, args.recipe, args.seed, args.long_side)
    with tqdm(total=len(folder), desc="eval", unit="image", file=sys.stderr) as bar:   # closed before any error line
        result = evaluate_folder(folder, methods, settings, progress=lambda _: bar.update())
    print(markdown(result), end="")
    for path in write_results(result, Path(args.out)):
        print(f"wrote {path}")
    return 0


def _refuse_options_of_the_other_kind(args, clips: bool) -> None:
    """ValueError naming the options given that the evaluation asked for does not use (clips take no photo
    selection or trimap protocol, photos no frames): they would be ignored without a word."""
    given = ({"--images": args.images, "--limit": args.limit, "--long-side": args.long_side,
              "--protocol trimap": args.protocol == "trimap", "--recipe down8": args.recipe != "phone"} if clips else
             {"--frames": args.frames != ClipSet.frames, "--clip-size": list(args.clip_size) != list(ClipSet.size)})
    unused = [name for name, value in given.items() if value]
    if unused:
        what = "clips (they take --frames, --clip-size, --seed)" if clips else "photos (--frames, --clip-size: clips)"
        raise ValueError(f"{', '.join(unused)}: not used by {what}")


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
