"""Errors of the runtime that the data, checkpoint and manifest modules do not already define.

Bad input data raises :class:`common.errors.DataError` (``<file>: <problem>``), a damaged or mismatching
PyTorch checkpoint :class:`adamatting.checkpoint.CheckpointError`, an ONNX artifact without a usable or
matching manifest :class:`common.manifest.ManifestError`. The two below cover what is left.
"""

from __future__ import annotations


class BackendUnavailable(ImportError):
    """A backend whose runtime package is not installed (the usual ``ImportError`` of an optional extra)."""


class ArtifactError(ValueError):
    """An artifact the runtime cannot open: unknown kind, or a file its runtime refuses to load."""
