"""Which layers lose the most alpha accuracy when quantized: per-group ablation under onnxruntime.

Each group of Conv nodes (ONNX names share the PyTorch module path, grouped to ``depth`` levels below
``/model/``) is quantized alone (``nodes_to_quantize``), calibrated on the calibration set, and the alpha it
then produces on the validation set is compared with the FP32 model's. Groups are ranked by mean |Δα|; the
suggested policy keeps float the fewest top groups that together account for ``share`` of the summed
error. Quantizing one group at a time measures each group's own damage, which is what a policy decides on
(errors of several groups add up roughly, not exactly).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path

from common.manifest import load_manifest
from export.int8_qdq import SetReader, check_set_size, compare_to_fp32, quantize_qdq


def conv_groups(proto, depth: int = 3) -> "OrderedDict[str, list[str]]":
    groups: OrderedDict[str, list[str]] = OrderedDict()
    for node in proto.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm") or not node.name.startswith("/model/"):
            continue
        parts = node.name.split("/")[2:-1]
        key = "/model/" + "/".join(parts[:depth]) + "/"
        groups.setdefault(key, []).append(node.name)
    return groups


def rank_layers(fp32_onnx: str | Path, calib_set, val_set, depth: int = 3, calib_limit: int = 8,
                val_limit: int = 8, progress: bool = True) -> list[dict]:
    """One row per group: {group, nodes, mean_abs, max_abs, sad_drop}, worst first."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from tqdm import tqdm

    fp32_onnx = Path(fp32_onnx)
    manifest = load_manifest(fp32_onnx)
    check_set_size(calib_set, manifest.input_size, "calibration")
    check_set_size(val_set, manifest.input_size, "validation")
    work = Path(tempfile.mkdtemp(prefix="sensitivity-"))
    try:
        pre = work / "pre.onnx"
        quant_pre_process(str(fp32_onnx), str(pre), skip_symbolic_shape=True)
        groups = conv_groups(onnx.load(str(pre)), depth)
        rows = []
        for group, nodes in tqdm(groups.items(), desc="quantizing one group at a time", disable=not progress):
            q = work / "q.onnx"
            quantize_qdq(pre, q, SetReader(calib_set, calib_limit), nodes_to_quantize=nodes)
            r = compare_to_fp32(fp32_onnx, q, val_set, val_limit)
            rows.append({"group": group, "nodes": len(nodes), "mean_abs": r["alpha_vs_fp32"]["mean_abs"],
                         "max_abs": r["alpha_vs_fp32"]["max_abs"], "sad_drop": r["drop"]["SAD"]})
        return sorted(rows, key=lambda r: -r["mean_abs"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def suggest_policy(rows: list[dict], share: float = 0.5, max_groups: int = 3) -> list[str]:
    """The fewest worst groups (at most ``max_groups``) whose errors sum to ``share`` of the total."""
    total = sum(r["mean_abs"] for r in rows) or 1.0
    chosen, acc = [], 0.0
    for r in rows[:max_groups]:
        if acc >= share * total:
            break
        chosen.append(r["group"])
        acc += r["mean_abs"]
    return chosen


def format_report(rows: list[dict], suggestion: list[str]) -> str:
    lines = [f"{'group':<60} {'nodes':>5} {'mean |Δα|':>10} {'max |Δα|':>9} {'SAD drop':>9}"]
    lines += [f"{r['group']:<60} {r['nodes']:>5} {r['mean_abs']:>10.5f} {r['max_abs']:>9.4f} {r['sad_drop']:>+9.4f}"
              for r in rows]
    modules = ", ".join(f'"{g.strip("/").replace("/", ".")}"' for g in suggestion)
    lines += ["", "suggested export/precision.toml:", "[float]", f"modules = [{modules}]", "op_types = []"]
    return "\n".join(lines)
