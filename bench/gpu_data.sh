#!/usr/bin/env bash
# Repack horse2zebra so it travels to the GPU machine with the checkout (64 MiB in all, 118 MB as published):
#   bench/gpu_data.sh [SOURCE=../shared/data/horse2zebra] [DEST=gpu_data/horse2zebra] [QUALITY=75]
# Subset: ALL of trainA (1067) and trainB (1334), re-encoded as JPEG at QUALITY (75: about 34 MiB; the
# published files are near quality 95), same names and sizes (256x256), grayscale ones kept grayscale;
# testA (120) copied byte for byte, so the sprint's translations start from the published test inputs.
# testB stays behind: FID is scored on the CPU machine against ../shared/data/horse2zebra/testB.
# DEST's parent gpu_data/ is ignored by git (.git/info/exclude): name it in the device tool's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-../shared/data/horse2zebra}
DEST=${2:-gpu_data/horse2zebra}
QUALITY=${3:-75}
[ -d "$SRC/trainA" ] || { echo "no horse2zebra at $SRC (expected trainA/ trainB/ testA/)" >&2; exit 2; }
"${PYTHON:-python3}" - "$SRC" "$DEST" "$QUALITY" <<'PY'
import shutil, sys
from pathlib import Path
from PIL import Image

src, dest, quality = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
if dest.exists():
    shutil.rmtree(dest)
for part in ("trainA", "trainB"):
    (dest / part).mkdir(parents=True)
    for f in sorted(src.glob(f"{part}/*")):
        with Image.open(f) as im:
            im = im if im.mode in ("RGB", "L") else im.convert("RGB")
            im.save(dest / part / f"{f.stem}.jpg", "JPEG", quality=quality)
shutil.copytree(src / "testA", dest / "testA")
counts = {p: len(list((dest / p).iterdir())) for p in ("trainA", "trainB", "testA")}
size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
note = (f"horse2zebra from {src}: all of trainA ({counts['trainA']}) and trainB ({counts['trainB']}) "
        f"re-encoded as JPEG quality {quality}; testA ({counts['testA']}) as published; {size / 2**20:.1f} MiB")
(dest / "SUBSET.txt").write_text(note + "\n")
print(note)
PY
