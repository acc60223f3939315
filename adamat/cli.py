"""``adamat``: the project's one command-line entry. ``adamat <command> --help`` for each command.

Each command is a module of :mod:`adamat.commands` with ``add_arguments(parser)``, which sets the parser's
``func``. Only the module of the command being run is imported, with the layers it uses: ``adamat bokeh`` with
an exported model never loads torch or an exporter, and ``adamat --help`` starts at once.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import os
import signal
import sys
from contextlib import contextmanager

from adamat.progress import plain_progress_off_terminal
from adamat.verbosity import plain_warnings, set_verbosity
from common.errors import DataError, error_text
from common.outputs import folders_made, remove_made_folders
from export.errors import ExportError
from runtime.errors import BackendUnavailable

COMMANDS: dict[str, tuple[str, str]] = {   # name: (module of adamat.commands, one line of help)
    "calib": ("calib", "composited calibration/validation sets"),
    "demo": ("demo", "the main job on the embedded defaults: sets, figures, every export possible here, accuracy "
                     "gates, latency, reports/<timestamp>/report.md"),
    "train": ("train", "train (or resume) a model; a run folder holds checkpoints, log.csv, curves.png"),
    "eval": ("eval", "the model beside the raw mask, a guided filter and closed-form matting on any folder of photos "
                     "with ground truth (mask or trimap protocol)"),
    "eval-real": ("eval_real", "model vs closed-form matting on the held-back real images"),
    "export": ("export", "export the model to deployment formats"),
    "gate": ("gate", "accuracy of every artifact vs PyTorch FP32, checked against benchmarks/gates.toml (exit 1 "
                     "listing each violated gate)"),
    "ship": ("ship", "write a run's best checkpoint, weights only, for shipping"),
    "train-refiner": ("train_refiner", "train the band refiner on a network's alphas, score it k-fold, export its ONNX "
                                       "graph to the runtime"),
    "bokeh": ("bokeh", "portrait bokeh: blur a photo's background through the model's alpha"),
    "flops": ("flops", "MACs and parameters of a model config, counted by torch.utils.flop_counter"),
}


class Parser(argparse.ArgumentParser):
    """argparse's parser whose bad-argument message is one line, as every other bad input's is (argparse's own
    prints the whole usage first): ``error: argument --band: invalid int value: 'nan' (see adamat bokeh --help)``,
    exit 2. ``--help`` shows the usage as before."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with ``only``, the arguments of that command alone (the others listed)."""
    p = Parser(prog="adamat", description="AdaMatting edge pipeline: data, model, export, benchmarks.")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show the libraries' INFO logs (NNCF, coremltools, OpenCV, LiteRT); quiet by default")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (module, help_line) in COMMANDS.items():
        parser = sub.add_parser(name, help=help_line, description=help_line)
        if only is None or only == name:
            importlib.import_module(f"adamat.commands.{module}").add_arguments(parser)
    return p


def _command_in(argv: list[str]) -> str:
    return next((a for a in argv if not a.startswith("-")), "")


def _verbose_in(argv: list[str]) -> bool:
    """``-v`` / ``--verbose`` before the command (a global flag)."""
    command = _command_in(argv)
    return bool({"-v", "--verbose"} & set(argv[:argv.index(command)] if command else argv))


def process_defaults(command: str = "") -> None:
    """Settings of the process that must precede the libraries' imports. numba (pymatting's closed-form
    matting and foreground estimation) picks the TBB thread pool when OpenVINO has loaded its own TBB first,
    and TBB then warns on every fork from a non-main thread (NNCF's workers, during an export after an
    evaluation); its work-queue pool is fork-safe and as fast for pymatting's loops. ``command`` "bokeh" (photos,
    folders and clips, where it was measured) also reuses large blocks (:func:`reuse_large_blocks`)."""
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:    # numpy read the user's choice as it was imported
        _no_huge_page_stalls()
    if command == "bokeh" and not any(name in os.environ for name in MALLOC_VARIABLES):   # else glibc reads the
        reuse_large_blocks()                                                               # user's as it starts


LARGE_BLOCK = 256 << 20    # bytes: a 48-megapixel photo's float plane (192 MB) and less come from the reused heap
MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # glibc's mallopt parameters (malloc.h)


