"""The precision policy (export/precision.toml): the layers every backend keeps in floating point.

The policy is written once, as module paths of the exported network (``model.encoder.stem``), and translated
here for each kind of graph: ONNX node names (:meth:`PrecisionPolicy.float_nodes`, for onnxruntime and
TensorRT), OpenVINO operations (:meth:`PrecisionPolicy.openvino_scope`, an NNCF ignored scope), the
PyTorch modules a CoreML conversion sees (:meth:`PrecisionPolicy.torch_modules`) and the nodes of a
``torch.export`` graph a PT2E quantizer annotates (:meth:`PrecisionPolicy.pt2e_filter`, ExecuTorch). ONNX and OpenVINO name a
node after the module path it came from (``/model/encoder/stem/stem.0/Conv``). In every graph a module of the
policy that matches nothing is an error: a renamed layer must not silently become quantized.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import tomllib

from common.targets import RUNTIMES
from export.errors import ExportError

DEFAULT_POLICY = Path(__file__).with_name("precision.toml")


def onnx_fragment(module_path: str) -> str:
    """``model.encoder.stem`` → ``/model/encoder/stem/``: the part every ONNX (and OpenVINO) node name made from
    that module contains."""
    return "/" + module_path.strip(".").replace(".", "/") + "/"


POLICY_KEYS = {"modules", "op_types", "modules_if_present"}   # a [float] or [float.<runtime>] table's keys


def _check_keys(table: dict, path: Path, name: str, allowed: set[str]) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise ExportError(f"{path}: unknown keys in {name}: {', '.join(sorted(unknown))}")


@dataclass
class PrecisionPolicy:
    modules: list[str] = field(default_factory=list)    # module paths kept in float
    op_types: list[str] = field(default_factory=list)   # op types kept in float
    source: str = ""
    # modules only some model configs have (the guided upsampler): kept in float where present
    modules_if_present: list[str] = field(default_factory=list)

    def applicable(self, exists: Callable[[str], bool]) -> "PrecisionPolicy":
        """The policy for one model: ``modules`` plus each of ``modules_if_present`` for which ``exists``."""
        extra = [m for m in self.modules_if_present if m not in self.modules and exists(m)]
        return PrecisionPolicy(self.modules + extra, list(self.op_types), self.source)

    def without(self, modules: tuple[str, ...] = (), op_types: tuple[str, ...] = ()) -> "PrecisionPolicy":
        """This policy with ``modules`` (required or where present) and ``op_types`` quantized after all (what
        keeping them float buys is then measurable)."""
        return PrecisionPolicy([m for m in self.modules if m not in modules],
                               [t for t in self.op_types if t not in op_types], self.source,
                               [m for m in self.modules_if_present if m not in modules])

    @classmethod
    def load(cls, path: str | Path = DEFAULT_POLICY, runtime: str | None = None) -> "PrecisionPolicy":
        """The policy of ``path``: its ``[float]`` entries, plus those of ``[float.<runtime>]`` (kept float
        for one runtime's speed) when ``runtime`` is given."""
        if runtime is not None and runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; one of {', '.join(sorted(RUNTIMES))}")
        path = Path(path)
        if not path.is_file():
            raise ExportError(f"{path}: precision policy not found")
        try:
            raw = tomllib.loads(path.read_text()).get("float", {})
        except tomllib.TOMLDecodeError as e:
            raise ExportError(f"{path}: not valid TOML: {e}") from None
        _check_keys(raw, path, "[float]", POLICY_KEYS | RUNTIMES.keys())   # a table per registry runtime
        extra = raw.get(runtime, {}) if runtime is not None else {}
        _check_keys(extra, path, f"[float.{runtime}]", POLICY_KEYS)
        return cls([*raw.get("modules", []), *extra.get("modules", [])],
                   [*raw.get("op_types", []), *extra.get("op_types", [])], str(path),
                   [*raw.get("modules_if_present", []), *extra.get("modules_if_present", [])])

    def _in_graph(self, names: list[str], graph: str) -> "PrecisionPolicy":
        """The applicable policy for a graph whose node names are ``names``; ExportError for a missing module."""
        def present(m: str) -> bool:
            return any(onnx_fragment(m) in n for n in names)

        policy = self.applicable(present)
        missing = [onnx_fragment(m) for m in policy.modules if not present(m)]
        if missing:
            raise ExportError(f"precision policy {self.source or ''} names layers that do not exist in the "
                              f"{graph}: {', '.join(missing)}")
        return policy

    def float_nodes(self, proto) -> list[str]:
        """Names of the ONNX nodes the policy keeps in float."""
        nodes = list(proto.graph.node)
        policy = self._in_graph([n.name for n in nodes], "graph")
        fragments = [onnx_fragment(m) for m in policy.modules]
        return [n.name for n in nodes if n.op_type in policy.op_types or any(f in n.name for f in fragments)]

    def openvino_scope(self, ov_model):
        """The NNCF ignored scope of an OpenVINO model converted from the ONNX export."""
        import nncf  # optional: the [export] extra

        policy = self._in_graph([op.get_friendly_name() for op in ov_model.get_ops()], "OpenVINO model")
        return nncf.IgnoredScope(patterns=[re.escape(onnx_fragment(m)) + ".*" for m in policy.modules],
                                 types=list(policy.op_types), validate=False)

    def torch_modules(self, module) -> list[str]:
        """The policy's module paths that ``module`` (the inference wrapper) has."""
        names = {n for n, _ in module.named_modules() if n}
        policy = self.applicable(lambda m: m in names)
        missing = [m for m in policy.modules if m not in names]
        if missing:
            raise ExportError(f"precision policy {self.source} names {', '.join(map(repr, missing))}, which is no "
                              f"module of the model")
        return list(policy.modules)

    def pt2e_filter(self, graph_module) -> Callable:
        """A PT2E quantizer's node filter for a ``torch.export`` graph of the inference wrapper: False for the
        nodes of the policy's modules (the module path ``torch.export`` records in ``nn_module_stack``), True
        for the rest. ``op_types`` are ONNX names: they have no meaning in an ATen graph and are not applied."""
        def paths(node) -> list[str]:
            return [path for path, _ in node.meta.get("nn_module_stack", {}).values()]

        names = {p for n in graph_module.graph.nodes for p in paths(n)}
        policy = self.applicable(lambda m: m in names)
        missing = [m for m in policy.modules if m not in names]
        if missing:
            raise ExportError(f"precision policy {self.source} names {', '.join(map(repr, missing))}, which is no "
                              f"module of the exported graph")
        prefixes = tuple(m + "." for m in policy.modules)
        kept = set(policy.modules)
        return lambda node: not any(p in kept or p.startswith(prefixes) for p in paths(node))
