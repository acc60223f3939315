"""Video clips in and out, as a phone writes them: frames decoded one at a time, upright, and the audio carried.

    with ClipReader("clip.mp4") as clip, ClipWriter("out.mp4", clip) as out:
        for item in clip.items():                  # in the file's order: video frames and audio packets
            if isinstance(item, Frame):
                out.write(render(item.rgb), item)  # uint8 (H, W, 3) RGB, upright
            else:
                out.mux_audio(item)

PyAV (``av`` on PyPI, FFmpeg in its wheels) decodes and encodes; it is imported when a clip is opened, and its
absence is one clear error. A frame is turned upright by the stream's display matrix (a phone shooting portrait
stores landscape frames with a 90° rotation); the output is written upright with no rotation, as a photo's is
written with EXIF orientation 1, at the input's frame rate and timestamps. The audio is copied packet by packet,
never decoded (a container that cannot hold the clip's audio codec is refused before any work). Video is H.264
(``libx264``, CRF :data:`CRF`) in MP4, MOV and Matroska, VP9 in WebM, SDR BT.709: an HDR clip (HLG or PQ, as a
phone records by default) is converted to SDR as it is read (:mod:`runtime.hdr`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from common.errors import DataError
from common.image_files import reading_problem
from common.outputs import check_file_path, described_suffix
from runtime.errors import BackendUnavailable
from runtime.hdr import TRANSFERS, is_hdr, to_sdr
from runtime.overlap import Behind
from runtime.preprocess import MIN_SIDE

CLIP_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm")
FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
VIDEO_CODECS = {".webm": "libvpx-vp9"}     # every other container: libx264
CRF = 18                                   # visually lossless H.264 / VP9 quality
UNSPECIFIED_SPACE, UNSPECIFIED_RANGE = 2, 0  # FFmpeg's AVCOL_SPC_UNSPECIFIED, AVCOL_RANGE_UNSPECIFIED
BT709_TAGS = (1, 1, 1, 1)                  # colour space, primaries, transfer: BT.709; range: limited (MPEG)
X264 = {"preset": "veryfast"}              # libx264's speed / size trade-off
VP9 = {"deadline": "realtime", "cpu-used": "8", "b": "0"}   # libvpx-vp9 in constant quality, its fastest
BEHIND = 2                                 # rendered frames waiting for the encoder's thread, at most


STILL_FORMATS = ("image2", "image2pipe")   # and every "*_pipe": FFmpeg's demuxers of still images
STILL_BRANDS = ("heic", "heix", "heim", "heis", "mif1", "avif")   # ISO files of one image (HEIF, AVIF), which
                                                                  # FFmpeg opens as a clip of one tile

SHORTFALL_SECONDS = 0.25   # frames missing from the declared duration beyond this, 10 % of it and two frames:
SHORTFALL_SHARE = 0.10     # a damaged clip (audio a little longer than the video is declared in the container's)


@dataclass
class _Span:
    """The time the decoded frames cover: from the first frame's start to the last one's end."""

    first: float | None = None
    last: float | None = None

    def add(self, frame) -> None:
        if frame.pts is not None and frame.time_base:
            at = float(frame.pts * frame.time_base)
            self.first = at if self.first is None else min(self.first, at)
            self.last = at if self.last is None else max(self.last, at)

    def seconds(self, rate: Fraction) -> float | None:
        return None if self.first is None else self.last - self.first + 1 / float(rate)


def is_clip(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CLIP_SUFFIXES


def _codec_name(stream) -> str:
    """A stream's codec as people name it ("mp3"), not its decoder's name ("mp3float")."""
    codec = stream.codec_context.codec
    return getattr(codec, "canonical_name", None) or codec.name


def _file_url(path: Path) -> str:
    """FFmpeg's name of the file ``path``: ``file:`` and the absolute path, so a name that starts like one of
    its protocols ("pipe:0.mp4", "file:base.mp4", "http:…") is read or written as the file it names."""
    return "file:" + str(path.absolute())


def _av():
    try:
        import av
    except ImportError:
        raise BackendUnavailable("video clips need PyAV: pip install av") from None
    return av


@dataclass(frozen=True)
class ClipInfo:
    width: int                  # upright
    height: int
    rate: Fraction              # frames per second (the stream's average rate)
    frames: int | None          # as the container says (None: unknown)
    rotation: int               # degrees counter-clockwise the stored frames are turned to be upright
    audio: bool                 # whether it has an audio stream (the first one is carried)
    hdr: str | None = None      # "HLG" or "PQ": converted to SDR BT.709 as it is read; None: SDR


@dataclass(frozen=True)
class Frame:
    index: int
    rgb: np.ndarray             # uint8 (H, W, 3), upright
    pts: int | None
    time_base: Fraction | None


def to_rgb(frame) -> np.ndarray:
    """uint8 (H, W, 3) SDR RGB of a decoded frame by its own colour tags (matrix and range); an untagged one as
    players read it: BT.709 from 720 lines up, BT.601 below, limited range. An HDR frame (the HLG or PQ
    transfer) is read at 16 bits and converted to SDR BT.709 (:mod:`runtime.hdr`)."""
    space = None if frame.colorspace not in (None, UNSPECIFIED_SPACE) else "itu709" if frame.height >= 720 else "itu601"
    ranged = frame.color_range if frame.color_range not in (None, UNSPECIFIED_RANGE) else "MPEG"
    transfer = hdr_transfer(frame)
    if transfer is None:
        return frame.reformat(format="rgb24", src_colorspace=space, src_color_range=ranged).to_ndarray()
    rgb16 = frame.reformat(format="rgb48le", src_colorspace=space, src_color_range=ranged).to_ndarray()
    return to_sdr(rgb16, transfer, getattr(frame, "color_primaries", None))


def hdr_transfer(frame) -> int | None:
    """The frame's HDR transfer (:data:`runtime.hdr.HLG` or :data:`runtime.hdr.PQ`), or None for SDR."""
    transfer = getattr(frame, "color_trc", None)
    return int(transfer) if is_hdr(transfer) else None


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """The stored frame turned ``rotation`` degrees counter-clockwise (a multiple of 90), as displayed."""
    return np.ascontiguousarray(np.rot90(rgb, k=(round(rotation / 90) % 4)))


