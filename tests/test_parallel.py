"""runtime.parallel: strips on OpenCV's number of threads, in order, the same result on any number of them."""

import threading

import cv2
import numpy as np
import pytest

from runtime.bokeh import render_bokeh
from runtime.parallel import MAX_WORKERS, each, strips, workers


@pytest.fixture
def opencv_threads():
    """Set OpenCV's number of threads for one test, restored afterwards."""
    before = cv2.getNumThreads()
    yield cv2.setNumThreads
    cv2.setNumThreads(before)


def test_strips_cover_the_rows_once_in_order():
    assert strips(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert strips(8, 4) == [slice(0, 4), slice(4, 8)]
    assert strips(3, 64) == [slice(0, 3)]
    assert strips(0, 4) == []
    with pytest.raises(ValueError, match="at least one row"):
        strips(10, 0)


def test_each_returns_the_results_in_the_items_order_and_raises_the_first_error(opencv_threads):
    opencv_threads(2)
    assert each(lambda x: x * x, range(50)) == [x * x for x in range(50)]

    def fail_on_7(x):
        if x == 7:
            raise KeyError(x)
        return x

    with pytest.raises(KeyError):
        each(fail_on_7, range(20))


def test_each_follows_opencvs_number_of_threads(opencv_threads):
    """One OpenCV thread: the items run in the calling thread, in order. Two: on two threads."""
    opencv_threads(1)
    assert workers() == 1
    seen = []
    each(lambda x: seen.append((x, threading.get_ident())), range(5))
    assert seen == [(x, threading.get_ident()) for x in range(5)]

    opencv_threads(2)
    assert workers() == 2
    opencv_threads(4 * MAX_WORKERS)                     # a many-core machine: at most MAX_WORKERS threads
    assert workers() == MAX_WORKERS
    opencv_threads(2)
    barrier = threading.Barrier(2, timeout=10)          # passes only when two items run at once
    names = each(lambda _: (barrier.wait(), threading.current_thread().name)[1], range(2))
    assert len(set(names)) == 2 and threading.current_thread().name not in names


def test_the_bokeh_is_the_same_on_one_thread_and_on_two(opencv_threads, monkeypatch):
    """The renderer's strips write disjoint rows, its chunks of the band disjoint pixels: bit-identical whatever
    the number of threads (the band in chunks of 997 pixels: several of them)."""
    monkeypatch.setattr("runtime.foreground.PIXELS_PER_PASS", 997)
    monkeypatch.setattr("runtime.bokeh.PIXELS_PER_PASS", 997)
    rng = np.random.default_rng(5)
    photo = rng.integers(0, 256, (700, 530, 3), dtype=np.uint8)
    photo[:80] = 250                                      # highlights: the blur's boost runs on strips too
    alpha = np.zeros((700, 530), np.float32)
    alpha[300:, 100:430] = 1.0
    alpha[290:300, 100:430] = rng.random((10, 330))
    assert ((alpha > 0) & (alpha < 1)).sum() > 3 * 997
    outs = []
    for n in (1, 2):
        opencv_threads(n)
        outs.append(render_bokeh(photo, alpha, 0.04)[0])
    assert np.array_equal(outs[0], outs[1])


def test_each_inside_each_runs_inline(opencv_threads):
    """A strip that spreads its own work (the guided filter's tiles fit their coefficients with each) runs that
    work in its own thread: no wait on a pool its caller already fills."""
    opencv_threads(2)
    inner = lambda x: each(lambda y: (x, y, threading.current_thread().name), range(3))
    for results in each(inner, range(4)):
        assert len({name for _, _, name in results}) == 1
        assert [(x, y) for x, y, _ in results] == [(results[0][0], y) for y in range(3)]


def test_a_forked_child_runs_strips_on_threads_of_its_own(opencv_threads):
    """A child forked after the parent's threads started (a data loader's worker) has none of them: each must
    not wait on the parent's pool there for ever."""
    import multiprocessing

    opencv_threads(2)
    assert each(lambda x: x + 1, range(4)) == [1, 2, 3, 4]          # the parent's pool is running
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        result = pool.apply_async(_squares_on_threads)
        assert result.get(timeout=60) == [0, 1, 4, 9]


def _squares_on_threads():
    return each(lambda x: x * x, range(4))
