"""Video translation: decode, translate and encode on three threads joined by bounded queues.

    decode thread ──(batches of uint8 frames)──▶ model (caller's thread) ──(uint8 frames)──▶ encode thread

The model thread only moves frames to the device, translates them and hands them on, so decoding
and encoding overlap the model's work and it never waits on file I/O while the queues hold frames.
The queues are bounded (a few batches each), so memory stays flat however long the clip is.
Frames cross the threads as BGR uint8 (OpenCV's layout) and are converted on the device, where
the conversion is nearly free. Every frame decoded is written: the output has the input's frame
count, frame rate and frame size.

`convert_video` adds what a finished file needs: a temporary name that becomes the output only when
complete, H.264 through ffmpeg with the input's stream metadata (encode.py), and the input's audio
copied in (audio.py). Without an ffmpeg, OpenCV's own writer is the fallback (MPEG-4 Part 2).
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# OpenCV's FFmpeg backend prints FFmpeg's own errors ("moov atom not found") on stderr; we say what went wrong.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from img2img.errors import UserError  # noqa: E402
from img2img.translate.scale import processing_size, resize  # noqa: E402
from img2img.translate.temporal import TemporalFilter, backward_flow  # noqa: E402
from img2img.translate.translator import Translator  # noqa: E402

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp")

# Containers OpenCV's pip builds can write, with a codec each one accepts (no H.264 encoder there).
WRITERS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG", ".webm": "VP80"}
DEFAULT_VIDEO_SUFFIX = ".mp4"
FRAME_NAME = "{:06d}.png"  # 1-based, as ffmpeg's %06d.png
_QUEUE_BATCHES = 3
_END = object()


class UnreadableVideo(UserError):
    """A file that should be a video but cannot be decoded."""


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_videos(folder: str | Path) -> list[Path]:
    """Video files directly inside folder (hidden ones, e.g. our own partial outputs, left out), sorted."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_video_path(p) and not p.name.startswith("."))


def output_suffix(source: Path) -> str:
    """The input's container when OpenCV can write it, else .mp4."""
    suffix = source.suffix.lower()
    return suffix if suffix in WRITERS else DEFAULT_VIDEO_SUFFIX


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: float
    frame_count: int  # from the container header: an estimate for some formats, 0 when unknown


@dataclass
class VideoStats:
    """What one run did, with each stage's busy time (they overlap, so the shares can sum past 1)."""

    frames: int = 0
    seconds: float = 0.0
    decode_s: float = 0.0
    model_s: float = 0.0
    encode_s: float = 0.0
    model_wait_s: float = 0.0  # the model thread blocked on an empty decode queue or a full encode queue
    fps_in: float = 0.0
    size: tuple[int, int] = (0, 0)  # (width, height)
    processing_size: tuple[int, int] = (0, 0)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def shares(self) -> dict[str, float]:
        total = max(self.seconds, 1e-9)
        return {"decode": self.decode_s / total, "model": self.model_s / total, "encode": self.encode_s / total,
                "model_waiting": self.model_wait_s / total}


