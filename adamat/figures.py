"""``make demo``: the main job as it stands.

1. Build (or reuse) the seeded calibration and validation sets from the embedded configs.
2. Write a contact sheet of composites, trimaps and alphas, and print a table of the sets' statistics.
3. With the shipped checkpoint and ../shared/data present: the model's alpha on the held-back real
   images beside the ground truth (and the metrics).
4. With the shipped checkpoint: bokeh renders (input, alpha, bokeh) of the alphamatting.com test images
   (their Trimap1) when present and of a composited validation sample.
5. With the shipped checkpoint: three portraits shipped by the dependencies through the person segmenter,
   the bokeh through its mask beside the bokeh through the model's alpha.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from adamat.tables import print_table
from calib_data.io import write_image
from calib_data.readers import AlphaMattingReader
from calib_data.sets import CompositedSet, SetConfig, build_set, set_statistics
from calib_data.splits import REAL_VALIDATION, alphamatting_dev_dir
from common.image_files import to_uint8
from evaluation.protocol import evaluate_real, matter_predictor, protocol_alpha
from runtime.bokeh import render_bokeh
from runtime.matter import Matter
from runtime.person_mask import PersonSegmenter, segmenter_band


def _gray(a: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(a, np.float32)[..., None], 3, axis=2)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    """The tile as uint8 RGB with ``text`` written in its top-left corner."""
    tile = np.ascontiguousarray(tile if tile.dtype == np.uint8 else to_uint8(tile))
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def contact_sheet(sets: list[CompositedSet], per_set: int = 8, tile: int = 160) -> np.ndarray:
    """Rows per set: composite, trimap, alpha; one column per sample."""
    rows = []
    for s in sets:
        n = min(per_set, len(s))
        origins = s.meta.get("origins", [""] * len(s))
        for kind in ("image", "trimap", "alpha"):
            tiles = []
            for i in range(n):
                item = s[i]
                arr = item[kind] if kind == "image" else _gray(item[kind] / (255.0 if kind == "trimap" else 1.0))
                arr = cv2.resize(arr, (tile, tile), interpolation=cv2.INTER_AREA)
                text = f"{s.meta['name']}: {origins[i]}" if kind == "image" else kind
                tiles.append(_label(arr, text))
            tiles += [np.zeros((tile, tile, 3), np.uint8)] * (per_set - n)
            rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def real_alpha_figure(weights: Path, out: Path) -> list[dict] | None:
    """Model alpha beside ground truth on the held-back real images (trimap1); returns the network's metric rows,
    each with the SAD of the runtime's alpha beside it.

    Three model panels: the network's own alpha (where its adapted trimap overrules the given one, it shows),
    that alpha with the given trimap's known regions kept (the network's score), and what the runtime returns:
    the band solved by the matting Laplacian pulled toward the network's alpha (runtime.matting_laplacian)."""

    own = matter_predictor(Matter.from_artifact(weights, clamp_known=False, laplacian=None))   # the network's own
    _, rows = evaluate_real(own, trimaps=("trimap1",), keep=True)
    _, solved = evaluate_real(matter_predictor(Matter.from_artifact(weights)), trimaps=("trimap1",), keep=True)

    reader = AlphaMattingReader(alphamatting_dev_dir(), list(REAL_VALIDATION))
    tiles = []
    for sample, row, app in zip(reader, rows, solved):
        h = 200
        w = int(round(sample.image.shape[1] * h / sample.image.shape[0]))
        raw, row["SAD, matting Laplacian"] = row.pop("alpha"), app["SAD"]
        parts = [sample.image, _gray(sample.trimaps["trimap1"] / 255.0), _gray(raw),
                 _gray(protocol_alpha(raw, sample.trimaps["trimap1"])),
                 _gray(protocol_alpha(app["alpha"], sample.trimaps["trimap1"])), _gray(sample.alpha)]
        names = [sample.name, "trimap1", "network alpha", f"known regions kept  SAD {row['SAD']:.1f}",
                 f"matting Laplacian  SAD {app['SAD']:.1f}", "ground truth"]
        tiles.append(np.concatenate([_label(cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA), n)
                                     for p, n in zip(parts, names)], axis=1))
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0))) for t in tiles]
    write_image(out, np.concatenate(tiles, axis=0))
    return rows


