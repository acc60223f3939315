"""runtime.overlap: jobs run in order on a thread of their own, at most ``depth`` waiting, their first error
raised in the caller."""

import threading
import time

import pytest

from runtime.overlap import Behind


def test_jobs_run_in_order_on_one_thread_of_their_own():
    done, threads = [], set()
    behind = Behind(depth=2)
    for i in range(20):
        behind.submit(lambda i=i: (done.append(i), threads.add(threading.current_thread().name)))
    behind.finish()
    assert done == list(range(20))
    assert threads == {"adamat-behind"}


def test_at_most_depth_jobs_wait_while_one_runs():
    gate, waiting = threading.Event(), []
    behind = Behind(depth=2)
    behind.submit(gate.wait)                    # taken by the thread, which blocks in it
    time.sleep(0.05)
    for i in range(2):                          # two more fit in the queue
        behind.submit(waiting.append, i)
    blocked = threading.Thread(target=behind.submit, args=(waiting.append, 2))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()                   # the fourth waits for room
    gate.set()
    blocked.join(5)
    behind.finish()
    assert waiting == [0, 1, 2]


def test_a_jobs_error_is_raised_by_the_next_submit_and_the_rest_dropped():
    done = []

    def fail():
        raise ValueError("the encoder refused it")

    behind = Behind(depth=1)
    behind.submit(fail)
    deadline = time.monotonic() + 10
    while behind._error is None and time.monotonic() < deadline:     # until the thread has recorded it
        time.sleep(0.001)
    with pytest.raises(ValueError, match="the encoder refused it"):
        behind.submit(done.append, 1)
    with pytest.raises(ValueError, match="the encoder refused it"):
        behind.finish()
    assert done == []


def test_finish_raises_a_late_error_unless_the_caller_is_failing_already():
    def fail():
        raise OSError("disk full")

    behind = Behind()
    behind.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        behind.finish()
    quiet = Behind()
    quiet.submit(fail)
    quiet.finish(raise_error=False)             # returns: the caller reports its own error


def test_no_job_after_finish_and_depth_is_checked():
    behind = Behind()
    behind.finish()
    behind.finish()                             # twice: nothing more to wait for
    with pytest.raises(RuntimeError, match="finished"):
        behind.submit(print)
    for depth in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match="depth must be a whole number"):
            Behind(depth=depth)



def test_an_interrupt_while_finish_waits_drops_the_jobs_left_and_ends_the_thread():
    """Ctrl-C while the caller waits for the jobs: those not started are dropped, the one running finishes, and
    the thread has ended when the interrupt reaches the caller (what the jobs write to may then be closed)."""
    started, release, done = threading.Event(), threading.Event(), []
    behind = Behind(depth=3)
    behind.submit(lambda: (started.set(), release.wait(10)))
    assert started.wait(10)
    for i in range(2):
        behind.submit(done.append, i)
    join = behind._thread.join

    def interrupted(*args, **kwargs):          # the first wait is interrupted; the job running ends soon after
        behind._thread.join = join
        threading.Timer(0.2, release.set).start()
        raise KeyboardInterrupt

    behind._thread.join = interrupted
    with pytest.raises(KeyboardInterrupt):
        behind.finish()
    assert not behind.running and done == []


def test_a_failing_caller_drops_the_jobs_not_started():
    started, release, done = threading.Event(), threading.Event(), []
    behind = Behind(depth=3)
    behind.submit(lambda: (started.set(), release.wait(10)))
    assert started.wait(10)
    behind.submit(done.append, 1)
    threading.Timer(0.2, release.set).start()
    behind.finish(raise_error=False)
    assert not behind.running and done == []
