"""``adamat eval``: methods side by side on a folder of photos with ground truth, in two protocols.

- ``trimap`` (Composition-1k): each given trimap; metrics over its unknown region, the prediction's known
  regions set to 0 / 1 and both mattes read as 8-bit (:func:`evaluation.protocol.protocol_alpha`).
- ``mask`` (the phone case): a coarse mask, given (``mask/``) or simulated from the ground truth by a named
  recipe (:mod:`calib_data.segmenter_masks`); its trimap has the band its resolution implies
  (:func:`runtime.preprocess.band_for_mask`). Metrics over the whole image (what a bokeh shows) and over
  that band (where the methods differ).

Per image and method: SAD, MSE, Grad, Conn (Composition-1k definitions, :mod:`common.metrics`) and the seconds
the method took; means per method. A method that cannot run on a photo (closed-form matting on a trimap without
background or foreground, say: a :class:`common.errors.DataError`) is n/a there, with its reason: the rest of the
evaluation goes on, and its means are over the photos where it ran. Results are data: :func:`write_results`
writes ``eval.json`` (``rows``: every score; ``na``: every method and photo that could not be scored, and why)
and ``eval.md``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from calib_data.segmenter_masks import RECIPES, MaskRecipe, simulate_mask
from common.arguments import repeated
from common.errors import DataError
from common.metrics import compute_all, compute_regions
from common.outputs import atomic_path, check_writable
from evaluation.datasets import EvalFolder, EvalImage
from evaluation.protocol import protocol_alpha, quantize_gt
from runtime.preprocess import check_aspect, make_trimap

PROTOCOLS = ("trimap", "mask")
METRICS = ("SAD", "MSE", "Grad", "Conn")
FORMAT = "adamatting-eval/1"
RESULT_FILES = ("eval.json", "eval.md")   # what write_results writes in its folder


@dataclass
class EvalSettings:
    protocol: str = "mask"
    recipe: str = "phone"          # mask protocol without a mask/ folder: how the mask is simulated
    seed: int = 0
    long_side: int | None = None

    def validated(self) -> "EvalSettings":
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; use one of {', '.join(PROTOCOLS)}")
        if self.recipe not in (*RECIPES, "given"):
            raise ValueError(f"unknown mask recipe {self.recipe!r}; use one of {', '.join(RECIPES)}")
        return self


@dataclass
class EvalResult:
    folder: str
    settings: EvalSettings
    methods: list[str]
    rows: list[dict] = field(default_factory=list)
    na: list[dict] = field(default_factory=list)    # {image, method, where, reason}: could not run there

    def means(self) -> list[dict]:
        """One row per (method, trimap or region) with the mean of every metric and of the seconds over the
        ``images`` where the method ran (None where it ran on none), and ``na``: on how many it could not."""
        keys = list(dict.fromkeys((r["method"], r["where"]) for r in self.rows + self.na))
        out = []
        for method, where in keys:
            sel = [r for r in self.rows if r["method"] == method and r["where"] == where]
            na = sum(1 for r in self.na if r["method"] == method and r["where"] == where)
            out.append({"method": method, "where": where, "images": len(sel), "na": na,
                        **{k: float(np.mean([r[k] for r in sel])) if sel else None for k in (*METRICS, "seconds")}})
        return out

    def na_summary(self) -> list[str]:
        """One line per method that could not run somewhere: on how many photos, which, and why."""
        lines = []
        for method in self.methods:
            cases = list(dict.fromkeys((r["image"], r["reason"]) for r in self.na if r["method"] == method))
            if not cases:
                continue
            photos = len({image for image, _ in cases})
            shown = "; ".join(f"{image}: {reason}" for image, reason in cases[:3]) + ("; ..." if len(cases) > 3 else "")
            lines.append(f"{method}: n/a on {photos} photo{'s' if photos > 1 else ''} ({shown})")
        return lines


def cases(item: EvalImage, settings: EvalSettings) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(trimap name, trimap, mask) to score: each given trimap, or the mask's trimap."""
    if settings.protocol == "trimap":
        if not item.trimaps:
            raise ValueError(f"{item.name}: the trimap protocol needs trimaps (trimap/ or trimap1/ ...)")
        return [(name, t, None) for name, t in item.trimaps.items()]
    mask = item.mask if item.mask is not None else simulated_mask(item, RECIPES[settings.recipe], settings.seed)
    return [("mask", make_trimap(item.alpha.shape, mask=mask), mask)]


def simulated_mask(item: EvalImage, recipe: MaskRecipe, seed: int) -> np.ndarray:
    """The mask ``recipe`` simulates for ``item``, at the recipe's size; or, where that size rounded to whole
    pixels is not of the photo's aspect ratio within the runtime's tolerance (:func:`check_aspect`: a small or a
    very wide photo; 25x16 for a 200x124 photo at 1/8), at the nearest long side whose rounding is. A mask made
    from a photo is always accepted for it: the rounding is the simulation's, not a mistake in the folder."""
    shape = item.alpha.shape
    nominal = recipe.mask_shape(shape)
    if not _fits(nominal, shape):
        sides = sorted(range(2, max(shape) + 1), key=lambda side: (abs(side - max(nominal)), -side))
        # one of them always fits: the photo's own long side gives the photo's own size
        recipe = next(r for r in (dataclasses.replace(recipe, factor=None, long_side=side) for side in sides)
                      if _fits(r.mask_shape(shape), shape))
    return simulate_mask(item.alpha, recipe, item.name, seed)


