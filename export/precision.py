"""The precision policy (export/precision.toml): the layers every backend keeps in floating point."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from export.errors import ExportError

DEFAULT_POLICY = Path(__file__).with_name("precision.toml")


@dataclass
class PrecisionPolicy:
    names: list[str] = field(default_factory=list)      # node-name fragments kept in float
    op_types: list[str] = field(default_factory=list)   # op types kept in float
    source: str = ""
    # fragments of parts only some model configs have (the guided upsampler): kept in float where present
    names_if_present: list[str] = field(default_factory=list)

    def applicable(self, exists: Callable[[str], bool]) -> "PrecisionPolicy":
        """The policy for one model: ``names`` plus each of ``names_if_present`` for which ``exists``."""
        extra = [f for f in self.names_if_present if f not in self.names and exists(f)]
        return PrecisionPolicy(self.names + extra, list(self.op_types), self.source)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_POLICY) -> "PrecisionPolicy":
        path = Path(path)
        if not path.is_file():
            raise ExportError(f"{path}: precision policy not found")
        try:
            raw = tomllib.loads(path.read_text()).get("float", {})
        except tomllib.TOMLDecodeError as e:
            raise ExportError(f"{path}: not valid TOML: {e}") from None
        unknown = set(raw) - {"names", "op_types", "names_if_present"}
        if unknown:
            raise ExportError(f"{path}: unknown keys in [float]: {', '.join(sorted(unknown))}")
        return cls(list(raw.get("names", [])), list(raw.get("op_types", [])), str(path),
                   list(raw.get("names_if_present", [])))

    def float_nodes(self, proto) -> list[str]:
        """Names of the ONNX nodes the policy keeps in float; a fragment matching nothing is an error."""
        nodes = list(proto.graph.node)
        policy = self.applicable(lambda f: any(f in n.name for n in nodes))
        missing = [f for f in policy.names if not any(f in n.name for n in nodes)]
        if missing:
            raise ExportError(f"precision policy {policy.source or ''} names layers that do not exist in the "
                              f"graph: {', '.join(missing)}")
        return [n.name for n in nodes
                if n.op_type in policy.op_types or any(f in n.name for f in policy.names)]
