"""``adamat ship``: a run's best checkpoint (or an average of checkpoints), weights only, for shipping."""

from __future__ import annotations

from pathlib import Path

from adamat.arguments import guided_scale
from adamatting.checkpoint import (
    CheckpointError,
    average_checkpoints,
    load_model,
    load_state,
    read_checkpoint,
    save_checkpoint,
)
from adamatting.config import DEFAULT_WEIGHTS, GUIDED_SCALES, ModelConfig, format_scale
from adamatting.model import AdaMatting, build_model
from common.arguments import file_named, path_text
from common.errors import DataError
from common.outputs import check_writable, one_file_twice, same_file


DEFAULT_RUN = "runs/mobile-int8"


def add_arguments(s) -> None:
    s.add_argument("--run-dir", "--run", dest="run", type=path_text, default=None,
                   help=f"the run folder (default {DEFAULT_RUN})")
    s.add_argument("--out", type=file_named(".pt"), default=str(DEFAULT_WEIGHTS),
                   help="the shipped weights, a .pt file, replaced (default: the default model's)")
    s.add_argument("--average", nargs="+", type=path_text, metavar="CHECKPOINT",
                   help="ship the uniform average of these checkpoints of one config instead (snapshots of "
                        "one run late in its schedule, each once), not a run's")
    s.add_argument("--guided-scale", type=guided_scale, default=None, metavar="{1,4/3,2,4}",
                   help="run the shipped network at this scale instead of the one it was trained at (the same "
                        "weights, the network at another resolution): a scale its decoders' stride allows, with the "
                        "guided upsampler (above 1) as it was trained with it or not (1). mobile-int8 (the default "
                        "model; decoders end at stride 4) runs at 4 only; mobile (stride 1) at 4/3, 2 or 4 "
                        "(weights/mobile.pt: trained at 2, shipped at 4/3)")
    s.set_defaults(func=run)


def run(args) -> int:
    _check_options(args)
    src, first = _source(args)
    if args.guided_scale is not None:   # from the config alone: before any model is built or averaged
        _check_guided_scale(args.guided_scale, _config_of(first), src)
    model, keep = _averaged(args.average) if args.average else _loaded(src)
    if args.guided_scale is not None and args.guided_scale != model.cfg.guided_scale:
        model, keep = _rescaled(model, keep, args.guided_scale)
    save_checkpoint(args.out, model, source=str(src), **keep)
    read_checkpoint(args.out)  # re-read what was written
    size = Path(args.out).stat().st_size / 1e6
    print(f"{src} (step {keep.get('step')}) -> {args.out} ({size:.1f} MB)")
    return 0


def _check_options(args) -> None:
    """--average or --run (the default run when neither), each checkpoint once, --out writable: refused
    before anything is read."""
    if args.average and args.run is not None:
        raise DataError("adamat ship: give --average or --run, not both (the average ships those checkpoints only)")
    args.run = args.run or DEFAULT_RUN
    _refuse_same_checkpoint_twice(args.average or [])
    check_writable(args.out)   # before loading or averaging anything


def _source(args) -> tuple[str | Path, Path]:
    """What ships (a run's best.pt, else its last.pt; or the line naming the averaged checkpoints) and the
    checkpoint whose config it has; DataError where --out is one of them or the run folder holds neither."""
    out = Path(args.out)
    sources = args.average or [Path(args.run) / name for name in ("best.pt", "last.pt")]
    if any(Path(s).exists() and same_file(out, Path(s)) for s in sources):
        raise DataError("is a checkpoint it ships from: give another --out", out)
    if args.average:
        return f"average of {len(args.average)}: " + ", ".join(str(p) for p in args.average), Path(args.average[0])
    run = Path(args.run)
    if not run.is_dir():
        raise DataError("not found: give a run folder of adamat train" if not run.exists() else
                        "is a file, not a run folder of adamat train", run)
    if not any(p.is_file() for p in sources):
        raise DataError("holds no best.pt or last.pt: not a run folder of adamat train", run)
    src = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"
    return src, src


