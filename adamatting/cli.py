"""``adamat``: the project's one command-line entry. ``adamat <command> --help`` for each command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adamatting.config import DEFAULT_WEIGHTS
from calib_data.errors import DataError
from export.errors import ExportError
from runtime.command import positive_int
from runtime.errors import BackendUnavailable



def _cmd_calib_build(args) -> int:
    from calib_data.sets import SetConfig, build_set, set_statistics

    cfg = SetConfig.from_toml(args.config)
    s = build_set(cfg, args.out, progress=not args.quiet)
    print(s.path)
    if not args.quiet:
        print_table([set_statistics(s)])
    return 0


def _cmd_demo(args) -> int:
    from adamatting.demo import run_demo

    out = Path(args.out)
    run_demo(out, Path(args.cache), weights=Path(args.weights))
    if args.figures_only:
        return 0
    from benchmarks.main_job import JobConfig, run_main_job

    cfg = JobConfig(weights=Path(args.weights), export_dir=Path(args.export_dir), reports=Path(args.reports),
                    cache=Path(args.cache), size=tuple(args.size), runs=args.runs, warmup=args.warmup,
                    threads=args.threads)
    figures = {"Bokeh grid": out / "bokeh_grid.png", "Model alpha on held-back real images": out / "real_alpha.png"}
    code, _ = run_main_job(cfg, figures)
    return code


def fraction(text: str) -> float:
    """argparse type: a share in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def guided_scale(text: str) -> float:
    """argparse type of --guided-scale: one of adamatting.config.GUIDED_SCALES, written 1, 4/3, 2, 4."""
    from adamatting.config import GUIDED_SCALES, format_scale

    scales = {format_scale(s): s for s in GUIDED_SCALES}
    if text.strip() not in scales:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(scales)}, got {text!r}")
    return scales[text.strip()]


def _cmd_train(args) -> int:
    from adamatting.train import TrainConfig, train
    from adamatting.evaluate import evaluate_real, torch_predictor
    from calib_data.splits import alphamatting_dev_dir

    cfg = TrainConfig(model=args.config, guided_scale=args.guided_scale, steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr,
                      real_fraction=args.real_fraction, grad_weight=args.grad_weight,
                      comp_weight=args.comp_weight, threads=args.threads, val_every=args.val_every,
                      bank_size=args.bank_size, bank_res=args.bank_res,
                      real_scale=tuple(args.real_scale), ema_decay=args.ema_decay,
                      pseudo_labels=args.pseudo_labels, photo_fraction=args.photo_fraction,
                      photo_trimap_fraction=args.photo_trimap_fraction, train_only=tuple(args.train_only))
    validate = None
    if alphamatting_dev_dir().is_dir():
        def validate(model):
            return evaluate_real(torch_predictor(model))[0]
    else:
        print(f"note: {alphamatting_dev_dir()} not found: training without validation", file=sys.stderr)
    train(args.run, cfg, Path(args.cache), validate=validate, init=args.init)
    return 0


def _cmd_eval_real(args) -> int:
    from adamatting.quality import run_quality

    run_quality(Path(args.checkpoint), Path(args.out), with_closed_form=not args.no_closed_form)
    return 0


def _cmd_export_onnx(args) -> int:
    from export.targets import export_onnx_target

    written = export_onnx_target(Path(args.checkpoint), Path(args.out), tuple(args.size), steps=args.steps,
                                 dynamic_batch=args.dynamic_batch, simplifier=args.simplifier, int8=not args.no_int8,
                                 calib=args.calib, val=args.val, cache=Path(args.cache), calib_method=args.calib_method)
    for path, v in written:
        if "alpha_vs_fp32" in v:
            d = v["drop"]
            print(f"{path}  INT8 vs FP32 on {v['samples']} validation composites: max |Δα| "
                  f"{v['alpha_vs_fp32']['max_abs']:.4f}, mean |Δα| {v['alpha_vs_fp32']['mean_abs']:.4f}; "
                  f"SAD {v['fp32']['SAD']:.3f} → {v['quantized']['SAD']:.3f} (drop {d['SAD']:+.3f}), "
                  f"Grad drop {d['Grad']:+.3f}")
        else:
            print(f"{path}  vs PyTorch on {v['samples']} composites: max |Δα| {v['max_abs']:.2e}, "
                  f"mean |Δα| {v['mean_abs']:.2e}")
    return 0


