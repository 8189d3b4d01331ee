#!/bin/sh
# Regenerates docs/deploy.md's table of the five study networks exported in float and int8:
# each trained by its compiled trainer with the study's settings (15 epochs), then held to the
# checks of tests/test_deploy_models.c on the 10,000 test images. About 15 minutes on 2 cores.
# usage: scripts/deploy_table.sh BUILD_DIR
set -eu
build=$1
cd "$(dirname "$0")/.."
cmake --build "$build" -j "$(nproc)" --target test_deploy_models >/dev/null
rows=$(mktemp)
trap 'rm -f "$rows" "$rows.md"' EXIT
CNNC_DEPLOY_EPOCHS=15 CNNC_DEPLOY_REPORT="$rows" "$build/tests/test_deploy_models"
{
  echo "<!-- table: scripts/deploy_table.sh, $(date +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') -->"
  echo "| model | float accuracy | int8 accuracy | int8 - float | int8 picks float's class | float flash + RAM (bytes) | int8 flash + RAM (bytes) |"
  echo "|---|---|---|---|---|---|---|"
  cat "$rows"
  echo "<!-- end of table -->"
} >"$rows.md"
# Between the markers of docs/deploy.md, the new table.
awk -v table="$rows.md" '
  /^<!-- table:/ { while ((getline line < table) > 0) print line; skip = 1; next }
  /^<!-- end of table -->/ { skip = 0; next }
  !skip { print }' docs/deploy.md >docs/deploy.md.tmp
mv docs/deploy.md.tmp docs/deploy.md
echo "wrote the table of docs/deploy.md" >&2
