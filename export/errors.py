"""Errors of the export targets (kept free of heavy imports so the CLI can catch them cheaply)."""


class ExportError(RuntimeError):
    """An export that failed a check or cannot be made; nothing was written under the final name."""
