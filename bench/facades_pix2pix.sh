#!/usr/bin/env bash
# Real trial: pix2pix labels -> photo on CMP Facades at 128 px, then test-set L1/PSNR beside baselines.
# About 20 minutes on a 2-core CPU at the default 3000 steps; set DEVICE=cuda and STEPS for a GPU.
#   bash bench/facades_pix2pix.sh [RUN_DIR]
set -euo pipefail
DATA=${DATA:-../shared/data/facades}
RUN=${1:-runs/facades-pix2pix}
STEPS=${STEPS:-3000}
DEVICE=${DEVICE:-cpu}
img2img train pix2pix --data "$DATA/train" --direction b2a --image-size 128 --steps "$STEPS" \
  --device "$DEVICE" --sample-every 500 --save-every 500 --out "$RUN" -q
python bench/paired_eval.py "$RUN/model.pt" --test "$DATA/test" --train "$DATA/train" --size 128 \
  --grid "$RUN/test_grid.png" | tee "$RUN/test_metrics.json"
