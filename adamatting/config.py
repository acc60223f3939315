"""Model configurations. ``mobile`` (the phone default) and ``paper`` share one code path (adamatting/model/)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from fractions import Fraction
from math import gcd
from pathlib import Path

from common.values import is_real_number, is_whole_number

# The default model of every command (see weights/README.md): the INT8-friendly network (config
# ``mobile-int8``), better with the band refiner on every phone-path set and 3x faster in OpenVINO INT8.
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "mobile-int8.pt"
# The first phone network (config ``mobile``), shipped beside the default as a second model.
VARIANT_WEIGHTS = DEFAULT_WEIGHTS.with_name("mobile.pt")
ENCODER_STRIDE = 32                                 # the encoder's deepest feature map is 1/32 of its input
GUIDED_SCALES = (1, 4 / 3, 2, 4)                    # input resolution / network resolution
# A config's name goes into artifact file names, and checkpoints carry it: letters, digits, '_' and '-' only,
# so that no name read from a file can make a path (no '/', '..', or a leading '-').
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def format_scale(s: float) -> str:
    """A guided scale as written on the command line: 4/3, not 1.3333333333333333."""
    return str(Fraction(s).limit_denominator(8))


ENCODERS = ("mobile", "resnet", "fused")
MAX_WIDTH_MULT = 4.0      # a config's channel multiplier, at most
MAX_CHANNELS = 2048       # any channel count, kernel, repeat count or stride of a config, at most
MAX_PU_STEPS = 64         # propagation steps, at most (each adds its cell to an exported graph)


def _stage(stage, size: int, name: str) -> tuple:
    """A stage of ``size`` entries; ValueError naming ``name`` otherwise."""
    if not (isinstance(stage, (tuple, list)) and len(stage) == size):
        raise ValueError(f"each of {name} must have {size} entries, got {stage!r}")
    return tuple(stage)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    encoder: str                                    # "mobile" (inverted residuals) | "resnet" (bottlenecks)
    #                                                 | "fused" (stride-4 patch stem, fused-MBConv stages)
    width_mult: float = 1.0                         # mobile: channel multiplier
    # mobile: MobileNetV2-style stages (expansion, channels, repeats, stride)
    mobile_stages: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 3, 2), (6, 96, 2, 1), (6, 160, 2, 2))
    resnet_layers: tuple[int, int, int, int] = (3, 4, 6, 3)   # resnet: bottlenecks per stage (ResNet-50)
    resnet_width: int = 64
    # fused: the stem's channels (a 4×4 stride-4 convolution) and the stages after it, each
    # (kind, expansion, channels, repeats, stride), kind "fused" (dense 3×3 expansion, 1×1 projection; a single
    # dense 3×3 at expansion 1) or "ir" (inverted residual, depthwise 3×3). Strides must reach 32.
    stem_channels: int = 32
    fused_stages: tuple[tuple[str, int, int, int, int], ...] = ()
    # At strides 16, 8, 4, 2, 1 of the encoder's input; 3 or 4 entries stop the decoders (and the propagation
    # unit) at stride 4 or 2, which is then the network's resolution (see ENCODER_STRIDE, encoder_scale).
    decoder_channels: tuple[int, ...] = (64, 32, 24, 16, 8)
    gcn_kernel: int = 7                             # Global Convolution k (k×1 + 1×k)
    separable: bool = True                          # depthwise-separable convs in decoders, GCN and PU gates
    gcn_separable: bool | None = None               # None: as ``separable``
    pu_separable: bool | None = None                # None: as ``separable``
    subpixel_kernel: int = 3                        # the sub-pixel convolution's kernel (1: a 2×2 ConvTranspose)
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
        if not 3 <= len(self.decoder_channels) <= 5:
            raise ValueError(f"decoder_channels must have 3 to 5 entries (strides 16 to 4, 2 or 1), "
                             f"got {len(self.decoder_channels)}")
        if self.encoder_scale not in GUIDED_SCALES:
            raise ValueError(f"the decoders stop at stride {self.decoder_stride}, so guided_scale "
                             f"{format_scale(self.guided_scale)} would run the encoder on the input scaled by "
                             f"{format_scale(1 / self.encoder_scale)}; use guided_scale = {self.decoder_stride} × "
                             f"one of {', '.join(map(format_scale, GUIDED_SCALES))}")
        if self.subpixel_kernel not in (1, 3):
            raise ValueError(f"subpixel_kernel must be 1 or 3, got {self.subpixel_kernel}")
        self._check_sizes()

    def _check_sizes(self) -> None:
        """ValueError naming a size field of the wrong type or out of range (a checkpoint's config is data: a
        width of 'abc' failed in the layers' arithmetic, a negative channel count in torch, 100000 propagation
        steps ran for ever, a width multiplier of 1000 asked for gigabytes)."""
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; known: {', '.join(ENCODERS)}")
        if not (is_real_number(self.width_mult) and 0 < self.width_mult <= MAX_WIDTH_MULT):
            raise ValueError(f"width_mult must be a number above 0 and at most {MAX_WIDTH_MULT}, "
                             f"got {self.width_mult!r}")
        counts = {"resnet_width": [self.resnet_width], "stem_channels": [self.stem_channels],
                  "decoder_channels": list(self.decoder_channels), "pu_hidden": [self.pu_hidden],
                  "refiner_hidden": [self.refiner_hidden], "resnet_layers": list(self.resnet_layers),
                  "gcn_kernel": [self.gcn_kernel]}
        counts |= {"mobile_stages": [v for stage in self.mobile_stages for v in _stage(stage, 4, "mobile_stages")],
                   "fused_stages": [v for stage in self.fused_stages for v in _stage(stage, 5, "fused_stages")[1:]]}
        for name, values in counts.items():
            if not all(is_whole_number(v) and 1 <= v <= MAX_CHANNELS for v in values):
                raise ValueError(f"{name} must be whole numbers from 1 to {MAX_CHANNELS}, got {values!r}")
        if not (is_whole_number(self.pu_steps) and 0 <= self.pu_steps <= MAX_PU_STEPS):
            raise ValueError(f"pu_steps must be a whole number from 0 to {MAX_PU_STEPS}, got {self.pu_steps!r}")

    @property
    def decoder_stride(self) -> int:
        """The decoders' output stride relative to the encoder's input: 1, 2 or 4."""
        return 2 ** (5 - len(self.decoder_channels))

    @property
    def encoder_scale(self) -> float:
        """Input resolution / the encoder's input resolution: guided_scale / decoder_stride (the network's
        resolution is where the decoders end)."""
        s = self.guided_scale / self.decoder_stride
        return 4 / 3 if abs(s - 4 / 3) < 1e-9 else s

    @property
    def gcn_is_separable(self) -> bool:
        return self.separable if self.gcn_separable is None else self.gcn_separable

    @property
    def pu_is_separable(self) -> bool:
        return self.separable if self.pu_separable is None else self.pu_separable

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this: the encoder's input (the input downscaled by encoder_scale
        = p/q) must be a multiple of the encoder's stride — 32, 128 (4/3), 64 (2), 128 (4)."""
        s = Fraction(self.encoder_scale).limit_denominator(8)
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
        for k in ("mobile_stages", "fused_stages"):
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
    # For int8 CPUs and phone NPUs: a 4×4 stride-4 patch stem on the full-resolution input, fused-MBConv
    # (dense 3×3) stages at strides 4 to 16, decoders with 2×2 transposed sub-pixel convolutions and dense 3×3
    # refinement ending at stride 4, a dense-gate ConvLSTM there, and the guided upsampler ×4 back to the input.
    "mobile-int8": ModelConfig(name="mobile-int8", encoder="fused", stem_channels=32,
                               fused_stages=(("fused", 1, 32, 1, 1), ("fused", 2, 48, 2, 2), ("fused", 2, 96, 2, 2),
                                             ("ir", 4, 160, 2, 2)),
                               decoder_channels=(96, 48, 32), gcn_kernel=5, separable=False, gcn_separable=True,
                               subpixel_kernel=1, pu_hidden=16, guided_scale=4),
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
    # For tests of the mobile-int8 code path: the same structure, tiny widths (inputs: multiples of 32).
    "tiny-fused": ModelConfig(name="tiny-fused", encoder="fused", stem_channels=8,
                              fused_stages=(("fused", 1, 8, 1, 1), ("fused", 2, 16, 1, 2), ("ir", 2, 16, 1, 2),
                                            ("ir", 2, 32, 1, 2)),
                              decoder_channels=(16, 8, 8), gcn_kernel=5, separable=False, gcn_separable=True,
                              subpixel_kernel=1, pu_hidden=4, pu_steps=2, guided_scale=4, refiner_hidden=8),
    "tiny-resnet": ModelConfig(name="tiny-resnet", encoder="resnet", resnet_layers=(1, 1, 1, 1), resnet_width=8,
                               decoder_channels=(16, 8, 8, 8, 4), gcn_kernel=5, separable=False, pu_hidden=4,
                               pu_steps=2),
}


def get_config(name: str, **overrides) -> ModelConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown model config {name!r}; known: {', '.join(CONFIGS)}")
    return CONFIGS[name].replace(**overrides) if overrides else CONFIGS[name]
