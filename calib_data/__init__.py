"""Composited matting data: compositing, trimaps, procedural foregrounds, dataset readers and cached sets."""

from common.errors import DataError

__all__ = ["DataError"]
