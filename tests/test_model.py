"""The AdaMatting network, its loss, checkpoints and the mobile budget."""

import numpy as np
import pytest
import torch

from adamatting.budget import MOBILE_BUDGET, count
from adamatting.checkpoint import CheckpointError, load_model, save_checkpoint
from adamatting.config import get_config
from adamatting.loss import AdaMattingLoss
from adamatting.model import build_model, check_input
from adamatting.padding import crop_padding, pad_to_stride

torch.manual_seed(0)


def inputs(n, h, w, trimap_value=0.5):
    return torch.rand(n, 3, h, w) * 2 - 1, torch.full((n, 1, h, w), trimap_value)


@pytest.mark.parametrize("config, size", [
    ("tiny", (64, 64)), ("tiny", (96, 160)), ("tiny-resnet", (64, 64)), ("tiny-resnet", (128, 96)),
    ("tiny-guided", (64, 64)), ("tiny-guided", (128, 192)), ("tiny-fused", (64, 64)), ("tiny-fused", (96, 160)),
    ("mobile-int8", (128, 96)), ("mobile", (128, 128)), ("mobile", (128, 256)), ("paper", (64, 96)),   # paper: 77 M params, one size
])
def test_output_shapes_both_code_paths(config, size):
    model = build_model(get_config(config)).eval()
    with torch.no_grad():
        out = model(*inputs(2, *size))
    h, w = size
    assert out["alpha"].shape == (2, 1, h, w)
    assert out["trimap_logits"].shape == (2, 3, h, w)
    assert float(out["alpha"].min()) >= 0.0 and float(out["alpha"].max()) <= 1.0


def test_all_unknown_trimap_means_no_trimap_and_is_accepted():
    model = build_model(get_config("tiny")).eval()
    image, trimap = inputs(1, 64, 64, 0.5)
    with torch.no_grad():
        out = model(image, trimap)
    assert torch.isfinite(out["alpha"]).all()


def _graph_nodes(model, image, trimap):
    graph = torch.jit.trace(model, (image, trimap), strict=False).inlined_graph
    return sum(1 for _ in graph.nodes())


def test_propagation_steps_change_the_graph():
    image, trimap = inputs(1, 64, 64)
    counts = {}
    for steps in (0, 1, 2, 3):
        model = build_model(get_config("tiny", pu_steps=steps)).eval()
        counts[steps] = _graph_nodes(model, image, trimap)
    assert counts[0] < counts[1] < counts[2] < counts[3]
    # the loop is unrolled: every further step adds the same cell, so the graph grows linearly
    assert counts[3] - counts[2] == counts[2] - counts[1] > 0


def test_gradients_reach_both_decoders_the_propagation_unit_and_both_sigmas():
    model = build_model(get_config("tiny"))
    # a non-zero PU head so gradients flow into the ConvLSTM cell on the first step
    torch.nn.init.normal_(model.propagation.out.weight, std=0.1)
    loss_fn = AdaMattingLoss()
    image, _ = inputs(2, 64, 64)
    trimap = torch.full((2, 1, 64, 64), 0.5)
    trimap[..., :16, :] = 0.0
    alpha = torch.rand(2, 1, 64, 64)
    target = torch.randint(0, 3, (2, 64, 64))
    loss, _ = loss_fn(model(image, trimap), alpha, trimap, target)
    loss.backward()

    def grad_norm(module):
        return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)

    assert grad_norm(model.trimap_decoder) > 0
    assert grad_norm(model.alpha_decoder) > 0
    assert grad_norm(model.propagation.cell) > 0
    assert grad_norm(model.propagation.out) > 0
    assert loss_fn.log_var_trimap.grad is not None and loss_fn.log_var_trimap.grad.abs() > 0
    assert loss_fn.log_var_alpha.grad is not None and loss_fn.log_var_alpha.grad.abs() > 0


def test_trimap_probabilities_not_argmax_feed_the_propagation_unit():
    # with argmax the trimap decoder would get no gradient through the PU path alone
    model = build_model(get_config("tiny"))
    torch.nn.init.normal_(model.propagation.out.weight, std=0.1)
    image, trimap = inputs(1, 64, 64)
    out = model(image, trimap)
    out["alpha_pu"].sum().backward()
    assert sum(p.grad.abs().sum().item() for p in model.trimap_decoder.parameters() if p.grad is not None) > 0


