"""``adamat export <target>``: one subcommand per target of the registry (:data:`common.targets.TARGETS`), whose
exporter module declares its options (``add_arguments``) and runs it (``run``); plus ``all`` (every target this
machine can build) and ``sensitivity`` (the precision policy's evidence)."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from adamat.tables import print_table
from adamatting.checkpoint import load_model
from adamatting.config import DEFAULT_WEIGHTS
from benchmarks.fingerprint import measured_header
from common.arguments import Distinct, file_named, out_folder, path_text, whole_number
from common.errors import DataError
from common.outputs import check_folder, check_writable, same_file, write_json
from common.targets import TARGETS as REGISTRY
from export import band_refiner_targets
from export.all_targets import TARGETS, export_all
from export.job import add_size_argument, check_sets_readable, composited_set
from export.onnx_graph import check_checkpoint_size, export_onnx
from export.sensitivity import format_report, rank_layers, suggest_policy


def add_arguments(ex) -> None:
    sub = ex.add_subparsers(dest="export_target", required=True)
    for target in REGISTRY.values():
        if target.built_from is None:   # a target built from another one is its command's work (engines: trt)
            exporter = importlib.import_module(target.exporter)
            p = sub.add_parser(target.command, help=target.help, description=target.help)
            exporter.add_arguments(p)
            p.set_defaults(func=exporter.run)
    al = sub.add_parser("all", help=f"every target this machine can build ({', '.join(REGISTRY)}); up-to-date "
                                    "artifacts are reused")
    al.add_argument("--checkpoint", type=path_text, default=str(DEFAULT_WEIGHTS))
    al.add_argument("--out", type=out_folder, default="out/export")
    add_size_argument(al)
    al.add_argument("--targets", nargs="+", action=Distinct, choices=TARGETS, default=list(TARGETS))
    al.add_argument("--calib", type=path_text, default="calib")
    al.add_argument("--val", type=path_text, default="val")
    al.add_argument("--cache", type=out_folder, default="cache/sets")
    al.add_argument("--force", action="store_true", help="re-export even where an up-to-date artifact exists")
    al.set_defaults(func=run_all)
    se = sub.add_parser("sensitivity", help="rank layer groups by the alpha error their INT8 quantization causes "
                                            "and print a suggested precision policy")
    se.add_argument("--checkpoint", type=path_text, default=str(DEFAULT_WEIGHTS))
    add_size_argument(se, default=(128, 128), help="small is fast; default 128 128")
    se.add_argument("--depth", type=whole_number(1, 16), default=3, help="module-path depth that forms a group, 1 to 16")
    se.add_argument("--samples", type=whole_number(1, 1000), default=8, help="calibration and validation samples, 1 to 1000")
    se.add_argument("--calib", type=path_text, default="calib")
    se.add_argument("--val", type=path_text, default="val")
    se.add_argument("--cache", type=out_folder, default="cache/sets")
    se.add_argument("--json", type=file_named(".json"), default=None, help="also write the ranking as a measured-results table "
                                                  "(benchmarks/measured/int8-sensitivity-<date>-<device>.json)")
    se.set_defaults(func=run_sensitivity)
    br = sub.add_parser("band-refiner", help="the band refiner for every target (ONNX, OpenVINO, TensorRT FP16 ONNX, "
                                             "CoreML, ExecuTorch), each checked against PyTorch")
    band_refiner_targets.add_arguments(br)


def run_all(args) -> int:
    size = tuple(args.size)
    check_checkpoint_size(args.checkpoint, size)   # a bad checkpoint, size or output folder fails before the sets
    check_folder(args.out)
    cal = composited_set(args.calib, size, Path(args.cache))
    val = composited_set(args.val, size, Path(args.cache))
    results = export_all(Path(args.checkpoint), Path(args.out), size, cal, val, targets=args.targets,
                         reuse=not args.force)
    print_table([{"target": r.target, "status": r.status, "artifacts": len(r.artifacts),
                  "seconds": round(r.seconds), "reason": r.reason} for r in results])
    return 1 if any(r.status == "failed" for r in results) else 0


def sensitivity_table(args, config: str, rows: list[dict], suggestion: list[str]) -> dict:
    """The ranking as a measured-results table (kind ``int8-sensitivity``, :mod:`benchmarks.measurements`)."""
    columns = ["group", "nodes", "mean |Δα|", "max |Δα|", "SAD drop"]
    keys = ["group", "nodes", "mean_abs", "max_abs", "sad_drop"]
    modules = [g.strip("/").replace("/", ".") for g in suggestion]
    command = ["adamat", "export", "sensitivity", "--checkpoint", str(args.checkpoint), "--size", *map(str, args.size),
               "--depth", str(args.depth), "--samples", str(args.samples)]
    head = measured_header("int8-sensitivity", input_size=args.size, threads=None, command=command,
                           model=f"{args.checkpoint} (config {config})",
                           method=f"each group of convolutions quantized alone (onnxruntime QDQ INT8, {args.samples} "
                                  f"calibration composites of {args.calib!r}), alpha compared with FP32 on "
                                  f"{args.samples} of {args.val!r}")
    return head | {"columns": columns, "rows": [dict(zip(columns, (r[k] for k in keys))) for r in rows],
                   "note": f"suggested float modules: {', '.join(modules)}"}


def run_sensitivity(args) -> int:
    size = tuple(args.size)
    out = check_writable(args.json) if args.json else None
    if out is not None and same_file(out, Path(args.checkpoint)):
        raise DataError("is the --checkpoint: give another --json path", out)
    check_sets_readable(args.calib, args.val)   # a set that cannot be read fails before the export
    model, _ = load_model(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(model, fp32, size)
        rows = rank_layers(fp32, composited_set(args.calib, size, Path(args.cache)),
                           composited_set(args.val, size, Path(args.cache)), depth=args.depth,
                           calib_limit=args.samples, val_limit=args.samples)
    suggestion = suggest_policy(rows)
    print(format_report(rows, suggestion))
    if out is not None:
        write_json(sensitivity_table(args, model.cfg.name, rows, suggestion), out)
    return 0
