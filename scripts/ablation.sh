#!/usr/bin/env bash
# The ablation of docs/ablation.md: train every configs/ablation/*.yaml with the same
# budget, score each with `chromatize evaluate` and print the table (runs/ablation/table.md).
#
#   scripts/ablation.sh [--parallel] [--deadline SECONDS] [--val DIR] [dotted overrides...]
#
# --parallel trains all runs at once (one GPU shared); --deadline sends SIGTERM to runs
# still going after that many seconds (they save and stop cleanly). Overrides go to every
# run, e.g. --data.train=DIR --train.max_steps=100; EVAL_ARGS adds options to the final
# `chromatize evaluate` (e.g. "--limit 50 --device cuda"). Runs land in runs/ablation/NAME.
set -uo pipefail
cd "$(dirname "$0")/.."
CHROMATIZE=${CHROMATIZE:-chromatize}
parallel=0 deadline=0 val=../shared/data/photos/val
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --parallel) parallel=1 ;;
    --deadline) deadline=$2; shift ;;
    --val) val=$2; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
mkdir -p runs/ablation
pids=()
for cfg in configs/ablation/*.yaml; do
  name=$(basename "$cfg" .yaml)
  cmd=($CHROMATIZE train "$cfg" --run_dir=runs/ablation/$name "${args[@]}")
  if [ "$deadline" -gt 0 ]; then cmd=(timeout -s TERM -k 60 "$deadline" "${cmd[@]}"); fi
  if [ "$parallel" = 1 ]; then
    "${cmd[@]}" >runs/ablation/$name.log 2>&1 &
    pids+=($!)
  else
    "${cmd[@]}" >runs/ablation/$name.log 2>&1
  fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
# Score each run on the validation photos (in parallel with --parallel), then tabulate.
pids=()
for d in runs/ablation/*/; do
  [ -f "$d/model.json" ] || continue
  cmd=($CHROMATIZE evaluate "$val" --model "$d/model" -o "$d/eval" --overwrite ${EVAL_ARGS:-})
  if [ "$parallel" = 1 ]; then "${cmd[@]}" >"$d/eval.log" 2>&1 & pids+=($!); else "${cmd[@]}" >"$d/eval.log" 2>&1; fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
python3 scripts/ablation_table.py runs/ablation | tee runs/ablation/table.md
