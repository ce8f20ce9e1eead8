#!/usr/bin/env bash
# Every GPU check of issue 13 in one command of at most 8 minutes: speed, CUDA tests, quality sprint.
#   bench/gpu.sh [--dry] [--out DIR] [--seconds 470] [--data gpu_data/horse2zebra]
# Writes summary.json, gpu.log, pytest.xml and sprint.tar under --out (default $OUT, else ./gpu_out).
# --dry runs the same sections on the CPU at tiny sizes (tests/test_gpu_script.py does, so it cannot rot).
# The body is bench/gpu_run.py; see its docstring and README "Benchmarks" for the device-tool command.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" bench/gpu_run.py "$@"
