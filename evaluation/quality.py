"""The model-quality benchmark: the shipped model vs closed-form matting on the held-back real images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.outputs import atomic_path, check_writable
from evaluation.protocol import (
    TRIMAPS,
    closed_form_predictor,
    evaluate_real,
    matter_predictor,
)
from runtime.matter import Matter


def run_quality(checkpoint: Path, out: Path, with_closed_form: bool = True) -> dict:
    """Evaluate, print a Markdown table (means per trimap), write ``quality.json`` and ``quality.md``."""
    files = [check_writable(Path(out) / name) for name in ("quality.json", "quality.md")]   # before the work
    matter = Matter.from_artifact(checkpoint)
    methods = {f"AdaMatting {matter.backend.manifest.model_config['name']} (the app's path)": matter_predictor(matter)}
    if with_closed_form:
        methods["closed-form (pymatting)"] = closed_form_predictor()
    results = {}
    for name, predictor in methods.items():
        _, rows = evaluate_real(predictor)
        results[name] = rows
    table = quality_table(results)
    with atomic_path(files[0]) as tmp_json, atomic_path(files[1]) as tmp_md:   # the table, then the JSON, or neither
        tmp_json.write_text(json.dumps(results, indent=2))
        tmp_md.write_text(table + "\n")
    print(table)
    return results


def quality_table(results: dict[str, list[dict]]) -> str:
    lines = ["| method | trimap | SAD | MSE | Grad | Conn | s/image |", "|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for t in TRIMAPS:
            sel = [r for r in rows if r["trimap"] == t]
            m = {k: np.mean([r[k] for r in sel]) for k in ("SAD", "MSE", "Grad", "Conn", "seconds")}
            lines.append(f"| {name} | {t} | {m['SAD']:.2f} | {m['MSE']:.4f} | {m['Grad']:.2f} | {m['Conn']:.2f} | {m['seconds']:.2f} |")
    return "\n".join(lines)