def open_video(path: str | Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Open a video for decoding; a one-line UnreadableVideo when it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableVideo(f"{path}: file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise UnreadableVideo(f"{path}: cannot open as a video (corrupt, not a video, or a codec this OpenCV build cannot decode)")
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    if width <= 0 or height <= 0:
        cap.release()
        raise UnreadableVideo(f"{path}: the video has no readable frame size")
    return cap, VideoInfo(width, height, fps if np.isfinite(fps) and fps > 0 else 0.0, count)


def probe_video(path: str | Path) -> VideoInfo:
    cap, info = open_video(path)
    cap.release()
    return info


# ----------------------------------------------------------------------------------------------
# Sinks: where translated frames go (a video file, or a folder of images).

class VideoFileSink:
    def __init__(self, path: Path, fps: float, width: int, height: int):
        fourcc = WRITERS.get(path.suffix.lower())
        if fourcc is None:
            raise UserError(f"{path}: cannot write {path.suffix!r} videos; use one of {', '.join(WRITERS)}")
        self.path = path
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
        if not self.writer.isOpened():
            raise UserError(f"{path}: OpenCV cannot open a {fourcc} writer for this file")

    def write(self, frame: np.ndarray, index: int) -> None:
        if frame.ndim == 2 or frame.shape[2] == 1:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        self.writer.write(frame)

    def close(self) -> None:
        self.writer.release()


class FrameFolderSink:
    """Frames as 000001.png, 000002.png, ... in a folder (the caller names the folder)."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, frame: np.ndarray, index: int) -> None:
        path = self.folder / FRAME_NAME.format(index + 1)
        if not cv2.imwrite(str(path), frame):
            raise UserError(f"cannot write {path}")

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------------------------
# The pipeline.

@dataclass
class _Batch:
    frames: torch.Tensor  # (N, H, W, C) uint8, BGR (or gray), pinned when the device is CUDA
    flows: list[np.ndarray | None] = field(default_factory=list)


class _Stop(Exception):
    pass


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue
    raise _Stop


def _decode(cap: cv2.VideoCapture, out_q: queue.Queue, stop: threading.Event, batch_size: int, channels: int,
            pin: bool, flow: bool, stats: VideoStats) -> None:
    prev_small = None
    try:
        while True:
            frames, flows = [], []
            t0 = time.perf_counter()
            while len(frames) < batch_size:
                ok, frame = cap.read()
                if not ok:
                    break
                if channels == 1:
                    frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[:, :, None]
                if flow:
                    small = _flow_image(frame)
                    flows.append(backward_flow(prev_small, small) if prev_small is not None else None)
                    prev_small = small
                frames.append(frame)
            if frames:
                batch = torch.from_numpy(np.stack(frames))
                if pin:
                    batch = batch.pin_memory()
            stats.decode_s += time.perf_counter() - t0
            if not frames:
                break
            _put(out_q, _Batch(batch, flows), stop)
            if len(frames) < batch_size:
                break
        _put(out_q, _END, stop)
    except _Stop:
        pass
    except BaseException as exc:  # handed to the model thread, which re-raises it
        try:
            _put(out_q, exc, stop)
        except _Stop:
            pass


def _flow_image(frame: np.ndarray, long_side: int = 320) -> np.ndarray:
    """Grayscale, at most long_side pixels: optical flow at this size is a few ms per frame."""
    gray = frame[:, :, 0] if frame.shape[2] == 1 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    scale = min(1.0, long_side / max(h, w))
    if scale < 1.0:
        gray = cv2.resize(gray, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    return gray


def _encode(in_q: queue.Queue, sink, stop: threading.Event, stats: VideoStats, errors: list) -> None:
    index = 0
    try:
        while True:
            try:
                item = in_q.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            if item is _END:
                break
            frames, ready = item
            if ready is not None:
                ready.synchronize()  # the device-to-host copy of this batch has landed
            t0 = time.perf_counter()
            for frame in frames.numpy():
                sink.write(frame, index)
                index += 1
            stats.encode_s += time.perf_counter() - t0
    except BaseException as exc:
        errors.append(exc)
        stop.set()


def translate_frames(translator: Translator, source: str | Path, sink_factory: Callable[[VideoInfo], object], *,
                     batch_size: int = 8, size: int | None = None, temporal: TemporalFilter | None = None,
                     on_start: Callable[[VideoInfo], None] | None = None,
                     on_frames: Callable[[int], None] | None = None) -> VideoStats:
    """Translate every frame of source into the sink sink_factory(info) makes; returns timings.

    size: translate at this short side and scale the result back to the frame size (None: native).
    temporal: a TemporalFilter applied at processing size, in frame order.
    """
    cap, info = open_video(source)
    device = translator.device
    stats = VideoStats(fps_in=info.fps, size=(info.width, info.height))
    proc_hw = processing_size(info.height, info.width, size)
    stats.processing_size = (proc_hw[1], proc_hw[0])
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=_QUEUE_BATCHES)
    encoded: queue.Queue = queue.Queue(maxsize=_QUEUE_BATCHES)
    errors: list[BaseException] = []
    cuda = device.type == "cuda"
    decoder = threading.Thread(target=_decode, name="img2img-decode", daemon=True,
                               args=(cap, decoded, stop, batch_size, translator.channels, cuda,
                                     temporal is not None and temporal.use_flow, stats))
    sink = None
    encoder = None
    finished = False
    start = time.perf_counter()
    try:
        sink = sink_factory(info)
        encoder = threading.Thread(target=_encode, name="img2img-encode", daemon=True, args=(encoded, sink, stop, stats, errors))
        decoder.start()
        encoder.start()
        if on_start:
            on_start(info)
        while True:
            t0 = time.perf_counter()
            try:
                item = decoded.get(timeout=0.1)
            except queue.Empty:
                item = None
            stats.model_wait_s += time.perf_counter() - t0
            if errors:
                raise errors[0]
            if item is None:
                continue
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            t0 = time.perf_counter()
            out = _translate_batch(translator, item, proc_hw, temporal)
            ready = None
            if cuda:
                host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
                host.copy_(out, non_blocking=True)
                ready = torch.cuda.Event()
                ready.record()
                out = host
            stats.model_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            _put(encoded, (out, ready), stop)
            stats.model_wait_s += time.perf_counter() - t0
            stats.frames += out.shape[0]
            if on_frames:
                on_frames(out.shape[0])
        _put(encoded, _END, stop)
        encoder.join()
        if errors:
            raise errors[0]
        finished = True
    except _Stop:
        raise errors[0] if errors else RuntimeError("video pipeline stopped")
    finally:
        stop.set()
        for t in (decoder, encoder):
            if t is not None and t.is_alive():
                t.join(timeout=10)
        cap.release()
        if sink is not None:
            if finished or not hasattr(sink, "abort"):
                sink.close()
            else:  # the file is going away: do not let the encoder finish it, nor mask the first error
                sink.abort()
    stats.seconds = time.perf_counter() - start
    if stats.frames == 0:
        raise UnreadableVideo(f"{source}: no frame could be decoded")
    return stats


@torch.no_grad()
def _translate_batch(translator: Translator, batch: _Batch, proc_hw: tuple[int, int],
                     temporal: TemporalFilter | None) -> torch.Tensor:
    """uint8 (N, H, W, C) BGR -> translated uint8 (N, H, W, C) BGR, on the translator's device."""
    frames = batch.frames.to(translator.device, non_blocking=True)
    x = frames.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    if x.shape[1] == 3:
        x = x.flip(1)  # BGR -> RGB
    full_hw = tuple(x.shape[-2:])
    if proc_hw != full_hw:
        x = resize(x, proc_hw)
    y = translator(x)
    if temporal is not None:
        y = temporal(x, y, batch.flows)
    if proc_hw != full_hw:
        y = resize(y, full_hw)
    if y.shape[1] == 3:
        y = y.flip(1)
    return y.clamp_(-1, 1).add_(1).mul_(127.5).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


# ----------------------------------------------------------------------------------------------
# One finished output.

def partial_path(target: Path) -> Path:
    """Where target is written until complete: hidden, same folder, same container suffix."""
    return target.with_name(f".{target.stem}.partial{target.suffix}")


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@dataclass
class VideoResult:
    target: Path
    stats: VideoStats
    audio: str  # "copied", "none" (the input has none), "dropped: <why>", or "frames" (a frame folder)
    notes: list[str] = field(default_factory=list)  # what the user should know (a short input, the codec used)


def short_read_note(header_frames: int, decoded: int) -> str | None:
    """A note when far fewer frames decoded than the header promised (a truncated or damaged file)."""
    if header_frames and decoded < header_frames - max(1, header_frames // 100):
        return (f"the file says {header_frames} frames but only {decoded} could be decoded "
                "(truncated or damaged?); the output has those {decoded}").replace("{decoded}", str(decoded))
    return None


def video_sink(partial: Path, source: Path, info: VideoInfo, crf: int):
    """H.264 (VP9 for WebM) through ffmpeg keeping the input's stream metadata, else OpenCV's writer."""
    from img2img.translate.audio import find_ffmpeg
    from img2img.translate.encode import FFmpegVideoSink, probe_stream

    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        return VideoFileSink(partial, info.fps or 30.0, info.width, info.height)
    return FFmpegVideoSink(ffmpeg, partial, info.fps or 30.0, probe_stream(ffmpeg, source), crf=crf)


def convert_video(translator: Translator, source: str | Path, target: str | Path, *, frames: bool = False,
                  batch_size: int = 8, size: int | None = None, temporal: TemporalFilter | None = None,
                  audio: bool = True, crf: int | None = None, on_start: Callable[[VideoInfo], None] | None = None,
                  on_frames: Callable[[int], None] | None = None) -> VideoResult:
    """Translate the video source into target (a video file, or a folder of frames when frames=True).

    The work goes to a hidden partial name beside target, renamed to target only once complete, so
    an interrupted run never leaves a target that looks finished; a later run replaces the partial.
    """
    from img2img.translate.audio import copy_audio, find_ffmpeg
    from img2img.translate.encode import DEFAULT_CRF

    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(target)
    remove_path(partial)
    if frames:
        factory = lambda info: FrameFolderSink(partial)  # noqa: E731
    else:
        factory = lambda info: video_sink(partial, source, info, DEFAULT_CRF if crf is None else crf)  # noqa: E731
    header = {}
    try:
        stats = translate_frames(translator, source, factory, batch_size=batch_size, size=size, temporal=temporal,
                                 on_start=lambda info: (header.update(frames=info.frame_count), on_start and on_start(info)),
                                 on_frames=on_frames)
        notes = [n for n in [short_read_note(header.get("frames", 0), stats.frames)] if n]
        if not frames and find_ffmpeg() is None:
            notes.append("written as MPEG-4 Part 2 by OpenCV (no ffmpeg found: pip install imageio-ffmpeg for H.264)")
        audio_state = "frames"
        if not frames:
            audio_state = copy_audio(source, partial) if audio else "dropped: --no-audio"
        if target.is_dir() and frames:
            target.rmdir()  # an empty folder the caller checked; os.replace cannot replace a folder otherwise
        os.replace(partial, target)
    except BaseException:
        remove_path(partial)
        raise
    return VideoResult(target, stats, audio_state, notes)
