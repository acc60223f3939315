"""``adamat demo`` (``make demo``): the figures, then the main job (exports, gates, latency, report)."""

from __future__ import annotations

from pathlib import Path

from adamat.figures import run_demo
from adamat.main_job import JobConfig, run_main_job
from adamatting.checkpoint import read_checkpoint
from adamatting.config import DEFAULT_WEIGHTS, VARIANT_WEIGHTS
from common.arguments import count, out_folder, path_text, thread_count, whole_number
from common.errors import DataError
from common.outputs import check_folder, same_file
from export.job import add_size_argument
from export.onnx_graph import check_checkpoint_size


def add_arguments(d) -> None:
    d.add_argument("--out", type=out_folder, default="out/demo", help="folder for the contact sheet and figures")
    d.add_argument("--cache", type=out_folder, default="cache/sets", help="cache root for the composited sets")
    d.add_argument("--weights", type=path_text, default=str(DEFAULT_WEIGHTS),
                   help="the checkpoint to export, gate and benchmark")
    d.add_argument("--variant", type=path_text, default=str(VARIANT_WEIGHTS),
                   help="a second model to export to ONNX and OpenVINO, gate, and compare with the first in one "
                        "interleaved latency run ('none': skip)")
    d.add_argument("--export-dir", type=out_folder, default="out/export",
                   help="artifacts (up-to-date ones are reused)")
    d.add_argument("--reports", type=out_folder, default="reports",
                   help="the report goes to <reports>/<timestamp>/report.md")
    add_size_argument(d, help="the export size, default 512 512")
    d.add_argument("--warmup", type=count, default=3, help="latency: untimed runs per artifact")
    d.add_argument("--runs", type=whole_number(1), default=20, help="latency: timed runs per artifact")
    d.add_argument("--threads", type=thread_count, default=None, help="latency: intra-op threads (default: the runtime's)")
    d.add_argument("--figures-only", action="store_true",
                   help="only the sets, contact sheet and figures (no export, gates, latency or report)")
    d.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.out)
    variant = None if args.variant == "none" else Path(args.variant)
    if variant is not None and not args.figures_only and not variant.is_file():
        raise DataError("no such checkpoint for the second model (--variant none skips it)", variant)
    if variant is not None and not args.figures_only and same_file(variant, Path(args.weights)):
        raise DataError("is --weights: the second model must be another one (--variant none skips it)", variant)
    _check_before_work(args, variant)
    run_demo(out, Path(args.cache), weights=Path(args.weights))
    if args.figures_only:
        return 0
    cfg = JobConfig(weights=Path(args.weights), export_dir=Path(args.export_dir), reports=Path(args.reports),
                    cache=Path(args.cache), size=tuple(args.size), runs=args.runs, warmup=args.warmup,
                    threads=args.threads, variant=variant)
    figures = {"Bokeh grid": out / "bokeh_grid.png", "Model alpha on held-back real images": out / "real_alpha.png",
               "Portraits: the person segmenter's mask, our alpha, the bokeh through each": out / "portraits.png"}
    code, _ = run_main_job(cfg, figures)
    return code


def _check_before_work(args, variant: Path | None) -> None:
    """The checkpoints read, the export size checked against each model, the output folders made: a bad one fails
    in a second, before the figures and exports (it failed after them, leaving them behind)."""
    if args.figures_only:
        read_checkpoint(args.weights)
        return
    for path in [Path(args.weights)] + ([] if variant is None else [variant]):
        check_checkpoint_size(path, tuple(args.size))
    for folder in (args.export_dir, args.reports):
        check_folder(folder)
