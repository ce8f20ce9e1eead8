"""Translated videos play everywhere: H.264 in mp4 with the input's frame count, rate, size, pixel aspect,
colour tags, rotation and audio, at a size comparable to the input; a failing encoder leaves nothing behind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from test_video import H, W, make_clip, model, read_frames  # noqa: F401  (the module-scoped tiny model fixture)
from img2img.translate.audio import find_ffmpeg
from img2img.translate.encode import count_frames, probe_stream

FFMPEG = find_ffmpeg()
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg (pip install imageio-ffmpeg)")


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], check=True)


def phone_clip(tmp_path: Path, *, rotation: int = 0, frames: int = 12) -> Path:
    """H.264 + AAC like a camera's: bt709 tags, non-square pixels, optionally a display rotation."""
    plain = tmp_path / "plain.mp4"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=12", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
           "-frames:v", str(frames), "-t", str(frames / 12), "-c:v", "libx264", "-crf", "23", "-pix_fmt", "yuv420p",
           "-vf", "setsar=4/3,setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv",
           "-c:a", "aac", str(plain))
    if not rotation:
        return plain
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", str(rotation), "-i", str(plain), "-c", "copy", str(rotated))
    return rotated


def test_output_is_h264_with_the_inputs_stream_properties_and_audio(cli, model, tmp_path):  # noqa: F811
    src = phone_clip(tmp_path)
    out = tmp_path / "out.mp4"
    result = cli(["translate", model, src, "-o", out, "-q"])
    assert result.exit_code == 0, result.output
    a, b = probe_stream(FFMPEG, src), probe_stream(FFMPEG, out)
    assert b.codec == "h264" and b.pix_fmt == "yuv420p"
    assert (b.width, b.height, b.fps) == (a.width, a.height, a.fps) == (W, H, 12.0)
    assert b.sar == a.sar == "4:3"
    tags = lambda s: (s.color_space, s.color_primaries, s.color_trc, s.color_range)  # noqa: E731
    assert tags(a) == ("bt709", "bt709", "bt709", "tv") and tags(b) == tags(a)
    assert b.audio and a.audio
    assert count_frames(FFMPEG, out) == count_frames(FFMPEG, src) == 12
    assert "Stream" not in result.output and "[h264" not in result.output  # no raw ffmpeg lines


def test_rotation_is_kept_and_frames_are_stored_as_in_the_input(cli, model, tmp_path):  # noqa: F811
    src = phone_clip(tmp_path, rotation=90)
    assert probe_stream(FFMPEG, src).rotation == 90
    out = tmp_path / "out.mp4"
    assert cli(["translate", model, src, "-o", out, "-q"]).exit_code == 0
    b = probe_stream(FFMPEG, out)
    assert b.rotation == 90 and (b.width, b.height) == (W, H)


def test_crf_trades_size_for_quality_and_default_size_is_near_the_inputs(cli, model, tmp_path):  # noqa: F811
    src = make_clip(tmp_path / "noisy.mp4", frames=24, size=(128, 96), noise=6.0)
    h264 = tmp_path / "h264.mp4"
    ffmpeg("-i", str(src), "-c:v", "libx264", "-crf", "20", "-pix_fmt", "yuv420p", str(h264))
    sizes = {}
    for crf in (None, "35"):
        out = tmp_path / f"out_{crf}.mp4"
        args = ["translate", model, h264, "-o", out, "-q"] + (["--crf", crf] if crf else [])
        assert cli(args).exit_code == 0
        sizes[crf] = out.stat().st_size
    assert sizes["35"] < 0.7 * sizes[None]
    assert sizes[None] < 6 * h264.stat().st_size  # same order as the input (OpenCV's mpeg4 was ~25x)


def test_a_failing_encoder_leaves_no_file_and_says_why_in_one_line(cli, model, tmp_path, monkeypatch):  # noqa: F811
    """A stand-in ffmpeg that takes some frames, then dies as on a full disk."""
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\n"
                    "case \"$*\" in *pipe:0*) head -c 20000 > /dev/null; "
                    "echo 'Error writing trailer: No space left on device' >&2; exit 1;; esac\n"
                    f"exec {FFMPEG} \"$@\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    src = make_clip(tmp_path / "in.mp4", frames=20)
    monkeypatch.setenv("IMG2IMG_FFMPEG", str(fake))
    find_ffmpeg.cache_clear()
    try:
        result = cli(["translate", model, src, "-o", tmp_path / "out" / "clip.mp4", "-q"])
    finally:
        find_ffmpeg.cache_clear()
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "No space left on device" in failed[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "clip.mp4").exists()
    assert os.listdir(tmp_path / "out") == []  # the partial file is gone too


def test_a_truncated_video_says_how_many_frames_it_had(cli, model, tmp_path):  # noqa: F811
    full = tmp_path / "full.mp4"  # index first (as streamed files have it), every frame a keyframe
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=12", "-frames:v", "10", "-c:v", "libx264", "-g", "1",
           "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(full))
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 55 // 100])  # the header still says 10 frames
    result = cli(["translate", model, cut, "-o", tmp_path / "out.mp4", "-q"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "note:" in line]
    assert len(notes) == 1 and "says 10 frames" in notes[0], result.output
    decoded = int(notes[0].split("only ")[1].split()[0])
    assert 0 < decoded < 10 and count_frames(FFMPEG, tmp_path / "out.mp4") == decoded


def test_frames_dir_holding_other_files_is_reported_as_such(cli, model, tmp_path):  # noqa: F811
    src = make_clip(tmp_path / "in.mp4", frames=3)
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "notes.txt").write_text("mine")
    result = cli(["translate", model, src, "--frames-dir", frames, "-q"])
    assert result.exit_code == 1
    assert "holds files other than frames" in result.output and "skipped" not in result.output
    assert sorted(os.listdir(frames)) == ["notes.txt"]


def test_an_unreadable_video_gets_our_line_not_ffmpegs(cli, model, tmp_path):  # noqa: F811
    good = make_clip(tmp_path / "a.mp4", frames=4).read_bytes()
    (tmp_path / "b.mp4").write_bytes(good[: len(good) // 3])
    proc = subprocess.run([sys.executable, "-m", "img2img", "translate", str(model), str(tmp_path / "b.mp4"), "-o",
                           str(tmp_path / "o.mp4"), "-q"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "moov atom" not in proc.stderr and "cannot open as a video" in proc.stderr


def test_encoding_is_colour_neutral_for_what_opencv_decoded(tmp_path):
    """Frames decoded by OpenCV and written by the sink decode to the same colours (up to compression)."""
    import numpy as np

    from img2img.translate.encode import FFmpegVideoSink

    src = phone_clip(tmp_path, frames=6)
    frames = list(read_frames(src))
    sink = FFmpegVideoSink(FFMPEG, tmp_path / "copy.mp4", 12.0, probe_stream(FFMPEG, src), crf=0)
    for i, frame in enumerate(frames):
        sink.write(frame, i)
    sink.close()
    again = list(read_frames(tmp_path / "copy.mp4"))
    assert len(again) == len(frames) == 6
    diff = np.abs(np.stack(again).astype(float) - np.stack(frames).astype(float))
    per_channel = (np.stack(again).astype(float) - np.stack(frames).astype(float)).mean(axis=(0, 1, 2))
    # with the wrong matrix (601 here) the mean difference is 4.1; chroma subsampling of the test
    # pattern's sharp colour edges accounts for the rest
    assert diff.mean() < 2.5 and np.abs(per_channel).max() < 2.0, (diff.mean(), per_channel)
