"""``adamat eval clips``: the clip path (:class:`runtime.clip.ClipMatte`) with its state across frames, beside
the same network frame by frame and the per-frame baselines, on procedural clips with exact alpha
(:mod:`calib_data.procedural_clips`).

Every frame gets its own simulated segmenter mask (the ``phone`` recipe: 256 px, outline jittered by a pixel,
drawn afresh each frame: the flicker of a real segmenter). Per method and clip: the mean per frame of the
whole-image SAD, MSE and Grad (:mod:`common.metrics`) and the clip's dtSSD and MESSDdt
(:mod:`evaluation.temporal`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from calib_data.procedural_clips import ClipSpec, ProceduralClip, make_clip
from calib_data.segmenter_masks import RECIPES, simulate_mask
from common.metrics import gradient_error, mse, sad
from common.outputs import atomic_path, check_writable
from evaluation.temporal import sequence_scores
from runtime.clip import ClipMatte
from runtime.mask_prior import guided_mask, mask_at
from runtime.matter import Matter

CLIP_KINDS = ("hair", "fur", "veil")
METRICS = ("SAD", "MSE", "Grad", "dtSSD", "MESSDdt")
CLIP_RESULT_FILES = ("eval-clips.json", "eval-clips.md")   # what write_clip_results writes in its folder

FrameMethod = Callable[[np.ndarray, np.ndarray], np.ndarray]   # (frame uint8 RGB, mask) → alpha


@dataclass(frozen=True)
class ClipSet:
    size: tuple[int, int] = (1080, 1920)
    frames: int = 60
    kinds: tuple[str, ...] = CLIP_KINDS
    seed: int = 0

    def clips(self):
        for i, kind in enumerate(self.kinds):
            yield make_clip(ClipSpec(size=self.size, frames=self.frames, kind=kind), self.seed + i)


def clip_methods(matter: Matter) -> dict[str, Callable[[], FrameMethod]]:
    """Each method as a factory of its per-clip state: a new one for every clip."""
    def stateful(stabilise):
        return lambda: (lambda frame, mask, m=ClipMatte(matter, stabilise=stabilise): m(frame, mask))

    return {
        "model, state across frames": stateful(True),
        "model, frame by frame": stateful(False),
        "guided filter": lambda: lambda frame, mask: guided_mask(frame.astype(np.float32) / 255, mask),
        "raw mask": lambda: lambda frame, mask: (mask_at(mask, frame.shape[:2]) > 0.5).astype(np.float32),
    }


def phone_masks(clip: ProceduralClip, seed: int = 0) -> list[np.ndarray]:
    return [simulate_mask(a, RECIPES["phone"], f"{clip.name}/{t}", seed) for t, a in enumerate(clip.alphas)]


def score_clip(clip: ProceduralClip, method: FrameMethod, masks: list[np.ndarray]) -> dict[str, float]:
    preds = [method(frame, mask) for frame, mask in zip(clip.frames, masks)]
    per_frame = {name: float(np.mean([f(p, g, region="all") for p, g in zip(preds, clip.alphas)]))
                 for name, f in (("SAD", sad), ("MSE", mse), ("Grad", gradient_error))}
    return per_frame | sequence_scores(preds, clip.alphas)


def evaluate_clips(clip_set: ClipSet, methods: dict[str, Callable[[], FrameMethod]],
                   progress: Callable[[str], None] | None = None) -> dict:
    """{"set": ..., "rows": [{"clip", "method", metrics...}], "means": {method: {metric: mean over clips}}}."""
    rows = []
    for clip in clip_set.clips():
        masks = phone_masks(clip, clip_set.seed)
        for name, make in methods.items():
            rows.append({"clip": clip.name, "method": name} | score_clip(clip, make(), masks))
            if progress:
                progress(f"{clip.name}: {name}")
    means = {name: {m: float(np.mean([r[m] for r in rows if r["method"] == name])) for m in METRICS}
             for name in methods}
    return {"set": asdict(clip_set), "rows": rows, "means": means}


def markdown(result: dict) -> str:
    lines = ["| method | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    lines += [f"| {name} | " + " | ".join(f"{v[m]:.4g}" for m in METRICS) + " |" for name, v in result["means"].items()]
    return "\n".join(lines) + "\n"


def write_clip_results(result: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """``eval-clips.json`` and ``eval-clips.md`` in ``out_dir``, both or neither."""
    files = [check_writable(Path(out_dir) / n) for n in CLIP_RESULT_FILES]
    with atomic_path(files[0]) as tmp_json, atomic_path(files[1]) as tmp_md:
        tmp_json.write_text(json.dumps(result, indent=1))
        tmp_md.write_text(markdown(result))
    return files[0], files[1]
