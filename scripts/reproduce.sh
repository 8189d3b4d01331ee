#!/bin/sh
# Reproduces the Fashion-MNIST study from models/: five networks for 15 epochs, the baseline with
# the learning rate halved every 5 epochs, and the baseline under 10-fold cross-validation.
# Logs, checkpoints and confusion matrices go to results/, then results/RESULTS.md is written.
# Usage: reproduce.sh BUILD_DIR [RESULTS_DIR]; ARGS in the environment reach every trainer
# (e.g. ARGS="--epochs 1 --limit 3000" for a quick rehearsal).
set -eu
build=$1
out=${2:-results}
args=${ARGS:-}
mkdir -p "$out"

run() { # run NAME TRAINER FLAGS...: one training run with its logs in $out/NAME
  name=$1
  trainer=$2
  shift 2
  mkdir -p "$out/$name"
  echo "== $name: $trainer train $* $args"
  # shellcheck disable=SC2086
  "$build/$trainer" train --log "$out/$name" --save "$out/$name/weights.ckpt" "$@" $args \
    > "$out/$name/train.log" 2>&1 || { tail -5 "$out/$name/train.log"; exit 1; }
  grep -E "^(epoch|test|[0-9]+-fold)" "$out/$name/train.log" | tail -3
}

for model in baseline dropout l1 l2 batchnorm; do
  run "$model" "$model"
done
run baseline-step baseline --schedule step:5:0.5
run baseline-kfold baseline --kfold 10
"$(dirname "$0")/results.sh" "$out" "$build/cnnc"
