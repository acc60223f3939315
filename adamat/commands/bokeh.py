"""``adamat bokeh``: the command-line face of :func:`runtime.pipeline.bokeh_file`, for one photo or a folder
(:mod:`adamat.bokeh_folder`). It imports the runtime alone: with an exported model neither torch nor an
exporter is loaded. Without ``--mask`` the person segmenter finds the person (:mod:`runtime.person_mask`).
Without ``--artifact`` it runs the fastest up-to-date export of the default model found in ``out/export``
(:func:`runtime.artifacts.fastest_export`), else the default checkpoint, and says which."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tqdm import tqdm

from adamat.bokeh_folder import NAMING, bokeh_folder
from common.arguments import chosen, number, or_none, path_text, thread_count, whole_number
from common.errors import DataError, one_line
from common.image_files import DANGLING_LINK
from common.outputs import check_file_path
from runtime import kernels
from runtime.artifacts import fastest_export
from runtime.bokeh import check_strength
from runtime.clip import CLIP_REFINEMENT, bokeh_clip
from runtime.clip_files import is_clip
from runtime.lens_blur import DEFAULT_STRENGTH
from runtime.matter import DEFAULT_INPUT_SIZE, Matter
from runtime.matting_laplacian import MAX_WEIGHT
from runtime.matting_laplacian import WEIGHT as LAPLACIAN_WEIGHT
from runtime.person_mask import PersonSegmenter
from runtime.pipeline import AUTO, DEFAULT_ARTIFACT, bokeh_file
from runtime.preprocess import check_band
from runtime.refine import DEFAULT_REFINEMENT, Refinement

STRENGTH_HELP = "blur disc radius as a fraction of the image diagonal (default 0.015: 75 px at 4000x3000)"


MAX_REFINE_TILES = 64   # network calls per photo at most: more tiles than a 12 MP photo's band needs


def add_arguments(b: argparse.ArgumentParser) -> None:
    b.add_argument("photo", type=path_text,
                   help="the photo (JPEG, PNG, HEIC, ...; any size; EXIF orientation applied), a folder of photos, "
                        "or a video clip (.mp4, .mov, .m4v, .mkv, .webm)")
    b.add_argument("-o", "--out", required=True, type=path_text,
                   help="output image, .jpg/.jpeg or .png, upright with the photo's colour profile (written "
                        "atomically); for a folder of photos, the output folder")
    b.add_argument("--mask", default=None, type=path_text,
                   help="coarse person mask of the photo (white = person); 'auto' (default without --trimap): found "
                        "by the person segmenter (people only); 'none': no mask, the network decides every pixel")
    b.add_argument("--overwrite", action="store_true", help="replace outputs that exist already")
    b.add_argument("--format", choices=["jpg", "png"], default=None,
                   help=f"output format for a folder (default jpg; a photo's follows the suffix of -o); {NAMING}")
    b.add_argument("--trimap", default=None, type=path_text, help="trimap (0/128/255) instead of a mask")
    b.add_argument("--band", type=int, default=None,
                   help="unknown band on each side of the mask's edge, in photo pixels (default: two pixels of the "
                        "mask's own resolution inside it and six outside, at least 14 and 16: 32 and 95 for a 256-px "
                        "mask of a 4032-px photo)")
    b.add_argument("--artifact", default=None, type=path_text,
                   help="model: a checkpoint (.pt) or an exported artifact with its manifest (default: the fastest "
                        "up-to-date export of weights/mobile-int8.pt in out/export or $ADAMAT_ARTIFACTS, else that "
                        "checkpoint)")
    b.add_argument("--strength", type=float, default=None, help=STRENGTH_HELP)
    b.add_argument("--threads", type=thread_count, default=None, help="CPU threads of the onnxruntime/OpenVINO backend")
    b.add_argument("--hint", choices=["LATENCY", "THROUGHPUT"], default=None,
                   help="OpenVINO performance hint (default LATENCY)")
    b.add_argument("--refine", type=whole_number(0, MAX_REFINE_TILES), default=None,
                   metavar="TILES",
                   help=f"refine the band on at most this many tiles at {DEFAULT_REFINEMENT.zoom:g}x the model's "
                        f"resolution (runtime.refine; each tile is one more model call; 0: off; default "
                        f"{DEFAULT_REFINEMENT.tiles}, at most {MAX_REFINE_TILES})")
    b.add_argument("--band-refiner", default="shipped", type=path_text, metavar="shipped|none|PATH",
                   help="the band refiner run after the network where there is a mask (runtime.band_refiner; "
                        "default: the shipped one; none: off)")
    b.add_argument("--laplacian", type=or_none(number(0, MAX_WEIGHT, above=True)), default=None,
                   metavar="WEIGHT|none",
                   help=f"with --trimap: the network's weight in the matting Laplacian's solve of the trimap's band "
                        f"(runtime.matting_laplacian; none: the network's alpha as is; default {LAPLACIAN_WEIGHT:g})")
    b.add_argument("--timings", action="store_true", help="print the seconds of each stage")
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _check_input(args)
    options = {k: v for k, v in (("threads", args.threads), ("hint", args.hint)) if v is not None}
    artifact, chosen = (args.artifact, "") if args.artifact else default_artifact()
    _check_model_options(args, artifact)
    _check_photo_options(args)
    if is_clip(args.photo) and not Path(args.photo).is_dir():
        return _run_clip(args, artifact, chosen, options)
    folder = Path(args.photo).is_dir()
    if folder and (args.trimap or args.mask not in (None, AUTO, "none")):
        raise DataError("a folder takes --mask auto or --mask none; --mask FILE and --trimap are for one photo",
                        args.photo)
    if (folder or options or args.refine not in (None, DEFAULT_REFINEMENT.tiles) or args.band_refiner != "shipped"
            or args.laplacian is not None):
        artifact = _one_model(args, artifact, options)
    render = _renderer(args, artifact, folder)
    if folder:
        return _run_folder(args, _saying_model_first(render, chosen))
    return _run_photo(args, render, chosen)


def _check_input(args: argparse.Namespace) -> None:
    """DataError where the photo, folder or clip is not there; for a photo or a clip, -o checked as a file."""
    if not Path(args.photo).exists():   # said first: not a complaint about -o, which follows from what it is
        raise DataError(DANGLING_LINK if Path(args.photo).is_symlink() else
                        "not found: give a photo, a folder of photos or a clip", args.photo)
    if not Path(args.photo).is_dir():   # a photo or a clip: -o names a file, checked before any work
        check_file_path(args.out)


def _check_model_options(args: argparse.Namespace, artifact) -> None:
    """--hint and --trimap checked against the model and each other: ValueError naming them."""
    if args.hint and not str(artifact).endswith(".xml"):
        raise ValueError("--hint applies to OpenVINO IR artifacts (.xml) only")
    if args.trimap and (args.mask is not None or args.band is not None):
        raise ValueError(f"--trimap marks the band itself: give it without {'--mask' if args.mask else '--band'}")


def _one_model(args: argparse.Namespace, artifact, options: dict) -> Matter:
    """The model opened once for every photo, with the backend options, tile refinement and band refiner
    asked for."""
    tiles = DEFAULT_REFINEMENT.tiles if args.refine is None else args.refine
    refinement = Refinement(tiles=tiles, zoom=DEFAULT_REFINEMENT.zoom) if tiles else None
    band_refiner = None if args.band_refiner == "none" else args.band_refiner
    return Matter.from_artifact(artifact, backend_options=options, refinement=refinement, band_refiner=band_refiner,
                                laplacian=chosen(args.laplacian, LAPLACIAN_WEIGHT))


def _renderer(args: argparse.Namespace, artifact, folder: bool):
    """``render(photo, out) -> timings``: one photo's bokeh with the mask, trimap and options asked for."""
    # the segmenter unless told otherwise; a trimap needs no mask
    mask = AUTO if args.mask is None else args.mask
    mask = None if mask == "none" or args.trimap else mask
    segmenter = PersonSegmenter() if folder and mask == AUTO and not args.trimap else None

    def render(photo, out) -> dict[str, float]:
        return bokeh_file(photo, out, mask_path=mask, trimap_path=args.trimap, artifact=artifact,
                          strength=args.strength, band=args.band,
                          segmenter=segmenter, overwrite=args.overwrite)
    return render


