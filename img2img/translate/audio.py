"""Copy a source video's audio into its translation, where an ffmpeg is available.

OpenCV writes video only, so the audio is muxed in afterwards by ffmpeg: the translated video
stream is copied as is, the audio is copied too or, when the output container cannot hold its
codec, re-encoded (AAC; Opus for WebM). ffmpeg is found on PATH or from the imageio-ffmpeg package
(`pip install 'img2img[video]'`). Without one, whether the input had audio is read from the
container header (MP4/MOV boxes, AVI and Matroska/WebM track headers) so the user is told only when
something was really dropped.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

NO_FFMPEG = "no ffmpeg found (pip install 'img2img[video]' or put ffmpeg on PATH)"


@functools.lru_cache(maxsize=1)
def find_ffmpeg() -> str | None:
    """ffmpeg on PATH, else imageio-ffmpeg's bundled binary, else None. IMG2IMG_FFMPEG overrides
    ("none" turns audio copying off)."""
    forced = os.environ.get("IMG2IMG_FFMPEG")
    if forced:
        return None if forced.lower() == "none" else forced
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


def has_audio(path: str | Path) -> bool | None:
    """Whether the file has an audio track: True, False, or None when it cannot be told."""
    ffmpeg = find_ffmpeg()
    if ffmpeg:
        try:
            proc = subprocess.run([ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                                  errors="replace", timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return sniff_audio(path)
        streams = [line for line in proc.stderr.splitlines() if line.strip().startswith("Stream #")]
        if streams:
            return any(": Audio:" in line for line in streams)
    return sniff_audio(path)


def sniff_audio(path: str | Path) -> bool | None:
    """Read only container headers: MP4/MOV 'soun' handlers, AVI 'auds' streams, Matroska 'A_' codecs."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            fh.seek(0)
            if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
                return _mp4_has_sound(fh, 0, os.fstat(fh.fileno()).st_size)
            start = fh.read(1 << 20)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return re.search(rb"strh....auds", start, re.DOTALL) is not None  # strh chunk: id, size, fccType
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska / WebM; CodecID (0x86) values start "A_" for audio
        return re.search(rb"\x86[\x81-\xbf]A_[A-Z]", start) is not None
    return None


def _mp4_has_sound(fh, start: int, end: int, depth: int = 0) -> bool:
    pos = start
    while pos + 8 <= end and depth < 6:
        fh.seek(pos)
        size, kind = struct.unpack(">I4s", fh.read(8))
        header = 8
        if size == 1:
            size = struct.unpack(">Q", fh.read(8))[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            return False
        if kind in (b"moov", b"trak", b"mdia"):
            if _mp4_has_sound(fh, pos + header, pos + size, depth + 1):
                return True
        elif kind == b"hdlr":
            fh.seek(pos + header + 8)  # version+flags, pre_defined
            if fh.read(4) == b"soun":
                return True
        pos += size
    return False


def _mux(ffmpeg: str, video: Path, source: Path, out: Path, audio_codec: str) -> str | None:
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(video), "-i", str(source),
           "-map", "0:v:0", "-map", "1:a", "-c:v", "copy", "-c:a", audio_codec, str(out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        return lines[-1][:200] if lines else f"ffmpeg exit code {proc.returncode}"
    return None


def copy_audio(source: str | Path, video: str | Path) -> str:
    """Put source's audio into video (rewritten in place); returns "copied", "none" or "dropped: <why>"."""
    source, video = Path(source), Path(video)
    audio = has_audio(source)
    if audio is False:
        return "none"
    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        return f"dropped: {NO_FFMPEG}" if audio else f"dropped (if it had any): {NO_FFMPEG}"
    muxed = video.with_name(video.stem + ".audio" + video.suffix)
    reason = None
    try:
        for codec in ("copy", "libopus" if video.suffix.lower() == ".webm" else "aac"):
            reason = _mux(ffmpeg, video, source, muxed, codec)
            if reason is None:
                os.replace(muxed, video)
                return "copied"
    finally:
        muxed.unlink(missing_ok=True)
    return f"dropped: ffmpeg could not copy it ({reason})"