def test_loss_is_the_uncertainty_weighted_form():
    loss_fn = AdaMattingLoss(aux_weight=0.0)
    with torch.no_grad():
        loss_fn.log_var_trimap.fill_(0.3)
        loss_fn.log_var_alpha.fill_(-0.2)
    logits = torch.zeros(1, 3, 4, 4)
    out = {"trimap_logits": logits, "alpha": torch.full((1, 1, 4, 4), 0.25), "alpha_decoder": torch.zeros(1, 1, 4, 4)}
    trimap = torch.full((1, 1, 4, 4), 0.5)
    alpha_gt = torch.full((1, 1, 4, 4), 0.75)
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    loss, parts = loss_fn(out, alpha_gt, trimap, target)
    l_t, l_a = np.log(3.0), 0.5
    expected = 0.5 * np.exp(-0.3) * l_t + 0.5 * np.exp(0.2) * l_a + 0.5 * (0.3 - 0.2)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert parts["sigma1"] == pytest.approx(np.exp(0.15), rel=1e-5)


def test_a_few_steps_on_two_composites_lower_the_loss():
    from calib_data.compositing import composite
    from calib_data.trimaps import gt_trimap_classes, validation_trimap
    from common.encoding import encode_inputs

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    items = []
    for cx in (24, 40):
        alpha = np.clip((18 - np.hypot(yy - 32, xx - cx)) / 4 + 0.5, 0, 1).astype(np.float32)
        fg = np.broadcast_to(rng.random(3).astype(np.float32), (64, 64, 3))
        bg = rng.random((64, 64, 3)).astype(np.float32)
        img, tri = encode_inputs(composite(fg, bg, alpha), validation_trimap(alpha, 5))
        items.append((img, tri, alpha[None], gt_trimap_classes(alpha)))
    image, trimap, alpha, target = (torch.from_numpy(np.stack(x)) for x in zip(*items))
    torch.manual_seed(0)
    model = build_model(get_config("tiny"))
    loss_fn = AdaMattingLoss()
    opt = torch.optim.Adam(list(model.parameters()) + list(loss_fn.parameters()), lr=5e-3)
    losses = []
    for _ in range(15):
        loss, _ = loss_fn(model(image, trimap), alpha, trimap, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_checkpoint_round_trip(tmp_path):
    model = build_model(get_config("tiny")).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, step=7)
    loaded, payload = load_model(path)
    assert payload["step"] == 7 and loaded.cfg == model.cfg
    image, trimap = inputs(1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(image, trimap)["alpha"], loaded(image, trimap)["alpha"])


def test_checkpoint_half_round_trip_is_close(tmp_path):
    model = build_model(get_config("tiny")).eval()
    loaded, _ = load_model(save_checkpoint(tmp_path / "m.pt", model, half=True))
    image, trimap = inputs(1, 64, 64)
    with torch.no_grad():
        diff = (model(image, trimap)["alpha"] - loaded(image, trimap)["alpha"]).abs().max()
    assert diff < 1e-2


def test_checkpoint_of_another_config_names_the_mismatch(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", build_model(get_config("tiny")))
    with pytest.raises(CheckpointError, match="pu_steps"):
        load_model(path, expect=get_config("tiny", pu_steps=3))
    # weights that do not fit the config they claim: named keys
    import torch as _t
    payload = _t.load(path, weights_only=True)
    payload["config"] = get_config("tiny", pu_hidden=6).to_dict()
    _t.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="shape mismatch.*propagation"):
        load_model(tmp_path / "bad.pt")


