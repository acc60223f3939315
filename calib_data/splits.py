"""The fixed split of the real alphamatting.com dev images (../shared/data/alphamatting_lowres_dev).

Held-back images are never used for training or calibration; they validate the model and the exports.
Chosen for variety: long hair (GT03), fur (GT15), a solid object (GT19), a transparent net (GT25).
"""

from __future__ import annotations

import os
from pathlib import Path

REAL_VALIDATION = ("GT03", "GT15", "GT19", "GT25")
REAL_TRAIN = ("GT01", "GT05", "GT07", "GT09", "GT11", "GT13", "GT17", "GT21", "GT23", "GT27")

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """``$ADAMATTING_SHARED_DATA`` or ``<project>/../shared/data``; may not exist (tests then skip)."""
    env = os.environ.get("ADAMATTING_SHARED_DATA")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


def alphamatting_dev_dir() -> Path:
    return shared_data_dir() / "alphamatting_lowres_dev"


def alphamatting_test_dir() -> Path:
    return shared_data_dir() / "alphamatting_test_lowres_noGT"