def _fits(own: tuple[int, int], shape: tuple[int, int]) -> bool:
    try:
        check_aspect(own, shape, "mask", None)
    except DataError:
        return False
    return True


def score(pred: np.ndarray, item: EvalImage, trimap: np.ndarray, protocol: str) -> dict[str, dict]:
    """{region: metrics}: the trimap's unknown region (Composition-1k) or the whole image and the band."""
    if protocol == "trimap":
        return {"unknown": compute_all(protocol_alpha(pred, trimap), quantize_gt(item.alpha), trimap)}
    both = compute_regions(np.clip(pred, 0, 1), np.clip(item.alpha, 0, 1), trimap)
    return {"whole": both["all"], "band": both["unknown"]}


def evaluate_folder(folder: EvalFolder, methods: list, settings: EvalSettings,
                    progress: Callable[[str], None] | None = None) -> EvalResult:
    """Every method on every image of ``folder``; a mask-only method is skipped in the trimap protocol."""
    settings = dataclasses.replace(settings).validated()
    if settings.protocol == "mask" and folder.has_masks:
        settings.recipe = "given"   # the folder's masks, not a simulation
    methods = [m for m in methods if settings.protocol == "mask" or not m.needs_mask]
    twice = repeated([m.name for m in methods])
    if twice:   # their scores would be merged into one row
        raise ValueError(f"two methods named {', '.join(twice)}: give each its own name")
    result = EvalResult(str(folder.root), settings, [m.name for m in methods])
    for i, item in enumerate(folder):
        for where, trimap, mask in cases(item, settings):
            labels = [where] if settings.protocol == "trimap" else ["whole", "band"]
            if not (trimap == 128).any():   # no band to score: n/a there (Composition-1k scores only the band)
                result.na += [{"image": item.name, "method": m.name, "where": labels[-1],
                               "reason": f"{where} marks no unknown pixel: nothing to score"} for m in methods]
                labels = labels[:-1]
            if not labels:
                continue
            for m in methods:
                t0 = time.perf_counter()
                try:
                    pred = m.predict(item.image, trimap, mask)
                except DataError as e:   # this method cannot run on this photo: n/a here, the rest goes on
                    result.na += [{"image": item.name, "method": m.name, "where": label, "reason": str(e)}
                                  for label in labels]
                    continue
                seconds = time.perf_counter() - t0
                for label, metrics in zip(labels, score(pred, item, trimap, settings.protocol).values()):
                    result.rows.append({"image": item.name, "method": m.name, "where": label, "seconds": seconds,
                                        "size": list(item.alpha.shape), **metrics})
        if progress:
            progress(f"{i + 1}/{len(folder)} {item.name} ({item.alpha.shape[1]}x{item.alpha.shape[0]})")
    return result


def markdown(result: EvalResult) -> str:
    """The means, then SAD per image: one table each."""
    s = result.settings
    masks = "the folder's masks" if s.recipe == "given" else f"masks simulated by the {s.recipe} recipe (seed {s.seed})"
    how = (f"mask protocol, {masks}, band from the mask's resolution" if s.protocol == "mask"
           else "trimap protocol (Composition-1k)")
    lines = [f"# Evaluation of {result.folder}", "", how + (f", long side {s.long_side} px" if s.long_side else
                                                              ", native resolution"), "",
             "| method | where | images | SAD | MSE | Grad | Conn | s/image |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {m['method']} | {m['where']} | {m['images']} | {_num(m['SAD'], '.2f')} | {_num(m['MSE'], '.5f')} | "
              f"{_num(m['Grad'], '.2f')} | {_num(m['Conn'], '.2f')} | {_num(m['seconds'], '.2f')} |"
              for m in result.means()]
    if result.na:
        lines += ["", "Means are over the photos where each method ran; n/a where it could not:", ""]
        lines += [f"- {line}" for line in result.na_summary()]
    wheres = list(dict.fromkeys(r["where"] for r in result.rows + result.na))
    images = list(dict.fromkeys(r["image"] for r in result.rows + result.na))
    for where in wheres:
        lines += ["", f"SAD per image ({where}):", "", "| image | " + " | ".join(result.methods) + " |",
                  "|---|" + "---|" * len(result.methods)]
        for image in images:
            sad = {r["method"]: f"{r['SAD']:.2f}" for r in result.rows if r["image"] == image and r["where"] == where}
            sad.update({r["method"]: "n/a" for r in result.na if r["image"] == image and r["where"] == where})
            lines.append(f"| {image} | " + " | ".join(sad.get(m, "—") for m in result.methods) + " |")
    return "\n".join(lines) + "\n"


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def write_results(result: EvalResult, out_dir: str | Path) -> tuple[Path, Path]:
    """``eval.json`` (settings, every row, the means, what was n/a) and ``eval.md``, both or neither."""
    files = [check_writable(Path(out_dir) / n) for n in RESULT_FILES]
    data = {"format": FORMAT, "folder": result.folder, "settings": vars(result.settings),
            "methods": result.methods, "means": result.means(), "rows": result.rows, "na": result.na}
    with atomic_path(files[0]) as tmp_json, atomic_path(files[1]) as tmp_md:
        tmp_json.write_text(json.dumps(data, indent=1))
        tmp_md.write_text(markdown(result))
    return files[0], files[1]
