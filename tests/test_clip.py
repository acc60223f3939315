"""Video clips: runtime.clip_files (upright frames, rate, timestamps, audio carried), runtime.clip (the state across
frames) and ``adamat bokeh clip.mp4``. Clips are generated here (a few frames of scikit-image's astronaut, with a
sine tone); the matting network is the tiny config."""

import json
import sys
import threading
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from adamat.cli import main
from calib_data.procedural_clips import ClipSpec, encode_clip, encode_hdr_clip, make_clip
from evaluation.temporal import dtssd, messddt, sequence_scores
from runtime.clip import ClipMatte, stillness
from runtime.clip_files import ClipReader, ClipWriter, Frame, to_rgb, upright
from runtime.matter import Matter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_clip(path, frames, rate=25, rotation=0, audio=True):
    return encode_clip(path, frames, rate, rotation, tone=audio)


def astronaut_frames(n=6, size=(160, 120), step=2):
    """The astronaut, panning slowly: ``n`` uint8 RGB frames of ``size`` = (W, H)."""
    w, h = size
    src = cv2.resize(astronaut(), (w + n * step + 8, w + n * step + 8), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(src[8:8 + h, i * step:i * step + w]) for i in range(n)]


def read_all(path):
    with ClipReader(path) as clip:
        items = list(clip.items())
        return clip.info, [i for i in items if isinstance(i, Frame)], [i for i in items if not isinstance(i, Frame)]


def streams(path):
    with av.open(str(path)) as c:
        return {s.type: (s.codec_context.name, s.frames, s.average_rate if s.type == "video" else s.rate)
                for s in c.streams}


def test_frames_come_out_upright_by_the_display_rotation(tmp_path):
    frame = np.zeros((64, 96, 3), np.uint8)
    frame[:16, :16] = 255                                   # a marker at the stored top-left
    assert upright(frame, 90)[-16:, :16].min() == 255      # counter-clockwise: the top-left goes to bottom-left
    assert upright(frame, 270)[:16, -16:].min() == 255
    info, frames, _ = read_all(write_clip(tmp_path / "r.mp4", [frame] * 3, rotation=90, audio=False))
    assert (info.width, info.height, info.rotation) == (64, 96, 90)
    assert frames[0].rgb.shape == (96, 64, 3) and frames[0].rgb[-12:, 2:12].mean() > 200
    assert frames[0].rgb[:12, :12].mean() < 50


def test_a_clip_is_copied_with_its_rate_timestamps_and_audio(tmp_path):
    source = write_clip(tmp_path / "in.mp4", astronaut_frames(5), rate=30)
    out = tmp_path / "out.mov"
    with ClipReader(source) as clip, ClipWriter(out, clip) as writer:
        for item in clip.items():
            writer.write(255 - item.rgb, item) if isinstance(item, Frame) else writer.mux_audio(item)
    (info_in, frames_in, audio_in), (info_out, frames_out, audio_out) = read_all(source), read_all(out)
    assert (info_out.width, info_out.height, info_out.rate) == (160, 120, 30)
    assert len(frames_out) == 5 and len(audio_out) == len(audio_in) > 0
    times = [[float(f.pts * f.time_base) for f in frames] for frames in (frames_in, frames_out)]
    assert np.allclose(np.subtract(times[1], times[1][0]), np.subtract(times[0], times[0][0]), atol=1e-3)
    assert np.abs(frames_out[2].rgb.astype(int) - (255 - frames_in[2].rgb)).mean() < 4   # CRF 18


def test_stillness_is_one_where_nothing_moved_and_zero_where_it_did():
    before = np.full((4, 4), 100, np.uint8)
    now = before.copy()
    now[0, 0], now[1, 1], now[2, 2] = 104, 109, 160
    still = stillness(now, before)
    assert still[3, 3] == 1 and still[0, 0] == 1 and 0 < still[1, 1] < 1 and still[2, 2] == 0


def test_the_alpha_is_steadied_strip_by_strip_as_over_the_whole_frame():
    """The blend with the previous frame runs in strips on the runtime's threads: the same numbers as one pass."""
    from runtime.clip import ALPHA_MEMORY, TEMPORAL_ROWS, _blend, _steadied

    rng = np.random.default_rng(0)
    h, w = 3 * TEMPORAL_ROWS + 5, 64                      # strips, the last one short
    now, before = rng.random((2, h, w), dtype=np.float32) * 1.1 - 0.05
    luma = rng.integers(0, 256, (h, w), dtype=np.uint8)
    moved = np.clip(luma.astype(int) + rng.integers(-12, 13, (h, w)), 0, 255).astype(np.uint8)
    whole = np.clip(_blend(now, before, ALPHA_MEMORY, stillness(luma, moved)), 0, 1)
    steadied = _steadied(now, before, luma, moved)
    assert steadied.dtype == np.float32 and np.array_equal(steadied, whole)
    assert 0 < np.mean(steadied != np.clip(now, 0, 1)) < 1      # kept where still, not where it moved


