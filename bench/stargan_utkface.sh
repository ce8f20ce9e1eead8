#!/usr/bin/env bash
# Real trial: StarGAN on UTKFace age groups (4 domains: age_00-19, age_20-39, age_40-59, age_60plus).
# Paper settings (WGAN-GP, n_critic 5, lambda_cls 1, lambda_rec 10, Adam 1e-4, batch 16, lr decay over the
# second half) at SIZE px (64 by default for a CPU budget; 128 is the paper's), no crop jitter.
# Then the paper's own check: how often the trained classifier (D's class head) assigns translated test
# images to their target domain, beside its accuracy on the real test images; and, where CLASSIFIER
# exists (python bench/age_classifier.py train -o runs/age_classifier.pt), the same check by that
# separately trained age classifier, which StarGAN never saw (the stricter test).
#   STEPS=3000 DEVICE=cpu bash bench/stargan_utkface.sh [RUN_DIR]   (env: STEPS DEVICE SIZE BATCH PRECISION DATA LIMIT CLASSIFIER)
# On a busy CPU, OMP_NUM_THREADS=1 avoids OpenMP spin-waiting (5x faster here under load).
# LIMIT: test images per domain for the check (default 0 = all 100).
# A run directory that already holds a checkpoint is resumed.
set -euo pipefail
DATA=${DATA:-../shared/data/utkface_agegroups}
RUN=${1:-runs/stargan-utkface}
STEPS=${STEPS:-3000}
DEVICE=${DEVICE:-cpu}
SIZE=${SIZE:-64}
BATCH=${BATCH:-16}
PRECISION=${PRECISION:-fp32}
LIMIT=${LIMIT:-0}
CLASSIFIER=${CLASSIFIER:-runs/age_classifier.pt}
EVERY=$(( STEPS < 500 ? STEPS : 500 ))
start=$(date +%s)
if [[ -f "$RUN/checkpoint.pt" ]]; then
  img2img train stargan --resume --out "$RUN" --steps "$STEPS" --device "$DEVICE" -q
else
  img2img train stargan --data "$DATA/train" --image-size "$SIZE" --load-size "$SIZE" --batch-size "$BATCH" \
    --steps "$STEPS" --device "$DEVICE" --precision "$PRECISION" --sample-every "$EVERY" --save-every "$EVERY" --out "$RUN" -q
fi
echo "stargan: $(( $(date +%s) - start )) s for this invocation" | tee -a "$RUN/times.txt"
python bench/stargan_eval.py "$RUN/model.pt" --test "$DATA/test" --device "$DEVICE" --limit "$LIMIT" --grid "$RUN/test_grid.png" \
  | tee "$RUN/eval_test.json"
echo "grid (input | to each domain): $RUN/test_grid.png"
if [[ -f "$CLASSIFIER" ]]; then
  python bench/age_classifier.py judge "$RUN/model.pt" --classifier "$CLASSIFIER" --test "$DATA/test" --limit "$LIMIT" \
    -o "$RUN/eval_age_classifier.json"
fi
