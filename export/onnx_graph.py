"""PyTorch → ONNX: the ConvLSTM unrolled, a fixed input size, named inputs/outputs, simplified, checked,
validated against PyTorch, written atomically with its manifest.

The graph takes ``image`` (N×3×H×W, 2·I − 1) and ``trimap`` (N×1×H×W, 0 / 0.5 / 1) and returns ``alpha``
(N×1×H×W) and ``trimap_prob`` (N×3×H×W). H and W are fixed at export (the phone case: 512×512); the batch
is 1, or dynamic with ``dynamic_batch``. BatchNorms the exporter cannot fuse are folded first
(adamatting.fuse), so the graph holds no BatchNormalization; validation compares against the unfolded model. Export uses the TorchScript exporter (``dynamo=False``) at
opset 17, which every runtime here takes; tracing unrolls the fixed-step propagation loop. After
simplification the decoders' sub-pixel upsamplings (1×1 Conv → DepthToSpace) become the identical 2×2
stride-2 ConvTranspose (:func:`subpixel_as_conv_transpose`; the validation against PyTorch runs on the
rewritten graph).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adamatting.checkpoint import checkpoint_config, read_checkpoint
from adamatting.config import ModelConfig
from adamatting.fuse import fold_batchnorms
from adamatting.model import AdaMatting, ExportWrapper
from calib_data.synth import Synthesizer
from common.encoding import encode_inputs
from common.manifest import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    Manifest,
    sha256_of,
    tool_versions,
    write_manifest,
)
from common.outputs import atomic_path
from export.errors import ExportError
from export.graph_index import GraphIndex, node_attr

OPSET = 17
SIMPLIFIERS = ("onnxslim", "onnxsim", "none")
# FP32 ORT vs PyTorch on the same CPU: float reassociation only. Observed max |Δα| ~1e-6.
DEFAULT_TOLERANCE = {"max_abs": 1e-3, "mean_abs": 1e-5}


@dataclass
class Sample:
    image: np.ndarray   # (1, 3, H, W) encoded
    trimap: np.ndarray  # (1, 1, H, W) encoded


def validation_samples(size: tuple[int, int], count: int = 4, seed: int = 0) -> list[Sample]:
    """Seeded composited samples (procedural foregrounds, eroded trimaps) at ``size`` for checking exports."""

    synth = Synthesizer({"procedural": 1.0}, bg_sources=("procedural",))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        c = synth.sample(size, rng, trimap_mode="validation")
        img, tri = encode_inputs(c.image, c.trimap)
        out.append(Sample(img[None], tri[None]))
    return out


def check_input_size(cfg: ModelConfig, size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of an export size; ExportError unless both are positive multiples of the config's stride."""
    h, w = (int(s) for s in size)
    if h <= 0 or w <= 0 or h % cfg.stride or w % cfg.stride:
        raise ExportError(f"input size {h}x{w} must be positive multiples of the encoder stride {cfg.stride}")
    return h, w


def check_checkpoint_size(checkpoint: str | Path, size: tuple[int, int]) -> tuple[int, int]:
    """:func:`check_input_size` of the model ``checkpoint`` holds, from its config (the model is not built):
    a bad checkpoint or size fails in a second, before any set is built or any target runs."""
    return check_input_size(checkpoint_config(read_checkpoint(checkpoint), checkpoint), size)


def trace_to_onnx(model: AdaMatting, size: tuple[int, int], dynamic_batch: bool = False, opset: int = OPSET):
    """The raw ONNX ModelProto of ``model`` at ``size`` (not yet simplified or checked)."""
    import onnx

    h, w = check_input_size(model.cfg, size)
    wrapper = ExportWrapper(fold_batchnorms(model)).eval()
    image, trimap = torch.zeros(1, 3, h, w), torch.full((1, 1, h, w), 0.5)
    dynamic_axes = {n: {0: "batch"} for n in (*INPUT_NAMES, *OUTPUT_NAMES)} if dynamic_batch else None
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(wrapper, (image, trimap), buf, input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), opset_version=opset, dynamic_axes=dynamic_axes,
                          do_constant_folding=True, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


def simplify(proto, simplifier: str = "onnxslim"):
    if simplifier not in SIMPLIFIERS:
        raise ExportError(f"unknown simplifier {simplifier!r}; use one of {', '.join(SIMPLIFIERS)}")
    if simplifier == "onnxslim":
        import onnxslim

        return onnxslim.slim(proto)
    if simplifier == "onnxsim":
        import onnxsim

        simplified, ok = onnxsim.simplify(proto)
        if not ok:
            raise ExportError("onnxsim could not validate the simplified model")
        return simplified
    return proto


