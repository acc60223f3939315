"""The band refiner's loader and runner: the matte inside the mask's unknown band, re-decided from the photo,
the network's alpha and a guided filter of the mask.

The network sees a 512-px letterbox and paints see-through regions (nets, leaves, gaps in hair) solid; a guided
filter of the mask follows the photo but knows nothing of hair. The refiner (``adamatting.model.band_refiner``,
about 8 k parameters) sees both beside the photo at full resolution and outputs ``prior + g·(alpha − prior) + r``:
where it trusts neither, it falls back to the filter. It is a plain ONNX graph run by onnxruntime where it is
installed (1.25× faster than OpenCV here) and by OpenCV's DNN module otherwise (OpenCV is a dependency of the
runtime anyway; the two agree to 1e-6), so it is the same on every backend of the network. Under onnxruntime the
installed refiner runs as its INT8 graph (``band_refiner_int8.onnx``, quantized from the FP32 one by ``adamat
train-refiner``: :meth:`BandRefiner.shipped`), about 1.6× faster, with the same scores. ``adamat export
band-refiner`` converts it for each target (OpenVINO IR, ExecuTorch, CoreML, TensorRT's FP16 ONNX); each file
opens here by its suffix, with the runner its runtime's backend module provides (``band_refiner_runner``).

It runs on ``TILE``-px tiles placed to cover the band's pixels with few of them (each read with a
``RECEPTIVE_RADIUS`` halo, so the tiles join without seams: :mod:`runtime.tiles`), in batches of ``BATCH``, at
the resolution it is given: :class:`runtime.matter.Matter` gives it a 12-megapixel photo at its working
resolution (1536 px: the refiner was trained on photos of up to 1600 px) and takes its answer to the photo by
the guided filter. Only band pixels change.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from common.image_files import reading_problem
from common.manifest import sha256_of
from common.targets import RUNTIMES
from runtime.errors import BackendUnavailable
from runtime.mask_prior import guided_mask, mask_at
from runtime.quiet_import import quiet_runtime_import
from runtime.tiles import cover, window
from runtime.upsample import snap

def int8_graph(path: Path) -> Path:
    """Where the INT8 graph of the band refiner graph ``path`` goes: ``<stem>_int8.onnx`` beside it."""
    return path.with_name(f"{path.stem}_int8.onnx")


SHIPPED = Path(__file__).parent / "data" / "band_refiner.onnx"
SHIPPED_INT8 = int8_graph(SHIPPED)        # its INT8 graph, for onnxruntime
QUANTIZED_FROM = "quantized_from_sha256"   # the INT8 graph's metadata: the SHA-256 of the FP32 graph it came from
INPUTS = ("image", "alpha", "prior", "mask")
RECEPTIVE_RADIUS = 16    # pixels each side an output depends on (adamatting.model.band_refiner)
TILE = 128               # output tile side at the working resolution
BATCH = 16               # tiles per call; a fixed-shape program (ExecuTorch, CoreML) takes exactly this many


def check_inputs(names, path: Path) -> None:
    """ValueError naming ``path`` unless a graph's input ``names`` are the band refiner's :data:`INPUTS` (a
    matting network's file given as the refiner would fail at its first tile, in the runtime's own words)."""
    if sorted(names) != sorted(INPUTS):
        raise ValueError(f"{path}: not a band refiner: its inputs are {', '.join(names) or 'none'}, a band "
                         f"refiner's are {', '.join(INPUTS)}")


@dataclass(frozen=True)
class Runner:
    """One runtime's hold on a band refiner file: ``run(inputs) -> output`` on a dict of named (n, c, h, w)
    float32 arrays; ``batch``: the fixed number of tiles a program of fixed shape takes (None: any)."""

    run: Callable[[dict[str, np.ndarray]], np.ndarray]
    runtime: str
    batch: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)   # the graph's metadata, where the runtime reads it


def _open_opencv(path: Path) -> Runner:
    """OpenCV's DNN module over an ONNX graph (OpenCV is a dependency of the runtime: always there). OpenCV
    names no graph's inputs, so the graph runs once on one empty tile as it opens: ValueError naming ``path``
    where it lacks one of :data:`INPUTS` (a matting network given as the refiner) or gives no one-channel tile."""
    try:
        net = cv2.dnn.readNetFromONNX(str(path))
    except cv2.error:
        raise ValueError(f"{path}: not a band refiner graph OpenCV can read (an ONNX file is expected)") from None

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        for name, blob in inputs.items():
            net.setInput(blob, name)
        return net.forward()

    side = TILE + 2 * RECEPTIVE_RADIUS
    probe = {name: np.zeros((1, 3 if name == "image" else 1, side, side), np.float32) for name in INPUTS}
    try:
        shape = run(probe).shape
    except cv2.error:
        shape = None
    if shape != (1, 1, side, side):
        raise ValueError(f"{path}: not a band refiner: OpenCV cannot run it on the inputs {', '.join(INPUTS)} of "
                         f"one tile (a matting network's graph?)")
    return Runner(run, "opencv")


def runtimes_for(path: Path) -> list[str]:
    """The runtimes that open a band refiner file of this suffix, preferred first: the registry's runtime of
    that suffix (:data:`common.targets.RUNTIMES`; onnxruntime for ``.onnx``), then OpenCV for ``.onnx``."""
    suffix = path.suffix.lower()             # as the network's backends are chosen: X.ONNX is an ONNX graph
    names = [r.name for r in RUNTIMES.values() if suffix in r.suffixes and r.name != "torch"]
    return names + (["opencv"] if suffix == ".onnx" else [])


def open_runner(path: Path, runtime: str) -> Runner:
    """``runtime``'s runner of ``path``: its backend module's ``band_refiner_runner`` (OpenCV's here)."""
    if runtime == "opencv":
        return _open_opencv(path)
    record = RUNTIMES[runtime]
    why_not = record.unavailable()
    if why_not:
        raise BackendUnavailable(f"{path}: the band refiner cannot run here: {why_not}")
    with quiet_runtime_import():
        return importlib.import_module(record.module).band_refiner_runner(path)


class BandRefiner:
    """``BandRefiner.open(path)`` loads a band refiner file; ``refiner(photo, trimap, alpha, mask)`` runs it.
    ``runner``: the runtime that runs it (:class:`Runner`)."""

    def __init__(self, runner: Runner, path: Path):
        self.runner = runner
        self.path = path

    @property
    def runtime(self) -> str:
        return self.runner.runtime

    @property
    def name(self) -> str:
        """"band refiner", "band refiner INT8" for a quantized graph: what tables and summaries call it."""
        return "band refiner INT8" if QUANTIZED_FROM in self.runner.metadata else "band refiner"

    @classmethod
    def open(cls, path: str | Path = SHIPPED, runtime: str | None = None) -> "BandRefiner":
        """The ONNX graph (onnxruntime where it is installed, else OpenCV) or a target's conversion (``adamat
        export band-refiner``: OpenVINO ``.xml``, ExecuTorch ``.pte``, CoreML ``.mlpackage`` on macOS), by its
        suffix; ``runtime`` forces one of :func:`runtimes_for`."""
        path = Path(path)
        if not path.exists():
            raise BackendUnavailable(f"{path}: band refiner not found")
        problem = reading_problem(path, folder=None)    # a .mlpackage is a folder; a pipe's reading would wait
        if problem:
            raise ValueError(f"{path}: {problem}")
        names = runtimes_for(path)
        if not names:
            raise ValueError(f"{path}: not a band refiner file (.onnx, .xml, .pte or .mlpackage)")
        if runtime is not None and runtime not in names:
            raise ValueError(f"{path}: {runtime} does not run {path.suffix} files (use {', '.join(names)})")
        problems = []
        for name in [runtime] if runtime else names:
            try:
                return cls(open_runner(path, name), path)
            except BackendUnavailable as e:
                problems.append(str(e))
        raise BackendUnavailable(problems[-1])

    @classmethod
    def shipped(cls) -> "BandRefiner | None":
        """The installed refiner (None where it is absent): its INT8 graph under onnxruntime where that graph
        was quantized from the installed FP32 one (its metadata says so), else the FP32 graph (:meth:`open`)."""
        if not SHIPPED.is_file():
            return None
        if SHIPPED_INT8.is_file():
            try:
                runner = open_runner(SHIPPED_INT8, "onnxruntime")
            except BackendUnavailable:
                runner = None
            if runner is not None and runner.metadata.get(QUANTIZED_FROM) == sha256_of(SHIPPED):
                return cls(runner, SHIPPED_INT8)
            if runner is not None:
                warnings.warn(f"{SHIPPED_INT8.name} was not quantized from {SHIPPED}: its FP32 graph runs (adamat "
                              "train-refiner --quantize-only remakes it)", stacklevel=2)
        return cls.open(SHIPPED)

    def __call__(self, photo: np.ndarray, trimap: np.ndarray, alpha: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``alpha`` (H, W) with the band (``trimap`` == 128) re-decided; ``mask`` at any resolution of the
        photo's aspect, 0..1."""
        _check_planes(photo, trimap, alpha)
        band = trimap == 128
        if not band.any():
            return alpha
        corners = cover(band, TILE)
        planes = (photo, alpha.astype(np.float32, copy=False), guided_mask(photo, mask, _reach(band)),
                  mask_at(mask, photo.shape[:2]))
        out = alpha.astype(np.float32, copy=True)
        for start in range(0, len(corners), BATCH):      # batches bound the network's intermediate buffers
            chunk = corners[start:start + BATCH]
            output = self.runner.run(tile_inputs(planes, chunk, self.runner.batch))
            for (y, x), tile in zip(chunk, output[:, 0]):
                rows, cols = slice(y, y + TILE), slice(x, x + TILE)
                inside = out[rows, cols]                  # the tile's part inside the photo
                np.copyto(inside, snap(tile[RECEPTIVE_RADIUS:, RECEPTIVE_RADIUS:][:inside.shape[0], :inside.shape[1]]),
                          where=band[rows, cols])
        return out


def _check_planes(photo: np.ndarray, trimap: np.ndarray, alpha: np.ndarray) -> None:
    """TypeError / ValueError naming ``trimap`` or ``alpha`` unless each is an (H, W) array of the photo's size,
    the trimap uint8 and the alpha float in [0, 1] (each failed inside numpy, or a 0..255 alpha came back
    0..255); the photo and the mask are :func:`runtime.mask_prior.guided_mask`'s to check."""
    if not isinstance(photo, np.ndarray):
        raise TypeError(f"photo must be float RGB in [0, 1], (H, W, 3), got {type(photo).__name__}")
    for name, plane, kind in (("trimap", trimap, "uint8 0 / 128 / 255"), ("alpha", alpha, "float in [0, 1]")):
        if not isinstance(plane, np.ndarray) or plane.shape != photo.shape[:2]:
            got = f"shape {plane.shape}" if isinstance(plane, np.ndarray) else type(plane).__name__
            raise ValueError(f"{name} must be {kind} of the photo's (H, W) {photo.shape[:2]}, got {got}")
    if trimap.dtype != np.uint8:
        raise TypeError(f"trimap must be uint8 0 / 128 / 255, got {trimap.dtype}")
    if not np.issubdtype(alpha.dtype, np.floating) or alpha.size and not 0 <= alpha.min() <= alpha.max() <= 1:
        raise ValueError(f"alpha must be float in [0, 1], got {alpha.dtype}"
                         + (f" from {alpha.min():g} to {alpha.max():g}" if alpha.size else ""))


def _reach(band: np.ndarray) -> np.ndarray:
    """bool: the pixels within :data:`RECEPTIVE_RADIUS` of the band, all an output the refiner keeps depends on
    (a tile's other outputs are dropped)."""
    side = 2 * RECEPTIVE_RADIUS + 1
    return cv2.dilate(band.view(np.uint8), np.ones((side, side), np.uint8)).view(bool)


def tile_inputs(planes: tuple[np.ndarray, ...], corners: list[tuple[int, int]],
                batch: int | None = None) -> dict[str, np.ndarray]:
    """The refiner's named inputs for the tiles at ``corners`` of the ``planes`` (the photo in [0, 1], the
    alpha, the mask's prior, the mask, at one resolution), each read with its halo (reflected at the photo's
    borders), padded with empty tiles to a fixed-shape program's ``batch``."""
    n = max(len(corners), batch or 0)
    side = TILE + 2 * RECEPTIVE_RADIUS
    blobs = {name: np.zeros((n, c, side, side), np.float32) for name, c in zip(INPUTS, (3, 1, 1, 1))}
    for i, (y, x) in enumerate(corners):
        for (name, blob), plane in zip(blobs.items(), planes):
            crop = window(plane, y - RECEPTIVE_RADIUS, x - RECEPTIVE_RADIUS, side)
            blob[i] = crop.transpose(2, 0, 1) if crop.ndim == 3 else crop
    blobs["image"][:len(corners)] *= 2
    blobs["image"][:len(corners)] -= 1
    return blobs
