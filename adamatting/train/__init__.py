"""Training AdaMatting on composited data, on one CPU or on many GPUs (torchrun).

:mod:`~adamatting.train.config` (the recipe and how a process runs it), :mod:`~adamatting.train.data` (the
samples and the workers that make them), :mod:`~adamatting.train.distributed` (the processes of a run),
:mod:`~adamatting.train.step` (one optimisation step and its precision), :mod:`~adamatting.train.schedule`
(learning rate, time budget), :mod:`~adamatting.train.loop` (the run), :mod:`~adamatting.train.average`,
:mod:`~adamatting.train.freezing`, :mod:`~adamatting.train.curves`.
"""

from adamatting.train.average import WeightAverage
from adamatting.train.config import RunOptions, TrainConfig, default_workers
from adamatting.train.curves import plot_curves
from adamatting.train.data import TrainData, batches
from adamatting.train.freezing import freeze_except, frozen_norms
from adamatting.train.loop import train
from adamatting.train.schedule import Budget, lr_at

__all__ = ["Budget", "RunOptions", "TrainConfig", "TrainData", "WeightAverage", "batches", "default_workers",
           "freeze_except", "frozen_norms", "lr_at", "plot_curves", "train"]
