"""The main job (``make demo``), end to end on the embedded defaults and the shipped checkpoint:

1. build or reuse the calibration and validation sets at the export size;
2. export every target possible on this machine (:func:`export.all_targets.export_all`; up-to-date
   artifacts are reused, so a second run takes a few minutes), and the band refiner for each target
   (:mod:`export.band_refiner_targets`, into ``band_refiner/``: the mask set's gates run each artifact with
   its own target's);
3. accuracy of every artifact against PyTorch FP32 (:mod:`evaluation.accuracy`) and the gates
   (:mod:`benchmarks.gates`);
4. latency of every artifact that runs here (:mod:`benchmarks.latency`, one process per artifact);
5. the bokeh pipeline stage by stage on a synthetic 12-megapixel photo, on the fastest artifact;
6. a video clip (:mod:`adamat.clip_demo`): the temporal table on short procedural clips and one clip's bokeh;
7. the second model (``JobConfig.variant``, ``mobile``): its ONNX and OpenVINO exports and their gates,
   and both models' FP32/INT8 artifacts timed in one interleaved run (:mod:`benchmarks.model_comparison`);
8. ``reports/<timestamp>/report.md`` with the tables, the latency-vs-accuracy plot and the figures.

Returns 1 when a gate is violated (the report is written either way), else 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from adamat.clip_demo import DEMO_CLIPS, clip_demo
from adamat.progress import Stages
from adamatting.checkpoint import file_sha256, read_checkpoint
from benchmarks.gates import Gates, check, failures
from benchmarks.latency import bench_all, run_options
from benchmarks.model_comparison import compare
from benchmarks.portrait import synthetic_portrait, time_bokeh_pipeline
from benchmarks.report import gate_json, write_report
from calib_data.phone_set import PhoneSetConfig, build_phone_set
from common.outputs import write_json
from evaluation.accuracy import evaluate_all
from evaluation.clip_eval import ClipSet
from evaluation.datasets import EvalFolder
from evaluation.folder_eval import (
    EvalSettings,
    evaluate_folder,
    markdown,
    write_results,
)
from evaluation.methods import ClosedForm, GuidedFilterMask, Model, RawMask
from export.all_targets import export_all
from export.band_refiner_targets import export_band_refiners
from export.job import composited_set
from runtime.artifacts import current, reference
from runtime.band_refiner import SHIPPED as SHIPPED_REFINER
from runtime.matter import Matter
from runtime.person_mask import segmenter_band


@dataclass
class JobConfig:
    weights: Path
    export_dir: Path = Path("out/export")
    reports: Path = Path("reports")
    cache: Path = Path("cache/sets")
    size: tuple[int, int] = (512, 512)
    calib: str = "calib"
    val: str = "val"
    val_limit: int | None = None
    real: bool = True
    warmup: int = 3
    runs: int = 20
    threads: int | None = None
    pipeline: bool = True          # time the 12-megapixel bokeh pipeline
    phone: bool = True             # evaluate the phone path on the 12-megapixel set (calib_data/configs/phone.toml)
    phone_cache: Path = Path("cache/phone")
    variant: Path | None = None    # a second model compared with the first (mobile, beside the default mobile-int8)
    variant_rounds: int = 5        # its interleaved comparison's rounds
    clips: ClipSet | None = DEMO_CLIPS   # the video clip section (None: skipped)


VARIANT_TARGETS = ("onnx", "openvino")   # what the comparison times


def _fastest(latency: dict) -> dict | None:
    """The measured row with the lowest p50, leaving out TensorRT graphs timed under onnxruntime."""
    rows = [r for r in latency.get("rows", []) if r.get("status") == "ok"
            and not (r["backend"] == "tensorrt" and r["run_backend"] != "tensorrt")]
    return min(rows, key=lambda r: r["p50_ms"]) if rows else None


def time_pipeline(row: dict, size, threads: int | None) -> dict:
    """Stage timings of the app's path on a synthetic 12 MP photo with the artifact of ``row``."""
    options = run_options(row["run_backend"], threads)
    expect = {"input_size": list(size)} if row["backend"] == "torch" else None
    matter = Matter.from_artifact(row["path"], backend=row["run_backend"], expect=expect, backend_options=options)
    photo, alpha = synthetic_portrait()
    time_bokeh_pipeline(matter, photo, alpha)                # warm-up: allocations, first-run compilation
    timings = time_bokeh_pipeline(matter, photo, alpha)
    band = segmenter_band(photo.shape[:2])
    return {"what": f"4000×3000 photo, the person segmenter (256 px, upsampled to a 1024-px mask), a 1024-px "
                    f"person mask → trimap (band: two of the segmenter's pixels inside its edge and six outside, "
                    f"{band.inside} / {band.outside} px), "
                    f"**{row['label']}** at "
                    f"{size[0]}×{size[1]}, the band refined at a 1536-px working resolution and one guided filter "
                    f"to 12 MP, then the bokeh renderer "
                    f"(foreground colours, lens blur, composite). One warm run, seconds per stage:",
            "artifact": row["label"], "timings": timings}


