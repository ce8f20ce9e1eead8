"""`img2img report RUN`: one self-contained HTML page about a training run, finished or still going.

It reads only what the loop writes (log.jsonl, samples/step_*.jpg or .png, config.json) plus any eval JSON files
left in the run folder (`img2img eval --json RUN/eval.json`, bench/budget.py's record), and embeds
everything: curves as inline SVG, sample grids as base64 PNG, so the page opens anywhere without network.
A run that is still training may have a half-written last log line or sample; those are skipped.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import tempfile
import time
from pathlib import Path

from img2img.errors import UserError

LOG_FILE, CONFIG_FILE, SAMPLES_DIR = "log.jsonl", "config.json", "samples"
NOT_LOSSES = {"step", "epoch", "lr", "it_s", "time", "event"}
MAX_GRIDS = 12
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def read_log(path: Path) -> list[dict]:
    """The log's records; an unfinished or garbled line (a run writing right now) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def loss_series(records: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """{loss name: [(step, value), ...]} from the periodic records (those without an event)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for rec in records:
        if "event" in rec or "step" not in rec:
            continue
        for key, value in rec.items():
            if key not in NOT_LOSSES and isinstance(value, (int, float)) and math.isfinite(value):
                series.setdefault(key, []).append((float(rec["step"]), float(value)))
    return series


