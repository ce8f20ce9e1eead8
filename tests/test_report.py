"""img2img report: a self-contained page from what a run folder holds, also while it is still training."""

from __future__ import annotations

import base64
import io
import json
import re

from PIL import Image

from conftest import TINY_FLAGS
from img2img.report import build_report, loss_series, read_log, run_status


def test_report_of_a_finished_run_has_curves_grids_scores_and_config(cli, tmp_path, unpaired_dirs):
    run = tmp_path / "run"
    result = cli(["train", "cut", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--steps", "6", "--out", run,
                  "--generator", "resnet_2", "--sample-every", "2", "--image-size", "32",
                  "--ngf", "8", "--ndf", "8", "--device", "cpu", "--log-every", "1", "-q"])
    assert result.exit_code == 0, result.output
    (run / "eval.json").write_text(json.dumps({"fid": 123.456, "kid": 0.0321, "images": 6}))
    result = cli(["report", run])
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page  # nothing fetched
    assert "<script" not in page
    # One chart per loss CUT logs, each a polyline through 6 logged steps.
    for loss in ("D", "G_adv", "NCE", "NCE_Y"):
        assert f">{loss}<" in page
    assert len(re.findall(r"<polyline", page)) >= 4
    # The three sample grids (steps 2, 4, 6), embedded as decodable images.
    imgs = re.findall(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)", page)
    assert len(imgs) == 3 and all(Image.open(io.BytesIO(base64.b64decode(b))).size[0] > 32 for _, b in imgs)
    assert [int(s) for s in re.findall(r"<figcaption>step (\d+)</figcaption>", page)] == [2, 4, 6]
    assert "123" in page and "0.0321" in page  # the eval scores
    assert "num_patches" in page and "256" in page  # the config
    assert "status-done" in page and "step 6 of 6" in page


def test_report_of_a_run_still_training_skips_the_half_written_parts(cli, tmp_path, unpaired_dirs):
    run = tmp_path / "run"
    result = cli(["train", "cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--steps", "8", "--stop-after", "4",
                  "--out", run, "--generator", "resnet_2", *TINY_FLAGS[:-5], "--sample-every", "2", "--log-every", "1", "-q"])
    assert result.exit_code == 0, result.output
    # Make it look like the loop is mid-write: drop the final 'stop' event, leave half a log line and a half-written grid.
    lines = [l for l in (run / "log.jsonl").read_text().splitlines() if '"event": "stop"' not in l]
    (run / "log.jsonl").write_text("\n".join(lines) + '\n{"step": 5, "epoch": 0.8, "G_ad')
    grid_file = next((run / "samples").glob("step_0000004.*"))
    grid = grid_file.read_bytes()
    (run / "samples" / f"step_0000006{grid_file.suffix}").write_bytes(grid[: len(grid) // 2])
    page = build_report(run)
    assert "status-running" in page and "step 4 of 8" in page
    assert [int(s) for s in re.findall(r"<figcaption>step (\d+)</figcaption>", page)] == [2, 4]
    assert ">cycle<" in page


def test_log_parsing_and_status():
    records = [{"event": "start", "step": 0, "total_steps": 10}, {"step": 1, "lr": 1e-4, "it_s": 3.0, "G": 1.0, "D": 0.5},
               {"step": 2, "lr": 1e-4, "it_s": 3.0, "G": float("nan"), "D": 0.4}, {"event": "eval", "step": 2, "fid": 50.0}]
    assert loss_series(records) == {"G": [(1.0, 1.0)], "D": [(1.0, 0.5), (2.0, 0.4)]}
    assert run_status(records) == ("running", 2, 10)
    assert run_status(records + [{"event": "done", "step": 10}])[0] == "done"


def test_read_log_survives_garbage(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_bytes(b'{"step": 1, "G": 1}\n\xff\xfe not json\n[1,2]\n{"step": 2')
    assert read_log(p) == [{"step": 1, "G": 1}]


def test_report_of_a_folder_without_a_run_is_a_clear_error(cli, tmp_path):
    result = cli(["report", tmp_path])
    assert result.exit_code == 2 and "holds no training run" in result.output
    result = cli(["report", tmp_path / "missing"])
    assert result.exit_code == 2 and "no run folder" in result.output