def test_corrupt_and_truncated_checkpoints_are_named(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", build_model(get_config("tiny")))
    data = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for name in ("trunc.pt", "junk.pt", "missing.pt"):
        with pytest.raises(CheckpointError, match=name):
            load_model(tmp_path / name)
    # one line, naming what the file is instead (torch's own message is several lines of advice)
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07onnx")
    (tmp_path / "empty.pt").write_bytes(b"")
    for name, what in (("model.onnx", "an ONNX model"), ("empty.pt", "empty"), ("junk.pt", "not a zip archive")):
        with pytest.raises(CheckpointError, match=f"{name}: not a PyTorch checkpoint \\({what}\\)"):
            load_model(tmp_path / name)
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "trunc.pt")
    assert "\n" not in str(err.value) and "weights_only" not in str(err.value)
    with pytest.raises(CheckpointError, match="is a directory, not a checkpoint"):
        load_model(tmp_path)
    with pytest.raises(CheckpointError, match="/dev/null: not a regular file"):     # was "checkpoint not found"
        load_model("/dev/null")
    with pytest.raises(CheckpointError, match="no checkpoint named: the path is empty"):   # was ".: is a directory"
        load_model("")


def test_a_checkpoint_with_nan_weights_is_refused(tmp_path):
    model = build_model(get_config("tiny"))
    with torch.no_grad():
        model.encoder.stem[0].weight[0, 0, 0, 0] = float("nan")
    path = save_checkpoint(tmp_path / "diverged.pt", model)
    with pytest.raises(CheckpointError, match=r"diverged.pt: weights contain NaN or inf \(encoder.stem.0.weight; 1 "):
        load_model(path)


@pytest.mark.parametrize("damage, words", [
    (lambda c: c.pop("model"), r"its weights \('model'\) are not a mapping of names to tensors"),   # KeyError
    (lambda c: c.update(model=[1, 2]), "are not a mapping of names to tensors"),                    # TypeError
    (lambda c: c.update(model={k: "x" for k in c["model"]}), "are not a mapping of names to tensors"),
    (lambda c: c.update(model={k: v.long() for k, v in c["model"].items()}), "shape mismatch: .* torch.int64 vs "),
    (lambda c: c["config"].update(width_mult="abc"), "width_mult must be a number above 0 and at most 4.0"),
    (lambda c: c["config"].update(width_mult=1000.0), "width_mult must be a number"),          # gigabytes
    (lambda c: c["config"].update(decoder_channels=[16, -8, 8, 8, 4]), "decoder_channels must be whole numbers"),
    (lambda c: c["config"].update(mobile_stages=[[1, 16]]), "each of mobile_stages must have 4 entries"),
    (lambda c: c["config"].update(pu_steps=100000), "pu_steps must be a whole number from 0 to 64"),   # for ever
    (lambda c: c["config"].update(encoder="bogus"), "unknown encoder 'bogus'; known: mobile, resnet, fused"),
])
def test_a_checkpoint_whose_contents_do_not_make_a_model_is_named(tmp_path, damage, words):
    """Each failed with a traceback from inside the model's code or torch (exit 1), ran for ever or asked for
    gigabytes; the encoder's name was not tied to the file."""
    path = save_checkpoint(tmp_path / "tiny.pt", build_model(get_config("tiny")))
    payload = torch.load(path, weights_only=False)
    damage(payload)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=f"tiny.pt: .*{words}"):
        load_model(path)


def test_bad_inputs_get_clear_errors():
    image, trimap = inputs(1, 64, 64)
    with pytest.raises(ValueError, match="RGB"):
        check_input(image[:, :2], trimap)
    with pytest.raises(ValueError, match="multiple of the encoder stride"):
        check_input(*inputs(1, 70, 64))
    with pytest.raises(ValueError, match="stride 64"):
        check_input(*inputs(1, 96, 64), stride=get_config("tiny-guided").stride)
    with pytest.raises(ValueError, match="guided_scale must be one of"):
        get_config("tiny", guided_scale=3)
    with pytest.raises(ValueError, match="too small"):
        pad_to_stride(torch.zeros(1, 3, 5, 5))


def test_pad_and_crop_back_round_trip():
    x = torch.rand(1, 4, 50, 77)
    padded, pads = pad_to_stride(x)
    assert padded.shape[-2] % 32 == 0 and padded.shape[-1] % 32 == 0
    assert torch.equal(crop_padding(padded, pads), x)


