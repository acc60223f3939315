"""Plain-text tables for the terminal."""

from __future__ import annotations


def print_table(rows: list[dict]) -> None:
    """Rows of one dict each, the first row's keys as the header; floats with 4 decimals."""
    if not rows:
        return
    keys = list(rows[0])

    def fmt(v) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    widths = {k: max(len(k), *(len(fmt(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    print("  ".join("-" * widths[k] for k in keys))
    for r in rows:
        print("  ".join(fmt(r[k]).ljust(widths[k]) for k in keys))
