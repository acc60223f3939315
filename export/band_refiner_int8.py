"""The band refiner's INT8 graph for onnxruntime (``runtime/data/band_refiner_int8.onnx``).

Its 16-channel convolutions are most of the refiner's cost. Quantized (QDQ: int8 weights per output channel,
uint8 activations; :func:`export.int8_qdq.quantize_qdq`, the project's settings), onnxruntime runs them about
1.6× faster, and the app path's scores do not move (docs/PHONE_PATH.md). The activations' ranges are calibrated
on what the runtime feeds it: tiles over the band of the photos the refiner is trained on
(:func:`calibration_batches`). The graph's metadata names the FP32 graph it was quantized from (its SHA-256), so
the runtime runs it only beside that graph (:meth:`runtime.band_refiner.BandRefiner.shipped`). It is compared
with the FP32 graph on those tiles before it is published; beyond ``TOLERANCE`` nothing is written.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx

from common.manifest import sha256_of
from common.outputs import atomic_path
from export.errors import ExportError
from export.int8_qdq import quantize_qdq
from runtime.backends.onnxruntime_backend import inference_session
from runtime.band_refiner import QUANTIZED_FROM, TILE, tile_inputs
from runtime.tiles import cover

CALIBRATION_TILES = 128   # tiles drawn over the samples' bands
CALIBRATION_BATCH = 8
TOLERANCE = 0.01          # mean |Δ| against the FP32 graph over the calibration tiles' outputs


class _Batches:
    """onnxruntime's CalibrationDataReader over a list of input batches."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self.batches, self.i = batches, 0

    def get_next(self):
        self.i += 1
        return self.batches[self.i - 1] if self.i <= len(self.batches) else None


def calibration_batches(samples: list[dict], tiles: int = CALIBRATION_TILES, seed: int = 0,
                        batch: int = CALIBRATION_BATCH) -> list[dict[str, np.ndarray]]:
    """The refiner's inputs (:func:`runtime.band_refiner.tile_inputs`) on ``tiles`` tiles drawn with ``seed``
    from those covering the band of ``samples`` (:func:`evaluation.refiner_data.sample`'s planes: image,
    alpha, prior, mask, band), in batches of ``batch``."""
    corners = [(i, c) for i, s in enumerate(samples) for c in cover(s["band"] > 0, TILE)]
    if not corners:
        raise ExportError("no band pixels in the calibration samples")
    rng = np.random.default_rng(seed)
    drawn = sorted(rng.choice(len(corners), min(tiles, len(corners)), replace=False))
    inputs = [tile_inputs(_planes(samples[corners[k][0]]), [corners[k][1]]) for k in drawn]
    return [{name: np.concatenate([x[name] for x in inputs[i:i + batch]]) for name in inputs[0]}
            for i in range(0, len(inputs), batch)]


def _planes(s: dict) -> tuple[np.ndarray, ...]:
    return s["image"], s["alpha"], s["prior"], s["mask"]


def write_int8_refiner(source: str | Path, out: str | Path, batches: list[dict[str, np.ndarray]],
                       description: str) -> dict:
    """Quantize the FP32 band refiner graph ``source`` to ``out``, calibrated on ``batches``; its metadata is
    the source's, plus :data:`runtime.band_refiner.QUANTIZED_FROM` and ``calibration`` (``description``).
    Returns the check against the FP32 graph on those batches; ExportError (nothing written) beyond
    :data:`TOLERANCE`."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = Path(source)
    with tempfile.TemporaryDirectory(prefix="band-refiner-int8-") as tmp:
        pre, quantized = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)   # as quantization expects
        quantize_qdq(pre, quantized, _Batches(batches))
        proto = onnx.load(str(quantized))
    props = {p.key: p.value for p in onnx.load(str(source)).metadata_props}
    props |= {QUANTIZED_FROM: sha256_of(source), "calibration": json.dumps(description)}
    onnx.helper.set_model_props(proto, props)
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
        check = compare(source, tmp, batches)
        if not check["mean_abs_vs_fp32"] <= TOLERANCE:
            raise ExportError(f"{out}: the INT8 band refiner differs from its FP32 graph by a mean "
                              f"{check['mean_abs_vs_fp32']:.2e} (> {TOLERANCE:g})")
    return check


def compare(fp32: Path, int8: Path, batches: list[dict[str, np.ndarray]]) -> dict:
    """Largest and mean |Δ| of the two graphs' outputs under onnxruntime on ``batches``."""
    runs = [inference_session(str(p)) for p in (fp32, int8)]
    diffs = np.concatenate([np.abs(np.subtract(*(s.run(None, b)[0] for s in runs))).ravel() for b in batches])
    return {"max_abs_vs_fp32": float(diffs.max()), "mean_abs_vs_fp32": float(diffs.mean()),
            "tiles": int(sum(len(b["image"]) for b in batches)), "tolerance": TOLERANCE}