def test_mobile_budget_counted_by_flop_counter():
    stats = count("mobile", 512)
    assert stats["gmacs"] <= MOBILE_BUDGET["gmacs"]
    assert stats["params"] <= MOBILE_BUDGET["params"]
    assert stats["by_module"]["propagation"] > 0


# ------------------------------------------------------------------------------------ the guided upsampler
def test_guided_configs_run_the_network_at_half_resolution():
    cfg = get_config("tiny-guided")
    assert cfg.stride == 64 and get_config("tiny").stride == 32 and get_config("mobile").stride == 128
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model(*inputs(1, 128, 192))
    assert out["alpha"].shape == (1, 1, 128, 192) and out["trimap_logits"].shape == (1, 3, 128, 192)
    assert out["alpha_pu"].shape == (1, 1, 64, 96) and out["alpha_decoder"].shape == (1, 1, 64, 96)
    assert build_model(get_config("tiny")).refiner is None
    # the adapted trimap's probabilities: upsampled from the base, still distributions
    prob = out["trimap_prob"]
    assert prob.shape == (1, 3, 128, 192) and float(prob.min()) >= 0
    assert torch.allclose(prob.sum(1), torch.ones(1, 128, 192), atol=1e-5)


def test_the_mobile_config_runs_the_network_at_three_quarters_resolution():
    # guided_scale 4/3: bilinear to 3/4 of the input, inputs multiples of 128 (the base: multiples of 96)
    cfg = get_config("tiny-guided", guided_scale=4 / 3)
    assert cfg.stride == 128 and get_config("mobile").guided_scale == 4 / 3
    assert [get_config("tiny", guided_scale=s).stride for s in (1, 2, 4)] == [32, 64, 128]
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model(*inputs(1, 128, 256))
    assert out["alpha"].shape == (1, 1, 128, 256) and out["trimap_prob"].shape == (1, 3, 128, 256)
    assert out["alpha_pu"].shape == (1, 1, 96, 192)
    # the same weights run at any scale (a checkpoint's config decides): half resolution differs
    half = build_model(get_config("tiny-guided")).eval()
    half.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert half(*inputs(1, 128, 256))["alpha_pu"].shape == (1, 1, 64, 128)
    with pytest.raises(ValueError, match="guided_scale must be one of 1, 4/3, 2, 4, got 3/2"):
        get_config("tiny", guided_scale=1.5)


def test_trimap_prob_is_the_softmax_of_the_logits_without_upsampler():
    model = build_model(get_config("tiny")).eval()
    with torch.no_grad():
        out = model(*inputs(1, 64, 64))
    assert torch.allclose(out["trimap_prob"], torch.softmax(out["trimap_logits"], 1), atol=1e-6)


