"""The end-to-end report: exports, accuracy and gates, latency, the 12-megapixel bokeh pipeline, figures.

``write_report`` writes ``<dir>/report.md`` beside ``latency_vs_accuracy.png`` and the copied figures;
every artifact appears in every table it belongs to, with its numbers or with the reason it was not run.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.device_bench import markdown_table, result_table
from benchmarks.gates import GateResult, Gates, failures, gate_value, summary, table
from benchmarks.model_comparison import TARGETS
from benchmarks.model_comparison import table as comparison_table
from evaluation.accuracy import AccuracyRow

# The performance targets of the phone use (measured and reported, never asserted in tests).
PERF_TARGETS = (
    ("openvino/int8", "torch/fp32", 0.5, "OpenVINO INT8 vs PyTorch FP32 eager"),
    ("onnxruntime/int8", "onnxruntime/fp32", 0.8, "onnxruntime INT8 vs onnxruntime FP32"),
)


def gate_json(rows: list[AccuracyRow], results: list[GateResult], gates: Gates, problems: list[str] = ()) -> dict:
    return {"gates": gates.source, "unusable_artifacts": list(problems),
            "rows": [{"key": r.artifact.key, "label": r.artifact.label, "path": str(r.artifact.path),
                      "status": r.status, "note": r.note, "sets": {k: asdict(v) for k, v in r.sets.items()}}
                     for r in rows],
            "results": [asdict(r) for r in results],
            "violations": failures(list(problems), results)}


def md_table(rows: list[dict]) -> str:
    """A markdown table of dict rows (the keys of the first row are the columns)."""
    if not rows:
        return "_(none)_\n"
    keys = list(rows[0])
    cell = lambda v: (f"{v:.4g}" if isinstance(v, float) else str(v)).replace("\n", " ")
    return markdown_table(keys, [[cell(r.get(k, "")) for k in keys] for r in rows]) + "\n"


def perf_targets(latency: dict) -> list[dict]:
    p50 = {r["key"]: r["p50_ms"] for r in latency.get("rows", []) if r.get("status") == "ok"}
    out = []
    for key, base, limit, what in PERF_TARGETS:
        if key in p50 and base in p50:
            ratio = p50[key] / p50[base]
            out.append({"target": what, "measured": f"{ratio:.2f}×", "limit": f"≤ {limit}×",
                        "met": "yes" if ratio <= limit else "no"})
        else:
            out.append({"target": what, "measured": "not run", "limit": f"≤ {limit}×", "met": "n/a"})
    return out


def plot_latency_vs_accuracy(rows: list[AccuracyRow], latency: dict, out: Path) -> Path | None:
    """p50 latency (x) against the SAD drop on the validation composites (y), one point per artifact."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = _latency_accuracy_points(rows, latency)
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, x, y in points:
        ax.scatter([x], [y], s=40)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xlabel("p50 latency, ms (this machine; TensorRT ONNX rows are onnxruntime CPU)")
    ax.set_ylabel("SAD increase over PyTorch FP32, % (validation composites)")
    ax.set_title("Latency vs accuracy")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _latency_accuracy_points(rows: list[AccuracyRow], latency: dict) -> list[tuple[str, float, float | None]]:
    """(label, p50 ms, SAD drop %) of each artifact timed and scored on the validation composites."""
    p50 = {str(Path(r["path"]).resolve()): r["p50_ms"] for r in latency.get("rows", []) if r.get("status") == "ok"}
    points = []
    for row in rows:
        a, sc = row.artifact, row.sets.get("val")
        where = str(a.path.resolve())
        if sc is None or where not in p50:
            continue
        points.append((a.label, p50[where], gate_value(sc, "sad_drop_pct")))
    return points


def exports_table(exports: list) -> str:
    """One row per export target: its status, artifacts, seconds and the reason it was not built."""
    return md_table([{"target": e.target, "status": e.status, "artifacts": ", ".join(p.name for p in e.artifacts) or "—",
                      "seconds": f"{e.seconds:.0f}", "reason": e.reason} for e in exports])


def variant_section(variant: dict) -> str:
    """The second model: its exports, both models' INT8 speed-ups from one interleaved run, its gates, and
    the step that failed, if one did."""
    name = variant["weights"].name
    parts = [f"## The second model ({name})\n"]
    if variant["exports"]:
        parts.append(exports_table(variant["exports"]))
    c = variant["comparison"]
    if c is not None:
        limits = "; ".join(f"{n} ≤ {v}" for n, v in TARGETS)
        parts.append(f"Each model's onnxruntime and OpenVINO FP32/INT8 artifacts timed in one interleaved run "
                     f"({c['input_size'][0]}×{c['input_size'][1]}, p50 in ms; {c['method']}). "
                     f"Targets, reported and not asserted: {limits}.\n\n{comparison_table(c)}\n")
    if variant["rows"]:
        parts.append("Its artifacts against its own PyTorch FP32 (the same gates):\n\n"
                     + md_table(table(variant["rows"], variant["results"])))
    if variant["failed"]:
        parts.append(f"**Failed**: {variant['failed']}\n")
    return "\n".join(parts)