def _saying_model_first(render, chosen: str):
    """``render`` that says the model's line as the first photo starts: a folder refused before shows none."""
    say_model = once(lambda: print(chosen, file=sys.stderr, end=""))

    def render_saying_model(photo, out) -> dict[str, float]:
        say_model()
        return render(photo, out)
    return render_saying_model


def _run_photo(args: argparse.Namespace, render, chosen: str) -> int:
    """One photo: rendered, then the model's line, the output's path and the timings asked for."""
    timings = render(args.photo, args.out)
    print(chosen, file=sys.stderr, end="")
    print(args.out)
    if args.timings:
        _print_timings(timings)
    return 0


def _check_photo_options(args: argparse.Namespace) -> None:
    """--strength and --band checked once, before the model loads (a folder's photos would each fail on them),
    and options this input would ignore refused: ValueError naming them."""
    try:
        args.strength = check_strength(DEFAULT_STRENGTH if args.strength is None else args.strength)
        if args.band is not None:
            check_band(args.band)
    except ValueError as e:   # the runtime's words for its arguments, said of the option
        raise ValueError(f"--{e}") from None
    folder = Path(args.photo).is_dir()
    what = "a clip" if is_clip(args.photo) and not folder else "a photo"
    if args.format is not None and not folder:
        raise ValueError(f"--format applies to a folder of photos; {what}'s output format follows the suffix of -o")
    if args.laplacian is not None and not args.trimap:
        raise ValueError("--laplacian applies to a photo's --trimap (the band it marks): not used with "
                         + ("a clip" if what == "a clip" else "a folder" if folder else
                            "--mask none" if args.mask == "none" else "a mask"))
    if args.band is not None and (what == "a clip" or args.mask == "none"):
        raise ValueError("--band applies to a photo's mask: not used with "
                         + ("a clip (its band follows the segmenter)" if what == "a clip" else "--mask none"))