def test_untrained_guided_upsampler_returns_the_box_filtered_base_alpha():
    import torch.nn.functional as F

    model = build_model(get_config("tiny-guided")).eval()
    image, trimap = inputs(1, 64, 64)
    with torch.no_grad():
        up = model.refiner
        base = torch.rand(1, 1, 32, 32)
        feats = torch.rand(1, 7, 32, 32)
        out = up(image, F.avg_pool2d(image, 2), base, feats)
        expected = F.interpolate(up.box(base), scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(out, expected.clamp(0, 1), atol=1e-6)


def test_guided_upsampler_puts_full_resolution_image_detail_into_alpha():
    # Stripes one pixel wide vanish when the image is average-pooled by 2; with coefficients A ≠ 0 they
    # come back in alpha from the full-resolution image — what the upsampler is for (hair, mesh wires).
    model = build_model(get_config("tiny-guided")).eval()
    up = model.refiner
    with torch.no_grad():
        up.conv[-1].bias.copy_(torch.tensor([0.5, 0.0, 0.0]))   # A = (0.5, 0, 0) everywhere
        image = torch.zeros(1, 3, 64, 64)
        image[:, :, :, ::2] = 0.6                                  # 1-px stripes in every channel
        image_base = torch.nn.functional.avg_pool2d(image, 2)
        assert float(image_base.std()) < 1e-6                      # the base sees a flat grey
        out = up(image, image_base, torch.full((1, 1, 32, 32), 0.5), torch.zeros(1, 7, 32, 32))
    cols = out[0, 0, 8:-8, 8:-8].mean(0)
    assert torch.allclose(cols[0::2], torch.full_like(cols[0::2], 0.65), atol=1e-4)
    assert torch.allclose(cols[1::2], torch.full_like(cols[1::2], 0.35), atol=1e-4)


def test_gradients_reach_the_guided_upsampler_and_the_network_below_it():
    model = build_model(get_config("tiny-guided"))
    torch.nn.init.normal_(model.refiner.conv[-1].weight, std=0.1)
    torch.nn.init.normal_(model.propagation.out.weight, std=0.1)
    image, trimap = inputs(2, 64, 64)
    alpha = torch.rand(2, 1, 64, 64)
    target = torch.randint(0, 3, (2, 64, 64))
    loss, _ = AdaMattingLoss(grad_weight=1.0)(model(image, trimap), alpha, trimap, target)
    loss.backward()
    for part in (model.refiner, model.propagation.cell, model.alpha_decoder, model.trimap_decoder, model.encoder):
        assert sum(p.grad.abs().sum().item() for p in part.parameters() if p.grad is not None) > 0


def test_weights_without_the_upsampler_start_a_guided_model_only_when_asked(tmp_path):
    from adamatting.checkpoint import load_state

    plain = build_model(get_config("tiny")).eval()
    state = plain.state_dict()
    guided = build_model(get_config("tiny-guided"))
    with pytest.raises(CheckpointError, match="missing: refiner"):
        load_state(guided, state)
    kept, dropped = load_state(guided, state, new_modules=("refiner.",))
    assert kept and all(k.startswith("refiner.") for k in kept) and dropped == []
    assert torch.equal(guided.encoder.stem[0].weight, plain.encoder.stem[0].weight)
    # only the named new part may be missing
    del state["encoder.stem.0.weight"]
    with pytest.raises(CheckpointError, match="missing: encoder.stem.0.weight"):
        load_state(guided, state, new_modules=("refiner.",))


@pytest.mark.parametrize("config", ["tiny-guided", "tiny-resnet"])   # depthwise-separable and plain gates
def test_checkpoints_before_the_pu_trimap_input_load_as_the_same_function(config, tmp_path):
    from adamatting.checkpoint import _PU_INPUT_WEIGHTS, load_state
    from adamatting.model import PropagationUnit

    at = PropagationUnit.TRIMAP_CHANNEL
    new = build_model(get_config(config)).eval()
    torch.nn.init.normal_(new.propagation.out.weight, std=0.5)   # a PU that changes alpha
    old_state = {}
    for key, value in new.state_dict().items():
        dims = [d for k, d in _PU_INPUT_WEIGHTS if k == key]
        if dims:   # the model as it was: no weights for the input trimap
            value = torch.cat([value.narrow(dims[0], 0, at), value.narrow(dims[0], at + 1, value.shape[dims[0]] - at - 1)],
                              dims[0])
        old_state[key] = value
    with torch.no_grad():   # the reference: the new layout with zero weights for that channel
        for key, dim in _PU_INPUT_WEIGHTS:
            if key in dict(new.named_parameters()):
                dict(new.named_parameters())[key].narrow(dim, at, 1).zero_()
    upgraded = build_model(get_config(config)).eval()
    load_state(upgraded, old_state)
    image, trimap = inputs(1, 64, 64)
    trimap[..., :20] = 0.0
    trimap[..., -20:] = 1.0
    with torch.no_grad():
        assert torch.equal(upgraded(image, trimap)["alpha"], new(image, trimap)["alpha"])
    # and a run whose last.pt predates it cannot resume (its optimizer state has the old shapes)
    from adamatting.train import TrainConfig, train

    save_checkpoint(tmp_path / "last.pt", upgraded, optimizer={}, loss={}, step=1)
    payload = torch.load(tmp_path / "last.pt", weights_only=True)
    payload["model"] = old_state
    torch.save(payload, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="predates the propagation unit's trimap input.*--init"):
        train(tmp_path, TrainConfig(model=config, steps=1, batch=1, crop=64, real_fraction=0.0), progress=False)
