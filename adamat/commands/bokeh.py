"""``adamat bokeh``: the command-line face of :func:`runtime.pipeline.bokeh_file`. It imports the runtime alone:
with an exported model neither torch nor an exporter is loaded."""

from __future__ import annotations

import argparse

from common.arguments import positive_int
from runtime.lens_blur import DEFAULT_STRENGTH
from runtime.matter import Matter
from runtime.pipeline import DEFAULT_ARTIFACT, bokeh_file
from runtime.refine import DEFAULT_REFINEMENT, Refinement

STRENGTH_HELP = "blur disc radius as a fraction of the image diagonal (default 0.015: 75 px at 4000x3000)"


def add_arguments(b: argparse.ArgumentParser) -> None:
    b.add_argument("photo", help="the photo (any size; EXIF orientation applied)")
    b.add_argument("-o", "--out", required=True, help="output image, .jpg/.jpeg or .png (written atomically)")
    b.add_argument("--mask", default=None, help="coarse person mask of the photo (white = person)")
    b.add_argument("--trimap", default=None, help="trimap (0/128/255) instead of a mask")
    b.add_argument("--band", type=int, default=None,
                   help="unknown band around the mask's edge, in photo pixels (default: two pixels of the mask's own "
                        "resolution, at least 16: 32 for a 256-px mask of a 4032-px photo)")
    b.add_argument("--artifact", default=None,
                   help="model: a checkpoint (.pt) or an exported .onnx with its manifest (default: weights/mobile.pt)")
    b.add_argument("--strength", type=float, default=None, help=STRENGTH_HELP)
    b.add_argument("--threads", type=positive_int, default=None, help="CPU threads of the onnxruntime/OpenVINO backend")
    b.add_argument("--hint", choices=["LATENCY", "THROUGHPUT"], default=None,
                   help="OpenVINO performance hint (default LATENCY)")
    b.add_argument("--refine", type=int, default=DEFAULT_REFINEMENT.tiles, metavar="TILES",
                   help=f"refine the band on at most this many tiles at {DEFAULT_REFINEMENT.zoom:g}x the model's "
                        f"resolution (runtime.refine; each tile is one more model call; 0: off; default "
                        f"{DEFAULT_REFINEMENT.tiles})")
    b.add_argument("--timings", action="store_true", help="print the seconds of each stage")
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = {k: v for k, v in (("threads", args.threads), ("hint", args.hint)) if v is not None}
    artifact = args.artifact or DEFAULT_ARTIFACT
    if args.hint and not str(artifact).endswith(".xml"):
        raise ValueError("--hint applies to OpenVINO IR artifacts (.xml) only")
    if args.refine < 0:
        raise ValueError(f"--refine must be a number of tiles >= 0, got {args.refine}")
    if options or args.refine != DEFAULT_REFINEMENT.tiles:
        refinement = Refinement(tiles=args.refine, zoom=DEFAULT_REFINEMENT.zoom) if args.refine else None
        artifact = Matter.from_artifact(artifact, backend_options=options, refinement=refinement)
    timings = bokeh_file(args.photo, args.out, mask_path=args.mask, trimap_path=args.trimap, artifact=artifact,
                         strength=DEFAULT_STRENGTH if args.strength is None else args.strength, band=args.band)
    print(args.out)
    if args.timings:
        for stage, seconds in timings.items():
            print(f"  {stage:<11} {seconds * 1000:8.1f} ms")
    return 0