def subpixel_as_conv_transpose(proto) -> int:
    """Rewrite each sub-pixel upsampling of a 1×1 convolution, Conv(1×1, C_in → 4C) → DepthToSpace(2, CRD),
    as the identical ConvTranspose(2×2, stride 2, C_in → C), in place; return how many were rewritten.

    Both compute out[c, 2y + i, 2x + j] = Σ_k W[4c + 2i + j, k] · in[k, y, x] + b[c]. The decoders' sub-pixel
    convolutions (depthwise 3×3, then this 1×1 and PixelShuffle) end in this pattern, and onnxruntime runs
    the DepthToSpace as a separate copy of the 4C-channel tensor: measured at the shipped model's shapes, the
    transposed convolution is 3× faster in FP32 and 1.6× in INT8 than convolution + DepthToSpace (OpenVINO:
    no difference). Only where the Conv is 1×1, stride 1, ungrouped and unpadded, its output feeds the
    DepthToSpace alone, and its bias is the same within each group of 4 channels (a BatchNorm after the
    shuffle, folded into the convolution, gives such a bias).
    """
    g, index = proto.graph, GraphIndex(proto)
    replace, drop = {}, set()   # DepthToSpace node → its ConvTranspose; the Convs they absorb
    for n in g.node:
        conv = _subpixel_conv(n, index)
        found = None if conv is None else _subpixel_weight_and_bias(conv, index)
        if found is not None:
            replace[id(n)] = _conv_transpose(g, n, conv, *found)
            drop.add(id(conv))
    if replace:
        _replace_nodes(g, replace, drop)
    return len(replace)


def _subpixel_conv(node, index: GraphIndex):
    """The Conv feeding ``node`` when ``node`` is a DepthToSpace(2, CRD), the Conv's output feeds it alone and
    is no graph output, its weight is an initializer and its attributes are plain (:func:`_is_plain_conv`);
    else None."""
    if node.op_type != "DepthToSpace" or node_attr(node, "blocksize") != 2 or node_attr(node, "mode", b"DCR") != b"CRD":
        return None
    conv = index.producer.get(node.input[0])
    if (conv is None or conv.op_type != "Conv" or len(index.consumers.get(conv.output[0], [])) != 1
            or conv.output[0] in index.outputs or conv.input[1] not in index.inits or not _is_plain_conv(conv)):
        return None
    return conv


def _is_plain_conv(conv) -> bool:
    """Ungrouped, unpadded, stride 1 and dilation 1."""
    return (node_attr(conv, "group", 1) == 1 and node_attr(conv, "auto_pad", b"NOTSET") == b"NOTSET"
            and not any(node_attr(conv, "pads", []))
            and all(v == 1 for v in node_attr(conv, "strides", []) + node_attr(conv, "dilations", [])))


