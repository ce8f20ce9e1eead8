"""GPU diagnostic: which settings make CUDA training resume bit-exactly. Prints one line per comparison."""
import sys, time, tempfile, warnings
from pathlib import Path
sys.path.insert(0, "tests")
warnings.filterwarnings("ignore")
import torch
from typer.testing import CliRunner
from img2img.cli import app
from conftest import make_paired, make_unpaired

root = Path(tempfile.mkdtemp())
paired = make_paired(root / "paired" / "train", count=6, size=32)
ua, ub = make_unpaired(root / "unp", count=6, size=32)
FL = ["--image-size", "64", "--ngf", "8", "--ndf", "8", "--device", "cuda", "--seed", "0", "--sample-every", "0", "--log-every", "1", "-q"]

def train(args):
    r = CliRunner().invoke(app, [str(a) for a in ["train", *args]], catch_exceptions=False)
    assert r.exit_code == 0, r.output

def nets(run):
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["method"]["nets"]

def diff(a, b):
    na, nb = nets(a), nets(b)
    n = d = 0
    worst = 0.0
    for k in na:
        for t in na[k]:
            x, y = na[k][t].float(), nb[k][t].float()
            n += 1
            if not torch.equal(x, y):
                d += 1
                worst = max(worst, float((x - y).abs().max()))
    return f"{d}/{n} differ, max {worst:.3g}"

cases = {
    "pix2pix_default": ["pix2pix", "--data", paired, "--generator", "unet_64", "--steps", 6, "--workers", 1],
    "pix2pix_deterministic": ["pix2pix", "--data", paired, "--generator", "unet_64", "--steps", 6, "--workers", 1, "--deterministic"],
    "pix2pix_det_cache": ["pix2pix", "--data", paired, "--generator", "unet_64", "--steps", 6, "--deterministic"],
    "cyclegan_deterministic": ["cyclegan", "--a", ua, "--b", ub, "--steps", 6, "--deterministic"],
}
for name, args in cases.items():
    t0 = time.time()
    try:
        a, a2, b = (root / name / x for x in ("A", "A2", "B"))
        train([*args, "--out", a, *FL])
        train([*args, "--out", a2, *FL])
        train([*args, "--stop-after", 3, "--out", b, *FL])
        train([args[0], "--resume", "--out", b, "--device", "cuda", "-q"])
        print(f"DIAG {name}: rerun {diff(a, a2)}; resume {diff(a, b)} ({time.time() - t0:.0f} s)", flush=True)
    except Exception as e:
        print(f"DIAG {name}: error {type(e).__name__}: {str(e)[:300]}", flush=True)
