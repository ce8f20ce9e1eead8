"""Video translation and batch conversion: short OpenCV-made clips through the CLI with a tiny model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import TINY_FLAGS
from img2img.errors import UserError
from img2img.translate.audio import find_ffmpeg, has_audio, sniff_audio
from img2img.translate.batch import parse_shard, select_shard, shard_spec
from img2img.translate.outputs import Job, plan_jobs
from img2img.translate.temporal import flicker
from img2img.translate.video import partial_path, probe_video

W, H = 64, 48


def make_clip(path: Path, frames: int = 6, fps: float = 12.0, size: tuple[int, int] = (W, H), fourcc: str | None = None,
              noise: float = 0.0, moving: bool = True, seed: int = 0) -> Path:
    """A short clip: a gradient with a square that moves one pixel per frame, plus optional per-frame noise."""
    fourcc = fourcc or {".avi": "MJPG"}.get(path.suffix, "mp4v")
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    rng = np.random.default_rng(seed)
    base = np.zeros((h, w, 3), np.float32)
    base[..., 0] = np.linspace(40, 200, w)[None, :]
    base[..., 1] = np.linspace(200, 60, h)[:, None]
    base[..., 2] = 120
    for i in range(frames):
        img = base.copy()
        x = 8 + (i if moving else 0)
        img[10:26, x : x + 16] = (230, 230, 40)
        img += rng.normal(0, noise, img.shape) if noise else 0
        writer.write(np.clip(img, 0, 255).astype(np.uint8))
    writer.release()
    return path


def read_frames(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack(frames)


@pytest.fixture(scope="module")
def model(tmp_path_factory, paired_dir) -> Path:
    from typer.testing import CliRunner

    from img2img.cli import app

    run = tmp_path_factory.mktemp("video_model") / "run"
    result = CliRunner().invoke(app, ["train", "pix2pix", "--data", str(paired_dir), "--out", str(run), "--steps", "1",
                                      *TINY_FLAGS], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return run / "model.pt"


@pytest.mark.parametrize("suffix, fourcc, fps", [(".mp4", "mp4v", 12.0), (".avi", "MJPG", 7.5)])
def test_video_keeps_frame_count_fps_and_size(cli, model, tmp_path, suffix, fourcc, fps):
    clip = make_clip(tmp_path / f"clip{suffix}", frames=7, fps=fps, fourcc=fourcc)
    out = tmp_path / f"clip_out{suffix}"
    result = cli(["translate", model, clip, "-o", out, "--batch-size", "3", "-q"])
    assert result.exit_code == 0, result.output
    info = probe_video(out)
    assert (info.width, info.height) == (W, H)
    assert info.fps == pytest.approx(fps, rel=1e-3)
    frames = read_frames(out)
    assert frames.shape == (7, H, W, 3)
    assert not partial_path(out).exists()
    # the model changed the pictures: not a copy of the input
    assert np.abs(frames.astype(int) - read_frames(clip).astype(int)).mean() > 2


def test_frames_dir_writes_one_png_per_frame(cli, model, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=5)
    frames_dir = tmp_path / "frames"
    result = cli(["translate", model, clip, "--frames-dir", frames_dir, "-q"])
    assert result.exit_code == 0, result.output
    files = sorted(frames_dir.iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(1, 6)]
    assert cv2.imread(str(files[0])).shape == (H, W, 3)
    # a folder of frames is an ordinary input folder of images
    result = cli(["translate", model, frames_dir, "-o", tmp_path / "again", "-q"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "again").iterdir())) == 5


def test_size_translates_smaller_and_keeps_output_size(cli, model, tmp_path):
    clip = make_clip(tmp_path / "clip.avi", frames=4)
    native, small = tmp_path / "native", tmp_path / "small"
    assert cli(["translate", model, clip, "--frames-dir", native, "-q"]).exit_code == 0
    result = cli(["translate", model, clip, "--frames-dir", small, "--size", "16", "-q"])
    assert result.exit_code == 0, result.output
    a, b = cv2.imread(str(native / "000001.png")), cv2.imread(str(small / "000001.png"))
    assert a.shape == b.shape == (H, W, 3)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1  # really processed at another size
    assert cli(["translate", model, clip, "--size", "0", "-o", tmp_path / "x.avi"]).exit_code == 2


def test_batch_reports_bad_files_and_continues(cli, model, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    make_clip(videos / "a.mp4", frames=4)
    make_clip(videos / "b.avi", frames=5)
    (videos / "c.mp4").write_text("this is not a video")
    good = (videos / "a.mp4").read_bytes()
    (videos / "d.mp4").write_bytes(good[: len(good) // 3])  # truncated: its index is missing
    out = tmp_path / "out"
    result = cli(["translate", model, videos, "-o", out, "-q"])
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert len(failed) == 2 and "c.mp4" in failed[0] and "cannot open as a video" in failed[0]
    assert "Traceback" not in result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.avi"]  # no partial leftovers
    assert len(read_frames(out / "a.mp4")) == 4 and len(read_frames(out / "b.avi")) == 5


def test_rerun_skips_finished_and_redoes_partial(cli, model, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_clip(videos / name, frames=4)
    out = tmp_path / "out"
    result = cli(["translate", model, videos / "a.mp4", "-o", out, "-q"])
    assert result.exit_code == 0, result.output
    finished = (out / "a.mp4").stat().st_mtime_ns
    partial = partial_path(out / "b.mp4")  # as a run killed while writing b would leave it
    partial.write_bytes(b"half a video")
    result = cli(["translate", model, videos, "-o", out, "-q"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "1 skipped" in text and "2 written" in text
    assert (out / "a.mp4").stat().st_mtime_ns == finished
    assert not partial.exists()
    assert len(read_frames(out / "b.mp4")) == 4 and len(read_frames(out / "c.mp4")) == 4


def test_shards_cover_every_input_once(cli, model, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(5):
        make_clip(videos / f"v{i}.avi", frames=2)
    outs = []
    for shard in ("0/2", "1/2"):
        out = tmp_path / f"out{shard[0]}"
        result = cli(["translate", model, videos, "-o", out, "--shard", shard, "-q"])
        assert result.exit_code == 0, result.output
        outs.append({p.name for p in out.iterdir()})
    assert outs[0].isdisjoint(outs[1])
    assert outs[0] | outs[1] == {f"v{i}.avi" for i in range(5)}
    assert cli(["translate", model, videos, "--shard", "2/2"]).exit_code == 2


def test_shard_spec_combines_shard_flag_and_torchrun():
    assert parse_shard("1/4") == (1, 4)
    with pytest.raises(UserError):
        parse_shard("4/4")
    assert shard_spec(None, {}) == (0, 1)
    assert shard_spec(None, {"RANK": "1", "WORLD_SIZE": "2"}) == (1, 2)
    assert shard_spec("1/3", {"RANK": "1", "WORLD_SIZE": "2"}) == (3, 6)
    jobs = [Job(Path(f"in/{n}.mp4"), Path(f"out/{n}.mp4")) for n in "edcbaf"]
    shares = [select_shard(jobs, *shard_spec("%d/3" % i, {"RANK": str(r), "WORLD_SIZE": "2"}))
              for i in range(3) for r in range(2)]
    names = [j.source.name for share in shares for j in share]
    assert sorted(names) == sorted(j.source.name for j in jobs) and len(names) == len(set(names))


def test_plan_refuses_kind_mismatch(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    with pytest.raises(UserError, match="is a video"):
        plan_jobs([str(clip)], tmp_path / "out.png")
    (tmp_path / "clip.wmv").write_bytes(b"")  # planning looks at names only
    jobs = plan_jobs([str(tmp_path / "clip.wmv")], tmp_path / "o")
    assert jobs[0].target.suffix == ".mp4"  # a container OpenCV cannot write becomes .mp4


def test_temporal_reduces_flicker_on_a_static_clip(cli, model, tmp_path):
    clip = make_clip(tmp_path / "static.avi", frames=10, noise=6.0, moving=False)
    plain, smooth = tmp_path / "plain", tmp_path / "smooth"
    assert cli(["translate", model, clip, "--frames-dir", plain, "-q"]).exit_code == 0
    result = cli(["translate", model, clip, "--frames-dir", smooth, "--temporal", "-q"])
    assert result.exit_code == 0, result.output
    load = lambda d: np.stack([cv2.imread(str(p)) for p in sorted(d.iterdir())]).astype(np.float32)  # noqa: E731
    before, after = flicker(load(plain)), flicker(load(smooth))
    assert before > 1.0  # the noisy model does flicker
    assert after < 0.5 * before
    # the first frame is the plain translation; the filter only changes what follows
    assert np.abs(load(plain)[0] - load(smooth)[0]).max() == 0


def test_sniff_audio_on_opencv_output(tmp_path):
    assert sniff_audio(make_clip(tmp_path / "a.mp4", frames=2)) is False
    assert sniff_audio(make_clip(tmp_path / "a.avi", frames=2)) is False
    (tmp_path / "x.mp4").write_text("nope")
    assert sniff_audio(tmp_path / "x.mp4") is None


@pytest.mark.skipif(find_ffmpeg() is None, reason="no ffmpeg (pip install 'img2img[video]')")
def test_audio_is_copied_or_reported_dropped(cli, model, tmp_path, monkeypatch):
    ffmpeg = find_ffmpeg()
    clip = tmp_path / "talk.mp4"
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={W}x{H}:rate=10",
                    "-f", "lavfi", "-i", "sine=frequency=440", "-t", "0.5", "-c:v", "mpeg4", "-c:a", "aac", str(clip)],
                   check=True)
    assert has_audio(clip) is True and sniff_audio(clip) is True
    result = cli(["translate", model, clip, "-o", tmp_path / "out.mp4", "-q"])
    assert result.exit_code == 0, result.output
    assert has_audio(tmp_path / "out.mp4") is True
    assert len(read_frames(tmp_path / "out.mp4")) == 5
    monkeypatch.setenv("IMG2IMG_FFMPEG", "none")
    find_ffmpeg.cache_clear()
    try:
        result = cli(["translate", model, clip, "-o", tmp_path / "silent.mp4", "-q"])
    finally:
        find_ffmpeg.cache_clear()
    assert result.exit_code == 0, result.output
    dropped = [line for line in result.output.splitlines() if "audio dropped" in line]
    assert len(dropped) == 1 and "img2img[video]" in dropped[0]
    assert sniff_audio(tmp_path / "silent.mp4") is False


def test_temporal_filter_passes_changes_and_resets_on_cuts():
    import torch

    from img2img.translate.temporal import TemporalFilter

    torch.manual_seed(0)
    f = TemporalFilter(strength=0.8)
    x = torch.zeros(1, 3, 16, 16)
    y0, y1 = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert torch.equal(f(x, y0), y0)
    x1 = x.clone()
    x1[..., :, 12:] = 0.5  # a strip at the right really changed
    out = f(x1, y1)
    assert torch.allclose(out[..., 13:], y1[..., 13:])  # changed: the fresh translation
    assert torch.allclose(out[..., :9], 0.2 * y1[..., :9] + 0.8 * y0[..., :9])  # unchanged: averaged
    y2 = torch.rand(1, 3, 16, 16)
    assert torch.allclose(f(torch.full_like(x, -0.7), y2), y2, atol=1e-6)  # a cut: start over


def test_backward_flow_warps_previous_frame_onto_current():
    import torch

    from img2img.translate.temporal import _base_grid, backward_flow, warp

    rng = np.random.default_rng(0)
    prev = cv2.GaussianBlur(rng.integers(0, 255, (64, 64), dtype=np.uint8), (0, 0), 2)
    cur = np.roll(prev, 3, axis=1)  # content moved 3 px right
    flow = backward_flow(prev, cur)
    assert np.median(flow[8:-8, 8:-8, 0]) * 64 / 2 == pytest.approx(-3, abs=0.3)
    t = torch.from_numpy(prev).float()[None, None]
    warped = warp(t, flow, _base_grid(64, 64, t.device))[0, 0].numpy()
    inner = (slice(12, -12), slice(12, -12))
    assert np.abs(warped[inner] - cur[inner]).mean() < 0.25 * np.abs(prev[inner].astype(float) - cur[inner]).mean()


def test_frames_dir_with_several_videos_and_overwrite_safety(cli, model, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    make_clip(videos / "a.mp4", frames=3)
    make_clip(videos / "b.avi", frames=2)
    frames_dir = tmp_path / "frames"
    assert cli(["translate", model, videos, "--frames-dir", frames_dir, "-q"]).exit_code == 0
    assert {p.name: len(list(p.iterdir())) for p in frames_dir.iterdir()} == {"a": 3, "b": 2}
    (frames_dir / "a" / "notes.txt").write_text("mine")
    result = cli(["translate", model, videos, "--frames-dir", frames_dir, "--overwrite", "-q"])
    assert result.exit_code == 1 and "holds files other than frames" in " ".join(result.output.split())
    assert (frames_dir / "a" / "notes.txt").exists()  # never deleted
