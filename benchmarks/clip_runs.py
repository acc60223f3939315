"""The clip path measured: speed end to end on a 1080p clip of a person, and the temporal table of ``adamat eval
clips`` as measured data.

    python -m benchmarks.clip_runs ARTIFACT [--frames 30] [--size 1080 1920] [--hdr] [--quality out/eval-clips.json]

Speed: a clip of scikit-image's astronaut (a person for the segmenter) panning slowly, with a sine tone, encoded
as H.264 (``--hdr``: as 10-bit HEVC tagged HLG, without the tone), is rendered by :func:`runtime.clip.bokeh_clip`
(decode to encode, the segmenter on every frame) after one warm-up frame's worth of opening; per-stage
milliseconds per frame and frames per second go to a ``clip-speed`` table. ``--quality``: an
``eval-clips.json`` written by ``adamat eval clips``, whose means become a ``clip-quality`` table. Nothing is
asserted; no time is written anywhere else.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmarks.fingerprint import measured_header
from benchmarks.measurements import MEASURED, load, new_path, save
from calib_data.procedural_clips import HLG, encode_clip, encode_hdr_clip
from runtime.artifacts import open_artifact
from runtime.clip import CLIP_REFINEMENT, bokeh_clip
from runtime.matter import Matter
from runtime.person_mask import PersonSegmenter


def person_frames(n: int, size: tuple[int, int]):
    """scikit-image's astronaut panning by 2 px a frame: ``n`` uint8 RGB frames of ``size`` = (H, W)."""
    from skimage.data import astronaut

    h, w = size
    side = int(max(h, w) * 1.1) + 2 * n
    source = cv2.resize(astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    for i in range(n):
        yield np.ascontiguousarray(source[: h, 2 * i:2 * i + w])


def speed(artifact: str, frames: int, size: tuple[int, int], hdr: bool = False) -> dict:
    matter = Matter.from_artifact(artifact, refinement=CLIP_REFINEMENT)
    segmenter = PersonSegmenter()
    with tempfile.TemporaryDirectory() as tmp:
        clip, out = Path(tmp, "clip.mp4"), Path(tmp, "out.mp4")
        if hdr:      # the 8-bit frames as a 10-bit HLG signal (their look does not matter here, their cost does)
            encode_hdr_clip(clip, (f.astype(np.uint16) * 257 for f in person_frames(frames, size)), HLG)
        else:
            encode_clip(clip, person_frames(frames, size), rate=30)
        report = bokeh_clip(clip, out, matter, segmenter=segmenter)
    row = {"model": label(artifact), "frames": report.frames, "frames per s": round(report.fps, 2)}
    return row | {f"{stage} ms": round(1000 * s / report.frames, 1) for stage, s in report.timings.items()}


def label(artifact: str) -> str:
    return "PyTorch FP32 (checkpoint)" if artifact.endswith(".pt") else open_artifact(artifact).label


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.clip_runs", description=__doc__.split("\n\n")[0])
    p.add_argument("artifact")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--size", type=int, nargs=2, default=[1080, 1920], metavar=("H", "W"))
    p.add_argument("--hdr", action="store_true", help="the clip as a phone records by default: 10-bit HEVC, HLG")
    p.add_argument("--quality", default=None, help="an eval-clips.json of adamat eval clips to record too")
    p.add_argument("--out-dir", type=Path, default=MEASURED, help="where the tables go (default benchmarks/measured)")
    args = p.parse_args(argv)
    command = ["python", "-m", "benchmarks.clip_runs", *(sys.argv[1:] if argv is None else argv)]
    row = speed(args.artifact, args.frames, tuple(args.size), args.hdr)
    clip = ("10-bit HEVC HLG clip (converted to SDR as it is read)" if args.hdr else "H.264 clip") + (
        f" of {args.frames} frames of a person panning, " + ("without audio" if args.hdr else "with AAC audio"))
    data = measured_header("clip-speed", input_size=[512, 512], threads=None, model=args.artifact,
                           method=f"runtime.clip.bokeh_clip on a {args.size[1]}x{args.size[0]} {clip}: decode to "
                                  f"encode, the person segmenter on every frame, one process; ms per frame",
                           command=command, runtimes=("onnxruntime", "openvino", "executorch"))
    written = [_write(data | {"columns": list(row), "rows": [row]}, args.out_dir)]
    if args.quality:
        written.append(_write(_quality(Path(args.quality), command), args.out_dir))
    for path in written:
        load(path)                           # a table the measured-results reader accepts
    return 0


def _quality(path: Path, command: list[str]) -> dict:
    result = json.loads(path.read_text())
    s = result["set"]
    rows = [{"method": name} | {k: round(v, 4) for k, v in means.items()} for name, means in result["means"].items()]
    data = measured_header("clip-quality", input_size=[512, 512], threads=None, model=result.get("artifact", ""),
                           method=f"adamat eval clips: {len(s['kinds'])} procedural clips ({', '.join(s['kinds'])}), "
                                  f"{s['frames']} frames of {s['size'][1]}x{s['size'][0]}, seed {s['seed']}, a phone "
                                  f"mask drawn afresh for every frame; per-frame means of whole-image SAD, MSE, Grad, "
                                  f"the clips' dtSSD and MESSDdt, averaged over the clips", command=command)
    return data | {"columns": list(rows[0]), "rows": rows, "details": result["rows"]}


def _write(data: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return save(data, new_path(data["kind"], data, folder))


if __name__ == "__main__":
    sys.exit(main())