class ClipReader:
    """A clip's frames (upright RGB) and audio packets, in file order. DataError for a file that is not a
    readable clip with a video stream."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        problem = reading_problem(self.path, missing="no such clip", folder="is a directory, not a clip")
        if problem:
            raise DataError(problem, self.path)
        self._open()
        self.info = self._probe()      # decodes the first frame (its rotation), then opens the file afresh
        self.close()
        self._open()

    def _open(self) -> None:
        av = _av()
        try:
            self._container = av.open(_file_url(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise DataError(f"not a readable video clip ({_reason(e)})", self.path) from None
        if not self._container.streams.video:
            self._container.close()
            raise DataError("has no video stream", self.path)
        still = _still_image(self._container)
        if still:
            self._container.close()
            raise DataError(f"is a still image ({still}), not a video clip: render it as a photo, under its own "
                            "suffix", self.path)
        self._video = self._container.streams.video[0]
        self._video.thread_type = "AUTO"

    def _probe(self) -> ClipInfo:
        first = next(self._decoded(), None)
        if first is None:
            self.close()
            raise DataError("has no decodable video frame", self.path)
        rotation = int(first.rotation or 0) % 360
        if _mirrored(first):
            self.close()
            raise DataError("its display matrix mirrors the frames: only quarter turns are supported", self.path)
        if rotation % 90:
            self.close()
            raise DataError(f"its display matrix turns the frames by {rotation}°: only quarter turns are supported",
                            self.path)
        h, w = first.height, first.width
        if min(h, w) < MIN_SIDE:   # as a photo's: too small to carry a matte
            self.close()
            raise DataError(f"frames are {w}x{h}; both sides must be at least {MIN_SIDE} px", self.path)
        if rotation % 180:
            h, w = w, h
        rate = self._video.average_rate or self._video.guessed_rate or Fraction(30)
        has_audio = bool(self._container.streams.audio)
        transfer = hdr_transfer(first)
        return ClipInfo(w, h, Fraction(rate), self._video.frames or None, rotation, has_audio,
                        None if transfer is None else TRANSFERS[transfer])

    def _decoded(self):
        av = _av()
        try:
            yield from self._container.decode(self._video)
        except av.error.FFmpegError as e:
            raise DataError(f"cannot decode the clip ({_reason(e)})", self.path) from None

    def items(self) -> Iterator[Frame | Any]:
        """Video frames (:class:`Frame`) and audio packets, in the order the file holds them."""
        av = _av()
        streams = [self._video, *self._container.streams.audio[:1]]
        index, span = 0, _Span()
        try:
            for packet in self._container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None:        # the demuxer's empty flush packet has none
                        yield packet
                    continue
                for frame in packet.decode():
                    rgb = upright(to_rgb(frame), self.info.rotation)
                    self._check_size(rgb, index)
                    yield Frame(index, rgb, frame.pts, frame.time_base)
                    span.add(frame)
                    index += 1
        except av.error.FFmpegError as e:
            raise DataError(f"cannot decode the clip at frame {index} ({_reason(e)})", self.path) from None
        self._check_complete(index, span)

    def _check_size(self, rgb: np.ndarray, index: int) -> None:
        """DataError where a frame's size is not the first frame's (one output stream has one size)."""
        if rgb.shape[:2] != (self.info.height, self.info.width):
            raise DataError(f"frame {index} is {rgb.shape[1]}x{rgb.shape[0]} where the clip's first frame is "
                            f"{self.info.width}x{self.info.height}: a clip whose frame size changes is not supported",
                            self.path)

    def _check_complete(self, frames: int, span: _Span) -> None:
        """DataError where the frames decoded end clearly before the video's end as the file declares it (a
        streamed container, Matroska or WebM, cut short or damaged: its demuxer stops there without an error).
        Ends are compared on the file's clock, so a clip whose first frame is not at 0 is measured from it."""
        end = self._declared_end()
        if end is None or span.first is None:
            return
        seconds, declared = span.seconds(self.info.rate), end - span.first
        if declared - seconds > max(SHORTFALL_SECONDS, SHORTFALL_SHARE * declared, 2 / float(self.info.rate)):
            raise DataError(f"cannot decode the clip past frame {frames} ({seconds:.2f} s of the {declared:.2f} s "
                            "it declares): a truncated or damaged file", self.path)

    def _declared_end(self) -> float | None:
        """When the video ends on the file's clock, as declared: its track's ``DURATION`` tag (Matroska and WebM
        write the track's end there; FFmpeg gives their video stream the container's duration, the audio's where
        it is longer), else the video stream's start plus its duration, else, for a clip without audio (whose
        audio may outlast the video), the container's duration. None: not declared."""
        video = self._video
        tagged = _clock_seconds(video.metadata.get("DURATION"))
        if tagged is not None:
            return tagged
        if video.duration and video.time_base:
            return float(((video.start_time or 0) + video.duration) * video.time_base)
        if self._container.duration and not self._container.streams.audio:
            return self._container.duration / 1_000_000       # in AV_TIME_BASE units
        return None

    @property
    def video_time_base(self) -> Fraction:
        return self._video.time_base

    @property
    def audio_stream(self):
        """The audio stream carried (PyAV), or None."""
        return self._container.streams.audio[0] if self.info.audio else None

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "ClipReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _still_image(container) -> str | None:
    """The kind of still image an opened file is ("png", "HEIF heic"), or None for a clip."""
    name = container.format.name
    if name in STILL_FORMATS or name.endswith("_pipe"):
        return name.removesuffix("_pipe")
    brand = container.metadata.get("major_brand", "").strip().lower()
    return f"HEIF {brand}" if brand in STILL_BRANDS else None