def reuse_large_blocks(size: int = LARGE_BLOCK) -> bool:
    """glibc maps every array of more than 32 MB afresh and unmaps it when it is freed, so each 12-megapixel float
    plane (48 MB) is first written through 12,000 page faults: 18 ms for a fill that takes 1.3 ms in memory the
    process touched before. With blocks up to ``size`` taken from the heap and up to ``size`` of it kept when
    freed, the next photo's planes, and the next stage's, reuse those pages: ``adamat bokeh`` at 12 MP computes
    6–33 ms faster fresh and 15–33 ms warm, decodes 35 ms faster warm, for up to 21 MiB more peak memory
    (docs/PHONE_PATH.md). True where it was set; False on another C library, or a glibc that refuses a threshold
    over 32 MB (nothing changed)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt            # the process's own C library
    except (OSError, AttributeError, TypeError):       # not glibc (musl, macOS, Windows): its own allocator
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, size)) and bool(mallopt(_M_TRIM_THRESHOLD, size))


def _no_huge_page_stalls() -> None:
    """numpy asks the kernel for transparent huge pages on every array of 4 MB or more. Where the kernel then
    compacts memory to find them as the array is first written (defrag "madvise", the default of many Linux
    distributions), writing a 12-megapixel plane can stall for a tenth of a second, at random: ``adamat bokeh``
    on a 12-megapixel photo took 0.67–1.03 s of compute with them and 0.71–0.74 s without
    (docs/PHONE_PATH.md). The command's arrays live for one stage of one photo: no huge pages for them."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            importlib.import_module(module)._set_madvise_hugepage(False)
            return
        except (ImportError, AttributeError):
            continue


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, as Ctrl-C raises KeyboardInterrupt: every ``finally`` and
    ``with`` on the way out runs, so temporary files and folders are removed (``timeout``, a cancelled CI job
    and a stopped container send SIGTERM)."""


_HANDLERS: list = []   # the SIGTERM handlers sigterm_as_interrupt installed, the one in force last


def _default_sigterm_in_child() -> None:
    """In a forked child, SIGTERM's default action back where sigterm_as_interrupt's handler is in force: a
    Python handler runs only between bytecodes, so a child blocked in C (OpenVINO's converter forks one that
    waits on a DNS lookup) would never end when its parent terminates it."""
    if _HANDLERS and signal.getsignal(signal.SIGTERM) is _HANDLERS[-1]:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_default_sigterm_in_child)


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises :class:`Terminated` in this process while the block runs (the main thread only). A
    process forked from it (a pool's worker) that receives SIGTERM ends as it would have by default, even where
    it is blocked in C code (:func:`_default_sigterm_in_child`)."""
    if sys.platform == "win32" or signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        yield   # someone chose a handler already (an embedding program)
        return
    pid = os.getpid()

    def handler(signum, frame):
        if os.getpid() != pid:   # a child forked by C code, which skips the fork hook: the default action
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:   # not the main thread
        yield
        return
    _HANDLERS.append(handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _HANDLERS.remove(handler)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    process_defaults(_command_in(argv))
    verbose = _verbose_in(argv)
    plain_progress_off_terminal()   # progress bars in a log or a pipe: plain lines, not redraws
    with plain_warnings(verbose):   # a library's warning at import time too
        set_verbosity(verbose)   # before the command's modules load
        try:
            parser = build_parser(only=_command_in(argv))   # imports the command's modules: torch, a second or two
        except KeyboardInterrupt:   # Ctrl-C there: nothing started, nothing written
            print("interrupted", file=sys.stderr)
            return 128 + signal.SIGINT
        args = parser.parse_args(argv)
        args.argv = argv   # what a command that starts other processes hands them (adamat train --nproc)
        with sigterm_as_interrupt():
            return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The command, its bad input as one line; a run that fails removes the output folders it made and left
    empty (``bokeh -o new/dirs/out.jpg`` on a corrupt photo leaves no ``new/``)."""
    mark, code = folders_made(), 1
    try:
        code = _run_command(args)
        return code
    finally:
        if code != 0:
            remove_made_folders(mark)


def _run_command(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except (DataError, ValueError, FileNotFoundError, ExportError, BackendUnavailable) as e:   # bad input: one line
        print(error_text(str(e)), file=sys.stderr)
        return 2
    except OSError as e:   # an output path that cannot be written, a full disk: one line, not a traceback
        print(error_text(f"{str(e.filename) + ': ' if e.filename else ''}{e.strerror or e}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:   # Ctrl-C or SIGTERM: what was being written is gone; 128 + the signal
        terminated = isinstance(e, Terminated)
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
