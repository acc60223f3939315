"""The band refiner for every target: ``adamat export band-refiner`` (``make export-band-refiner``).

    adamat export band-refiner [--refiner runtime/data/band_refiner.onnx] [--out out/export/band_refiner]

The runtime runs the shipped ONNX graph beside any network backend (onnxruntime or OpenCV). An app built on one
target's runtime alone takes its own format instead: each target of the registry with a ``refiner`` file
(:data:`common.targets.TARGETS`) converts the PyTorch refiner — read back from the graph's initializers — with
its exporter module's ``band_refiner(model, out, metadata)``, which checks the result against PyTorch by the
runtime's own loader where that runtime runs here (onnxruntime for the ONNX and TensorRT's FP16 ONNX, OpenVINO,
ExecuTorch; CoreML's package against PyTorch computed in float16) and publishes nothing that fails.
``runtime.band_refiner.BandRefiner.open`` (and ``Matter(band_refiner=PATH)``, ``--band-refiner PATH``) opens
each by its suffix. What each check measured is written to ``band_refiners.json`` beside them.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from common.arguments import Distinct, out_folder
from common.outputs import check_folder, write_json
from common.targets import TARGETS
from export.band_refiner_graph import from_onnx
from export.errors import ExportError
from runtime.band_refiner import SHIPPED

REPORT = "band_refiners.json"


def export_band_refiners(source: str | Path, out_dir: str | Path, targets=None) -> list[dict]:
    """Convert the band refiner graph ``source`` for each target (default: every one with a ``refiner`` file);
    one row per target: ``built`` with its check, ``not built`` with the reason, or ``failed`` with the error."""
    model, metadata = from_onnx(source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in targets or [n for n, t in TARGETS.items() if t.refiner]:
        target = TARGETS[name]
        row = {"target": name, "file": target.refiner}
        why_not = target.not_buildable()
        if why_not:
            rows.append({**row, "status": "not built", "reason": why_not})
            continue
        start = time.perf_counter()
        try:
            check = importlib.import_module(target.exporter).band_refiner(model, out_dir / target.refiner, metadata)
            rows.append({**row, "status": "built", "check": check, "seconds": round(time.perf_counter() - start, 1)})
        except ExportError as e:
            rows.append({**row, "status": "failed", "reason": str(e)})
    write_json({"source": str(source), "metadata": metadata, "targets": rows}, out_dir / REPORT)
    return rows


def add_arguments(p) -> None:
    p.add_argument("--refiner", default=str(SHIPPED), help="the band refiner's ONNX graph (default: the shipped one)")
    p.add_argument("--out", type=out_folder, default="out/export/band_refiner", help="folder for the converted files")
    p.add_argument("--targets", nargs="+", action=Distinct, choices=[n for n, t in TARGETS.items() if t.refiner], default=None,
                   help="these targets only (default: every one)")
    p.set_defaults(func=run)


def run(args) -> int:
    out = check_folder(args.out)
    rows = export_band_refiners(args.refiner, out, args.targets)
    for r in rows:
        detail = r.get("reason") or ", ".join(f"{k} {v:.2g}" for k, v in r["check"].items() if isinstance(v, float))
        print(f"{r['target']:<12} {r['status']:<10} {out / r['file']}  {detail}")
    print(f"wrote {out / REPORT}")
    return 1 if any(r["status"] == "failed" for r in rows) else 0
