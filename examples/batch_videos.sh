#!/usr/bin/env bash
# Convert a folder of videos with a trained model: one output per input, same name, in OUT/.
#
#   examples/batch_videos.sh RUN/model.pt footage/ footage_zebra/
#
# Safe to re-run after an interruption: finished outputs are skipped, and a video cut short is
# redone (it was being written under a hidden .NAME.partial name, never under its final one).
# The exit code is 1 if any input failed (each failure is reported on one line; the rest go on).
set -euo pipefail

MODEL=${1:?usage: $0 MODEL.pt IN_DIR OUT_DIR}
IN=${2:?usage: $0 MODEL.pt IN_DIR OUT_DIR}
OUT=${3:?usage: $0 MODEL.pt IN_DIR OUT_DIR}

# 1) One call with the folder: the simplest, and it loads the model once.
#    Add --size 512 to translate at a 512 px short side (faster), --temporal against flicker.
img2img translate "$MODEL" "$IN" -o "$OUT"

# 2) The same as a shell loop, if you want per-file control (each call reloads the model):
# for f in "$IN"/*.{mp4,mov,mkv,avi,webm}; do
#     [ -e "$f" ] || continue
#     img2img translate "$MODEL" "$f" -o "$OUT/$(basename "$f")" -q || echo "failed: $f" >&2
# done

# 3) A cluster job array: N tasks share one folder without overlap (the split is by sorted file
#    name). With Slurm, submit e.g.  sbatch --array=0-7 --gres=gpu:1 examples/batch_videos.sh ...
# if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
#     img2img translate "$MODEL" "$IN" -o "$OUT" -q --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT"
# fi
#
# 4) Several GPUs on one machine: one process per GPU, each takes its share and its own GPU.
# torchrun --nproc-per-node 4 -m img2img translate "$MODEL" "$IN" -o "$OUT" -q