def _cmd_export_openvino(args) -> int:
    from export.openvino_ir import PRECISIONS, export_openvino
    from export.targets import composited_set, export_onnx_target

    size = tuple(args.size)
    out = Path(args.out)
    [(fp32, _)] = export_onnx_target(Path(args.checkpoint), out, size, steps=args.steps,
                                     dynamic_batch=args.dynamic_batch, simplifier=args.simplifier, int8=False)
    vset = composited_set(args.val, size, Path(args.cache))
    cal = composited_set(args.calib, size, Path(args.cache))
    for precision in args.precisions or PRECISIONS:
        xml, m = export_openvino(fp32, out, precision, calib_set=cal, val_set=vset, max_drop=args.max_drop,
                                 max_iterations=args.max_iterations)
        v = m.validation
        print(f"{xml}  vs FP32 ONNX on {v['samples']} composites: mean |Δα| {v['alpha_vs_fp32']['mean_abs']:.4f}, "
              f"SAD drop {v['drop']['SAD']:+.4f}")
    return 0


def _cmd_export_all(args) -> int:
    from adamatting.checkpoint import read_checkpoint
    from calib_data.outputs import check_folder
    from export.all_targets import export_all
    from export.targets import composited_set

    size = tuple(args.size)
    read_checkpoint(args.checkpoint)   # a bad checkpoint or output folder fails before the sets are built
    check_folder(args.out)
    cal = composited_set(args.calib, size, Path(args.cache))
    val = composited_set(args.val, size, Path(args.cache))
    results = export_all(Path(args.checkpoint), Path(args.out), size, cal, val, targets=args.targets,
                         reuse=not args.force)
    print_table([{"target": r.target, "status": r.status, "artifacts": len(r.artifacts),
                  "seconds": round(r.seconds), "reason": r.reason} for r in results])
    return 1 if any(r.status == "failed" for r in results) else 0


def _cmd_gate(args) -> int:
    from benchmarks.accuracy import evaluate_all
    from benchmarks.artifacts import current, reference
    from benchmarks.gates import Gates, check, failures, table
    from export.targets import composited_set

    size = tuple(args.size)
    gates = Gates.load(args.gates)
    if not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"{args.checkpoint}: the FP32 reference checkpoint is missing")
    artifacts, problems = current(args.artifacts, size, args.checkpoint)
    if not artifacts and not problems:
        print(f"error: no {size[0]}x{size[1]} artifacts with manifests in {args.artifacts}: run `make export-onnx` "
              f"(or make export-openvino / export-trt / export-coreml, or `adamat export all`) first", file=sys.stderr)
        return 2
    val = composited_set(args.val, size, Path(args.cache), progress=False)
    rows = evaluate_all(reference(args.checkpoint), artifacts, size, val, real=not args.no_real,
                        val_limit=args.val_limit, progress=None if args.quiet else (lambda m: print(m, file=sys.stderr)))
    results = check(rows, gates)
    print_table(table(rows, results))
    if args.json:
        from benchmarks.latency import write_json
        from benchmarks.report import gate_json

        write_json(gate_json(rows, results, gates, problems), Path(args.json))
    failed = failures(problems, results)
    if failed:
        print(f"\n{len(failed)} accuracy gate(s) violated ({gates.source}):", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"\nall accuracy gates pass ({gates.source})")
    return 0


def _cmd_export_sensitivity(args) -> int:
    from export.onnx_graph import export_onnx
    from export.sensitivity import format_report, rank_layers, suggest_policy
    from export.targets import composited_set
    from adamatting.checkpoint import load_model

    size = tuple(args.size)
    model, _ = load_model(args.checkpoint)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(model, fp32, size)
        rows = rank_layers(fp32, composited_set(args.calib, size, Path(args.cache)),
                           composited_set(args.val, size, Path(args.cache)), depth=args.depth,
                           calib_limit=args.samples, val_limit=args.samples)
    print(format_report(rows, suggest_policy(rows)))
    return 0