def _subpixel_weight_and_bias(conv, index: GraphIndex):
    """(W, the bias of each group of 4 channels or None) of a 1×1 ``conv`` with 4C output channels and a bias,
    if any, that is an initializer and the same within each group of 4; else None."""
    w = index.array(conv.input[1])
    if w.ndim != 4 or w.shape[2:] != (1, 1) or w.shape[0] % 4:
        return None
    if not (len(conv.input) > 2 and conv.input[2]):
        return w, None
    if conv.input[2] not in index.inits:
        return None
    b = index.array(conv.input[2]).reshape(w.shape[0] // 4, 4)
    if not np.array_equal(b, np.repeat(b[:, :1], 4, axis=1)):
        return None
    return w, b[:, 0]


def _conv_transpose(g, node, conv, w, bias):
    """The ConvTranspose(2×2, stride 2) computing ``conv`` → DepthToSpace ``node``, named after ``node``'s
    scope; its weight (and bias) are appended to ``g``'s initializers."""
    from onnx import helper, numpy_helper

    c, cin = w.shape[0] // 4, w.shape[1]
    base = node.name.rsplit("/", 1)[0] + "/ConvTranspose"
    g.initializer.append(numpy_helper.from_array(
        np.ascontiguousarray(w[:, :, 0, 0].reshape(c, 2, 2, cin).transpose(3, 0, 1, 2)), base + ".weight"))
    inputs = [conv.input[0], base + ".weight"]
    if bias is not None:
        g.initializer.append(numpy_helper.from_array(bias, base + ".bias"))
        inputs.append(base + ".bias")
    return helper.make_node("ConvTranspose", inputs, list(node.output), name=base, kernel_shape=[2, 2], strides=[2, 2])


def _replace_nodes(g, replace: dict, drop: set) -> None:
    """Put each replacement in its node's place, remove the ``drop`` nodes, then the initializers no node uses."""
    nodes = [replace.get(id(n), n) for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(nodes)
    used = {name for n in g.node for name in n.input}
    for i in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(i)


def run_onnx(path_or_bytes, samples: list[Sample], providers=("CPUExecutionProvider",)) -> list[np.ndarray]:
    """Alpha of each sample from an ONNX model under onnxruntime."""
    from runtime.backends.onnxruntime_backend import inference_session

    sess = inference_session(path_or_bytes, providers=providers)
    return [sess.run(["alpha"], {"image": s.image, "trimap": s.trimap})[0] for s in samples]


@torch.no_grad()
def run_torch(model: AdaMatting, samples: list[Sample]) -> list[np.ndarray]:
    model = model.eval()
    return [model(torch.from_numpy(s.image), torch.from_numpy(s.trimap))["alpha"].numpy() for s in samples]


def alpha_difference(reference: list[np.ndarray], candidate: list[np.ndarray]) -> dict[str, float]:
    diffs = np.concatenate([np.abs(r - c).ravel() for r, c in zip(reference, candidate)])
    return {"max_abs": float(diffs.max()), "mean_abs": float(diffs.mean()), "samples": len(reference)}


def export_onnx(model: AdaMatting, out: str | Path, size: tuple[int, int] = (512, 512), *,
                dynamic_batch: bool = False, simplifier: str = "onnxslim", checkpoint_sha256: str = "",
                samples: list[Sample] | None = None, tolerance: dict[str, float] | None = None,
                opset: int = OPSET) -> Manifest:
    """Export, simplify, check, validate against PyTorch and write ``out`` + its manifest atomically.

    Raises ExportError (both numbers in the message) when max or mean |Δα| exceeds ``tolerance``;
    then nothing is written under ``out``.
    """
    import onnx

    out = Path(out)
    tolerance = {**DEFAULT_TOLERANCE, **(tolerance or {})}
    size = check_input_size(model.cfg, size)
    model = model.eval()
    proto = simplify(trace_to_onnx(model, size, dynamic_batch, opset), simplifier)
    subpixel_as_conv_transpose(proto)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"onnx.checker rejected the exported graph: {e}") from None
    samples = samples if samples is not None else validation_samples(size)
    diff = alpha_difference(run_torch(model, samples), run_onnx(proto.SerializeToString(), samples))
    if diff["max_abs"] > tolerance["max_abs"] or diff["mean_abs"] > tolerance["mean_abs"]:
        raise ExportError(f"ONNX alpha differs from PyTorch: max |Δα| {diff['max_abs']:.3g} "
                          f"(tolerance {tolerance['max_abs']:g}), mean |Δα| {diff['mean_abs']:.3g} "
                          f"(tolerance {tolerance['mean_abs']:g}); {out} not written")
    manifest = Manifest(backend="onnxruntime", precision="fp32", model_config=model.cfg.to_dict(),
                        input_size=list(size), batch="dynamic" if dynamic_batch else 1,
                        pu_steps=model.cfg.pu_steps, checkpoint_sha256=checkpoint_sha256,
                        tools=tool_versions("onnx", "onnxruntime", simplifier if simplifier != "none" else "onnx"),
                        validation={"reference": "pytorch fp32", **diff, "tolerance": tolerance},
                        extra={"opset": opset, "simplifier": simplifier, "nodes": len(proto.graph.node)})
    save_onnx(proto, out, manifest)
    return manifest


def save_onnx(proto, out: Path, manifest: Manifest) -> Path:
    """Embed the manifest facts in ``metadata_props``, write the model atomically, then its manifest."""
    import onnx

    del proto.metadata_props[:]
    for k, v in manifest.metadata_props().items():
        proto.metadata_props.add(key=k, value=v)
    proto.doc_string = "AdaMatting (Cai et al., ICCV 2019) for portrait matting; see the adamatting_manifest metadata."
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
        if not onnx.load(str(tmp), load_external_data=False).graph.node:
            raise ExportError(f"{out}: wrote an empty graph")
    write_manifest(out, manifest)
    return out


def model_sha(path: str | Path) -> str:
    return sha256_of(path)
