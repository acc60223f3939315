"""Composited matting data: compositing, trimaps, procedural foregrounds, dataset readers and cached sets."""

from calib_data.errors import DataError

__all__ = ["DataError"]
