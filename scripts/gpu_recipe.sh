#!/usr/bin/env bash
# One GPU training run in one command (issue 23, item 7d): configs/gpu/encoder.yaml.
#
#   bash scripts/gpu_recipe.sh pack [PHOTOS]       # here, once: photos -> .gpu/*.zip
#   bash scripts/gpu_recipe.sh run [--key=VALUE ...] # there: unpack, train, return files
#
# `pack` (on any machine, from the repository root; PHOTOS defaults to ../shared/data/photos)
# writes centre squares of 160 px as WebP: train/ at quality 70, val at 70, and as many of
# train_extra (without the research-only pacs_ photos, a random share if they do not all
# fit) at quality 55 as keep the tracked files plus .gpu/ within the 64 MiB that travel to
# a device machine, with 3 MiB to spare.
#
# `run` (on the device machine: device tool `run`, carry [".gpu"], timeout_s 600) unpacks
# .gpu/*.zip into .gpu/photos/, trains one run into /tmp/gpu_run (6.5 minutes of training,
# the resume state every 2 minutes, a val check every 1,000 steps) and copies the model,
# the best model by val loss, the config and the log into $OUT (or runs/gpu when $OUT is
# unset). Extra arguments are config overrides, e.g. for a CPU smoke test:
#   bash scripts/gpu_recipe.sh run --train.device=cpu --train.max_steps=2 --train.batch_size=4
set -euo pipefail
cmd=${1:?usage: gpu_recipe.sh pack [PHOTOS] | run [--key=VALUE ...]}
shift
python=$(command -v python3 || command -v python)
export PYTHONPATH=src PYTHONUNBUFFERED=1

if [ "$cmd" = pack ]; then
  photos=${1:-../shared/data/photos}
  mkdir -p .gpu
  rm -f .gpu/*.zip
  $python scripts/pack_photos.py .gpu/train.zip --side 160 --quality 70 "$photos/train"
  $python scripts/pack_photos.py .gpu/val.zip --side 160 --quality 70 "$photos/val"
  tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
  packed=$(du -cb .gpu/train.zip .gpu/val.zip | tail -1 | cut -f1)
  left=$(( 64 * 1048576 - 3 * 1048576 - tracked - packed ))
  [ "$left" -gt 0 ] || { echo "no room left for train_extra ($left bytes)"; exit 1; }
  $python scripts/pack_photos.py .gpu/extra.zip --side 160 --quality 55 --exclude pacs_ \
      --max-mb "$(( left / 1000000 ))" "$photos/train_extra"
  du -cb .gpu/*.zip | tail -1 | awk -v t="$tracked" '{printf "travels: %.1f MiB of 64\n", ($1 + t) / 1048576}'
elif [ "$cmd" = run ]; then
  for part in train val extra; do
    [ -f ".gpu/$part.zip" ] || { echo ".gpu/$part.zip missing: run 'gpu_recipe.sh pack' first"; exit 1; }
    rm -rf ".gpu/photos/$part"
    $python -m zipfile -e ".gpu/$part.zip" ".gpu/photos/$part"
  done
  run=/tmp/gpu_run
  out=${OUT:-runs/gpu}
  rm -rf "$run"
  mkdir -p "$out"
  status=0
  $python -m chromatize.cli train configs/gpu/encoder.yaml --run_dir="$run" "$@" || status=$?
  for f in model.safetensors model.json best.safetensors best.json config.yaml log.csv; do
    [ ! -f "$run/$f" ] || cp "$run/$f" "$out/"
  done
  exit $status
else
  echo "unknown command $cmd: pack or run"; exit 2
fi
