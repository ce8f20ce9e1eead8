"""Video files the way players want them: H.264 (VP9 for WebM) through the ffmpeg binary.

Why the ffmpeg binary (found on PATH or shipped by imageio-ffmpeg, a dependency) and not PyAV or
OpenCV: OpenCV's pip builds have no H.264 encoder (their MPEG-4 Part 2 files are refused by browsers
and are ~25x the size of the input); PyAV would add a second FFmpeg build to the install, while this
one is already there for the audio. Frames are piped raw into ffmpeg, which encodes in its own
process, beside the model, with its own threads.

The output keeps what the input's video stream declares: pixel aspect ratio, colour range, matrix,
primaries and transfer, and display rotation. OpenCV hands us frames rotated upright (so the model
sees them as it was trained), and the sink turns them back to the stored orientation, so the output
has the input's stored size and the same rotation to apply when shown. Colours: OpenCV converts the
decoded YUV to BGR with the matrix the input's tags name; the sink tags the frames the same way
before ffmpeg converts them back, so the round trip is neutral and the tags stay true.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from img2img.errors import UserError

DEFAULT_CRF = 20  # x264's scale: 0 lossless, 18 visually lossless, 23 its default; lower = better and bigger
VIDEO_CODECS = {".webm": ("libvpx-vp9", ["-b:v", "0", "-row-mt", "1", "-deadline", "good", "-cpu-used", "4"])}
H264 = ("libx264", ["-preset", "medium"])


@dataclass
class StreamInfo:
    """What `ffmpeg -i` says of a file's first video stream (None where it says nothing)."""

    codec: str | None = None
    pix_fmt: str | None = None
    width: int = 0
    height: int = 0
    sar: str | None = None  # "N:D"
    color_range: str | None = None  # "tv" / "pc"
    color_space: str | None = None
    color_primaries: str | None = None
    color_trc: str | None = None
    rotation: float = 0.0  # the display matrix's rotation, degrees counter-clockwise as ffmpeg prints it
    fps: float = 0.0
    audio: bool = False


_STREAM = re.compile(r"Stream #\d+:\d+.*?: Video: (?P<codec>\w+)[^,]*, (?P<pix>\w+)(?:\((?P<props>[^)]*)\))?.*?, "
                     r"(?P<w>\d+)x(?P<h>\d+)(?: \[SAR (?P<sar>\d+:\d+) DAR \d+:\d+\])?")


def probe_stream(ffmpeg: str, path: str | Path) -> StreamInfo:
    """Parse `ffmpeg -hide_banner -i path` (there is no ffprobe in imageio-ffmpeg)."""
    try:
        text = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, text=True,
                              errors="replace", timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired):
        return StreamInfo()
    info = StreamInfo(audio=any(": Audio:" in line for line in text.splitlines() if "Stream #" in line))
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _STREAM.search(line)
        if not m:
            continue
        info.codec, info.pix_fmt = m.group("codec"), m.group("pix")
        info.width, info.height = int(m.group("w")), int(m.group("h"))
        info.sar = m.group("sar")
        for prop in (m.group("props") or "").split(","):
            prop = prop.strip()
            if prop in ("tv", "pc"):
                info.color_range = prop
            elif prop and prop not in ("progressive", "top first", "bottom first", "top coded first (swapped)",
                                       "bottom coded first (swapped)") and not prop.startswith(("left", "center", "top")):
                parts = prop.split("/")
                if len(parts) == 3:
                    info.color_space, info.color_primaries, info.color_trc = parts
                elif len(parts) == 1 and re.fullmatch(r"[a-z0-9\-]+", parts[0]):
                    info.color_space = info.color_primaries = info.color_trc = parts[0]
        fps = re.search(r"([\d.]+) fps", line)
        info.fps = float(fps.group(1)) if fps else 0.0
        for follow in lines[i + 1: i + 12]:
            rot = re.search(r"rotation of (-?[\d.]+) degrees", follow)
            if rot:
                info.rotation = float(rot.group(1))
                break
            if "Stream #" in follow:
                break
        break
    return info


