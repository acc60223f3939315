"""How much the command line says: quiet by default, everything with ``adamat -v``.

Libraries the pipeline uses announce routine work at INFO level: NNCF a line per quantization step
(``INFO:nncf:...``) during exports, coremltools its conversion passes, OpenCV its plugins, LiteRT its CPU
delegate (on the native stderr: :mod:`runtime.person_mask` holds that back unless its logger is at INFO).
Warnings and errors always show; progress bars are the commands' own.
"""

from __future__ import annotations

import logging
import os


def set_verbosity(verbose: bool) -> None:
    """Quiet (WARNING and above) unless ``verbose`` (INFO and above, from every library). Call before the
    command's modules are imported: OpenCV reads its log level when it loads."""
    if verbose:
        logging.disable(logging.NOTSET)
        logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
        logging.getLogger().setLevel(logging.INFO)
    else:
        # logging.disable holds whatever level a library sets on its own logger when it is imported later
        # (NNCF sets INFO on "nncf" with a handler of its own).
        logging.disable(logging.INFO)
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
