"""The translate command's video part: a rich bar per video (frames, frames/s, ETA), one line per file."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from img2img.translate.audio import NO_FFMPEG
from img2img.translate.batch import VideoBatchReport, translate_videos
from img2img.translate.outputs import Job


class FramesPerSecondColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:5.1f} fps" if speed else "  ... fps", style="progress.data.speed")


def run_video_batches(plans: list[tuple[object, list[Job]]], *, console: Console, quiet: bool = False,
                      **options) -> VideoBatchReport:
    """translate_videos over (translator, jobs) pairs with progress; options go to translate_videos."""
    total = sum(len(jobs) for _, jobs in plans)
    report = VideoBatchReport()
    if total == 0:
        return report
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
               FramesPerSecondColumn(), TimeRemainingColumn()]
    offset = 0
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:  # a line per file stays
        task = bar.add_task("video", total=None, visible=False)

        def on_video(i, job, info):
            bar.reset(task, total=info.frame_count or None, completed=0, visible=True,
                      description=escape(f"[{offset + i + 1}/{total}] {job.source.name}"))

        def on_done(job, result, error):
            if error:
                bar.console.print(f"[red]failed:[/] {escape(error)}", soft_wrap=True)
            elif result is not None:
                s = result.stats
                note = "" if result.audio in ("none", "frames", "copied") else f"; audio {result.audio}"
                if result.audio.startswith("dropped") and NO_FFMPEG in result.audio:
                    note = ""  # said once, after the batch
                bar.console.print(escape(f"{job.source} → {job.target}: {s.frames} frames, {s.fps:.1f} frames/s{note}"),
                                  soft_wrap=True, highlight=False)

        for translator, jobs in plans:
            part = translate_videos(translator, jobs, on_video=on_video, on_frames=lambda n: bar.advance(task, n),
                                    on_done=on_done, **options)
            offset += len(jobs)
            report.written += part.written
            report.skipped += part.skipped
            report.failed += part.failed
            report.results += part.results
            report.audio_dropped += part.audio_dropped
    missing = [src for src, why in report.audio_dropped if NO_FFMPEG in why]
    if missing:
        what = missing[0].name if len(missing) == 1 else f"{len(missing)} videos"
        console.print(f"[yellow]audio dropped[/] from {escape(what)}: {escape(NO_FFMPEG)}", soft_wrap=True)
    return report
