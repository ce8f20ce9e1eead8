#!/usr/bin/env bash
# Real trial: DistanceGAN one-way (A->B only) and CycleGAN, horse -> zebra at 128 px, the same step budget.
# Each method uses its paper defaults (DistanceGAN: batch 2, pairs within the batch; CycleGAN: batch 1),
# so DistanceGAN sees twice the images per step but trains one G and one D instead of two of each.
# Then: FID/KID of testA->B against testB (img2img eval), distance statistics and a comparison grid.
#   STEPS=2000 DEVICE=cpu bash bench/horse2zebra.sh [OUT_ROOT]      (env: STEPS DEVICE SIZE PRECISION DATA)
# A run directory that already holds a checkpoint is resumed, so the script can be re-run after a stop.
set -euo pipefail
DATA=${DATA:-../shared/data/horse2zebra}
ROOT=${1:-runs/horse2zebra}
STEPS=${STEPS:-2000}
DEVICE=${DEVICE:-cpu}
SIZE=${SIZE:-128}
PRECISION=${PRECISION:-fp32}
EVERY=$(( STEPS < 500 ? STEPS : 500 ))
mkdir -p "$ROOT"

train() {  # train METHOD RUN_DIR [method flags...]
  local method=$1 run=$2; shift 2
  if [[ -f "$run/checkpoint.pt" ]]; then
    img2img train "$method" --resume --out "$run" --steps "$STEPS" --device "$DEVICE" -q
  else
    img2img train "$method" --a "$DATA/trainA" --b "$DATA/trainB" --image-size "$SIZE" --steps "$STEPS" \
      --device "$DEVICE" --precision "$PRECISION" --sample-every "$EVERY" --save-every "$EVERY" --out "$run" -q "$@"
  fi
}

for method in distancegan cyclegan; do
  flags=()
  [[ $method == distancegan ]] && flags=(--one-way)
  start=$(date +%s)
  train "$method" "$ROOT/$method" "${flags[@]}"
  echo "$method: $(( $(date +%s) - start )) s for this invocation" | tee -a "$ROOT/times.txt"
done

for method in distancegan cyclegan; do
  img2img eval "$ROOT/$method/model.pt" --a "$DATA/testA" --b "$DATA/testB" --direction a2b --image-size "$SIZE" \
    --device "$DEVICE" --json "$ROOT/$method/eval_test.json" || echo "img2img eval failed for $method (FID needs the metrics extra)"
done
python bench/unpaired_compare.py --test "$DATA/testA" --size "$SIZE" --device "$DEVICE" --grid "$ROOT/compare_grid.png" \
  "$ROOT/distancegan/model.pt" "$ROOT/cyclegan/model.pt" | tee "$ROOT/compare.json"
echo "grid (input | DistanceGAN one-way | CycleGAN): $ROOT/compare_grid.png"
