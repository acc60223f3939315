"""A progress bar over the stages of a long job (count, elapsed, ETA), with the job's log lines printed above it."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from tqdm import tqdm


class Stages:
    """``with stages.stage("exports"): ...`` for each of ``names``, in order; ``stages.log`` prints a line."""

    def __init__(self, names: list[str], desc: str):
        self.bar = tqdm(total=len(names), desc=desc, unit="stage", file=sys.stderr, leave=False,
                        bar_format="{desc}: {n_fmt}/{total_fmt} stages [{elapsed}<{remaining}] {postfix}")

    def log(self, message: str) -> None:
        tqdm.write(message, file=sys.stdout)

    @contextmanager
    def stage(self, name: str):
        self.bar.set_postfix_str(name)
        try:
            yield
        finally:
            self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
