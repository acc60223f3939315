"""Distillation targets and loss (adamatting.train.distill): a teacher's soft outputs teach another network."""

import pytest
import torch

from adamatting.checkpoint import save_checkpoint
from adamatting.config import get_config
from adamatting.train.distill import DistillConfig, distill_loss, load_teacher, teacher_targets
from adamatting.model import build_model


def _batch(n=2, h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    trimap = torch.full((n, 1, h, w), 0.5)
    trimap[..., : h // 4, :] = 0.0
    trimap[..., -h // 4:, :] = 1.0
    return {"image": image, "trimap": trimap}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    torch.manual_seed(1)
    model = build_model(get_config("tiny-guided"))
    path = save_checkpoint(tmp_path_factory.mktemp("teacher") / "t.pt", model)
    return load_teacher(path)


def test_the_teacher_is_frozen_and_its_targets_are_soft_and_gradient_free(teacher):
    b = _batch()
    t = teacher_targets(teacher, b["image"], b["trimap"], DistillConfig(temperature=4.0))
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    assert t["alpha"].shape == (2, 1, 64, 64) and t["trimap_prob"].shape == (2, 3, 64, 64)
    assert not t["alpha"].requires_grad
    assert torch.allclose(t["trimap_prob"].sum(1), torch.ones(2, 64, 64), atol=1e-5)
    hard = teacher_targets(teacher, b["image"], b["trimap"], DistillConfig(temperature=1.0))["trimap_prob"]
    assert t["trimap_prob"].max() < hard.max()   # a higher temperature softens the distribution


def test_a_student_identical_to_its_teacher_has_zero_alpha_loss_and_only_the_kl_entropy_gap(teacher):
    b = _batch()
    cfg = DistillConfig(temperature=1.0)
    loss, parts = distill_loss(teacher(b["image"], b["trimap"]), teacher_targets(teacher, b["image"], b["trimap"], cfg),
                               b, cfg)
    assert parts["distill_alpha_l1"] < 1e-6 and parts["distill_grad_l1"] < 1e-6
    assert abs(parts["distill_trimap_kl"]) < 1e-5 and loss.item() == pytest.approx(parts["distill_total"], abs=1e-6)


def test_a_few_steps_bring_a_student_of_another_architecture_toward_the_teacher(teacher):
    torch.manual_seed(0)
    student = build_model(get_config("tiny-fused"))
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    b = _batch(seed=3)
    targets = teacher_targets(teacher, b["image"], b["trimap"])
    losses = []
    for _ in range(25):
        loss, _ = distill_loss(student(b["image"], b["trimap"]), targets, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert all(p.grad is None for p in teacher.parameters())


def test_ground_truth_replaces_the_teacher_where_it_is_wrong(teacher):
    b = _batch()
    t = teacher_targets(teacher, b["image"], b["trimap"])
    student = {"alpha": t["alpha"].clone(), "trimap_logits": torch.log(t["trimap_prob"])}
    far = {**b, "alpha": 1.0 - t["alpha"].round()}   # at least 0.5 from the teacher everywhere
    near = {**b, "alpha": t["alpha"] + 0.01}
    assert distill_loss(student, t, near)[1]["distill_alpha_l1"] < 1e-6
    assert distill_loss(student, t, far)[1]["distill_alpha_l1"] > 0.1


def test_targets_of_another_resolution_are_resized(teacher):
    b = _batch()
    t = teacher_targets(teacher, b["image"], b["trimap"])
    small = {k: torch.nn.functional.avg_pool2d(v, 2) for k, v in t.items()}
    loss, _ = distill_loss(teacher(b["image"], b["trimap"]), small, b)
    assert torch.isfinite(loss)


def test_bad_inputs_are_named(teacher):
    b = _batch()
    t = teacher_targets(teacher, b["image"], b["trimap"])
    with pytest.raises(ValueError, match="lack trimap_logits"):
        distill_loss({"alpha": t["alpha"]}, t, b)
    with pytest.raises(ValueError, match="batch sizes differ"):
        distill_loss(teacher(b["image"][:1], b["trimap"][:1]), t, b)
    with pytest.raises(ValueError, match="temperature"):
        DistillConfig(temperature=0)