def phone_eval(row: dict, cfg: JobConfig, out_dir: Path, log: Callable[[str], None]) -> str:
    """The artifact of ``row`` beside the baselines on the 12-megapixel set, mask protocol: the markdown, and
    ``phone/eval.json`` + ``eval.md`` in ``out_dir``."""
    folder = EvalFolder(build_phone_set(PhoneSetConfig.load("phone"), cfg.phone_cache, progress=False))
    methods = [Model.open(row["path"]), RawMask(), GuidedFilterMask(), ClosedForm()]
    result = evaluate_folder(folder, methods, EvalSettings("mask"), progress=lambda m: log(f"phone path: {m}"))
    write_results(result, out_dir / "phone")
    return markdown(result)


def variant_stage(cfg: JobConfig, cal, val, gates: Gates, log: Callable[[str], None]) -> dict:
    """The second model: its ONNX and OpenVINO exports (in ``<export_dir>/<weights name>``), their gates
    against its own PyTorch FP32, and both models' FP32/INT8 artifacts in one interleaved latency run. A step
    that fails is reported (``failed``) with what was finished before it, not raised."""
    folder = cfg.export_dir / cfg.variant.stem
    done: dict = {"weights": cfg.variant, "exports": [], "rows": [], "results": [], "problems": [],
                  "comparison": None, "failed": None}
    try:
        done["exports"] = export_all(cfg.variant, folder, cfg.size, cal, val, targets=VARIANT_TARGETS, log=log)
        artifacts, done["problems"] = current(folder, cfg.size, cfg.variant)
        done["rows"] = evaluate_all(reference(cfg.variant), artifacts, cfg.size, val, real=cfg.real,
                                    val_limit=cfg.val_limit, progress=log)
        done["results"] = check(done["rows"], gates)
        done["comparison"] = compare([cfg.export_dir, folder], cfg.size, cfg.variant_rounds, cfg.warmup, cfg.runs,
                                     cfg.threads, checkpoints=[cfg.weights, cfg.variant])
    except Exception as e:   # the first model's finished results still make the report
        done["failed"] = f"{type(e).__name__}: {e}"
        log(f"second model: failed: {done['failed']}")
    return done


def run_main_job(cfg: JobConfig, figures: dict[str, Path] | None = None,
                 log: Callable[[str], None] = print) -> tuple[int, Path]:
    """Run the job; returns (exit code, report path)."""
    stages = Stages(["sets", "exports", "accuracy", "latency", "bokeh pipeline", "phone path", "video clip",
                     "second model", "report"], "job")
    try:
        return _run_stages(cfg, figures, stages.log if log is print else log, stages)
    finally:
        stages.close()


def _run_stages(cfg: JobConfig, figures, log: Callable[[str], None], stages: Stages) -> tuple[int, Path]:
    t_start = time.perf_counter()
    out_dir = cfg.reports / time.strftime("%Y%m%d-%H%M%S")
    gates = Gates.load()
    checkpoint = read_checkpoint(cfg.weights)
    with stages.stage("sets"):
        cal, val = (composited_set(name, cfg.size, cfg.cache, progress=True) for name in (cfg.calib, cfg.val))
    with stages.stage("exports"):
        exports, artifacts, problems = _exports(cfg, cal, val, log)
    with stages.stage("accuracy"):
        rows, results = _accuracy(cfg, artifacts, val, gates, log)
    with stages.stage("latency"):
        latency = _latency(cfg, log)
    fastest = _fastest(latency)
    with stages.stage("bokeh pipeline"):
        pipeline = None if fastest is None or not cfg.pipeline else _or_failure(
            "bokeh pipeline", fastest, log, lambda: _pipeline(fastest, cfg, log),
            lambda failure: {"what": failure, "timings": {}})
    with stages.stage("phone path"):
        phone = None if fastest is None or not cfg.phone else _or_failure(
            "phone path", fastest, log, lambda: phone_eval(fastest, cfg, out_dir, log),
            lambda failure: f"\n\n{failure}\n")
    with stages.stage("video clip"):
        clip = None if fastest is None or cfg.clips is None else _or_failure(
            "video clip", fastest, log, lambda: clip_demo(fastest["path"], fastest["label"], cfg.clips, out_dir, log),
            lambda failure: f"{failure}\n")
    with stages.stage("second model"):
        variant = None if cfg.variant is None else variant_stage(cfg, cal, val, gates, log)
        if variant is not None and variant["comparison"] is not None:
            write_json(variant["comparison"], out_dir / "model-comparison.json")
    with stages.stage("report"):
        write_json(latency, out_dir / "latency.json")
        write_json(gate_json(rows, results, gates, problems), out_dir / "gates.json")
        failed = failures(problems, results) + _variant_failures(variant)
        report = write_report(out_dir, header=_header(cfg, checkpoint, val, t_start), exports=exports, rows=rows,
                              results=results, gates=gates, latency=latency, pipeline=pipeline,
                              figures=figures or {}, failed=failed, phone=phone, clip=clip, variant=variant)
    for line in failed:
        log(f"GATE FAILED: {line}")
    log(f"\nreport: {report}")
    return (1 if failed else 0), report


