"""The translate command's video part: a rich bar per video (frames, frames/s, ETA), one line per file."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
from rich.text import Text

from img2img.translate.audio import NO_FFMPEG
from img2img.translate.batch import VideoBatchReport, translate_videos
from img2img.translate.outputs import Job


def average_speed(task) -> float | None:
    """Frames per second since the task started: known from the first batch on, however slow.
    (rich's own speed only looks at the last 30 s, so it is blank while a batch takes longer.)"""
    elapsed = task.elapsed
    if not task.completed or not elapsed:
        return None
    return task.completed / elapsed


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    return f"{hours}:{minutes:02d}:{secs:02d}"


class FramesPerSecondColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or average_speed(task)
        if not speed:
            return Text("  ... fps", style="progress.data.speed")
        return Text(f"{speed:5.1f} fps" if speed >= 0.1 else f"{60 * speed:.1f} frames/min", style="progress.data.speed")


class RemainingColumn(ProgressColumn):
    """Time left at the average speed so far, in days when long; blank until a batch is done or when the total is unknown."""

    def render(self, task) -> Text:
        speed = average_speed(task)
        if task.finished or not speed or not task.total:
            return Text("")
        return Text(f"ETA {format_duration((task.total - task.completed) / speed)}", style="progress.remaining")


def run_video_batches(plans: list[tuple[object, list[Job]]], *, console: Console, quiet: bool = False,
                      **options) -> VideoBatchReport:
    """translate_videos over (translator, jobs) pairs with progress; options go to translate_videos."""
    total = sum(len(jobs) for _, jobs in plans)
    report = VideoBatchReport()
    if total == 0:
        return report
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
               FramesPerSecondColumn(), RemainingColumn()]
    offset = 0
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:  # a line per file stays
        task = bar.add_task("video", total=None, visible=False)

        def on_video(i, job, info):
            bar.reset(task, total=info.frame_count or None, completed=0, visible=True,
                      description=escape(f"[{offset + i + 1}/{total}] {job.source.name}"))
            bar.start_task(task)

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
                for line in result.notes:
                    bar.console.print(f"[yellow]note:[/] {escape(f'{job.source.name}: {line}')}", soft_wrap=True)

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