def _mirrored(frame) -> bool:
    """Whether ``frame``'s display matrix (FFmpeg's 3×3 of int32, its 2×2 part in 16.16 fixed point) flips the
    picture: a negative determinant. ``frame.rotation`` reads the angle only, and turned a mirror half round."""
    side_data = getattr(frame, "side_data", None)
    matrix = None if side_data is None else side_data.get("DISPLAYMATRIX")
    if matrix is None:
        return False
    a, b, _, c, d = np.frombuffer(bytes(matrix), np.int32, count=5).astype(np.int64)
    return a * d - b * c < 0


def check_clip_output(path: str | Path) -> Path:
    """``path`` as a Path once it names a file (:func:`common.outputs.check_file_path`) whose suffix is a clip
    container this module writes; DataError naming it otherwise."""
    path = check_file_path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"a clip's output must be {', '.join(FORMATS)}, got {described_suffix(path)}", path)
    return path


class ClipWriter:
    """Upright frames encoded at the input's rate and timestamps, its audio packets copied. ``path``: the file to
    write; ``final``: the name it will be published under (its suffix names the container), when ``path`` is a
    temporary file. DataError when the container cannot hold the clip's audio codec.

    The frames are converted to YUV, encoded and written on a thread of their own (:class:`runtime.overlap.Behind`,
    at most :data:`BEHIND` frames waiting), beside the rendering of the next; an error there is raised by the next
    ``write``, ``mux_audio`` or ``close``."""

    def __init__(self, path: str | Path, clip: ClipReader, final: Path | None = None):
        av = _av()
        info = clip.info
        self.path = Path(path)
        suffix = (final or self.path).suffix.lower()
        self._container = av.open(_file_url(self.path), "w", format=FORMATS[suffix])
        codec = VIDEO_CODECS.get(suffix, "libx264")
        self._video = self._container.add_stream(codec, rate=info.rate)
        self._video.width, self._video.height = _even(info.width), _even(info.height)
        self._video.pix_fmt = "yuv420p"
        # the input's clock: a variable-rate clip's timestamps kept as they are, none rounded onto one tick of
        # 1 / its mean rate (two frames on one tick: a muxer's "Invalid argument")
        self._video.codec_context.time_base = clip.video_time_base
        self._tick = max(1, round(1 / (info.rate * clip.video_time_base)))   # one frame on that clock
        self._last_pts: int | None = None
        context = self._video.codec_context         # tagged BT.709, limited range: what it is converted with
        context.colorspace, context.color_primaries, context.color_trc, context.color_range = BT709_TAGS
        self._video.options = {"crf": str(CRF)} | (X264 if codec == "libx264" else VP9)
        audio = clip.audio_stream
        container, others = FORMATS[suffix], ", ".join(s for s in FORMATS if FORMATS[s] != FORMATS[suffix])
        self._named = final or path                 # what errors name: the output, not its temporary file
        if audio is not None and audio.codec_context.name not in self._container.supported_codecs:
            self._container.close()
            raise DataError(f"{container} cannot carry the clip's {_codec_name(audio)} audio: write one of "
                            f"{others}", self._named)
        self._audio = None if audio is None else self._container.add_stream_from_template(audio)
        self._refused = f"the {container} muxer refused the clip" + (
            "" if audio is None else f" (can {container} carry its {audio.codec_context.name} audio? write one of "
                                     f"{others})")
        try:          # the header now, so a muxer that refuses the streams does so before any frame is rendered
            self._container.start_encoding()
        except av.error.FFmpegError as e:
            self._container.close()
            raise DataError(f"{self._refused}: {_reason(e)}", self._named) from None
        self._behind = Behind(depth=BEHIND, name="adamat-encoder")

    def write(self, rgb: np.ndarray, frame: Frame) -> None:
        """Queue the frame (copied: ``rgb`` may be reused at once) for the encoder's thread; an error it met on
        an earlier frame is raised here."""
        h, w = self._video.height, self._video.width
        out = _av().VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
        out.pts, out.time_base = self._timestamp(frame), self._video.codec_context.time_base
        self._behind.submit(self._encode, out)

    def _encode(self, out) -> None:
        """One frame (None: the encoder's last packets) converted, encoded and written; DataError naming the
        output where FFmpeg fails."""
        try:
            if out is not None:
                out = out.reformat(format="yuv420p", dst_colorspace="itu709", dst_color_range="MPEG")
            packets = self._video.encode(out)
        except _av().error.FFmpegError as e:
            raise DataError(f"cannot encode the clip ({_reason(e)})", self._named) from None
        for packet in packets:
            self._mux(packet)

    def _timestamp(self, frame: Frame) -> int:
        """The frame's timestamp on the input's clock, or, where it has none or is not after the last one written
        (an AVI's H.264 with B-frames: 1, 3, 2; the muxer refuses it), one frame after the last."""
        pts = frame.pts                            # on the video stream's clock, the writer's (ClipReader)
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = 0 if self._last_pts is None else self._last_pts + self._tick
        self._last_pts = pts
        return pts

    def mux_audio(self, packet) -> None:
        if self._audio is not None:
            packet.stream = self._audio
            self._behind.submit(self._mux, packet)     # in order with the frames before it

    def close(self) -> None:
        """Wait for the frames queued, write the encoder's last packets and the file's end; DataError naming the
        output where FFmpeg fails. On any failure (or an interrupt) the container is closed all the same."""
        try:
            self._behind.finish()
            self._encode(None)
        except BaseException:
            self._abandon()
            raise
        try:
            self._container.close()
        except _av().error.FFmpegError as e:         # the file's end not written (a full disk)
            raise DataError(f"cannot finish the clip ({_reason(e)})", self._named) from None

    def _abandon(self) -> None:
        """The writing given up (the caller's error, or an interrupt): the frames not yet encoded dropped, and the
        container closed once the encoder's thread has stopped, its own errors not raised over the caller's."""
        self._behind.finish(raise_error=False)
        if not self._behind.running:
            with contextlib.suppress(_av().error.FFmpegError):
                self._container.close()

    def _mux(self, packet) -> None:
        """One packet into the file; DataError naming the output (not its temporary file) where FFmpeg refuses
        it (its header is written with the first packet: a codec the container cannot hold fails there)."""
        try:
            self._container.mux(packet)
        except _av().error.FFmpegError as e:
            raise DataError(f"{self._refused}: {_reason(e)}", self._named) from None

    def __enter__(self) -> "ClipWriter":
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is None:
            self.close()
        else:
            self._abandon()                             # the caller's own error is the one reported


def _clock_seconds(text: str | None) -> float | None:
    """Seconds of an ``HH:MM:SS.fraction`` tag (None: absent or not that)."""
    try:
        hours, minutes, seconds = (text or "").split(":")
        return 3600 * float(hours) + 60 * float(minutes) + float(seconds)
    except ValueError:
        return None


def _even(n: int) -> int:
    """4:2:0 chroma needs even sides: an odd one loses its last row or column."""
    return max(2, n - n % 2)


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error).split(":")[-1].strip() or type(error).__name__
