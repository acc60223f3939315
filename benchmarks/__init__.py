"""Metrics (Composition-1k definitions), quality and latency benchmarks."""
