"""Work overlapped with the caller's, done on a thread of its own in the order it was given: a clip's encoder,
which compresses frame n while the renderer works on frame n + 1.

    behind = Behind(depth=2)
    behind.submit(encode, frame)      # returns at once, or waits while ``depth`` jobs are already waiting
    behind.finish()                   # waits for every job; raises the first error a job raised

The first exception a job raises is raised in the caller, by the next ``submit`` or by ``finish``; the jobs
after it are dropped. FFmpeg's encoders release the GIL, so the thread runs beside the renderer's own threads.
Memory stays bounded: at most ``depth`` jobs wait.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

_DONE = None   # the queue's last item: the thread ends


class Behind:
    """One worker thread running submitted jobs in order, at most ``depth`` waiting (bounded memory)."""

    def __init__(self, depth: int = 2, name: str = "adamat-behind"):
        _check_depth(depth)
        self._jobs: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._dropping = False                   # the caller gave up: the jobs left are not run
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the thread is still there (a job may be running)."""
        return self._thread.is_alive()

    def submit(self, job: Callable, *args) -> None:
        """``job(*args)`` on the worker thread after the jobs before it; a job's earlier failure raised here."""
        if not self.running:
            raise RuntimeError("finished: no more jobs can be given")
        self._raise()
        self._jobs.put((job, args))

    def finish(self, raise_error: bool = True) -> None:
        """Wait for every job given, end the thread, and raise the first error a job raised. ``raise_error=False``:
        the caller is failing already (its own error is the one to report), so the jobs not started are dropped.
        Interrupted while it waits (Ctrl-C), it drops them too and waits only for the job running, so that what
        the jobs write to may be closed after it."""
        self._dropping = self._dropping or not raise_error
        try:
            self._end()
        except BaseException:
            self._dropping = True
            self._end()
            raise
        if raise_error:
            self._raise()

    def _end(self) -> None:
        if self.running:
            self._jobs.put(_DONE)                # room soon: the thread takes the jobs (runs or drops them)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:             # kept: every later call fails the same way
            raise self._error

    def _run(self) -> None:
        while (item := self._jobs.get()) is not _DONE:
            if self._error is None and not self._dropping:   # after a failure the rest is dropped, the queue drained
                job, args = item
                try:
                    job(*args)
                except BaseException as e:     # handed to the caller's thread, raised there
                    self._error = e


def _check_depth(depth) -> None:
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth must be a whole number of at least 1, got {depth!r}")