def _exports(cfg: JobConfig, cal, val, log: Callable[[str], None]) -> tuple[list, list, list]:
    """Every target's export and the band refiner's for each (the gates run them): (the exports' rows, the
    up-to-date artifacts, the problems found with the others), each problem logged as a warning."""
    exports = export_all(cfg.weights, cfg.export_dir, cfg.size, cal, val, log=log)
    for r in export_band_refiners(SHIPPED_REFINER, cfg.export_dir / "band_refiner"):
        log(f"band refiner, {r['target']}: {r['status']}" + (f" ({r['reason']})" if r.get("reason") else ""))
    artifacts, problems = current(cfg.export_dir, cfg.size, cfg.weights)
    for p in problems:
        log(f"warning: {p}")
    return exports, artifacts, problems


def _accuracy(cfg: JobConfig, artifacts, val, gates: Gates, log: Callable[[str], None]) -> tuple[list, list]:
    """Every artifact against PyTorch FP32, and the gates' verdicts on those rows."""
    t0 = time.perf_counter()
    rows = evaluate_all(reference(cfg.weights), artifacts, cfg.size, val, real=cfg.real, val_limit=cfg.val_limit,
                        progress=log)
    log(f"accuracy: {len(rows)} rows in {time.perf_counter() - t0:.0f} s")
    return rows, check(rows, gates)


def _latency(cfg: JobConfig, log: Callable[[str], None]) -> dict:
    """Every artifact that runs here, timed in its own process."""
    t0 = time.perf_counter()
    latency = bench_all(cfg.export_dir, cfg.weights, cfg.size, warmup=cfg.warmup, runs=cfg.runs,
                        threads=cfg.threads, progress=lambda r: log(f"latency: {r['label']}: " + (
                            f"p50 {r['p50_ms']:.1f} ms" if r['status'] == 'ok' else r['status'])))
    log(f"latency: {len(latency['rows'])} rows in {time.perf_counter() - t0:.0f} s")
    return latency


def _pipeline(fastest: dict, cfg: JobConfig, log: Callable[[str], None]) -> dict:
    pipeline = time_pipeline(fastest, cfg.size, cfg.threads)
    log(f"bokeh pipeline at 12 MP on {fastest['label']}: {sum(pipeline['timings'].values()):.2f} s")
    return pipeline


def _or_failure(stage: str, row: dict, log: Callable[[str], None], run: Callable, failed: Callable[[str], object]):
    """``run()``, or ``failed("failed on <artifact>: <error>")`` when it raises, logged under ``stage``: the
    finished accuracy and latency results still make the report."""
    try:
        return run()
    except Exception as e:
        failure = f"failed on {row['label']}: {type(e).__name__}: {e}"
        log(f"{stage}: {failure}")
        return failed(failure)


def _variant_failures(variant: dict | None) -> list[str]:
    if variant is None:
        return []
    lines = ([f"the second-model stage failed: {variant['failed']}"] if variant["failed"]
             else failures(variant["problems"], variant["results"]))
    return [f"{variant['weights'].name}: {line}" for line in lines]


def _header(cfg: JobConfig, ck: dict, val, t_start: float) -> dict[str, str]:
    """The report's first lines: the checkpoint, the input size, the validation data, the job's time."""
    shown = len(val) if cfg.val_limit is None else min(cfg.val_limit, len(val))
    return {"checkpoint": f"{cfg.weights} (sha256 {file_sha256(cfg.weights)[:12]}, step {ck.get('step', '?')})",
            "input size": f"{cfg.size[0]}×{cfg.size[1]}",
            "validation": f"{val.path} ({shown} composites)"
                          + ("; real: held-back alphamatting.com images" if cfg.real else ""),
            "job time": f"{time.perf_counter() - t_start:.0f} s"}