def _cmd_ship(args) -> int:
    from adamatting.checkpoint import average_checkpoints, load_model, load_state, read_checkpoint, save_checkpoint
    from adamatting.config import format_scale
    from adamatting.model import build_model
    from calib_data.outputs import check_writable

    check_writable(args.out)   # before loading or averaging anything
    if args.average:
        model, payloads = average_checkpoints(args.average)
        steps = [p.get("step") for p in payloads]
        keep = {k: payloads[-1][k] for k in ("elapsed_s", "train_config", "loss") if k in payloads[-1]}
        keep.update(step=max((s for s in steps if s is not None), default=None), averaged_steps=steps)
        src = f"average of {len(args.average)}: " + ", ".join(str(p) for p in args.average)
    else:
        run = Path(args.run)
        src = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"
        model, payload = load_model(src)
        if "ema" in payload:   # last.pt of a run without validation: ship its weight average, not the raw weights
            load_state(model, payload["ema"], src)
        keep = {k: payload[k] for k in ("step", "best", "elapsed_s", "train_config", "val", "loss") if k in payload}
    if args.guided_scale is not None and args.guided_scale != model.cfg.guided_scale:
        # The same weights, the network at another resolution: the guided upsampler works at any scale, but a
        # model with it cannot become one without it (or the reverse) by a config change.
        if (args.guided_scale > 1) != (model.cfg.guided_scale > 1):
            raise ValueError(f"adamat ship: --guided-scale {format_scale(args.guided_scale)} needs a model "
                             f"{'with' if args.guided_scale > 1 else 'without'} the guided upsampler; {src} has "
                             f"guided_scale {format_scale(model.cfg.guided_scale)} (train one from its weights: "
                             f"adamat train --guided-scale {format_scale(args.guided_scale)} --init ...)")
        rescaled = build_model(model.cfg.replace(guided_scale=args.guided_scale))
        rescaled.load_state_dict(model.state_dict())
        # the run's validation was measured at the scale it trained at: keep that scale, not its numbers
        keep = {k: v for k, v in keep.items() if k not in ("best", "val")}
        keep["trained_guided_scale"] = model.cfg.guided_scale
        model = rescaled.eval()
    save_checkpoint(args.out, model, source=str(src), **keep)
    read_checkpoint(args.out)  # re-read what was written
    size = Path(args.out).stat().st_size / 1e6
    print(f"{src} (step {keep.get('step')}) -> {args.out} ({size:.1f} MB)")
    return 0


def _cmd_flops(args) -> int:
    from adamatting.budget import count

    stats = count(args.config, args.size)
    print(f"{args.config} at 1x3x{args.size}x{args.size}: {stats['gmacs']:.3f} GMACs, {stats['params'] / 1e6:.3f} M params")
    for name, g in stats["by_module"].items():
        print(f"  {name:<16} {g:.3f} GMACs")
    return 0


