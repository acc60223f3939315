"""Pieces every layer shares: the artifact manifest, the input encoding, the Composition-1k metrics, the target
registry, errors and atomic outputs. It imports nothing else of the project."""
