#!/bin/sh
# Reproduces the Fashion-MNIST study from models/: five networks for 15 epochs, the baseline with
# the learning rate halved every 5 epochs, the baseline under 10-fold cross-validation, and a
# residual network (models/graph/resnet_fashion.net) with the same settings; the baseline and the
# residual network also with the step and cosine schedules.
# Logs, checkpoints and confusion matrices go to results/, then results/RESULTS.md is written.
# Usage: reproduce.sh BUILD_DIR [RESULTS_DIR]; ARGS in the environment reach every trainer
# (e.g. ARGS="--epochs 1 --limit 3000" for a quick rehearsal).
# Two trainers run side by side, one thread each (the k-fold beside the others): on 2 cores
# that beats one trainer on two threads. A run that finished is kept; one that was interrupted
# resumes from its last checkpoint, so an interrupted `make reproduce` continues.
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
  if grep -qs '"seconds"' "$out/$name/run.json"; then
    echo "== $name: finished before, kept"
    return
  fi
  resume=""
  [ -f "$out/$name/weights.ckpt" ] && [ "$*" = "${*#--kfold}" ] && resume=--resume
  echo "== $name: $trainer train $* $resume $args"
  # shellcheck disable=SC2086
  "$build/$trainer" train --threads 1 --log "$out/$name" --save "$out/$name/weights.ckpt" \
    $resume "$@" $args >> "$out/$name/train.log" 2>&1 ||
    { tail -5 "$out/$name/train.log"; return 1; }
  echo "== $name: $(grep -E "^(test|[0-9]+-fold)" "$out/$name/train.log" | tail -1)"
}

run baseline-kfold baseline --kfold 10 &
kfold=$!
for model in baseline dropout l1 l2 batchnorm; do
  run "$model" "$model"
done
run baseline-step baseline --schedule step:5:0.5
run resnet_fashion resnet_fashion
run baseline-cosine baseline --schedule cosine
run resnet_fashion-step resnet_fashion --schedule step:5:0.5
run resnet_fashion-cosine resnet_fashion --schedule cosine
wait "$kfold"
"$(dirname "$0")/results.sh" "$out" "$build/cnnc"