def print_table(rows: list[dict]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)
    widths = {k: max(len(k), *(len(fmt(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    print("  ".join("-" * widths[k] for k in keys))
    for r in rows:
        print("  ".join(fmt(r[k]).ljust(widths[k]) for k in keys))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adamat", description="AdaMatting edge pipeline: data, model, export, benchmarks.")
    sub = p.add_subparsers(dest="command", required=True)

    calib = sub.add_parser("calib", help="composited calibration/validation sets")
    calib_sub = calib.add_subparsers(dest="calib_command", required=True)
    b = calib_sub.add_parser("build", help="build (or reuse from cache) a composited set from a TOML config")
    b.add_argument("--config", required=True, help="TOML file, or an embedded name: calib, val")
    b.add_argument("--out", default="cache/sets", help="cache root; the set goes to <out>/<name>-<hash>/")
    b.add_argument("--quiet", action="store_true", help="no progress bar or table; print only the set's path")
    b.set_defaults(func=_cmd_calib_build)

    d = sub.add_parser("demo", help="the main job on the embedded defaults: sets, figures, every export possible "
                                    "here, accuracy gates, latency, reports/<timestamp>/report.md")
    d.add_argument("--out", default="out/demo", help="folder for the contact sheet and figures")
    d.add_argument("--cache", default="cache/sets", help="cache root for the composited sets")
    d.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="the checkpoint to export, gate and benchmark")
    d.add_argument("--export-dir", default="out/export", help="artifacts (up-to-date ones are reused)")
    d.add_argument("--reports", default="reports", help="the report goes to <reports>/<timestamp>/report.md")
    d.add_argument("--size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"), help="export size")
    d.add_argument("--warmup", type=int, default=3, help="latency: untimed runs per artifact")
    d.add_argument("--runs", type=int, default=20, help="latency: timed runs per artifact")
    d.add_argument("--threads", type=positive_int, default=None, help="latency: intra-op threads (default: the runtime's)")
    d.add_argument("--figures-only", action="store_true",
                   help="only the sets, contact sheet and figures (no export, gates, latency or report)")
    d.set_defaults(func=_cmd_demo)

    t = sub.add_parser("train", help="train (or resume) a model; a run folder holds checkpoints, log.csv, curves.png")
    t.add_argument("--config", default="mobile", help="model config: mobile, paper, tiny")
    t.add_argument("--guided-scale", type=guided_scale, default=None, metavar="{1,4/3,2,4}",
                   help="override the config's guided_scale: 1 runs the network at full resolution (no guided "
                        "upsampler), 4/3 at 3/4 resolution with it (the mobile config's own), 2 at half")
    t.add_argument("--run", default="runs/mobile", help="run folder; an existing last.pt is resumed")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--crop", type=int, default=512, help="training crop side, a multiple of the model's stride")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--real-fraction", type=fraction, default=0.7)
    t.add_argument("--grad-weight", type=float, default=1.0, help="Sobel-gradient L1 weight in the alpha loss")
    t.add_argument("--comp-weight", type=float, default=0.5, help="composition L1 weight in the alpha loss")
    t.add_argument("--bank-size", type=int, default=192, help="procedural foregrounds pre-rendered for training")
    t.add_argument("--bank-res", type=int, default=512, help="side of the pre-rendered procedural foregrounds")
    t.add_argument("--real-scale", type=float, nargs=2, default=[0.8, 1.25], metavar=("MIN", "MAX"),
                   help="scale of the real cut-outs relative to their native resolution (default: 0.8 1.25)")
    t.add_argument("--pseudo-labels", action=argparse.BooleanOptionalAction, default=True,
                   help="also train on the alphamatting.com test photos (no ground truth) with closed-form "
                        "matting's alpha as the label (default: %(default)s)")
    t.add_argument("--photo-fraction", type=fraction, default=0.5,
                   help="share of the real samples that are crops of the photo as taken (its own background) "
                        "rather than its cut-out re-composited (default: %(default)s)")
    t.add_argument("--photo-trimap-fraction", type=fraction, default=0.5,
                   help="share of those photo crops that take one of the photo's hand-drawn trimaps "
                        "(default: %(default)s)")
    t.add_argument("--val-every", type=int, default=200)
    t.add_argument("--ema-decay", type=float, default=0.995,
                   help="weight average validated, kept as best.pt and shipped (0: the raw weights)")
    t.add_argument("--train-only", nargs="+", default=[], metavar="MODULE",
                   help="train only these parts (e.g. refiner propagation alpha_decoder); the rest keeps its "
                        "weights and BatchNorm statistics")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--cache", default="cache", help="cache root (estimated real foregrounds)")
    t.add_argument("--init", default=None,
                   help="start a new run from these weights (e.g. weights/mobile.pt); an existing last.pt wins")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval-real", help="model vs closed-form matting on the held-back real images")
    e.add_argument("--checkpoint", default=str(DEFAULT_WEIGHTS))
    e.add_argument("--out", default="out/quality")
    e.add_argument("--no-closed-form", action="store_true")
    e.set_defaults(func=_cmd_eval_real)

    from export.targets import add_export_arguments

    ex = sub.add_parser("export", help="export the model to deployment formats")
    ex_sub = ex.add_subparsers(dest="export_target", required=True)
    o = ex_sub.add_parser("onnx", help="FP32 ONNX validated against PyTorch, plus a calibrated INT8 QDQ ONNX")
    add_export_arguments(o)
    o.add_argument("--no-int8", action="store_true", help="skip the INT8 QDQ model")
    o.set_defaults(func=_cmd_export_onnx)

    from export.trt_target import add_arguments as add_trt_arguments, run_export_trt

    trt_p = ex_sub.add_parser("trt", help="FP16 + INT8 Q/DQ ONNX for TensorRT (gated vs FP32 under onnxruntime); "
                                          "engines where TensorRT is installed, else the trtexec lines (exit 3)")
    add_trt_arguments(trt_p)
    trt_p.set_defaults(func=run_export_trt)

    from export.coreml_package import add_arguments as add_coreml_arguments, run_export_coreml

    cm = ex_sub.add_parser("coreml", help="CoreML ML Program packages (fp16, w8, pal6/pal4, w8a8) with simulated accuracy")
    add_coreml_arguments(cm)
    cm.set_defaults(func=run_export_coreml)

    ov = ex_sub.add_parser("openvino", help="OpenVINO IR: FP32, FP16, INT8 (NNCF) and accuracy-controlled INT8")
    add_export_arguments(ov, calib_method=False)  # NNCF calibrates its own way
    ov.add_argument("--precisions", nargs="+", choices=["fp32", "fp16", "int8", "int8-acc"], default=None,
                    help="which IRs (default: all four)")
    ov.add_argument("--max-drop", type=float, default=0.5,
                    help="int8-acc: largest allowed absolute drop of mean SAD on the validation composites")
    ov.add_argument("--max-iterations", type=int, default=20,
                    help="int8-acc: most layers reverted to float (each costs a validation pass)")
    ov.set_defaults(func=_cmd_export_openvino)

    from export.all_targets import TARGETS

    al = ex_sub.add_parser("all", help="every target this machine can build (ONNX, OpenVINO, TensorRT ONNX/engines, "
                                       "CoreML); up-to-date artifacts are reused")
    al.add_argument("--checkpoint", default=str(DEFAULT_WEIGHTS))
    al.add_argument("--out", default="out/export")
    al.add_argument("--size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"))
    al.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    al.add_argument("--calib", default="calib")
    al.add_argument("--val", default="val")
    al.add_argument("--cache", default="cache/sets")
    al.add_argument("--force", action="store_true", help="re-export even where an up-to-date artifact exists")
    al.set_defaults(func=_cmd_export_all)

    se = ex_sub.add_parser("sensitivity", help="rank layer groups by the alpha error their INT8 quantization causes "
                                               "and print a suggested precision policy")
    se.add_argument("--checkpoint", default=str(DEFAULT_WEIGHTS))
    se.add_argument("--size", type=int, nargs=2, default=[128, 128], metavar=("H", "W"),
                    help="export size for the analysis (small is fast; default 128 128)")
    se.add_argument("--depth", type=int, default=3, help="module-path depth that forms a group")
    se.add_argument("--samples", type=int, default=8, help="calibration and validation samples")
    se.add_argument("--calib", default="calib")
    se.add_argument("--val", default="val")
    se.add_argument("--cache", default="cache/sets")
    se.set_defaults(func=_cmd_export_sensitivity)

    g = sub.add_parser("gate", help="accuracy of every artifact vs PyTorch FP32, checked against benchmarks/gates.toml "
                                    "(exit 1 listing each violated gate)")
    g.add_argument("--artifacts", default="out/export", help="folder of exported artifacts with manifests")
    g.add_argument("--checkpoint", default=str(DEFAULT_WEIGHTS), help="the FP32 reference")
    g.add_argument("--size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"),
                   help="gate the artifacts of this input size")
    g.add_argument("--gates", default=str(Path(__file__).resolve().parent.parent / "benchmarks" / "gates.toml"))
    g.add_argument("--val", default="val", help="validation set config (TOML or embedded name)")
    g.add_argument("--val-limit", type=positive_int, default=None, help="validation composites to use (default: all)")
    g.add_argument("--no-real", action="store_true", help="skip the real alphamatting.com images")
    g.add_argument("--cache", default="cache/sets")
    g.add_argument("--json", default=None, help="also write the results as JSON here")
    g.add_argument("--quiet", action="store_true")
    g.set_defaults(func=_cmd_gate)

    s = sub.add_parser("ship", help="write a run's best checkpoint, weights only, for shipping")
    s.add_argument("--run", default="runs/mobile")
    s.add_argument("--out", default=str(DEFAULT_WEIGHTS))
    s.add_argument("--average", nargs="+", metavar="CHECKPOINT",
                   help="ship the uniform average of these checkpoints of one config instead (snapshots of "
                        "one run late in its schedule); --run is then ignored")
    s.add_argument("--guided-scale", type=guided_scale, default=None, metavar="{1,4/3,2,4}",
                   help="run the shipped network at this scale instead of the one it was trained at (the "
                        "shipped weights: trained at 2, shipped at 4/3)")
    s.set_defaults(func=_cmd_ship)

    from runtime.command import add_parser as add_bokeh_parser

    add_bokeh_parser(sub)

    f = sub.add_parser("flops", help="MACs and parameters of a model config, counted by torch.utils.flop_counter")
    f.add_argument("--config", default="mobile")
    f.add_argument("--size", type=int, default=512)
    f.set_defaults(func=_cmd_flops)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, ValueError, FileNotFoundError, ExportError, BackendUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:   # an output path that cannot be written, a full disk: one line, not a traceback
        print(f"error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
