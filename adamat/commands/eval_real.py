"""``adamat eval-real``: the model and closed-form matting on the held-back real images, both trimaps."""

from __future__ import annotations

from pathlib import Path

from adamatting.config import DEFAULT_WEIGHTS
from common.arguments import out_folder, path_text
from evaluation.quality import run_quality


def add_arguments(e) -> None:
    e.add_argument("--checkpoint", type=path_text, default=str(DEFAULT_WEIGHTS))
    e.add_argument("--out", type=out_folder, default="out/quality")
    e.add_argument("--no-closed-form", action="store_true")
    e.set_defaults(func=run)


def run(args) -> int:
    run_quality(Path(args.checkpoint), Path(args.out), with_closed_form=not args.no_closed_form)
    return 0
