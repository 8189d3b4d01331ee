#!/bin/sh
# Rewrites generated/ from models/ with the given cnnc: the checked-in output of the compiler.
set -eu
cnnc=$1
cd "$(dirname "$0")/.."
for net in models/*.net; do
  name=$(basename "$net" .net)
  "$cnnc" "$net" -o "generated/$name.c" -H "generated/$name.h"
done
echo "regenerated generated/ from models/"
