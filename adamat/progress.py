"""Progress bars: the stages of a long job (:class:`Stages`), and every tqdm bar of the process as plain lines
where its stream is not a terminal (:func:`plain_progress_off_terminal`).

On a terminal a bar redraws itself in place. Written to a file or a pipe (CI, ``make demo > log``, a training
log) each redraw would be one more carriage-return update: two minutes of training wrote 29 KB of them. There
every bar, the project's and the libraries' (coremltools' passes, the data builders), prints instead one plain
line when it starts, each time it has gone another :data:`PLAIN_PERCENT` % or :data:`PLAIN_SECONDS` s since its
last line, and when it ends: ``eval:  40% 4/10 [00:12<00:18, 3.00s/image]``.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

from tqdm import tqdm

PLAIN_PERCENT = 10     # a plain line each time a bar has gone this much further ...
PLAIN_SECONDS = 30.0   # ... or this long after its last line


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


def plain_progress_off_terminal() -> None:
    """Make every tqdm bar whose stream is not a terminal print plain lines (the module's docstring) instead
    of redrawing itself; bars on a terminal are unchanged. For the process (the command line's entry calls it);
    calling it again does nothing."""
    from tqdm import std

    cls = std.tqdm
    if getattr(cls, "_plain_off_terminal", False):
        return
    display, clear, close = cls.display, cls.clear, cls.close

    def plain_display(self, msg=None, pos=None):
        if not _plain(self):
            return display(self, msg, pos)
        if msg is not None:   # '' clears a bar; other text is printed as it is
            if msg.strip():
                _print_line(self, msg.strip())
            return True
        last = self.__dict__.get("_plain_last")
        now = time.monotonic()
        if (last is None or now - last[0] >= PLAIN_SECONDS or self.n < last[1]
                or _step(self, self.n) > _step(self, last[1])):
            _print_state(self, now)
        return True

    def plain_clear(self, nolock=False):
        if not self.disable and _plain(self):
            return   # nothing drawn in place, nothing to clear
        return clear(self, nolock)

    def plain_close(self):
        if getattr(self, "disable", True) or not _plain(self):
            return close(self)
        last = self.__dict__.get("_plain_last")
        if last is not None and last[1] != self.n:   # where it ended, unless that is its last line already
            with self._lock:
                _print_state(self, time.monotonic())
        self.disable = True
        self._decr_instances(self)

    cls.display, cls.clear, cls.close = plain_display, plain_clear, plain_close
    cls._plain_off_terminal = True


def _plain(bar) -> bool:
    """Whether ``bar`` writes to something other than a terminal (decided once, at its first display)."""
    plain = bar.__dict__.get("_plain_lines")
    if plain is None:
        isatty = getattr(bar.fp, "isatty", None)
        try:
            plain = not (isatty is not None and isatty())
        except ValueError:   # a closed stream
            plain = True
        bar._plain_lines = plain
    return plain


def _step(bar, n: float) -> int:
    return int(100 * n / bar.total // PLAIN_PERCENT) if bar.total else 0


def _print_state(bar, now: float) -> None:
    meter = bar.format_dict
    if meter["bar_format"] is None:
        meter["ncols"] = 0   # tqdm's own layout without the bar: "desc:  40% 4/10 [00:12<00:18, 3.00s/image]"
    _print_line(bar, bar.format_meter(**meter).strip())
    bar._plain_last = (now, bar.n)


def _print_line(bar, text: str) -> None:
    try:
        bar.fp.write(text + "\n")
        getattr(bar.fp, "flush", lambda: None)()
    except ValueError:   # a closed stream
        pass
