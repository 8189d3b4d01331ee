#!/bin/sh
# The baseline trained again with other seeds, to see how far the study's figures move from run
# to run. usage: seeds.sh BUILD_DIR RESULTS_DIR SEED...
set -eu
build=$1
out=$2
shift 2
for seed in "$@"; do
  mkdir -p "$out/baseline-seed-$seed"
  "$build/baseline" train --threads 1 --seed "$seed" --log "$out/baseline-seed-$seed" \
    > "$out/baseline-seed-$seed/train.log" 2>&1
  echo "seed $seed: $(grep '^test' "$out/baseline-seed-$seed/train.log")"
done
