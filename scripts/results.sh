#!/bin/sh
# Writes RESULTS_DIR/RESULTS.md from the logs that reproduce.sh left there, beside the study's
# published figures.
set -eu
out=${1:-results}
cnnc=${2:-build/cnnc}

# The pictures: each run's (train --log draws them too, when gnuplot is there), and one chart
# comparing the five networks. Plots are never a reason to fail.
pictures=1
for d in "$out"/*/; do
  ls "$d"epochs.csv "$d"confusion.csv "$d"kfold.csv >/dev/null 2>&1 || continue
  "$cnnc" plot "$d" >/dev/null 2>>"$out/plot-errors.log" || pictures=0
done
"$cnnc" plot --compare "$out/models.png" "$out/baseline" "$out/dropout" "$out/l1" "$out/l2" \
  "$out/batchnorm" >/dev/null 2>>"$out/plot-errors.log" || pictures=0
if [ "$pictures" = 1 ]; then
  rm -f "$out/plot-errors.log"
else
  echo "results.sh: no pictures: $(cat "$out/plot-errors.log")" >&2
fi
picture() { # picture FILE CAPTION: an image line, when the picture exists
  [ "$pictures" = 1 ] && [ -f "$out/$1" ] && printf '\n![%s](%s)\n' "$2" "$1" || true
}

# The value of "key" inside the JSON object "section" of a run.json (a flat, known layout).
json() { # json FILE SECTION KEY
  sed -n "s/.*\"$2\": {[^}]*\"$3\": \([0-9.eE+-]*\).*/\1/p" "$1" | head -1
}
last_epoch() { # last_epoch DIR COLUMN(4 = accuracy, 6 = val_accuracy)
  tail -1 "$1/epochs.csv" | cut -d, -f"$2"
}
fmt() { [ -n "$1" ] && printf '%.4f' "$1" || printf 'n/a'; }