def run_status(records: list[dict]) -> tuple[str, int, int]:
    """('running' | 'done' | 'stopped' | 'interrupted' | 'no log', last step, total steps)."""
    total = next((r.get("total_steps", 0) for r in reversed(records) if r.get("event") in ("start", "resume")), 0)
    step = max((int(r["step"]) for r in records if isinstance(r.get("step"), (int, float))), default=0)
    last_event = next((r["event"] for r in reversed(records) if r.get("event") in ("start", "resume", "done", "stop", "interrupted")), None)
    status = {"done": "done", "stop": "stopped", "interrupted": "interrupted"}.get(last_event, "running" if records else "no log")
    return status, step, total


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def svg_chart(title: str, series: dict[str, list[tuple[float, float]]], width: int = 360, height: int = 200,
              log_y: bool = False) -> str:
    """A small line chart (inline SVG) of one or more (x, y) series sharing axes."""
    pts = [p for s in series.values() for p in s]
    if not pts:
        return ""
    ml, mr, mt, mb = 48, 10, 22, 28
    fy = (lambda v: math.log10(max(v, 1e-12))) if log_y else (lambda v: v)
    xs, ys = [p[0] for p in pts], [fy(p[1]) for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    px = lambda x: ml + (x - x0) / (x1 - x0) * (width - ml - mr)  # noqa: E731
    py = lambda y: height - mb - (y - y0) / (y1 - y0) * (height - mt - mb)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" class="chart">',
           f'<text x="{ml}" y="14" class="title">{html.escape(title)}{" (log scale)" if log_y else ""}</text>',
           f'<rect x="{ml}" y="{mt}" width="{width - ml - mr}" height="{height - mt - mb}" fill="none" stroke="#ccc"/>']
    for t in _ticks(y0, y1):
        label = _fmt(10**t) if log_y else _fmt(t)
        out.append(f'<line x1="{ml}" x2="{width - mr}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
                   f'<text x="{ml - 4}" y="{py(t) + 4:.1f}" text-anchor="end" class="tick">{label}</text>')
    for t in _ticks(x0, x1):
        out.append(f'<text x="{px(t):.1f}" y="{height - mb + 14}" text-anchor="middle" class="tick">{_fmt(t)}</text>')
    for i, (name, s) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        if len(s) == 1:
            out.append(f'<circle cx="{px(s[0][0]):.1f}" cy="{py(fy(s[0][1])):.1f}" r="3" fill="{colour}"/>')
        else:
            path = " ".join(f"{px(x):.1f},{py(fy(y)):.1f}" for x, y in s)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        if len(series) > 1:
            out.append(f'<text x="{width - mr - 4}" y="{mt + 12 + 12 * i}" text-anchor="end" class="tick" fill="{colour}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def smooth(s: list[tuple[float, float]], window: int) -> list[tuple[float, float]]:
    """Running mean over window points: GAN losses are noisy step to step."""
    if window <= 1 or len(s) <= window:
        return s
    out, acc = [], 0.0
    for i, (x, y) in enumerate(s):
        acc += y
        if i >= window:
            acc -= s[i - window][1]
        out.append((x, acc / min(i + 1, window)))
    return out


def image_type(data: bytes) -> str | None:
    """'png' or 'jpeg' for a complete file of that kind; None for anything else, such as a preview the loop
    is writing right now (no end marker yet)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in data[-16:]:
        return "png"
    if data.startswith(b"\xff\xd8") and data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return "jpeg"
    return None


def sample_grids(run: Path, limit: int = MAX_GRIDS) -> list[tuple[int, str, bytes]]:
    """Up to `limit` sample grids (step_*.jpg or .png) spread evenly over training, with the first and the newest."""
    files = sorted(f for f in (run / SAMPLES_DIR).glob("step_*") if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(files) > limit:
        idx = sorted({round(i * (len(files) - 1) / (limit - 1)) for i in range(limit)})
        files = [files[i] for i in idx]
    grids = []
    for f in files:
        try:
            data = f.read_bytes()
            step = int(f.stem.split("_")[1])
        except (OSError, ValueError, IndexError):
            continue
        kind = image_type(data)
        if kind:
            grids.append((step, kind, data))
    return grids


def eval_files(run: Path) -> list[tuple[str, dict]]:
    """Score files in the run folder: JSON objects holding an 'fid' or 'l1' entry (at the top or under 'scores')."""
    found = []
    for f in sorted(run.glob("*.json")):
        if f.name == CONFIG_FILE:
            continue
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        scores = data.get("scores", data) if isinstance(data, dict) else None
        if isinstance(scores, dict) and ({"fid", "l1"} & scores.keys()):
            found.append((f.name, scores))
    return found


def _table(rows: list[list[str]], header: list[str] | None = None) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _scalar(v) -> str:
    return _fmt(v) if isinstance(v, float) else str(v)


CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#555}.charts{display:flex;flex-wrap:wrap;gap:12px}.chart .title{font-size:12px;font-weight:600}
.chart .tick{font-size:10px;fill:#555}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
figure{display:inline-block;margin:0 12px 12px 0;vertical-align:top}figure img{image-rendering:pixelated;min-width:360px;max-width:100%}.config{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
figcaption{font-size:12px;color:#555}.status-running{color:#b36b00}.status-done{color:#197a2e}pre{background:#f6f6f6;padding:8px;font-size:12px}"""


def build_report(run: str | Path) -> str:
    run = Path(run)
    if not run.is_dir():
        raise UserError(f"no run folder at {run}")
    records = read_log(run / LOG_FILE)
    cfg_path = run / CONFIG_FILE
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        config = {}
    grids = sample_grids(run)
    if not records and not config and not grids:
        raise UserError(f"{run} holds no training run (no {LOG_FILE}, {CONFIG_FILE} or {SAMPLES_DIR}/)")
    status, step, total = run_status(records)
    method = config.get("method", "?")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>img2img report: {html.escape(run.name)}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>{html.escape(method)} — {html.escape(str(run))}</h1>",
             f"<div class='meta'><span class='status-{status}'>{status}</span>: step {step}"
             f"{f' of {total}' if total else ''}; report written {time.strftime('%Y-%m-%d %H:%M:%S')}</div>"]
    starts = [r for r in records if r.get("event") in ("start", "resume")]
    if starts:
        r = starts[-1]
        parts.append(f"<div class='meta'>device {html.escape(str(r.get('device', '?')))}, precision {html.escape(str(r.get('precision', '?')))}</div>")

    series = loss_series(records)
    parts.append("<h2>Losses</h2>")
    if series:
        window = max(1, len(next(iter(series.values()))) // 50) if series else 1
        charts = [svg_chart(name + (f" (mean of {window})" if window > 1 else ""), {name: smooth(s, window)}) for name, s in series.items()]
        lr = [(float(r["step"]), float(r["lr"])) for r in records if "event" not in r and isinstance(r.get("lr"), (int, float))]
        if lr:
            charts.append(svg_chart("learning rate", {"lr": lr}))
        its = [(float(r["step"]), float(r["it_s"])) for r in records if "event" not in r and isinstance(r.get("it_s"), (int, float))]
        if its:
            charts.append(svg_chart("speed (it/s)", {"it/s": its}))
        parts.append(f"<div class='charts'>{''.join(charts)}</div>")
    else:
        parts.append("<p>No losses logged yet.</p>")

    evals = [r for r in records if r.get("event") == "eval"]
    files = eval_files(run)
    if evals or files:
        parts.append("<h2>Evaluation</h2>")
    if evals:
        keys = [k for k in ("fid", "kid", "l1", "psnr", "ssim") if any(k in r for r in evals)]
        curves = {k: [(float(r["step"]), float(r[k])) for r in evals if isinstance(r.get(k), (int, float))] for k in keys}
        parts.append("<div class='charts'>" + "".join(svg_chart(k.upper() + " during training", {k: v}) for k, v in curves.items() if v) + "</div>")
        parts.append(_table([[str(r["step"]), *(_scalar(r.get(k, "")) for k in keys)] for r in evals], ["step", *keys]))
    for name, scores in files:
        flat = {k: v for k, v in scores.items() if isinstance(v, (int, float, str, bool))}
        parts.append(f"<p><b>{html.escape(name)}</b></p>" + _table([[k, _scalar(v)] for k, v in flat.items()]))

    parts.append("<h2>Samples over training</h2>")
    if grids:
        parts.append("<p class='meta'>Each grid: rows are preview images; columns are the method's views "
                     "(input, translation, then reconstruction or target).</p>")
        for s, kind, data in grids:
            b64 = base64.b64encode(data).decode("ascii")
            parts.append(f"<figure><img src='data:image/{kind};base64,{b64}' alt='step {s}'><figcaption>step {s}</figcaption></figure>")
    else:
        parts.append("<p>No sample grids yet.</p>")

    parts.append("<h2>Configuration</h2>")
    if config:
        tables = [f"<div><p><b>{section}</b></p>" + _table([[k, _scalar(v)] for k, v in config[section].items()]) + "</div>"
                  for section in ("data", "net", "train", "loss") if isinstance(config.get(section), dict)]
        parts.append(f"<div class='config'>{''.join(tables)}</div>")
    else:
        parts.append(f"<p>No {CONFIG_FILE} yet.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the page (default RUN/report.html) atomically, so a browser never sees half a file."""
    run = Path(run)
    target = Path(out) if out else run / "report.html"
    page = build_report(run)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.replace(tmp, target)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
