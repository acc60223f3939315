"""The propagation unit: a ConvLSTM that refines the alpha logit for a fixed number of steps.

A ConvLSTM cell (convolutions and elementwise ops only) run for ``pu_steps`` fixed steps on [image,
softmax(adapted trimap), alpha_t, input trimap]: 8 channels, so with 8 hidden channels the gate convolution
sees 16 (onnxruntime's int8 depthwise kernel ran 15 channels 3× slower than 16). Its hidden and cell states
start at zero, made from a feature tensor (``embed(x) * 0``), never from ``x.shape``: traced graphs stay free
of shape arithmetic, and exported files hold no folded zero constants (see PropagationUnit.forward). Each
step adds a correction to the alpha logit, so with the zero-initialised head the unit starts as the
identity. Budget: at full resolution a plain 3×3 ConvLSTM would cost more than the whole mobile budget, so
the mobile config uses depthwise-separable gate convolutions (dw 3×3 + pw) and 8 hidden channels: ~0.16 GMAC
per step at 512×512.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell from convolutions and elementwise ops: gates = conv([x, h]) → i, f, o, g."""

    def __init__(self, cin: int, hidden: int, separable: bool):
        super().__init__()
        c = cin + hidden
        if separable:
            self.gates = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.Conv2d(c, 4 * hidden, 1))
        else:
            self.gates = nn.Conv2d(c, 4 * hidden, 3, padding=1)
        self.hidden = hidden

    def forward(self, x, h, c):
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], dim=1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class PropagationUnit(nn.Module):
    """Refines the alpha logit for a fixed number of ConvLSTM steps on [image, P(trimap), alpha, trimap].

    Returns the refined alpha logit and the last hidden state (the guided upsampler's features)."""

    # [image (3), P(trimap) (3), alpha (1), the input trimap (1)]. The input trimap was added after the first
    # checkpoints: adamatting.checkpoint.upgrade_state gives theirs zero weights (the same function).
    IN_CHANNELS = 3 + 3 + 1 + 1
    TRIMAP_CHANNEL = 7

    def __init__(self, hidden: int, steps: int, separable: bool):
        super().__init__()
        if steps < 0:
            raise ValueError(f"pu_steps must be >= 0, got {steps}")
        cin = self.IN_CHANNELS
        self.embed = nn.Conv2d(cin, hidden, 1)      # state template: embed(x0) * 0
        self.cell = ConvLSTMCell(cin, hidden, separable)
        self.out = nn.Conv2d(hidden, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.steps = steps

    def forward(self, image, trimap_prob, alpha_logit, trimap):
        x = torch.cat([image, trimap_prob, torch.sigmoid(alpha_logit), trimap], dim=1)
        # Zero states shaped like a feature tensor, computed from it rather than from x.shape (no shape→int
        # ops for coremltools' tracer) and rather than torch.zeros_like: with fixed export shapes,
        # simplifiers fold zeros_like into constant initialisers, 2 × 8 × 512 × 512 floats = 16 MB of zeros
        # stored in the model file. A product with 0 is never folded.
        h = self.embed(x) * 0.0
        c = h
        for _ in range(self.steps):  # unrolled by tracing: a fixed-step graph
            h, c = self.cell(x, h, c)
            alpha_logit = alpha_logit + self.out(h)
            x = torch.cat([image, trimap_prob, torch.sigmoid(alpha_logit), trimap], dim=1)
        return alpha_logit, h