def bokeh_grid(weights: Path, val_set: CompositedSet, out: Path, strength: float = 0.02) -> list[str]:
    """Rows of (input, alpha, bokeh): the held-back alphamatting.com images with their trimap2 (when present;
    never trained on — the test photos are pseudo-labelled training data since run 9) and one composited
    validation sample with its mask trimap. Returns the row names."""

    matter = Matter.from_artifact(weights)
    items = []
    if alphamatting_dev_dir().is_dir():
        for sample in AlphaMattingReader(alphamatting_dev_dir(), list(REAL_VALIDATION)):
            items.append((sample.name, sample.image, sample.trimaps["trimap2"]))
    item = val_set[0]
    items.append(("composite", item["image"], item["trimap"]))
    rows, h = [], 180
    for name, image, trimap in items:
        alpha = matter.predict(image, trimap=trimap, with_trimap_prob=False).alpha
        bokeh, _ = render_bokeh(to_uint8(image), alpha, strength)
        w = int(round(image.shape[1] * h / image.shape[0]))
        tiles = [cv2.resize(to_uint8(a), (w, h), interpolation=cv2.INTER_AREA)
                 for a in (image, _gray(alpha), bokeh.astype(np.float32) / 255.0)]
        rows.append(np.concatenate([_label(t, n) for t, n in zip(tiles, (name, "alpha", "bokeh"))], axis=1))
    width = max(r.shape[1] for r in rows)
    write_image(out, np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0))
    return [name for name, _, _ in items]


def sample_portraits() -> list[tuple[str, np.ndarray]]:
    """Portraits that ship with the project's dependencies, uint8 RGB: scikit-image's ``astronaut()`` (Eileen
    Collins, NASA, public domain) and ``camera()`` (CC0, Lav Varshney), matplotlib's ``grace_hopper.jpg``
    (U.S. Navy photograph, public domain)."""
    from matplotlib import cbook
    from skimage import data

    hopper = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    return [("astronaut", data.astronaut()), ("camera", np.repeat(data.camera()[..., None], 3, axis=2)),
            ("grace_hopper", hopper)]


def portrait_figure(weights: Path, out: Path, strength: float = 0.02) -> list[str]:
    """Rows of (photo, segmenter mask, our alpha, bokeh through the mask alone, bokeh through our alpha) of
    :func:`sample_portraits`: what the matting adds to a phone's person mask. Returns the row names."""
    matter, segmenter = Matter.from_artifact(weights), PersonSegmenter()
    rows, h = [], 200
    for name, photo in sample_portraits():
        mask = segmenter.mask(photo)
        alpha = matter.predict(photo, mask=mask, band=segmenter_band(photo.shape[:2]), with_trimap_prob=False).alpha
        parts = [photo, _gray(mask / 255.0), _gray(alpha), render_bokeh(photo, mask, strength)[0],
                 render_bokeh(photo, alpha, strength)[0]]
        labels = [name, "segmenter mask", "our alpha", "bokeh: mask alone", "bokeh: our alpha"]
        w = int(round(photo.shape[1] * h / photo.shape[0]))
        rows.append(np.concatenate([_label(cv2.resize(to_uint8(p) if p.dtype != np.uint8 else p, (w, h),
                                                      interpolation=cv2.INTER_AREA), n)
                                    for p, n in zip(parts, labels)], axis=1))
    width = max(r.shape[1] for r in rows)
    write_image(out, np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0))
    return [name for name, _ in sample_portraits()]


def run_demo(out: Path, cache: Path, weights: Path, configs: list[SetConfig] | None = None) -> None:
    """The demo; ``configs`` replaces the embedded calib/val configs (tests use tiny ones)."""

    out.mkdir(parents=True, exist_ok=True)
    configs = configs or [SetConfig.from_toml(name) for name in ("calib", "val")]
    sets = [build_set(cfg, cache) for cfg in configs]
    for s in sets:
        for note in s.meta.get("notes", []):
            print(f"note ({s.meta['name']}): {note}")
    sheet = write_image(out / "contact_sheet.png", contact_sheet(sets))
    print("\nComposited sets")
    print_table([set_statistics(s) for s in sets])
    print(f"\ncontact sheet: {sheet}")
    for s in sets:
        print(f"{s.meta['name']} set: {s.path}")
    if not weights.is_file():
        print(f"\nno checkpoint at {weights}: skipping the real-image figure (make train writes one)")
    elif not alphamatting_dev_dir().is_dir():
        print(f"\n{alphamatting_dev_dir()} not found: skipping the real-image figure")
    else:
        rows = real_alpha_figure(weights, out / "real_alpha.png")
        print("\nModel on the held-back real images (trimap1, Composition-1k metrics, unknown region)")
        print_table([{k: v for k, v in r.items() if k != "trimap"} for r in rows])
        print(f"real-image figure: {out / 'real_alpha.png'}")
    if weights.is_file():
        names = bokeh_grid(weights, sets[1], out / "bokeh_grid.png")
        print(f"bokeh grid ({', '.join(names)}): {out / 'bokeh_grid.png'}")
        names = portrait_figure(weights, out / "portraits.png")
        print(f"portraits, segmenter mask vs our alpha ({', '.join(names)}): {out / 'portraits.png'}")