def count_frames(ffmpeg: str, path: str | Path) -> int:
    """Frames in the first video stream, by reading the packets through (what a player would show)."""
    text = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
                          capture_output=True, text=True, errors="replace", timeout=600).stderr
    found = re.findall(r"frame=\s*(\d+)", text)
    return int(found[-1]) if found else 0


def _color_params(src: StreamInfo) -> list[str]:
    """setparams options that tag the output's colours as the input's (no pixel is changed by them)."""
    out = []
    for name, value in (("range", src.color_range), ("colorspace", src.color_space),
                        ("color_primaries", src.color_primaries), ("color_trc", src.color_trc)):
        if value and value != "unknown":
            out.append(f"{name}={'limited' if value == 'tv' else 'full' if value == 'pc' else value}")
    return out


class FFmpegVideoSink:
    """Frames (H, W, 3 BGR or H, W, 1 gray uint8, upright) piped to ffmpeg; fails with one clear line."""

    def __init__(self, ffmpeg: str, path: Path, fps: float, source: StreamInfo, crf: int = DEFAULT_CRF):
        self.ffmpeg, self.path, self.fps, self.source, self.crf = ffmpeg, path, fps or 30.0, source, crf
        self.turns = round(-source.rotation / 90) % 4  # quarter turns OpenCV applied (clockwise) to show it upright
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()

    def _start(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        gray = frame.ndim == 2 or frame.shape[2] == 1
        codec, extra = VIDEO_CODECS.get(self.path.suffix.lower(), H264)
        rate = Fraction(self.fps).limit_denominator(100000)
        pix_out = "yuv420p" if (w % 2 == 0 and h % 2 == 0) else "yuv444p"  # 4:2:0 needs even sides
        cmd = [self.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "gray" if gray else "bgr24", "-s", f"{w}x{h}", "-framerate", str(rate)]
        if self.turns:  # stored as in the input, shown rotated as the input is (ffmpeg must not apply it itself)
            cmd += ["-noautorotate", "-display_rotation", f"{self.source.rotation:g}"]
        cmd += ["-i", "pipe:0", "-map", "0:v:0", "-c:v", codec, *extra, "-crf", str(self.crf)]
        # Tag the frames as the input was, then convert: swscale then uses the input's matrix and range,
        # the inverse of what OpenCV's decode used (it reads the same tags).
        filters = []
        if self.source.sar and self.source.sar not in ("0:1", "1:1"):
            filters.append(f"setsar={self.source.sar.replace(':', '/')}")
        tags = _color_params(self.source)
        if tags:
            filters.append("setparams=" + ":".join(tags))
        filters.append(f"format={pix_out}")
        cmd += ["-vf", ",".join(filters), "-pix_fmt", pix_out]
        if self.path.suffix.lower() in (".mp4", ".m4v", ".mov"):
            cmd += ["-movflags", "+faststart"]  # playable while downloading
        cmd += [str(self.path)]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.log)
        except OSError as exc:
            raise UserError(f"{self.path.name}: cannot start the video encoder ffmpeg: {exc.strerror or exc}") from None

    def write(self, frame: np.ndarray, index: int) -> None:
        if self.turns:
            frame = np.ascontiguousarray(np.rot90(frame, k=self.turns))  # back to the stored orientation
        if self.proc is None:
            self._start(frame)
        try:
            self.proc.stdin.write(frame.tobytes())
        except (BrokenPipeError, OSError):
            self._fail()

    def _reason(self) -> str:
        self.log.seek(0)
        lines = [ln.strip() for ln in self.log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        useful = [ln for ln in lines if "No space left" in ln] or lines
        return useful[-1][:200] if useful else "it stopped"

    def _fail(self) -> None:
        rc = self.proc.wait() if self.proc is not None else None
        raise UserError(f"{self.path.name}: the video encoder failed ({self._reason()}"
                        + (f", exit code {rc}" if rc else "") + ")")

    def close(self) -> None:
        if self.proc is None:
            self.log.close()
            return
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
            if self.proc.wait() != 0:
                self._fail()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()

    def abort(self) -> None:
        """Stop the encoder without waiting for it to finish the file (the caller removes it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
