"""Checkpoints: one self-describing file (config + weights + training state), written atomically.

A checkpoint holds ``format``, ``config`` (ModelConfig as a dict), ``model`` (state dict) and, for
training checkpoints, ``loss``, ``optimizer``, ``step`` and friends. Loading checks the file and the
keys and raises :class:`CheckpointError` naming the file and what does not match.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from adamatting.config import ModelConfig
from adamatting.model import AdaMatting, PropagationUnit, build_model
from common.outputs import atomic_path

FORMAT = "adamatting-checkpoint/1"


class CheckpointError(ValueError):
    pass


def save_checkpoint(path: str | Path, model: AdaMatting, half: bool = False, **extra) -> Path:
    """Write {format, config, model, **extra} atomically. ``half`` stores float weights as fp16 (shipping)."""
    state = model.state_dict()
    if half:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    payload = {"format": FORMAT, "config": model.cfg.to_dict(), "model": state, **extra}
    buf = io.BytesIO()
    torch.save(payload, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return Path(path)


def read_checkpoint(path: str | Path) -> dict:
    if not str(path).strip():                 # Path("") is the current folder
        raise CheckpointError("no checkpoint named: the path is empty")
    path = Path(path)
    if not path.is_file():
        problem = ("is a directory, not a checkpoint" if path.is_dir() else "checkpoint not found"
                   if not path.exists() else "not a regular file (a device or a pipe), not a checkpoint")
        raise CheckpointError(f"{path}: {problem}")
    with path.open("rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":   # torch.save writes a zip archive
        kind = {".onnx": "an ONNX model", ".xml": "an OpenVINO IR", ".mlpackage": "a CoreML package",
                ".engine": "a TensorRT engine"}.get(path.suffix.lower(), "empty" if not head else "not a zip archive")
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({kind}); pass an adamat checkpoint such as "
                              f"weights/mobile.pt")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated/corrupt zips, with long multi-line advice
        first = str(e).strip().splitlines()[0].split(". ")[0] if str(e).strip() else ""
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated): {type(e).__name__}"
                              + (f": {first[:200]}" if first else "")) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an AdaMatting checkpoint (expected format {FORMAT!r})")
    return payload


def checkpoint_config(payload: dict, path: str | Path) -> ModelConfig:
    """The model config of a checkpoint's ``payload`` (:func:`read_checkpoint`); CheckpointError naming ``path``
    where it does not read."""
    try:
        return ModelConfig.from_dict(payload["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad model config in checkpoint: {e}") from None


def load_model(path: str | Path, expect: ModelConfig | None = None) -> tuple[AdaMatting, dict]:
    """Build the model the checkpoint describes and load its weights (float32, eval mode).

    ``expect``: refuse a checkpoint whose config differs, naming the differing fields.
    """
    payload = read_checkpoint(path)         # before Path(), which reads "" as the current folder
    path = Path(path)
    cfg = checkpoint_config(payload, path)
    if expect is not None and cfg != expect:
        diff = [f"{k}: checkpoint {a} vs expected {b}" for k, a, b in cfg.differences(expect)]
        raise CheckpointError(f"{path}: checkpoint is for another model config ({'; '.join(diff)})")
    model = build_model(cfg)
    load_state(model, payload.get("model"), path)
    return model.eval(), payload


# The propagation unit's weights over its input channels: (key, the dimension that indexes them).
_PU_INPUT_WEIGHTS = (("propagation.embed.weight", 1), ("propagation.cell.gates.0.weight", 0),   # depthwise
                     ("propagation.cell.gates.1.weight", 1), ("propagation.cell.gates.weight", 1))  # or plain


def upgrade_state(model: AdaMatting, state: dict) -> tuple[dict, list[str]]:
    """Weights of checkpoints from before the propagation unit took the input trimap (one input channel
    fewer) made to fit: zero weights for that channel, which leaves the network's function unchanged.
    Returns the state (a new dict; ``state`` itself is not modified) and the keys that were padded."""
    own, at, changed = model.state_dict(), PropagationUnit.TRIMAP_CHANNEL, []
    state = dict(state)
    for key, dim in _PU_INPUT_WEIGHTS:
        if key not in state or key not in own:
            continue
        old, want = state[key], own[key]
        rest = lambda shape: shape[:dim] + shape[dim + 1:]  # noqa: E731
        if old.shape[dim] + 1 == want.shape[dim] and rest(old.shape) == rest(want.shape):
            zero = torch.zeros_like(old.narrow(dim, 0, 1))
            state[key] = torch.cat([old.narrow(dim, 0, at), zero, old.narrow(dim, at, old.shape[dim] - at)], dim)
            changed.append(key)
    return state, changed


def load_state(model: AdaMatting, state: dict, path: str | Path = "<state>",
               new_modules: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """Load weights strictly (after :func:`upgrade_state`). ``new_modules``: key prefixes (e.g.
    ``("refiner.",)``) of a part that the state or the model may lack — a checkpoint of the model without
    that part starting a new run of one with it, or the reverse. The model's own tensors the state lacks keep
    their initialisation; the state's tensors the model lacks are dropped. Returns (kept, dropped) keys.
    CheckpointError naming ``path`` for a state that is not names mapped to tensors, or that does not fit."""
    if not (isinstance(state, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                            for k, v in state.items())):
        raise CheckpointError(f"{path}: its weights ('model') are not a mapping of names to tensors")
    state, _ = upgrade_state(model, state)
    own = model.state_dict()
    optional = tuple(new_modules)
    kept = sorted(k for k in set(own) - set(state) if k.startswith(optional)) if optional else []
    dropped = sorted(k for k in set(state) - set(own) if k.startswith(optional)) if optional else []
    state = {**{k: v for k, v in state.items() if k not in dropped}, **{k: own[k] for k in kept}}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    shapes += [f"{k} {state[k].dtype} vs {own[k].dtype}" for k in own          # int64 weights for float ones
               if k in state and state[k].is_floating_point() != own[k].is_floating_point()]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                parts.append(f"{label}: {', '.join(items[:6])}{' …' if len(items) > 6 else ''} ({len(items)})")
        raise CheckpointError(f"{path}: weights do not fit the model config {model.cfg.name!r}: " + "; ".join(parts))
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: weights contain NaN or inf ({', '.join(bad[:6])}{' …' if len(bad) > 6 else ''}"
                              f"; {len(bad)} tensors): a diverged or damaged checkpoint")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return kept, dropped


def average_checkpoints(paths: list[str | Path]) -> tuple[AdaMatting, list[dict]]:
    """The uniform average of the weights and BatchNorm statistics of checkpoints of one model config
    (snapshots of one run, late in its schedule: stochastic weight averaging), and their payloads."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    model, first = load_model(paths[0])
    payloads, total = [first], {k: v.double() for k, v in model.state_dict().items() if v.is_floating_point()}
    for path in paths[1:]:
        other, payload = load_model(path, expect=model.cfg)
        for k, v in other.state_dict().items():
            if k in total:
                total[k] += v.double()
        payloads.append(payload)
    model.load_state_dict({**model.state_dict(), **{k: (v / len(paths)).float() for k, v in total.items()}})
    return model, payloads


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
