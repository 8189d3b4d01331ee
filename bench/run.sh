#!/bin/sh
# The benchmark: cnnc's compiled trainer, the interpreted reference and PyTorch (when Debian's
# python3-torch is installed) on one network, side by side, with 1 and 2 threads; medians of 5
# one-second repetitions. Prints a Markdown table and saves it in bench/results/.
# usage: bench/run.sh BUILD_DIR [NET.net]
set -eu
build=$1
net=${2:-models/baseline.net}
cd "$(dirname "$0")/.."
name=$(basename "$net" .net)
cmake -S . -B "$build" -DCNNC_BENCH_NET="$PWD/$net" >/dev/null
cmake --build "$build" -j "$(nproc)" --target cnnc "$name" bench_32 bench_256 bench_1 \
  bench_reference sgemm_peak peak_rss >/dev/null
b=$build/bench
val() { sed -n "s/^$1 //p"; } # val KEY < key-value lines

echo "measuring $net on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ..." >&2
flops=$("$build/cnnc" --summary "$net" | sed -n 's/^FLOPs per image: \([0-9.]*\) M forward, \([0-9.]*\) M training.*/\1 \2/p')
fwd=${flops% *}
trn=${flops#* }
peer=0
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then peer=1; fi

rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for t in 1 2; do
  g=$("$b/sgemm_peak" "$t" | val sgemm_gflops)
  tr=$("$b/bench_32" train "$t" | val images_per_second)
  inf=$("$b/bench_256" infer "$t" | val images_per_second)
  lat=$("$b/bench_1" latency "$t" | val microseconds_per_image)
  echo "cnnc $t $tr $inf $lat $g" >>"$rows"
  rtr=$("$b/bench_reference" train "$t" "$net" | val images_per_second)
  rinf=$("$b/bench_reference" infer "$t" "$net" | val images_per_second)
  rlat=$("$b/bench_reference" latency "$t" "$net" | val microseconds_per_image)
  echo "reference $t $rtr $rinf $rlat $g" >>"$rows"
  if [ "$peer" = 1 ]; then
    # PyTorch at its best here: its own threads only (OpenBLAS's would oversubscribe the cores).
    py() { OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$t /usr/bin/python3 bench/pytorch_peer.py "$@"; }
    ptr=$(py train "$t" "$net" | val images_per_second)
    pinf=$(py infer "$t" "$net" | val images_per_second)
    plat=$(py latency "$t" "$net" | val microseconds_per_image)
    echo "pytorch $t $ptr $pinf $plat $g" >>"$rows"
  fi
done

# Peak memory of a training run (real data in memory, 300 steps), and the time to compile.
mem=$("$b/peak_rss" "$build/$name" train --epochs 1 --limit 12000 --threads 2 | val peak_rss_mb)
pmem=""
[ "$peer" = 1 ] && pmem=$(OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/pytorch_peer.py memory 2 "$net" | val peak_rss_mb)
t0=$(date +%s.%N)
"$build/cnnc" "$net" -o "$build/bench/compile_time.c"
t1=$(date +%s.%N)
${CC:-cc} -O3 -I runtime -c "$build/bench/compile_time.c" -o "$build/bench/compile_time.o"
t2=$(date +%s.%N)

out=bench/results/$(date -u +%Y-%m-%d)-$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //; s/[^A-Za-z0-9]/-/g')-$name.md
{
  echo "## $name on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
  echo
  echo "$(nproc) cores; $fwd MFLOP per image forward, $trn MFLOP per training step (cnnc --summary);"
  echo "ceiling = sgemm GFLOP/s / FLOPs per image. Medians of 5 one-second runs; batch 32 for"
  echo "training (Adam), 256 for inference, 1 for latency. PyTorch $( [ "$peer" = 1 ] && /usr/bin/python3 -c 'import torch; print(torch.__version__)' || echo 'absent: row skipped (apt-get install python3-torch)')."
  echo
  echo "| backend | threads | train img/s | epoch of 48,000 (s) | infer img/s (batch 256) | latency (µs, batch 1) | train × PyTorch | infer × PyTorch | train % of ceiling | infer % of ceiling | sgemm GFLOP/s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  awk -v fwd="$fwd" -v trn="$trn" '
    { row[NR] = $0; if ($1 == "pytorch") { ptr[$2] = $3; pinf[$2] = $4 } }
    END {
      for (i = 1; i <= NR; i++) {
        split(row[i], f, " ")
        xt = (f[2] in ptr) ? sprintf("%.2f", f[3] / ptr[f[2]]) : "-"
        xi = (f[2] in pinf) ? sprintf("%.2f", f[4] / pinf[f[2]]) : "-"
        printf "| %s | %d | %.0f | %.1f | %.0f | %.0f | %s | %s | %.0f%% | %.0f%% | %.0f |\n",
          f[1], f[2], f[3], 48000 / f[3], f[4], f[5], xt, xi,
          100 * f[3] * trn * 1e6 / (f[6] * 1e9), 100 * f[4] * fwd * 1e6 / (f[6] * 1e9), f[6]
      }
    }' "$rows"
  echo
  echo "Peak resident memory of a training run with the dataset in memory: cnnc ${mem} MB$( [ -n "$pmem" ] && echo ", PyTorch ${pmem} MB")."
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "Time to compile: cnnc %.3f s, then `cc -O3` %.2f s.\n", b - a, c - b }'
} | tee "$out"
echo "saved $out" >&2