def _run_clip(args: argparse.Namespace, artifact, chosen: str, options: dict) -> int:
    """A video clip: the person segmenter on every frame, the state of runtime.clip across frames."""
    if args.trimap or args.mask not in (None, AUTO):
        given = "--trimap" if args.trimap else f"--mask {args.mask}"
        raise DataError(f"a clip takes --mask auto (the person segmenter on every frame), not {given}: --mask FILE "
                        "and --trimap are for one photo, --mask none for photos and folders", args.photo)
    if args.refine is not None:
        raise ValueError("--refine applies to photos; clips run without tile refinement")
    band_refiner = None if args.band_refiner == "none" else args.band_refiner
    matter = Matter.from_artifact(artifact, backend_options=options, refinement=CLIP_REFINEMENT,
                                  band_refiner=band_refiner)
    segmenter = PersonSegmenter()
    bars: list[tqdm] = []       # made at the first frame, with the model's line: a clip refused before shows neither

    def on_frame(done: int, total: int | None) -> None:
        if not bars:
            print(chosen, file=sys.stderr, end="")
            bars.append(tqdm(desc="bokeh", total=total, unit="frame", file=sys.stderr, leave=False))
        bars[0].update(done - bars[0].n)

    try:
        report = bokeh_clip(args.photo, args.out, matter, segmenter=segmenter, overwrite=args.overwrite,
                            strength=args.strength, on_frame=on_frame)
    finally:
        for bar in bars:
            bar.close()
    print(args.out)
    print(f"{_count(report.frames, 'frame')} in {report.seconds:.1f} s ({report.fps:.1f} frames/s)"
          + (f"; {report.without_person} without a person left sharp" if report.without_person else "")
          + (f"; {_count(report.scene_cuts, 'scene cut')}" if report.scene_cuts else "")
          + (f"; {report.hdr} HDR converted to SDR BT.709" if report.hdr else ""), file=sys.stderr)
    if args.timings:
        print(f"seconds per stage, summed over {report.frames} frames:")
        _print_timings(report.timings)
    return 0


def once(action):
    """``action`` wrapped to run at its first call only (returns None)."""
    done: list[bool] = []

    def call() -> None:
        if not done:
            done.append(True)
            action()
    return call


def default_artifact() -> tuple[Path, str]:
    """The model ``adamat bokeh`` runs without ``--artifact``, and the line that says so ("" for the checkpoint)."""
    export = fastest_export(DEFAULT_ARTIFACT, input_size=DEFAULT_INPUT_SIZE)
    if export is None:
        named = os.environ.get("ADAMAT_ARTIFACTS")
        if named and not Path(named).is_dir():    # asked for, not there: say so rather than fall back unseen
            return Path(DEFAULT_ARTIFACT), (f"warning: $ADAMAT_ARTIFACTS ({named}) is not a folder: running the "
                                            f"checkpoint {DEFAULT_ARTIFACT}\n")
        return Path(DEFAULT_ARTIFACT), ""
    return export.path, (f"model: {export.path} ({export.label}, the fastest up-to-date export of "
                         f"{DEFAULT_ARTIFACT} here; --artifact chooses another)\n")


def _run_folder(args: argparse.Namespace, render) -> int:
    written, failed, timings = bokeh_folder(Path(args.photo), Path(args.out), render, suffix=f".{args.format or 'jpg'}")
    total = len(written) + len(failed)
    renamed = [f"{p.name} as {out.name}" for p, out in written if out.stem != p.stem]
    print(one_line(f"{len(written)} of {total} photos written to {args.out}"
                   + (f" ({', '.join(renamed)}: photos that share a name)" if renamed else "")
                   + (f"; {len(failed)} failed: {', '.join(p.name for p, _ in failed)}" if failed else "")))
    if args.timings and written:
        print(f"seconds per stage, summed over {len(written)} photos:")
        _print_timings(timings)
    if failed:
        print(f"error: {len(failed)} of {total} photos failed (listed above)", file=sys.stderr)
        return 2
    return 0


ONE_OFF = "one-off: the model, the segmenter and the runtime's loops ({}), opened once per process"
LOOPS = {True: "compiled by make setup", False: "compiled just in time: make setup compiles them ahead, faster to open"}
IO_STAGES = ("open", "load", "write", "decode", "encode")   # not compute: opening, decoding and encoding


TILES_ONLY = "the network on the band's tiles alone: they cover the band, the letterboxed pass was not needed"


def _print_timings(timings: dict[str, float]) -> None:
    notes = {"open": ONE_OFF.format(LOOPS[kernels.ahead_of_time()])} | (
        {"refine": TILES_ONLY} if "model" not in timings else {})
    for stage, seconds in timings.items():
        note = f"   ({notes[stage]})" if stage in notes else ""
        print(f"  {stage:<11} {seconds * 1000:8.1f} ms{note}")
    compute = sum(seconds for stage, seconds in timings.items() if stage not in IO_STAGES)
    print(f"  {'compute':<11} {compute * 1000:8.1f} ms   (every stage between decode and encode)")


def _count(n: int, noun: str) -> str:
    """"1 frame", "2 frames"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