def _averaged(checkpoints: list[str]) -> tuple[AdaMatting, dict]:
    """The uniform average of ``checkpoints`` and what the shipped file keeps of them: the last one's time,
    training config and loss, the latest step and every averaged step."""
    model, payloads = average_checkpoints(checkpoints)
    steps = [p.get("step") for p in payloads]
    keep = {k: payloads[-1][k] for k in ("elapsed_s", "train_config", "loss") if k in payloads[-1]}
    keep.update(step=max((s for s in steps if s is not None), default=None), averaged_steps=steps)
    return model, keep


def _loaded(src: Path) -> tuple[AdaMatting, dict]:
    """The model of checkpoint ``src`` (its weight average where it has one) and what the shipped file keeps."""
    model, payload = load_model(src)
    if "ema" in payload:   # last.pt of a run without validation: ship its weight average, not the raw weights
        load_state(model, payload["ema"], src)
    keep = {k: payload[k] for k in ("step", "best", "elapsed_s", "train_config", "val", "loss") if k in payload}
    return model, keep


def _rescaled(model: AdaMatting, keep: dict, scale: float) -> tuple[AdaMatting, dict]:
    """The same weights, the network at guided scale ``scale`` (checked before: its stride allows the scale),
    and ``keep`` without the run's validation, measured at the scale it trained at, which it records instead."""
    rescaled = build_model(model.cfg.replace(guided_scale=scale))
    rescaled.load_state_dict(model.state_dict())
    keep = {k: v for k, v in keep.items() if k not in ("best", "val")}
    keep["trained_guided_scale"] = model.cfg.guided_scale
    return rescaled.eval(), keep


def _refuse_same_checkpoint_twice(checkpoints: list[str]) -> None:
    """ValueError naming a checkpoint given twice to --average (the same path, or one file through a link): it
    would weigh twice in the average."""
    twice = one_file_twice(checkpoints)
    if twice:
        raise ValueError(f"--average: {twice[1]} is {twice[0]} again: an average takes each checkpoint once")


def _config_of(path: Path) -> ModelConfig:
    """The model config of the checkpoint at ``path``, read without building the model."""
    try:
        return ModelConfig.from_dict(read_checkpoint(path)["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad model config in checkpoint: {e}") from None


def _check_guided_scale(scale: float, cfg: ModelConfig, src) -> None:
    """ValueError where the weights of ``cfg`` (from ``src``) cannot run at guided scale ``scale``: a scale its
    decoders' stride does not allow, or one that needs the guided upsampler it has not (or the reverse)."""
    if scale == cfg.guided_scale:
        return
    _check_scale_fits(scale, cfg)
    # The same weights, the network at another resolution: the guided upsampler works at any scale, but a
    # model with it cannot become one without it (or the reverse) by a config change.
    if (scale > 1) != (cfg.guided_scale > 1):
        raise ValueError(f"adamat ship: --guided-scale {format_scale(scale)} needs a model "
                         f"{'with' if scale > 1 else 'without'} the guided upsampler; {src} has "
                         f"guided_scale {format_scale(cfg.guided_scale)} (train one from its weights: "
                         f"adamat train --guided-scale {format_scale(scale)} --init ...)")


def fitting_scales(cfg: ModelConfig) -> list[float]:
    """The guided scales the weights of ``cfg`` can run at: those its decoders' stride allows (the encoder's
    input must be the photo scaled by one of GUIDED_SCALES), with the guided upsampler (above 1) as it has it."""
    fits = []
    for s in GUIDED_SCALES:
        try:
            cfg.replace(guided_scale=s)
        except ValueError:
            continue
        if (s > 1) == (cfg.guided_scale > 1):
            fits.append(s)
    return fits


def _check_scale_fits(scale: float, cfg: ModelConfig) -> None:
    """ValueError naming the scales ``cfg`` can run at where its decoders' stride does not allow ``scale``."""
    try:
        cfg.replace(guided_scale=scale)
    except ValueError:
        fits = [format_scale(s) for s in fitting_scales(cfg)]
        runs_at = fits[0] if len(fits) == 1 else f"{', '.join(fits[:-1])} or {fits[-1]}"
        raise ValueError(f"adamat ship: --guided-scale {format_scale(scale)}: config {cfg.name} runs at guided "
                         f"scale {runs_at} only (its decoders end at stride {cfg.decoder_stride})") from None