{
  echo "# The Fashion-MNIST study, reproduced with cnnc"
  echo
  echo "Written by \`scripts/results.sh\` from the logs of \`make reproduce\` ($(date -u +%Y-%m-%d),"
  echo "$(grep -m1 -o '"blas": "[^"]*"' "$out/baseline/run.json" | cut -d'"' -f4 | cut -d' ' -f1-2),"
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))."
  echo "Each network was compiled by cnnc and trained by its generated trainer with the study's"
  echo "settings: Adam (lr 0.001), batch 32, 15 epochs, the last 20% of the training set held out"
  echo "for validation, seed 42. The study's figures are Keras'; 'ours' are cnnc's."
  echo
  echo "## Training and validation accuracy after 15 epochs"
  echo
  echo "| model | train acc (study) | train acc (ours) | val acc (study) | val acc (ours) | val: ours - study |"
  echo "|---|---|---|---|---|---|"
  for row in "baseline 0.9564 0.9146" "dropout 0.9461 0.9140" "l1 0.9175 0.9076" \
             "l2 0.9460 0.9126" "batchnorm 0.9864 0.9216"; do
    set -- $row
    if [ -f "$out/$1/epochs.csv" ]; then
      tr=$(last_epoch "$out/$1" 4); va=$(last_epoch "$out/$1" 6)
      d=$(awk -v a="$va" -v b="$3" 'BEGIN { printf "%+.4f", a - b }')
      echo "| $1 | $2 | $(fmt "$tr") | $3 | $(fmt "$va") | $d |"
    else
      echo "| $1 | $2 | not run | $3 | not run | |"
    fi
  done
  picture models.png "Validation accuracy and loss per epoch of the five networks"
  for m in baseline dropout l1 l2 batchnorm; do
    picture "$m/training.png" "$m: loss and accuracy per epoch"
  done
  echo
  echo "## Test set (10,000 images)"
  echo
  echo "| model | test acc (study) | test acc (ours) | test loss (study) | test loss (ours) |"
  echo "|---|---|---|---|---|"
  for row in "baseline 0.9178 0.2650" "dropout - -" "l1 - -" "l2 - -" "batchnorm 0.9079 0.4229" \
             "baseline-step - -"; do
    set -- $row
    if [ -f "$out/$1/run.json" ]; then
      echo "| $1 | $2 | $(fmt "$(json "$out/$1/run.json" test accuracy)") | $3 | $(fmt "$(json "$out/$1/run.json" test loss)") |"
    fi
  done
  echo
  echo "\`baseline-step\` is the baseline with the learning rate halved every 5 epochs"
  echo "(\`--schedule step:5:0.5\`); the dashed line is its learning rate."
  picture baseline-step/training.png "baseline with the step schedule"
  if ls "$out"/baseline-seed-*/run.json >/dev/null 2>&1; then
    echo
    echo "### The baseline with other seeds"
    echo
    echo "The same network and settings, only the seed changed (\`scripts/seeds.sh\`): how much"
    echo "the figures move from one run to the next."
    echo
    echo "| seed | train acc | val acc | test acc | test loss |"
    echo "|---|---|---|---|---|"
    for d in "$out/baseline" "$out"/baseline-seed-*; do
      [ -f "$d/run.json" ] || continue
      seed=$(sed -n 's/.*"seed": \([0-9]*\).*/\1/p' "$d/run.json" | head -1)
      echo "| $seed | $(fmt "$(last_epoch "$d" 4)") | $(fmt "$(last_epoch "$d" 6)") | $(fmt "$(json "$d/run.json" test accuracy)") | $(fmt "$(json "$d/run.json" test loss)") |"
    done
  fi
  if [ -f "$out/pytorch-batchnorm/fit.log" ]; then
    echo
    echo "### Cross-check: the batchnorm network in PyTorch"
    echo
    echo "The same network trained by PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)' 2>/dev/null)"
    echo "with Keras' initialization and the study's settings (\`bench/pytorch_peer.py fit 1"
    echo "models/batchnorm.net\`; its training accuracy is measured after each epoch in inference"
    echo "mode, not as Keras' running mean):"
    echo
    echo "| epoch | train acc | val acc | val loss |"
    echo "|---|---|---|---|"
    awk '/^epoch/ { printf "| %s | %s | %s | %s |\n", $2, $4, $8, $6 }' "$out/pytorch-batchnorm/fit.log" | tail -3
    echo
    echo "PyTorch, test set: accuracy $(sed -n 's/^test_accuracy //p' "$out/pytorch-batchnorm/fit.log"), loss $(sed -n 's/^test_loss //p' "$out/pytorch-batchnorm/fit.log")."
  fi
  if [ -f "$out/baseline-kfold/kfold.csv" ]; then
    echo
    echo "## Baseline, 10-fold cross-validation"
    echo
    epochs=$(sed -n 's/.*"epochs": \([0-9]*\).*/\1/p' "$out/baseline-kfold/run.json" | head -1)
    echo "Each fold trains a fresh baseline for $epochs epochs on 9/10 of the training images and"
    echo "evaluates it on the remaining tenth."
    echo
    echo "| fold | accuracy | loss |"
    echo "|---|---|---|"
    tail -n +2 "$out/baseline-kfold/kfold.csv" | while IFS=, read -r fold loss acc _; do
      echo "| $fold | $(fmt "$acc") | $(fmt "$loss") |"
    done
    awk -F, 'NR > 1 { a += $3; l += $2; aa += $3 * $3; ll += $2 * $2; n++ }
      END { ma = a / n; ml = l / n;
            printf "| mean ± std (ours) | %.4f ± %.4f | %.4f ± %.4f |\n", ma, sqrt(aa / n - ma * ma), ml, sqrt(ll / n - ml * ml) }' \
      "$out/baseline-kfold/kfold.csv"
    echo "| mean (study) | 0.9160 | 0.2510 |"
    picture baseline-kfold/kfold.png "accuracy and loss per fold"
  fi
  if [ -f "$out/baseline/confusion.csv" ]; then
    echo
    echo "## Confusion matrix of the baseline on the test set"
    echo
    echo "Rows: true class; columns: predicted class; counts of the 10,000 test images. In the"
    echo "study, Shirt was the worst class (72% correct, 12% taken for T-shirt/top)."
    echo
    awk -F, 'NR == 1 { printf "| true \\ predicted |"; for (i = 2; i <= NF; i++) printf " %s |", $i; printf "\n|---|"; for (i = 2; i <= NF; i++) printf "---|"; printf "\n"; next }
             { t = 0; for (i = 2; i <= NF; i++) t += $i; printf "| %s |", $1; for (i = 2; i <= NF; i++) printf " %s |", $i; printf "\n"; row[NR] = $0 }' \
      "$out/baseline/confusion.csv"
    echo
    awk -F, 'NR > 1 { t = 0; for (i = 2; i <= NF; i++) t += $i; printf "%s%s %.1f%%", (NR > 2 ? ", " : "Correct per class: "), $1, 100 * $(NR) / t }
             END { printf "\n" }' "$out/baseline/confusion.csv"
    awk -F, 'NR == 1 { for (i = 2; i <= NF; i++) if ($i == "T-shirt/top") c = i }
             $1 == "Shirt" { t = 0; for (i = 2; i <= NF; i++) t += $i; printf "\nShirt taken for T-shirt/top: %.1f%%.\n", 100 * $c / t }' \
      "$out/baseline/confusion.csv"
    picture baseline/confusion.png "confusion matrix of the baseline, percent of each true class"
  fi
  if [ -f "$out/resnet_fashion/run.json" ] && [ -f "$out/baseline/run.json" ]; then
    echo
    echo "## A residual network"
    echo
    echo "\`models/graph/resnet_fashion.net\`: ResNet-8's blocks (MLPerf Tiny) on Fashion-MNIST's"
    echo "28x28x1, with skip connections (docs/language.md, Graphs), compiled by cnnc and trained"
    echo "with the same settings and seed as the baseline, with a constant learning rate, with"
    echo "the step schedule (halved every 5 epochs) and with cosine decay to zero over the 15"
    echo "epochs (\`--schedule cosine\`); the baseline with each:"
    echo
    echo "| model | schedule | parameters | train acc | val acc | test acc | test loss |"
    echo "|---|---|---|---|---|---|---|"
    for run in "baseline baseline constant" "baseline-step baseline step" \
               "baseline-cosine baseline cosine" "resnet_fashion resnet_fashion constant" \
               "resnet_fashion-step resnet_fashion step" \
               "resnet_fashion-cosine resnet_fashion cosine"; do
      set -- $run
      [ -f "$out/$1/run.json" ] || continue
      net=models/$2.net
      [ "$2" = resnet_fashion ] && net=models/graph/$2.net
      params=$("$cnnc" --summary "$net" 2>/dev/null | sed -n 's/^Total params: //p')
      echo "| $2 | $3 | $params | $(fmt "$(last_epoch "$out/$1" 4)") | $(fmt "$(last_epoch "$out/$1" 6)") | $(fmt "$(json "$out/$1/run.json" test accuracy)") | $(fmt "$(json "$out/$1/run.json" test loss)") |"
    done
    echo
    echo "One run each, seed 42: read the differences against the baseline's own spread over"
    echo "seeds (its seeds 1, 2 and 3 above)."
    picture resnet_fashion/training.png "resnet_fashion: loss and accuracy per epoch"
    picture resnet_fashion-step/training.png "resnet_fashion with the step schedule"
    picture resnet_fashion-cosine/training.png "resnet_fashion with the cosine schedule"
  fi
  if [ -f "$out/keras/keras.md" ]; then
    echo
    echo "## The study in Keras itself"
    echo
    cat "$out/keras/keras.md"
  fi
  if [ -f "$out/findings.md" ]; then
    echo
    echo "## What we found"
    echo
    cat "$out/findings.md"
  fi
} > "$out/RESULTS.md"
echo "wrote $out/RESULTS.md"
