"""Model configurations. ``mobile`` (the phone default) and ``paper`` share one code path (adamatting/model/)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from fractions import Fraction
from math import gcd
from pathlib import Path

# The shipped mobile checkpoint (see weights/README.md): the default model of every command.
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "mobile.pt"
ENCODER_STRIDE = 32                                 # the encoder's deepest feature map is 1/32 of its input
GUIDED_SCALES = (1, 4 / 3, 2, 4)                    # input resolution / network resolution
# A config's name goes into artifact file names, and checkpoints carry it: letters, digits, '_' and '-' only,
# so that no name read from a file can make a path (no '/', '..', or a leading '-').
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def format_scale(s: float) -> str:
    """A guided scale as written on the command line: 4/3, not 1.3333333333333333."""
    return str(Fraction(s).limit_denominator(8))


@dataclass(frozen=True)
class ModelConfig:
    name: str
    encoder: str                                    # "mobile" (inverted residuals) | "resnet" (bottlenecks)
    width_mult: float = 1.0                         # mobile: channel multiplier
    # mobile: MobileNetV2-style stages (expansion, channels, repeats, stride)
    mobile_stages: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 3, 2), (6, 96, 2, 1), (6, 160, 2, 2))
    resnet_layers: tuple[int, int, int, int] = (3, 4, 6, 3)   # resnet: bottlenecks per stage (ResNet-50)
    resnet_width: int = 64
    decoder_channels: tuple[int, int, int, int, int] = (64, 32, 24, 16, 8)  # at strides 16, 8, 4, 2, 1
    gcn_kernel: int = 7                             # Global Convolution k (k×1 + 1×k)
    separable: bool = True                          # depthwise-separable convs in decoders, GCN and PU gates
    pu_hidden: int = 8                              # ConvLSTM hidden channels
    pu_steps: int = 3                               # fixed number of propagation steps (unrolled on export)
    # 1: the network runs at the input resolution (as published). s > 1: it runs on the input downscaled by s
    # and a learned guided filter (model.GuidedUpsampler) lifts its alpha to the input resolution: 4/3 (the
    # phone default: the network at 3/4 resolution, bilinear resampling), 2 or 4 (average pooling).
    guided_scale: float = 1
    refiner_hidden: int = 16                        # guided upsampler: hidden channels of its 1×1 convs

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"model config name {self.name!r} is not allowed: 1 to 64 letters, digits, '_' or '-', "
                             f"starting with a letter or digit")
        if self.guided_scale not in GUIDED_SCALES:
            raise ValueError(f"guided_scale must be one of {', '.join(map(format_scale, GUIDED_SCALES))}, "
                             f"got {format_scale(self.guided_scale)}")

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this: the network's input (the input downscaled by guided_scale
        = p/q) must be a multiple of the encoder's stride — 32, 128 (4/3), 64 (2), 128 (4)."""
        s = Fraction(self.guided_scale).limit_denominator(8)
        return ENCODER_STRIDE * s.numerator // gcd(s.denominator, ENCODER_STRIDE)

    def differences(self, other: "ModelConfig") -> list[tuple[str, str, str]]:
        """(field, this value, other value) for each field that differs, values as a person writes them."""
        show = lambda k, v: format_scale(v) if k == "guided_scale" else repr(v)  # noqa: E731
        return [(k, show(k, getattr(self, k)), show(k, getattr(other, k)))
                for k in self.to_dict() if getattr(self, k) != getattr(other, k)]

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        d = dict(d)
        for k in ("mobile_stages",):
            if k in d:
                d[k] = tuple(tuple(s) for s in d[k])
        for k in ("resnet_layers", "decoder_channels"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


CONFIGS: dict[str, ModelConfig] = {
    # Phone default: inverted-residual encoder, separable decoders and ConvLSTM, all at 3/4 of the input
    # resolution, and a learned guided filter back to the input resolution (1.32 GMACs at 512×512).
    "mobile": ModelConfig(name="mobile", encoder="mobile", width_mult=1.0, guided_scale=4 / 3),
    # As published: ResNet-50-like bottleneck encoder, plain convolutions.
    "paper": ModelConfig(name="paper", encoder="resnet", decoder_channels=(256, 128, 64, 32, 16),
                         gcn_kernel=11, separable=False, pu_hidden=16),
    # For tests: same code path, tiny widths.
    "tiny": ModelConfig(name="tiny", encoder="mobile", width_mult=0.25,
                        mobile_stages=((1, 16, 1, 1), (6, 24, 1, 2), (6, 32, 1, 2), (6, 64, 1, 2), (6, 160, 1, 2)),
                        decoder_channels=(16, 8, 8, 8, 4), gcn_kernel=5, pu_hidden=4, pu_steps=2),
    # For tests of the phone path: tiny, with the guided upsampler (inputs: multiples of 64).
    "tiny-guided": ModelConfig(name="tiny-guided", encoder="mobile", width_mult=0.25,
                               mobile_stages=((1, 16, 1, 1), (6, 24, 1, 2), (6, 32, 1, 2), (6, 64, 1, 2),
                                              (6, 160, 1, 2)),
                               decoder_channels=(16, 8, 8, 8, 4), gcn_kernel=5, pu_hidden=4, pu_steps=2,
                               guided_scale=2, refiner_hidden=8),
    "tiny-resnet": ModelConfig(name="tiny-resnet", encoder="resnet", resnet_layers=(1, 1, 1, 1), resnet_width=8,
                               decoder_channels=(16, 8, 8, 8, 4), gcn_kernel=5, separable=False, pu_hidden=4,
                               pu_steps=2),
}


def get_config(name: str, **overrides) -> ModelConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown model config {name!r}; known: {', '.join(CONFIGS)}")
    return CONFIGS[name].replace(**overrides) if overrides else CONFIGS[name]
