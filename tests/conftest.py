"""Shared fixtures."""

import numpy as np
import pytest
import torch


def disc_photo(h, w, seed=0):
    """A bright disc with a soft rim on a noisy background: its float32 RGB photo in [0, 1] and its alpha."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h / 2) / (h / 3), (xx - w / 2) / (w / 3))
    alpha = np.clip((1.1 - r) / 0.2, 0, 1).astype(np.float32)
    fg, bg = np.array([0.9, 0.7, 0.5], np.float32), rng.random((h, w, 3)).astype(np.float32) * 0.4
    return (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32), alpha


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on tiny inputs: thread start-up costs more than the work (and much more on a machine
    that is busy with something else). Modules opt in with ``pytestmark``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def shipped_onnx_and_sets(root, size, count, seeds=(11, 22), onnx_name="fp32.onnx"):
    """The shipped checkpoint exported to FP32 ONNX at ``size``, plus a calibration set (mask trimaps) and a
    validation set (eroded trimaps) of ``count`` procedural composites: what every INT8 target test starts from."""
    from adamatting.checkpoint import load_model
    from adamatting.config import DEFAULT_WEIGHTS
    from calib_data.sets import SetConfig, build_set
    from export.onnx_graph import export_onnx

    if not DEFAULT_WEIGHTS.is_file():
        pytest.fail(f"{DEFAULT_WEIGHTS} is missing: the shipped checkpoint is part of the repository")
    model, _ = load_model(DEFAULT_WEIGHTS)
    fp32 = root / onnx_name
    export_onnx(model, fp32, size)
    sets = {}
    for name, seed, trimap in (("cal", seeds[0], "mask"), ("val", seeds[1], "validation")):
        cfg = SetConfig(name=name, count=count, size=size, seed=seed, trimap=trimap, procedural=1.0,
                        bg_sources=("natural", "procedural")).validated()
        sets[name] = build_set(cfg, root / "sets", progress=False)
    return model, fp32, sets


@pytest.fixture(scope="session")
def seeded_model():
    """``seeded_model(config="tiny", **overrides)``: a model of that config in eval mode, its random weights
    drawn after ``torch.manual_seed(0)`` (so what a test draws next is seeded too)."""
    from adamatting.config import get_config
    from adamatting.model import build_model

    def build(config: str = "tiny", **overrides):
        torch.manual_seed(0)
        return build_model(get_config(config, **overrides)).eval()
    return build


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, seeded_model):
    """A checkpoint of the tiny config with seeded random weights (the CLI's tests need a file, not weights)."""
    from adamatting.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    save_checkpoint(path, seeded_model())
    return path
