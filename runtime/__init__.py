"""The on-device pipeline: matting on any runtime (:class:`Matter`) and the portrait bokeh renderer.

- :mod:`runtime.matter`: ``Matter.from_artifact(path).predict(photo, trimap=None, mask=None, band=16)``;
- :mod:`runtime.backends`: the backend protocol, and opening an artifact with the runtime the registry names;
- :mod:`runtime.preprocess`, :mod:`runtime.upsample`: inputs in, alpha out at full resolution;
- :mod:`runtime.foreground`, :mod:`runtime.lens_blur`, :mod:`runtime.bokeh`: the renderer;
- :mod:`runtime.pipeline`: ``bokeh_file(photo, out, mask_path=...)``, file in, file out, written atomically;
  :mod:`adamat.commands.bokeh` is the ``adamat bokeh`` command;
- :mod:`runtime.person_mask`: the person segmenter (the mask when the user has none);
  :mod:`runtime.photo_files`: HEIC/HEIF in, the output with the photo's ICC profile and EXIF;
- :mod:`runtime.artifacts`: the artifacts of a folder and what runs each of them here.

Importing ``runtime`` is cheap: ``Matter`` and ``MattingResult``
are imported on first use (PEP 562), and a backend's runtime (PyTorch, onnxruntime) only when an
artifact needs it.
"""

import importlib

from runtime.errors import ArtifactError, BackendUnavailable

_LAZY = {"Matter": "runtime.matter", "MattingResult": "runtime.matter"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")


__all__ = ["ArtifactError", "BackendUnavailable", "Matter", "MattingResult"]
