#!/usr/bin/env bash
# The CPU ablation of docs/ablation.md: candidates trained for the same wall time (the
# recipe of configs/default.yaml, each changing one thing), then scored on val.
#   bash scripts/ablation_cpu.sh RUNS_DIR [MINUTES [CANDIDATE...]]
# Run from the repository root. Run folders go to RUNS_DIR (keep it outside the repo).
# Without candidates named, all of round 2's run (lite2 and stride2, added later, run by name).
set -euo pipefail
runs=${1:?usage: ablation_cpu.sh RUNS_DIR [MINUTES [CANDIDATE...]]}
minutes=${2:-4}
shift $(( $# < 2 ? $# : 2 ))
common=(--train.max_minutes="$minutes" --train.schedule=constant --train.max_steps=1000000
        --train.eval_every=1000000 --train.ckpt_every=500 --model.freeze_encoder_steps=1000000)
declare -A cand=(
  [ce]=""
  [ce_l1]="--loss.kwargs.l1=5"
  [rebal_lam0.8]="--loss.kwargs.rebalance=true --loss.kwargs.lam=0.8"
  [encoder_trains]="--model.freeze_encoder_steps=0"
  [train_only_data]="--data.train=../shared/data/photos/train --data.feature_cache=~/.cache/chromatize/features/train_only"
  # EfficientNet-Lite2: its own feature cache; blocks 0-6 are Lite0's 0-4 (the first two taps)
  [lite2]="--model.name=effnet_lite2_cls --model.frozen_blocks=7 --data.feature_cache=~/.cache/chromatize/features/lite2"
  # chroma at stride 2 (models/stride2.py): its cache holds the stride-2 map and targets too
  [stride2]="--model.name=effnet_lite0_cls_s2 --data.feature_cache=~/.cache/chromatize/features/s2"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(ce ce_l1 rebal_lam0.8 encoder_trains train_only_data)
for name in "${names[@]}"; do
  if [ -f "$runs/$name/model.json" ]; then echo "== $name: done"; continue; fi
  echo "== $name: ${cand[$name]}"
  # shellcheck disable=SC2086
  chromatize train configs/default.yaml --run_dir="$runs/$name" "${common[@]}" ${cand[$name]}
done
