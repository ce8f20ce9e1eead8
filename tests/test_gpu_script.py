"""bench/gpu.sh --dry: the GPU script's every section on the CPU at tiny sizes, so it cannot rot
between the rare runs on a GPU machine (which get the same code with real sizes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SPEED_ITEMS = {"cyclegan_step_b1", "cyclegan_step_b4", "translate_256", "translate_1080p", "video_1080p",
               "pix2pix_256_e2e", "stargan_128_b16_e2e", "cyclegan_256_e2e"}


def test_gpu_script_dry_run_fills_every_section(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "OUT": ""}
    result = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh"), "--dry", "--out", str(out)], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=420)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "all sections ok" in result.stdout

    # what the device tool brings back: at most 8 plain files of at most 16 MiB
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gpu.log", "pytest.xml", "sprint.tar", "summary.json"]
    assert all((out / f).stat().st_size <= 16 * 2**20 for f in files)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["all_ok"] and summary["mode"].startswith("dry")
    speed = summary["sections"]["speed"]
    assert speed["status"] == "ok" and speed["machine"]["torch"] == __import__("torch").__version__
    assert SPEED_ITEMS <= {k for k, v in speed["items"].items() if v["status"] == "ok"}
    for name in SPEED_ITEMS:
        rows = speed["items"][name]["rows"]
        assert len(rows) >= 2 and "baseline" in rows[0]["label"], name  # baseline beside img2img's ways
        for row in rows:
            assert row["per_s"] > 0 and row["tflops"] > 0 and row["peak_mem_gib"] > 0, (name, row)
            assert abs(row["speedup_vs_baseline"] - row["per_s"] / rows[0]["per_s"]) < 1e-6 * row["per_s"], (name, row)
    # --variants reach the benches: each named way is its own row, labelled by precision and layout
    train_ways = [r["label"] for r in speed["items"]["cyclegan_step_b1"]["rows"][1:]]
    assert len(train_ways) == 2 and train_ways[0].endswith(" (img2img default)") and train_ways[1] == "fp32 channels-last"
    translate_ways = [r["label"] for r in speed["items"]["translate_256"]["rows"][1:]]
    assert len(translate_ways) == 2 and translate_ways[0] == "fp32 channels-last"
    assert translate_ways[1].endswith(" channels-last (img2img)")
    head = speed["headline"]
    assert head["cyclegan_256_pairs_per_s_best"] > 0 and head["translate_256_images_per_s"] > 0
    assert head["video_1080p_frames_per_s"] > 0

    # the CUDA tests were collected and, without a GPU, all skipped rather than failed or deselected
    tests = summary["sections"]["tests"]
    assert tests["status"] == "ok" and tests["failures"] == tests["errors"] == 0
    assert tests["tests"] >= 9 and tests["skipped"] == tests["tests"]

    # the sprint trained, translated every test image at its size, and packed them for scoring elsewhere
    sprint = summary["sections"]["sprint"]
    assert {"cyclegan", "cut", "cyclegan-quick"} <= sprint["methods"].keys() and sprint["archive"] == "sprint.tar"
    for name, run in sprint["methods"].items():
        assert run["status"] == "ok" and run["steps"] >= run["calibration_steps"] + 1 and run["translated"] == 4, name
    assert sprint["methods"]["cyclegan-quick"]["recipe"] == "quick" and sprint["methods"]["cyclegan"]["recipe"] is None
    with tarfile.open(out / "sprint.tar") as tar:
        names = tar.getnames()
        fakes = sorted(n for n in names if n.startswith("cyclegan/testA_fake/") and n.endswith(".png"))
        assert [Path(n).name for n in fakes] == [f"a{i:04d}.png" for i in range(4)]
        assert Image.open(tar.extractfile(fakes[0])).size == (32, 32)
        assert "cyclegan/run/log.jsonl" in names and "cyclegan/sprint.json" in names


def test_speed_variants_are_parsed_as_named_and_bad_ones_refused():
    sys.path.append(str(REPO / "bench"))
    from speed_common import Variant, parse_variants

    got = parse_variants("bf16, bf16-cl ,fp32-cl-compile,auto-graphs")
    assert got == [Variant("bf16"), Variant("bf16", True), Variant("fp32", True, True),
                   Variant("auto", False, True, "reduce-overhead")]
    assert [v.label for v in got] == ["bf16", "bf16 channels-last", "fp32 channels-last compiled", "auto CUDA graphs"]
    for bad in ("int8", "bf16-nhwc", "fp32-cl-fast"):
        with pytest.raises(SystemExit, match="PRECISION"):
            parse_variants(bad)