def write_report(out_dir: Path, *, header: dict, exports: list, rows: list[AccuracyRow], results: list[GateResult],
                 gates: Gates, latency: dict, pipeline: dict | None, figures: dict[str, Path],
                 failed: list[str], phone: str | None = None, clip: str | None = None,
                 variant: dict | None = None) -> Path:
    """Write ``out_dir/report.md`` (and its figures); ``failed``: the gate violations. Returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = plot_latency_vs_accuracy(rows, latency, out_dir / "latency_vs_accuracy.png")
    copied = _copy_figures(figures, out_dir)
    sections = [_title_section(header, latency), _verdict_section(failed, latency), _exports_section(exports),
                _accuracy_section(rows, results, gates), _latency_section(latency, plot),
                _pipeline_section(pipeline), _phone_section(phone), _clip_section(clip),
                variant_section(variant) if variant else None, _not_run_section(rows, exports),
                _figure_sections(copied)]
    return _write_atomically(out_dir / "report.md", "\n".join(s for s in sections if s is not None))


def _copy_figures(figures: dict[str, Path], out_dir: Path) -> dict[str, str]:
    """Copy each figure that exists into ``out_dir``: its title → its file name there."""
    copied = {}
    for name, src in figures.items():
        if src is not None and Path(src).is_file():
            copied[name] = Path(shutil.copy2(src, out_dir / Path(src).name)).name
    return copied


def _title_section(header: dict, latency: dict) -> str:
    """The title with the time, the header's facts and the device's fingerprint."""
    fp = latency.get("fingerprint", {})
    return "\n".join([f"# AdaMatting edge report — {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n",
                      "\n".join(f"- **{k}**: {v}" for k, v in header.items()),
                      f"- **device**: {fp.get('cpu', '?')}, {fp.get('logical_cores', '?')} logical cores, "
                      f"{fp.get('os', '?')} (fingerprint `{latency.get('fingerprint_id', '?')}`)\n"])


def _verdict_section(failed: list[str], latency: dict) -> str:
    """The accuracy gates' verdict with each violation, then the performance targets."""
    cores = latency.get("fingerprint", {}).get("logical_cores", "?")
    return "\n".join([f"## Verdict\n\n**Accuracy gates: {'FAIL' if failed else 'PASS'}**"
                      + (f" — {len(failed)} violated:\n\n" + "\n".join(f"- {v}" for v in failed) if failed else "")
                      + "\n",
                      f"Performance targets (p50 ratios measured in this run on this {cores}-core "
                      f"machine; reported, not asserted):\n",
                      md_table(perf_targets(latency))])


def _exports_section(exports: list) -> str:
    """The export targets' table."""
    return "\n".join(["## Exports\n", exports_table(exports)])


def _accuracy_section(rows: list[AccuracyRow], results: list[GateResult], gates: Gates) -> str:
    """Every artifact's accuracy on each set against PyTorch FP32, and the gate summary."""
    return "\n".join([
        f"## Accuracy and gates\n\nEvery artifact against PyTorch FP32 on the same inputs; Δ = increase over "
        f"FP32 (bokeh dB: the rendered bokeh image against FP32's render). `val`: composited validation set; "
        f"`real`: held-back alphamatting.com images through the runtime; `mask`: the same with coarse masks "
        f"simulated from the ground truth (the phone case). Gates: `{gates.source}`.\n",
        md_table(table(rows, results)),
        "\nGate summary:\n",
        md_table([{k: v for k, v in s.items() if k not in ("key", "path")} for s in summary(rows, results)])])


def _latency_section(latency: dict, plot: Path | None) -> str:
    """The latency table and, where one was drawn, the latency-vs-accuracy plot."""
    parts = [f"## Latency\n\n{latency['settings']['warmup']} warm-up and {latency['settings']['runs']} timed runs "
             f"of the network alone at the export size, one process per artifact (peak RSS is that process's); "
             f"`× torch fp32`: p50 over the PyTorch FP32 eager p50 of the same run. With few runs p99 is close to "
             f"the maximum. TensorRT ONNX rows are onnxruntime CPU timings of those graphs.\n",
             result_table(latency) + "\n"]
    if plot is not None:
        parts.append(f"\n![latency vs accuracy]({plot.name})\n")
    return "\n".join(parts)


def _pipeline_section(pipeline: dict | None) -> str | None:
    """The 12-megapixel bokeh pipeline: what ran and each stage's time; None when it was not run."""
    if not pipeline:
        return None
    parts = [f"## Bokeh pipeline on a 12-megapixel photo\n\n{pipeline.get('what', '')}\n"]
    stages = pipeline["timings"]
    if stages:
        parts.append(md_table([{"stage": k, "ms": f"{v * 1000:.0f}"} for k, v in stages.items()]
                              + [{"stage": "total", "ms": f"{sum(stages.values()) * 1000:.0f}"}]))
    return "\n".join(parts)


def _phone_section(phone: str | None) -> str | None:
    """The phone path's text below its own two heading lines; None when it was not run."""
    return "## The phone path at 12 megapixels\n\n" + phone.split("\n", 2)[2] if phone else None


def _clip_section(clip: str | None) -> str | None:
    """The video clip's text; None when it was not run."""
    return "## A video clip\n\n" + clip if clip else None


def _not_run_section(rows: list[AccuracyRow], exports: list) -> str | None:
    """The exports not built and the artifacts not measured here, each with its reason; None when there are none."""
    not_run = [r for r in rows if r.status in ("not run", "failed", "simulated")]
    not_run_exports = [e for e in exports if e.status in ("not built", "failed")]
    if not (not_run or not_run_exports):
        return None
    return "\n".join(["## Not run here\n",
                      *(f"- **{e.target}** (export {e.status}): {e.reason}" for e in not_run_exports),
                      *(f"- **{r.artifact.label}** ({r.status}): {r.note}" for r in not_run), ""])


def _figure_sections(copied: dict[str, str]) -> str | None:
    """One section per copied figure; None when there are none."""
    return "\n".join(f"## {name}\n\n![{name}]({fname})\n" for name, fname in copied.items()) if copied else None


def _write_atomically(report: Path, text: str) -> Path:
    """Write ``text`` to ``report`` through a temporary file beside it."""
    tmp = report.with_name("report.md.tmp")
    tmp.write_text(text)
    os.replace(tmp, report)
    return report
