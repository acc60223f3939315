"""The band refiner's loader and runner: the matte inside the mask's unknown band, re-decided from the photo,
the network's alpha and a guided filter of the mask.

The network sees a 512-px letterbox and paints see-through regions (nets, leaves, gaps in hair) solid; a guided
filter of the mask follows the photo but knows nothing of hair. The refiner (``adamatting.model.band_refiner``,
about 8 k parameters) sees both beside the photo at full resolution and outputs ``prior + g·(alpha − prior) + r``:
where it trusts neither, it falls back to the filter. It is a plain ONNX graph run by onnxruntime where it is
installed (1.25× faster than OpenCV here) and by OpenCV's DNN module otherwise (OpenCV is a dependency of the
runtime anyway; the two agree to 1e-6), so it is the same on every backend of the network.

It runs on a fixed grid of ``TILE``-px tiles (each read with a ``RECEPTIVE_RADIUS`` halo, so the tiles join
without seams) that hold band pixels, all in one batch, at the resolution it is given: :class:`runtime.matter.Matter`
gives it a 12-megapixel photo at its working resolution (1536 px: the refiner was trained on photos of up to
1600 px) and takes its answer to the photo by the guided filter. Only band pixels change.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from runtime.errors import BackendUnavailable
from runtime.mask_prior import guided_mask, mask_at
from runtime.upsample import snap

SHIPPED = Path(__file__).parent / "data" / "band_refiner.onnx"
INPUTS = ("image", "alpha", "prior", "mask")
RECEPTIVE_RADIUS = 16    # pixels each side an output depends on (adamatting.model.band_refiner)
TILE = 128               # output tile side at the working resolution
BATCH = 16               # tiles per network call


def _open_onnxruntime(path: Path):
    """``run(inputs) -> output`` over an onnxruntime session; None where onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:   # onnxruntime raises its own exception types for a file that is not a graph
        raise ValueError(f"{path}: not a band refiner graph (an ONNX file is expected)") from None
    return lambda inputs: session.run(None, inputs)[0]


def _open_opencv(path: Path):
    """``run(inputs) -> output`` over OpenCV's DNN module."""
    try:
        net = cv2.dnn.readNetFromONNX(str(path))
    except cv2.error:
        raise ValueError(f"{path}: not a band refiner graph OpenCV can read (an ONNX file is expected)") from None

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        for name, blob in inputs.items():
            net.setInput(blob, name)
        return net.forward()
    return run


RUNNERS = {"onnxruntime": _open_onnxruntime, "opencv": _open_opencv}


class BandRefiner:
    """``BandRefiner.open(path)`` loads the ONNX graph; ``refiner(photo, trimap, alpha, mask)`` runs it.
    ``run(inputs)``: the graph on a dict of named (n, c, h, w) float32 arrays; ``runtime``: which one runs it."""

    def __init__(self, run, path: Path, runtime: str):
        self.run = run
        self.path = path
        self.runtime = runtime

    @classmethod
    def open(cls, path: str | Path = SHIPPED, runtime: str | None = None) -> "BandRefiner":
        """``runtime``: "onnxruntime" or "opencv"; by default onnxruntime where it is installed, else OpenCV."""
        path = Path(path)
        if not path.is_file():
            raise BackendUnavailable(f"{path}: band refiner not found")
        for name in [runtime] if runtime else list(RUNNERS):
            run = RUNNERS[name](path)
            if run is not None:
                return cls(run, path, name)
        raise BackendUnavailable(f"{path}: onnxruntime is not installed to run the band refiner")

    def __call__(self, photo: np.ndarray, trimap: np.ndarray, alpha: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``alpha`` (H, W) with the band (``trimap`` == 128) re-decided; ``mask`` at any resolution of the
        photo's aspect, 0..1."""
        band = trimap == 128
        if not band.any():
            return alpha
        planes = np.concatenate([photo * 2 - 1, alpha[..., None], guided_mask(photo, mask)[..., None],
                                 mask_at(mask, photo.shape[:2])[..., None]], axis=2).astype(np.float32, copy=False)
        out = alpha.astype(np.float32, copy=True)
        out[band] = snap(self._run_tiles(planes, band)[band])
        return out

    def _run_tiles(self, planes: np.ndarray, band: np.ndarray) -> np.ndarray:
        """The refiner's output (h, w) in the band; elsewhere the input alpha (whatever the tiles' size)."""
        h, w = band.shape
        r = RECEPTIVE_RADIUS
        ny, nx = -(-h // TILE), -(-w // TILE)
        padded = cv2.copyMakeBorder(planes, r, ny * TILE - h + r, r, nx * TILE - w + r, cv2.BORDER_REFLECT)
        held = np.pad(band, ((0, ny * TILE - h), (0, nx * TILE - w))).reshape(ny, TILE, nx, TILE).any(axis=(1, 3))
        corners = list(zip(*np.nonzero(held)))
        out = np.pad(planes[..., 3], ((0, ny * TILE - h), (0, nx * TILE - w)))
        for start in range(0, len(corners), BATCH):      # batches bound the network's intermediate buffers
            chunk = corners[start:start + BATCH]
            batch = np.stack([padded[y * TILE:(y + 1) * TILE + 2 * r, x * TILE:(x + 1) * TILE + 2 * r]
                              for y, x in chunk]).transpose(0, 3, 1, 2)
            blobs = (batch[:, :3], batch[:, 3:4], batch[:, 4:5], batch[:, 5:6])
            output = self.run({name: np.ascontiguousarray(blob) for name, blob in zip(INPUTS, blobs)})
            for (y, x), tile in zip(chunk, output[:, 0, r:r + TILE, r:r + TILE]):
                out[y * TILE:(y + 1) * TILE, x * TILE:(x + 1) * TILE] = tile
        return np.where(band, out[:h, :w], planes[..., 3])
