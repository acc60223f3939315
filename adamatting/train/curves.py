"""``curves.png``: the training loss, the learned σ's and the validation scores of a run's ``log.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from common.errors import DataError


CURVE_FIELDS = ("step", "loss", "alpha_l1", "trimap_ce", "sigma1", "sigma2")   # what every row of a log holds


def log_columns(log_path: Path) -> list[str]:
    """The columns of a run's ``log.csv``, read with its rows before a resumed run appends to it: DataError naming
    the file where it is empty, has no column of :data:`CURVE_FIELDS` or a row whose step or numbers do not
    read (an empty log stopped the resume with StopIteration, a foreign one after the training, at the curves)."""
    with log_path.open(newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        missing = [c for c in CURVE_FIELDS if c not in (header or [])]
        if missing:
            what = "it is empty" if not header else f"it has no column {', '.join(missing)}"
            raise DataError(f"not a training log: {what} (remove it to start the log afresh)", log_path)
        for line, row in enumerate(rows, 2):
            values = dict(zip(header, row))
            try:
                int(values["step"]), [float(values[c]) for c in CURVE_FIELDS[1:]]
            except (KeyError, ValueError):
                raise DataError(f"line {line} is not a row of a training log: {','.join(row)[:80]!r}", log_path) from None
    return header


def plot_curves(log_path: Path, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(log_path.open()))
    if not rows:
        return
    steps = np.array([int(r["step"]) for r in rows])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))

    def smooth(v, k=25):
        v = np.asarray(v, float)
        return np.convolve(v, np.ones(k) / k, mode="valid") if len(v) > k else v

    for key in ("loss", "alpha_l1", "trimap_ce"):
        v = smooth([float(r[key]) for r in rows])
        axes[0].plot(steps[len(steps) - len(v):], v, label=key)
    axes[0].set_title("training loss (moving average)"); axes[0].set_xlabel("step"); axes[0].legend()
    for key in ("sigma1", "sigma2"):
        axes[1].plot(steps, [float(r[key]) for r in rows], label=key)
    axes[1].set_title("learned σ"); axes[1].set_xlabel("step"); axes[1].legend()
    val = [(int(r["step"]), float(r["val_sad"]), float(r["val_grad"])) for r in rows if r.get("val_sad")]
    if val:
        v = np.array(val)
        axes[2].plot(v[:, 0], v[:, 1], "o-", label="mean SAD")
        axes[2].plot(v[:, 0], v[:, 2], "s-", label="mean Grad")
        axes[2].set_title("held-back real images (trimap1+2)"); axes[2].set_xlabel("step"); axes[2].legend()
    fig.tight_layout()
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(out)
