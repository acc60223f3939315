"""Lookups over one ONNX graph, shared by the graph rewrites (onnx_graph) and the Q/DQ rules (qdq_rules)."""

from __future__ import annotations

STANDARD_DOMAINS = ("", "ai.onnx")


def node_attr(node, name: str, default=None):
    """The value of ``node``'s attribute ``name``, or ``default``."""
    for a in node.attribute:
        if a.name == name:
            import onnx

            return onnx.helper.get_attribute_value(a)
    return default


class GraphIndex:
    """Initializers, Constant outputs, producers, consumers and graph outputs of one ONNX graph (as it is
    when the index is made)."""

    def __init__(self, proto):
        from onnx import numpy_helper

        g = proto.graph
        self.proto = proto
        self.inits = {i.name: i for i in g.initializer}
        self.consts = {}
        for n in g.node:
            if n.op_type == "Constant" and n.domain in STANDARD_DOMAINS:
                v = node_attr(n, "value")
                if v is not None:
                    self.consts[n.output[0]] = v
        self.producer = {o: n for n in g.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in g.node:
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in g.output}
        self._np = numpy_helper

    def tensor(self, name: str):
        return self.inits.get(name) or self.consts.get(name)

    def array(self, name: str):
        t = self.tensor(name)
        return None if t is None else self._np.to_array(t)

    def dtype(self, name: str):
        t = self.tensor(name)
        return None if t is None else t.data_type
