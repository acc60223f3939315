"""Training samples and the processes that make them.

Data per sample: foregrounds from a pre-rendered procedural bank plus the real alphamatting.com training
split (colours estimated by pymatting; optionally also the test photos, which have no ground truth, with
closed-form matting's alpha as a pseudo-label), randomly scaled, cropped near the edge, flipped and colour
jittered, composited on natural or procedural backgrounds; trimaps from random DIM erosion (70 %), from a
coarse mask (25 %, the phone case) or all unknown (5 %, "no trimap"). ``photo_fraction`` (half) of the
real samples are instead a crop of the photo as it was taken (its own background, one of its
hand-drawn trimaps half of the time): the held-back images are photos of that kind, not re-composites.

**The stream.** Every sample has its own generator, seeded by (run seed, step, its index in the step's
global batch). Process ``rank`` of ``world`` takes indices ``rank·B … rank·B + B − 1`` of the ``world·B``
samples of a step, and data worker ``w`` of ``N`` makes the steps ``s ≡ w (mod N)``, which the DataLoader
hands out in step order. So the samples of a step are a function of (seed, step) alone: the same for any
number of workers, the same global batch for any split of it between processes, and a run resumed at step
``s`` continues the stream with nothing repeated or skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from adamatting.train.config import TrainConfig
from calib_data import backgrounds
from calib_data.compositing import composite, fit_background
from calib_data.readers import AlphaMattingReader
from calib_data.splits import REAL_TRAIN, alphamatting_dev_dir, alphamatting_test_dir
from calib_data.synth import ForegroundPool, coarse_mask, color_jitter
from calib_data.trimaps import gt_trimap_classes, random_trimap, trimap_from_mask
from common.encoding import encode_inputs
from common.image_files import to_uint8

CHANNELS_LAST = ("image", "trimap")   # the network's inputs, in the memory format it trains in


def data_sources(cfg: TrainConfig) -> list[tuple[str, list[str]]]:
    """The folders of real photos this process would train on and the photos it finds there: every process
    of a run must find the same ones, or the processes would train on different data."""
    if cfg.real_fraction == 0:
        return []
    folders = [alphamatting_dev_dir()] + ([alphamatting_test_dir()] if cfg.pseudo_labels else [])
    return [(str(f), AlphaMattingReader(f).names if f.is_dir() else []) for f in folders]


class TrainData:
    """The foreground and background banks of a run, and its samples."""

    def __init__(self, cfg: TrainConfig, cache_root: Path, progress: bool = True):
        pool = ForegroundPool.from_procedural(cfg.bank_size, (cfg.bank_res, cfg.bank_res), cfg.seed + 1, progress)
        self.real = None
        root = alphamatting_dev_dir()
        if cfg.real_fraction > 0 and root.is_dir():
            self.real = ForegroundPool.from_alphamatting(root, list(REAL_TRAIN), cache_root / "foregrounds")
        if cfg.real_fraction > 0 and cfg.pseudo_labels and alphamatting_test_dir().is_dir():
            pseudo = ForegroundPool.from_pseudo_labels(alphamatting_test_dir(), cache_root / "foregrounds")
            self.real = pseudo if self.real is None else self.real + pseudo
        if self.real is not None and progress:
            labelled = sum(not name.startswith("pseudo:") for name, _, _ in self.real.items)
            print(f"real cut-outs: {labelled} with ground truth, {len(self.real.items) - labelled} pseudo-labelled")
        self.procedural = pool
        rng = np.random.default_rng(cfg.seed + 2)
        self.bgs = backgrounds.natural_backgrounds() + [
            backgrounds.procedural_background((cfg.bank_res, cfg.bank_res), rng) for _ in range(cfg.bg_bank)]
        self.cfg = cfg

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c, trimap = self.cfg.crop, None
        real = self.real is not None and rng.random() < self.cfg.real_fraction
        if real and self.cfg.photo_fraction > 0 and self.real.photos and rng.random() < self.cfg.photo_fraction:
            crop = self.real.sample_photo((c, c), rng, self.cfg.real_scale, self.cfg.photo_trimap_fraction)
            image, fg, bg, alpha, trimap = crop.image, crop.fg, crop.bg, crop.alpha, crop.trimap
            image = to_uint8(image).astype(np.float32) / np.float32(255.0)   # 8 bits, as composite(round_uint8)
        else:
            if real:
                _, fg, alpha = self.real.sample((c, c), rng, augment=True, scale_range=self.cfg.real_scale)
            else:
                _, fg, alpha = self.procedural.sample((c, c), rng, augment=True)
            image, fg, bg = self._composite(fg, alpha, rng)
        if trimap is None:
            trimap = self._random_trimap(alpha, rng)
        img, tri = encode_inputs(image, trimap)
        chw = lambda a: np.ascontiguousarray(np.transpose(a, (2, 0, 1)), dtype=np.float32)   # float [0, 1]
        return {"image": img, "trimap": tri, "alpha": alpha[None].astype(np.float32),
                "target": gt_trimap_classes(alpha, dilate=3), "fg": chw(fg), "bg": chw(bg), "image01": chw(image)}

    @staticmethod
    def _random_trimap(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random()
        if u < 0.70:
            return random_trimap(alpha, rng)
        if u < 0.95:
            return trimap_from_mask(coarse_mask(alpha, rng), band=int(rng.integers(4, 24)))
        return np.full(alpha.shape, 128, np.uint8)

    def _composite(self, fg: np.ndarray, alpha: np.ndarray, rng: np.random.Generator):
        """fg over a random background, both colour-jittered: (image, fg, bg)."""
        c = self.cfg.crop
        bg = self.bgs[int(rng.integers(len(self.bgs)))]
        bg = fit_background(bg, int(c * rng.uniform(1.0, 1.5)), int(c * rng.uniform(1.0, 1.5)), rng) if min(bg.shape[:2]) > c else bg
        bg = fit_background(bg, c, c, rng)
        if rng.random() < 0.5:
            bg = bg[:, ::-1]
        fg, bg = color_jitter(fg, rng), color_jitter(np.ascontiguousarray(bg), rng)
        return composite(fg, bg, alpha, round_uint8=True), fg, bg

    def batch_arrays(self, step: int, rank: int = 0, batch: int | None = None) -> dict[str, np.ndarray]:
        """Process ``rank``'s share of step ``step``'s samples, stacked (see the module doc); ``batch``
        samples per process (default: the run's)."""
        batch = batch or self.cfg.batch
        seeds = [[self.cfg.seed, step, rank * batch + i] for i in range(batch)]
        items = [self.sample(np.random.default_rng(seed)) for seed in seeds]
        return {k: np.stack([it[k] for it in items]) for k in items[0]}

class BatchStream(IterableDataset):
    """Steps ``start`` … ``stop − 1`` of process ``rank``, as (step, batch of CPU tensors); with data workers,
    worker w of N makes the steps s ≡ w (mod N)."""

    def __init__(self, data: TrainData, start: int, stop: int, rank: int = 0):
        self.data, self.start, self.stop, self.rank = data, start, stop, rank

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        for step in range(self.start + worker, self.stop, workers):
            yield step, {k: torch.from_numpy(v) for k, v in self.data.batch_arrays(step, self.rank).items()}


def _one_thread(_worker: int) -> None:
    """A data worker's torch computes on one core: N workers use N cores, not N × all of them. (OpenCV's
    thread count is left alone: setting it in a forked worker can deadlock once the parent used its pool.)"""
    torch.set_num_threads(1)


def batches(data: TrainData, start: int, stop: int, rank: int = 0, workers: int = 0, pin_memory: bool = False):
    """The stream of (step, batch) from ``start``, made by ``workers`` processes (0: this one)."""
    return DataLoader(BatchStream(data, start, stop, rank), batch_size=None, num_workers=workers,
                      pin_memory=pin_memory, worker_init_fn=_one_thread if workers else None,
                      prefetch_factor=4 if workers else None)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    for k in CHANNELS_LAST:
        out[k] = out[k].contiguous(memory_format=torch.channels_last)
    return out