def jittered_masks(frame_shape, n, seed=0):
    """A disc's mask at 1/4 of the frame, its outline jittered independently in every frame (a segmenter's
    flicker)."""
    h, w = frame_shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h // 4, :w // 4]
    return [(np.hypot(yy - h / 8, xx - w / 8) < h / 10 + rng.uniform(-1.5, 1.5, (h // 4, w // 4))).astype(np.float32)
            for _ in range(n)]


def test_the_state_steadies_a_still_frame_and_follows_a_moving_one(tiny_checkpoint):
    matter = Matter.from_artifact(tiny_checkpoint, refinement=None, band_refiner=None)
    still = [astronaut_frames(1, (128, 96))[0]] * 6
    masks = jittered_masks((96, 128), 6)

    def flicker(stabilise):
        matte = ClipMatte(matter, stabilise=stabilise)
        alphas = [matte(f, m) for f, m in zip(still, masks)]
        return np.mean([np.abs(a - b).mean() for a, b in zip(alphas[1:], alphas)])

    assert flicker(True) < 0.6 * flicker(False)
    # every pixel changes by 20 levels from frame to frame (twice the still tolerance, not a scene cut): each
    # frame is its own answer
    moving = [still[0] // 2 + np.uint8(20 * (i % 2)) for i in range(4)]
    steady, alone = ClipMatte(matter), ClipMatte(matter, stabilise=False)
    for f, m in zip(moving, masks):
        assert np.array_equal(steady(f, m), alone(f, m))
    assert steady.cuts == 0


def test_the_steadied_mask_is_passed_on_soft_where_the_outline_crawled(tiny_checkpoint):
    """Each frame's mask is thresholded, then steadied: the network's path gets 0 / 1 inside and outside and
    values between only along the outline, where the frames' masks disagreed; frame by frame it gets 0 / 1."""
    matter = Matter.from_artifact(tiny_checkpoint, refinement=None, band_refiner=None)
    seen, predict = [], matter.predict
    matter.predict = lambda rgb, mask=None, **options: (seen.append(mask), predict(rgb, mask=mask, **options))[1]
    frame, masks = astronaut_frames(1, (128, 96))[0], jittered_masks((96, 128), 4)
    soft = lambda m: (m > 0) & (m < 1)                       # noqa: E731
    for stabilise in (False, True):
        seen.clear()
        matte = ClipMatte(matter, stabilise=stabilise)
        for m in masks:
            matte(frame, m * 0.9 + 0.05)                     # a soft mask given: thresholded at 0.5 first
        assert not soft(seen[0]).any()
        outline = np.logical_or.reduce([m != masks[0] for m in masks])
        assert not soft(seen[-1]).any() if not stabilise else soft(seen[-1]).any()
        assert not (soft(seen[-1]) & ~outline).any()


def test_a_scene_cut_starts_afresh(tiny_checkpoint):
    matter = Matter.from_artifact(tiny_checkpoint, refinement=None, band_refiner=None)
    a, b = astronaut_frames(1, (128, 96))[0], np.full((96, 128, 3), 30, np.uint8)
    mask = jittered_masks((96, 128), 1)[0]
    matte = ClipMatte(matter)
    matte(a, mask), matte(a, mask)
    assert matte.cuts == 0
    matte(b, mask)
    assert matte.cuts == 1 and np.array_equal(matte.state.mask, mask)


def test_bokeh_of_a_clip_keeps_its_frames_rate_and_sound(tiny_checkpoint, tmp_path, capsys):
    source = write_clip(tmp_path / "clip.mp4", astronaut_frames(6), rate=24, rotation=270)
    out = tmp_path / "new" / "out.mp4"
    assert main(["bokeh", str(source), "-o", str(out), "--artifact", str(tiny_checkpoint), "--timings"]) == 0
    text = capsys.readouterr()
    assert "6 frames in" in text.err and "encode" in text.out
    assert streams(out) == {"video": ("h264", 6, 24), "audio": ("aac", streams(source)["audio"][1], 48000)}
    info, frames, _ = read_all(out)
    assert (info.width, info.height, info.rotation) == (120, 160, 0)     # upright, no rotation left


@pytest.mark.parametrize("case, problem", [
    ("corrupt", "not a readable video clip"),
    ("webm", "webm cannot carry the clip's aac audio"),
    ("mask", "a clip takes --mask auto"),
    ("missing", "clip.mp4: not found"),
    ("no-av", "video clips need PyAV: pip install av"),
    ("tiny", "frames are 6x4; both sides must be at least 8 px"),
])
def test_bad_clips_and_options_are_one_error_line(tiny_checkpoint, tmp_path, capsys, monkeypatch, case, problem):
    source = tmp_path / "clip.mp4"
    if case == "corrupt":
        source.write_bytes(np.random.default_rng(0).bytes(5000))
    elif case == "tiny":
        write_clip(source, astronaut_frames(2, size=(6, 4)), audio=False)
    elif case != "missing":
        write_clip(source, astronaut_frames(2))
    out = tmp_path / ("out.webm" if case == "webm" else "out.mp4")
    extra = ["--mask", str(source)] if case == "mask" else []
    if case == "no-av":
        monkeypatch.setitem(sys.modules, "av", None)       # import av raises ImportError
    assert main(["bokeh", str(source), "-o", str(out), "--artifact", str(tiny_checkpoint), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and problem in err[0], err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == (["clip.mp4"] if case != "missing" else [])


def test_bokeh_clip_takes_an_open_matter_and_a_callable_progress(tmp_path):
    """An artifact's path (which bokeh_file takes) failed at the first frame with a person, after frames were
    written; a progress that cannot be called failed after the first frame."""
    from runtime.clip import bokeh_clip

    write_clip(tmp_path / "clip.mp4", astronaut_frames(2))
    with pytest.raises(TypeError, match="matter must be an open runtime.matter.Matter"):
        bokeh_clip(tmp_path / "clip.mp4", tmp_path / "out.mp4", "weights/mobile-int8.pt")
    with pytest.raises(TypeError, match="on_frame must be callable"):
        bokeh_clip(tmp_path / "clip.mp4", tmp_path / "out.mp4", object.__new__(Matter), on_frame=3)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_bokeh_clip_and_clip_matte_name_an_argument_of_the_wrong_kind(tiny_checkpoint, tmp_path):
    """overwrite="no" replaced an existing output; the others failed inside pathlib, PyAV or the frame loop (a
    segmenter of "auto", a ClipMatte with no segmenter and no mask), naming no argument."""
    from runtime.clip import bokeh_clip

    write_clip(tmp_path / "clip.mp4", astronaut_frames(2))
    (tmp_path / "keep.mp4").write_bytes(b"the user's file")
    matter = Matter.from_artifact(tiny_checkpoint, refinement=None, band_refiner=None)
    clip, out = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    for args, options, error, words in (
            ((clip, tmp_path / "keep.mp4", matter), {"overwrite": "no"}, TypeError, "overwrite must be True or False"),
            ((clip, out, matter), {"segmenter": "auto"}, TypeError, "segmenter must be a runtime.person_mask"),
            ((clip, out, matter), {"stabilise": "no"}, TypeError, "stabilise must be True or False, got 'no'"),
            ((None, out, matter), {}, TypeError, "clip_path must be a path"),
            ((clip, "", matter), {}, ValueError, "out_path must be a non-empty path"),
            ((clip, str(tmp_path / "a\0b.mp4"), matter), {}, ValueError, "out_path .* holds a NUL byte")):
        with pytest.raises(error, match=words):
            bokeh_clip(*args, **options)
    assert (tmp_path / "keep.mp4").read_bytes() == b"the user's file" and not out.exists()
    with pytest.MonkeyPatch.context() as patch:       # a wrong matter is named before the segmenter opens
        patch.setattr("runtime.clip.PersonSegmenter", lambda: pytest.fail("the segmenter opened first"))
        with pytest.raises(TypeError, match="matter must be an open runtime.matter.Matter"):
            bokeh_clip(clip, out, "model.onnx")
    frame = astronaut_frames(1)[0]
    with pytest.raises(ValueError, match="give the frame's mask, or a PersonSegmenter"):
        ClipMatte(matter)(frame)
    with pytest.raises(TypeError, match="matter must be an open runtime.matter.Matter"):
        ClipMatte("model.onnx")
    with pytest.raises(TypeError, match="timer must be a runtime.timing.StageTimer or None, got int"):
        ClipMatte(matter)(frame, np.ones(frame.shape[:2], np.float32), timer=3)


@pytest.mark.parametrize("damage", ["cut", "zeroed"])
def test_a_streamed_clip_cut_short_or_damaged_is_refused_not_rendered_short(tiny_checkpoint, tmp_path, capsys, damage):
    """Matroska's demuxer stops at a cut or a damaged stretch without an error: the frames fall short of the
    duration the file declares, and the clip is refused (it was rendered short, exit 0)."""
    source = tmp_path / "clip.mkv"
    write_clip(source, astronaut_frames(20), rate=10)
    data = bytearray(source.read_bytes())
    at = int(len(data) * 0.6)
    data = data[:int(len(data) * 0.7)] if damage == "cut" else data[:at] + bytes(3000) + data[at + 3000:]
    source.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    assert main(["bokeh", str(source), "-o", str(out), "--artifact", str(tiny_checkpoint)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("bokeh: ")]   # progress
    assert len(err) == 1 and "s it declares): a truncated or damaged file" in err[0], err
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mkv"]


def test_dtssd_is_zero_for_the_truth_and_measures_flicker():
    rng = np.random.default_rng(0)
    gt = [cv2.GaussianBlur(rng.random((40, 50), dtype=np.float32), (5, 5), 2) for _ in range(4)]
    assert sequence_scores(gt, gt) == {"dtSSD": 0.0, "MESSDdt": 0.0}
    flicker = [g + 0.01 * (-1) ** t for t, g in enumerate(gt)]          # ±0.01 every other frame: Δ off by 0.02
    assert dtssd(flicker[1], flicker[0], gt[1], gt[0]) == pytest.approx(2.0, rel=1e-5)
    steady = [g + 0.01 for g in gt]                                      # a constant error does not flicker
    assert dtssd(steady[1], steady[0], gt[1], gt[0]) == pytest.approx(0.0, abs=1e-4)


def test_messddt_forgives_an_error_that_moves_with_the_subject():
    def square(x):
        a = np.zeros((64, 64), np.float32)
        a[20:44, x:x + 24] = 1.0
        return cv2.GaussianBlur(a, (7, 7), 2)

    gt = [square(10), square(13)]
    along = [np.clip(g + 0.2 * (g > 0.5), 0, 1.2) for g in gt]           # the same error, carried by the motion
    blinking = [gt[0] + 0.2 * (gt[0] > 0.5), gt[1]]                       # an error that vanishes
    assert messddt(along[1], along[0], gt[1], gt[0]) < 0.25 * messddt(blinking[1], blinking[0], gt[1], gt[0])


def test_procedural_clips_are_seeded_and_move():
    spec = ClipSpec(size=(72, 128), frames=3, motion_blur=2)
    a, b = make_clip(spec, 3), make_clip(spec, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames + a.alphas, b.frames + b.alphas))
    assert a.frames[0].shape == (72, 128, 3) and a.frames[0].dtype == np.uint8
    assert all(0 <= x.min() and x.max() <= 1 and x.dtype == np.float32 for x in a.alphas)
    assert 0.05 < (a.alphas[0] > 0.5).mean() < 0.8 and np.abs(a.alphas[2] - a.alphas[0]).max() > 0.2
    assert not np.array_equal(make_clip(spec, 4).alphas[0], a.alphas[0])


def test_eval_clips_writes_the_table_of_every_method(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "clips", "--clip-size", "64", "96", "--frames", "3", "--artifacts", str(tiny_checkpoint),
                 "--out", str(out)]) == 0
    result = json.loads((out / "eval-clips.json").read_text())
    assert list(result["means"]) == ["model, state across frames", "model, frame by frame", "guided filter",
                                     "raw mask"]
    assert len(result["rows"]) == 4 * len(result["set"]["kinds"])
    assert all(r["dtSSD"] > 0 and r["SAD"] > 0 for r in result["rows"])
    assert "| raw mask |" in capsys.readouterr().out and (out / "eval-clips.md").is_file()


def test_a_frame_without_a_person_is_left_out_and_carries_no_alpha(tiny_checkpoint):
    """The segmenter finding no person on the first frames, then a person, then none, then one again (the same
    picture throughout: no scene cut): no alpha for the empty frames and none carried across them; the
    stabilised mask takes a frame or two to follow."""
    class Scripted:                         # the segmenter's probabilities, frame after frame
        def __init__(self, script):
            self.answers = iter(script)

        def probability(self, rgb):
            return next(self.answers)

    yy, xx = np.mgrid[:256, :256]
    person = (np.hypot(yy - 128, xx - 128) < 80).astype(np.float32)
    script = [0 * person] * 2 + [person] * 4 + [0 * person] * 4 + [person] * 4
    matte = ClipMatte(Matter.from_artifact(tiny_checkpoint, refinement=None, band_refiner=None), Scripted(script))
    frame = cv2.resize(astronaut(), (128, 128), interpolation=cv2.INTER_AREA)
    found = []
    for _ in script:
        found.append(matte(frame) is not None)
        assert found[-1] or matte.state.alpha is None
    assert found == [False] * 3 + [True] * 4 + [False] * 4 + [True] * 3 and matte.cuts == 0


def test_the_clip_benchmark_writes_its_speed_and_quality_tables(tiny_checkpoint, tmp_path):
    from benchmarks.clip_runs import main as clip_runs

    quality = tmp_path / "eval"
    assert main(["eval", "clips", "--clip-size", "64", "96", "--frames", "2", "--artifacts", str(tiny_checkpoint),
                 "--out", str(quality)]) == 0
    assert clip_runs([str(tiny_checkpoint), "--frames", "3", "--size", "96", "128", "--quality",
                      str(quality / "eval-clips.json"), "--out-dir", str(tmp_path)]) == 0
    speed, table = (json.loads(next(tmp_path.glob(f"{kind}-*.json")).read_text())
                    for kind in ("clip-speed", "clip-quality"))
    assert speed["rows"][0]["frames"] == 3 and speed["rows"][0]["frames per s"] > 0
    assert "model ms" in speed["columns"] and "encode ms" in speed["columns"]
    assert [r["method"] for r in table["rows"]][0] == "model, state across frames" and "dtSSD" in table["columns"]
    hdr = tmp_path / "hdr"
    assert clip_runs([str(tiny_checkpoint), "--frames", "2", "--size", "96", "128", "--hdr",
                      "--out-dir", str(hdr)]) == 0
    speed = json.loads(next(hdr.glob("clip-speed-*.json")).read_text())
    assert speed["rows"][0]["frames"] == 2 and "HLG" in speed["method"]


def test_colours_are_read_by_their_tags_and_written_tagged_bt709(tmp_path):
    colour = (200, 40, 60)                                  # saturated: BT.601 and BT.709 differ by 10 levels here
    frames = [np.full((720, 1280, 3), colour, np.uint8)] * 2
    source = write_clip(tmp_path / "in.mp4", frames, audio=False)           # tagged BT.601
    out = tmp_path / "out.mp4"
    with ClipReader(source) as clip, ClipWriter(out, clip) as writer:
        for frame in clip.items():
            assert np.abs(frame.rgb[360, 640].astype(int) - colour).max() <= 4    # 8-bit 4:2:0 rounding
            writer.write(frame.rgb, frame)
    with av.open(str(out)) as c:
        context = c.streams.video[0].codec_context
        assert (context.colorspace, context.color_primaries, context.color_trc, context.color_range) == (1, 1, 1, 1)
    _, back, _ = read_all(out)
    assert np.abs(back[0].rgb[360, 640].astype(int) - colour).max() <= 4


def test_a_full_range_frame_is_read_as_full_range():
    """A yuv420p frame tagged full (JPEG) range, as an HEVC decoder gives it (H.264's comes as yuvj420p)."""
    colour = (250, 12, 128)                     # near the ends, where limited and full range differ most
    rgb = av.VideoFrame.from_ndarray(np.full((64, 96, 3), colour, np.uint8), format="rgb24")
    yuv = rgb.reformat(format="yuv420p", dst_colorspace="itu601", dst_color_range="JPEG")
    frame = av.VideoFrame.from_ndarray(yuv.to_ndarray(), format="yuv420p")
    frame.colorspace, frame.color_range = 6, 2                     # BT.601 (SMPTE 170M), full range
    assert np.abs(to_rgb(frame)[32, 48].astype(int) - colour).max() <= 4
    frame.color_range = 0                                          # untagged: limited, the colours stretched
    assert np.abs(to_rgb(frame)[32, 48].astype(int) - colour).max() > 8


def greys(levels, size=(48, 64)):
    """Flat grey uint16 frames, one per signal level (0..1): values whose conversion is known."""
    return [np.full((*size, 3), round(level * 65535), np.uint16) for level in levels]


def sdr_white():
    """SDR's value for HDR reference white: 1 through the tone curve, encoded for gamma 2.4."""
    from runtime.hdr import SDR_GAMMA, tone_map
    return round(255 * float(tone_map(np.float32([1.0]))[0]) ** (1 / SDR_GAMMA))


def test_an_hdr_frame_converted_strip_by_strip_is_the_one_pass_conversion():
    """to_sdr runs in strips on the runtime's threads: the same 8-bit values as one pass over the frame."""
    from runtime.hdr import HLG, PQ, STRIP_ROWS, _to_sdr, to_sdr

    rng = np.random.default_rng(0)
    frame = (rng.random((3 * STRIP_ROWS + 7, 61, 3)) * 65535).astype(np.uint16)
    for transfer, primaries in ((HLG, None), (PQ, None), (HLG, 1)):
        assert np.array_equal(to_sdr(frame, transfer, primaries), _to_sdr(frame, transfer, primaries))


def test_hdr_signals_are_converted_to_sdr_light_by_their_transfer():
    from runtime.hdr import HLG, PQ, REFERENCE_WHITE, hlg_scene_light, pq_display_light, relative_light, to_sdr

    assert pq_display_light(1.0) == pytest.approx(10000) and pq_display_light(0.0) == 0
    assert hlg_scene_light(0.5) == pytest.approx(1 / 12) and hlg_scene_light(1.0) == pytest.approx(1.0)
    pq_white = 0.58069   # ST 2084's signal for 203 cd/m²
    assert pq_display_light(pq_white) == pytest.approx(REFERENCE_WHITE, rel=2e-3)
    for transfer, white in ((HLG, 0.75), (PQ, pq_white)):       # BT.2408's reference white of each
        grey = np.full((2, 2, 3), round(white * 65535), np.uint16)
        assert relative_light(grey, transfer) == pytest.approx(1.0, abs=5e-3)
        assert np.all(np.abs(to_sdr(grey, transfer).astype(int) - sdr_white()) <= 1)
        ramp = np.repeat(np.linspace(0, 65535, 64).astype(np.uint16)[None, :, None], 3, axis=2)
        sdr = to_sdr(ramp, transfer)[0, :, 0].astype(int)
        assert sdr[0] == 0 and sdr[-1] == 255 and np.all(np.diff(sdr) >= 0)
    red = np.zeros((1, 1, 3), np.uint16)
    red[..., 0] = round(0.75 * 65535)                # BT.2020's red lies outside BT.709: clipped, not hue-shifted
    out = to_sdr(red, HLG)[0, 0]
    assert out[0] > 200 and out[1] == out[2] == 0
    orange = np.zeros((1, 1, 3), np.uint16)
    orange[..., 0], orange[..., 1] = round(0.75 * 65535), round(0.5 * 65535)
    on_2020, on_709 = (to_sdr(orange, HLG, primaries)[0, 0].astype(int) for primaries in (9, 1))
    assert np.ptp(on_709) < np.ptp(on_2020)        # no gamut change on BT.709 primaries: BT.2020's widens it
    grey = np.full((1, 1, 3), round(0.6 * 65535), np.uint16)
    assert np.array_equal(to_sdr(grey, HLG, 1), to_sdr(grey, HLG, 9))   # a grey is the same on both


@pytest.mark.parametrize("transfer, name, white", [(18, "HLG", 0.75), (16, "PQ", 0.58069)])
def test_an_hdr_clip_is_read_as_sdr(tmp_path, transfer, name, white):
    clip = encode_hdr_clip(tmp_path / f"{name}.mp4", greys([0.0, white, 1.0]), transfer)
    info, frames, _ = read_all(clip)
    assert info.hdr == name
    means = [float(f.rgb.mean()) for f in frames]
    assert means[0] <= 2 and abs(means[1] - sdr_white()) <= 2 and means[2] >= 254
    sdr_info, _, _ = read_all(write_clip(tmp_path / "sdr.mp4", [np.zeros((48, 64, 3), np.uint8)] * 2))
    assert sdr_info.hdr is None


def test_bokeh_of_an_hdr_clip_says_it_was_converted(tiny_checkpoint, tmp_path, capsys):
    frames = [(cv2.resize(f, (64, 48)).astype(np.uint16) * 257 * 3 // 4).astype(np.uint16) for f in astronaut_frames(3)]
    clip = encode_hdr_clip(tmp_path / "hlg.mp4", frames, transfer=18)
    assert main(["bokeh", str(clip), "-o", str(tmp_path / "out.mp4"), "--artifact", str(tiny_checkpoint)]) == 0
    assert "HLG HDR converted to SDR BT.709" in capsys.readouterr().err
    info, written, _ = read_all(tmp_path / "out.mp4")
    assert info.hdr is None and len(written) == 3


def encode_vfr(path, frames, times, rate=25, audio_codec=None):
    """A clip whose frames are shown at ``times`` (seconds; a variable rate), with a short tone in
    ``audio_codec`` when given."""
    with av.open(str(path), "w") as c:
        video = c.add_stream("libx264" if path.suffix != ".webm" else "libvpx-vp9", rate=rate)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        video.codec_context.time_base = Fraction(1, 16000)
        if audio_codec:
            audio = c.add_stream(audio_codec, rate=48000)
            tone = (np.sin(np.arange(48000 // 2) * 2 * np.pi * 440 / 48000) * 0.2).astype(np.float32)
            samples = av.AudioFrame.from_ndarray(tone[None], format="flt", layout="mono")
            samples.sample_rate = 48000
            for packet in [*audio.encode(samples), *audio.encode(None)]:
                c.mux(packet)
        for rgb, t in zip(frames, times):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = round(t * 16000), Fraction(1, 16000)
            for packet in video.encode(frame):
                c.mux(packet)
        for packet in video.encode(None):
            c.mux(packet)
    return path


def test_a_variable_rate_clip_keeps_every_frames_time(tmp_path):
    """Frames 40 and 120 ms apart (a mean of 12.5 frames/s): each keeps its own time, none lands on a tick of
    the mean rate shared with another (a muxer's 'Invalid argument')."""
    times = [0.0, 0.04, 0.16, 0.2, 0.32, 0.36]
    source = encode_vfr(tmp_path / "vfr.mp4", astronaut_frames(6), times, rate=12)
    out = tmp_path / "out.mp4"
    with ClipReader(source) as clip, ClipWriter(out, clip) as writer:
        for item in clip.items():
            writer.write(item.rgb, item) if isinstance(item, Frame) else writer.mux_audio(item)
    assert [float(f.pts * f.time_base) for f in read_all(out)[1]] == pytest.approx(times, abs=1e-3)


def test_a_muxer_that_refuses_the_clip_is_named_by_the_output_not_its_temporary_file(tiny_checkpoint, tmp_path,
                                                                                     capsys):
    """Opus audio into MOV: the container lists the codec, its muxer refuses it when the header is written, which
    the writer does when it is made, before any frame is rendered (it was at the first frame's packet)."""
    from common.errors import DataError

    source = encode_vfr(tmp_path / "clip.webm", astronaut_frames(3), [0.0, 0.04, 0.08], audio_codec="libopus")
    out = tmp_path / "out.mov"
    with ClipReader(source) as clip, pytest.raises(DataError, match="the mov muxer refused the clip"):
        ClipWriter(tmp_path / "direct.mov", clip)
    (tmp_path / "direct.mov").unlink()
    assert main(["bokeh", str(source), "-o", str(out), "--artifact", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out}: the mov muxer refused the clip (can mov carry its "
                                               f"opus audio?"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.webm"]


@pytest.mark.parametrize("kind, message", [("missing", "no such clip"), ("folder", "is a directory, not a clip")])
def test_a_missing_clip_or_a_folder_is_named_as_such(tmp_path, kind, message):
    from common.errors import DataError
    path = tmp_path / "clip.mp4"
    if kind == "folder":
        path.mkdir()
    with pytest.raises(DataError, match=f"clip.mp4: {message}"):
        ClipReader(path)


def encode_two_sizes(path, first, then):
    """A Matroska clip of MJPEG frames: three of ``first``, then three of ``then`` (stream-level size change)."""
    with av.open(str(path), "w", format="matroska") as c:
        video = c.add_stream("mjpeg", rate=10)
        video.height, video.width = first[0].shape[:2]
        video.pix_fmt = "yuvj420p"
        other = av.CodecContext.create("mjpeg", "w")
        other.height, other.width = then[0].shape[:2]
        other.pix_fmt, other.time_base = "yuvj420p", Fraction(1, 10)
        for i, (rgb, codec) in enumerate([(f, video) for f in first] + [(f, other) for f in then]):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
            frame.pts = i
            for packet in codec.encode(frame):
                packet.stream, packet.pts, packet.dts = video, i, i
                c.mux(packet)
    return path


def encode_mirrored(path, frames):
    """A clip whose display matrix mirrors its frames left to right (FFmpeg's rotation reads it as 180°)."""
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=25)
    video.height, video.width = frames[0].shape[:2]
    video.pix_fmt = "yuv420p"
    video.set_display_matrix([-65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30])
    for frame in frames:
        for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            out.mux(packet)
    for packet in video.encode(None):
        out.mux(packet)
    out.close()
    return path


@pytest.mark.parametrize("case, problem", [
    ("larger", "frame 3 is 160x120 where the clip's first frame is 96x72: a clip whose frame size changes is not "
               "supported"),
    ("turned", "its display matrix turns the frames by 45°: only quarter turns are supported"),
    ("mirrored", "its display matrix mirrors the frames: only quarter turns are supported"),
])
def test_a_clip_that_cannot_make_one_upright_stream_is_refused(tiny_checkpoint, tmp_path, capsys, case, problem):
    """Frames that change size were cropped into the first size's stream (or failed in OpenCV); a turn by 45° was
    read as a quarter turn's swapped sides and stretched."""
    if case == "larger":
        source = encode_two_sizes(tmp_path / "clip.mkv", astronaut_frames(3, (96, 72)), astronaut_frames(3))
    elif case == "mirrored":       # was turned half round: upside down where players mirror it
        source = encode_mirrored(tmp_path / "clip.mp4", astronaut_frames(3))
    else:
        source = write_clip(tmp_path / "clip.mp4", astronaut_frames(3), rotation=45, audio=False)
    out = tmp_path / "out.mp4"
    assert main(["bokeh", str(source), "-o", str(out), "--artifact", str(tiny_checkpoint)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("bokeh: ")]   # progress
    assert len(err) == 1 and err[0] == f"error: {source}: {problem}", err
    assert [p.name for p in tmp_path.iterdir()] == [source.name]


def test_a_streamed_clip_that_starts_late_or_whose_audio_is_longer_is_whole(tmp_path):
    """Its end is compared on the file's clock: a Matroska clip whose first frame is at 5 s (the container says
    5.5 s) or whose audio outlasts its video by 1.5 s was refused as cut short."""
    late = encode_vfr(tmp_path / "late.mkv", astronaut_frames(5), [5.0, 5.1, 5.2, 5.3, 5.4], rate=10)
    long_audio = tmp_path / "long_audio.mkv"
    encode_vfr(long_audio, astronaut_frames(2), [0.0, 0.04], audio_codec="aac")     # half a second of tone
    for path, count in ((late, 5), (long_audio, 2)):
        assert len(read_all(path)[1]) == count


def test_clip_frames_are_read_as_photos_and_a_new_size_starts_afresh(tiny_checkpoint):
    """Gray, float and 16-bit frames are converted as a photo is (the luma of the stillness test was read as uint8
    from them, or OpenCV failed); a frame of another size is a scene cut (OpenCV failed on the two lumas)."""
    matter = Matter.from_artifact(tiny_checkpoint, refinement=None, band_refiner=None)
    frame = astronaut_frames(1, (128, 96))[0]
    mask = jittered_masks((96, 128), 1)[0]
    reference = ClipMatte(matter)(frame, mask)
    for other in (frame.astype(np.float32) / 255, frame.astype(np.uint16) * 257):
        assert np.array_equal(ClipMatte(matter)(other, mask), reference)
    assert ClipMatte(matter)(frame[..., 0], mask).shape == (96, 128)
    matte = ClipMatte(matter)
    matte(frame, mask)
    bigger = cv2.resize(frame, (256, 192))
    assert matte(bigger, mask).shape == (192, 256) and matte.cuts == 1
    with pytest.raises(TypeError, match="must be a numpy array"):
        matte(None, mask)


def test_frames_whose_timestamps_go_back_are_written_one_frame_after_the_last(tmp_path):
    """An AVI's H.264 with B-frames decodes with timestamps 1, 3, 2: the muxer refused the third ('Invalid
    argument', named as the output's fault)."""
    source = write_clip(tmp_path / "in.mp4", astronaut_frames(3), rate=10, audio=False)
    out = tmp_path / "out.mp4"
    with ClipReader(source) as clip, ClipWriter(out, clip) as writer:
        frames = [f for f in clip.items() if isinstance(f, Frame)]
        tick = frames[1].pts - frames[0].pts
        for frame, pts in zip(frames, (1, 3, 2)):
            writer.write(frame.rgb, Frame(frame.index, frame.rgb, pts * tick, frame.time_base))
    assert [round(f.pts * f.time_base * 10) for f in read_all(out)[1]] == [1, 3, 4]


@pytest.mark.parametrize("kind", ["png", "heic"])
def test_a_still_image_named_as_a_clip_is_refused(tiny_checkpoint, tmp_path, capsys, kind):
    """FFmpeg opens a PNG or a HEIC photo as a clip of one frame (a HEIC's first tile): it rendered a one-frame
    video."""
    from PIL import Image

    source = tmp_path / "photo.mp4"
    image = Image.fromarray(astronaut()[::4, ::4])
    if kind == "heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
    image.save(source, format=kind.upper() if kind == "png" else "HEIF")
    out = tmp_path / "out.mp4"
    assert main(["bokeh", str(source), "-o", str(out), "--artifact", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a still image" in err[0] and "not a video clip" in err[0], err
    assert [p.name for p in tmp_path.iterdir()] == [source.name]


def test_a_clip_named_like_an_ffmpeg_protocol_is_that_file(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """FFmpeg reads "pipe:0.mp4" as standard input and "file:clip.mp4" as clip.mp4: a relative name starting so
    was refused, or rendered another file than the one named."""
    monkeypatch.chdir(tmp_path)
    write_clip(tmp_path / "pipe:0.mp4", astronaut_frames(2), audio=False)
    write_clip(tmp_path / "clip.mp4", astronaut_frames(2), audio=False)
    (tmp_path / "file:clip.mp4").write_text("not a clip")
    assert main(["bokeh", "pipe:0.mp4", "-o", "pipe:1.mp4", "--artifact", str(tiny_checkpoint)]) == 0
    assert "2 frames in" in capsys.readouterr().err and len(read_all(tmp_path / "pipe:1.mp4")[1]) == 2
    assert main(["bokeh", "file:clip.mp4", "-o", "out.mp4", "--artifact", str(tiny_checkpoint)]) == 2
    assert "file:clip.mp4: not a readable video clip" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


def test_clip_messages_say_what_was_given(tiny_checkpoint, tmp_path, capsys):
    source = write_clip(tmp_path / "clip.mp4", astronaut_frames(1), audio=False)
    assert main(["bokeh", str(source), "-o", str(tmp_path / "out.mp4"), "--mask", "none",
                 "--artifact", str(tiny_checkpoint)]) == 2
    assert "a clip takes --mask auto (the person segmenter on every frame), not --mask none" in capsys.readouterr().err
    assert main(["bokeh", str(source), "-o", str(tmp_path / ".mp4"), "--artifact", str(tiny_checkpoint)]) == 2
    assert "got no suffix ('.mp4' is a name, not a suffix: give one before it, e.g. out.mp4)" in capsys.readouterr().err
    assert main(["bokeh", str(source), "-o", str(tmp_path / "out.mp4"), "--artifact", str(tiny_checkpoint)]) == 0
    assert "1 frame in" in capsys.readouterr().err


def test_the_demo_clip_section_scales_its_sheet_of_frames_to_the_reports_width(tiny_checkpoint, tmp_path,
                                                                               monkeypatch):
    """make demo's clip (adamat.clip_demo) writes clip.mp4 at the clips' size and its sheet of input beside bokeh,
    three frames, scaled down to SHEET_WIDTH (1080p frames side by side are 3840 px wide)."""
    import adamat.clip_demo as demo
    from evaluation.clip_eval import ClipSet

    monkeypatch.setattr(demo, "SHEET_WIDTH", 96)
    text = demo.clip_demo(tiny_checkpoint, "tiny", ClipSet(size=(64, 96), frames=3, kinds=("fur",)), tmp_path,
                          lambda message: None)
    sheet = cv2.imread(str(tmp_path / "clip_frames.png"))
    assert sheet.shape[:2] == (96, 96) and "96×64" in text          # 3 × 64 rows of 2 × 96 columns, halved
    with av.open(str(tmp_path / "clip.mp4")) as clip:
        assert (clip.streams.video[0].width, clip.streams.video[0].height) == (96, 64)


def test_an_encoder_failure_on_its_thread_is_one_error_line_and_no_file(tiny_checkpoint, tmp_path, capsys,
                                                                         monkeypatch):
    """Frames are encoded on the writer's own thread: a failure there (here the third frame's packets refused) is
    raised in the caller, printed as one error line, and the output is not left half-written."""
    from common.errors import DataError

    source = write_clip(tmp_path / "clip.mp4", astronaut_frames(8), audio=False)
    out = tmp_path / "out.mp4"
    encode, calls = ClipWriter._encode, []

    def refused_at_the_third(self, frame):
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise DataError("the mp4 muxer refused the clip: Invalid argument", out)
        encode(self, frame)

    monkeypatch.setattr(ClipWriter, "_encode", refused_at_the_third)
    assert main(["bokeh", str(source), "-o", str(out), "--artifact", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if not line.startswith("bokeh:")] == [   # the progress bar aside
        f"error: {out}: the mp4 muxer refused the clip: Invalid argument"], err
    assert set(calls) == {"adamat-encoder"} and 3 <= len(calls) < 8     # stopped soon after, off the main thread
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
