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
cmake --build "$build" -j "$(nproc)" --target cnnc bench_32 bench_256 bench_1 \
  bench_reference fma_peak sgemm_peak peak_rss bench_export_float >/dev/null
# The int8 export exists for classifiers only (cnnc export --int8 says why otherwise).
int8=1
cmake --build "$build" --target bench_export_int8 >/dev/null 2>&1 || int8=0
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
  pk=$("$b/fma_peak" "$t" | val fma_gflops)
  g="$g $pk"
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

# ONNX Runtime (PyPI, scripts/ort_venv.sh) on the same network as cnnc onnx writes it, with the
# export's weights: inference only. Skipped, saying why, where it cannot be installed.
ortpy=$(scripts/ort_venv.sh "$build/ort-venv" 2>"$build/ort-venv.why") || ortpy=""
ortv="absent: $(cat "$build/ort-venv.why")"
if [ -n "$ortpy" ]; then
  "$build/cnnc" onnx "$net" --weights "$b/export_weights.ckpt" -o "$b/bench.onnx"
  for t in 1 2; do
    g="$("$b/sgemm_peak" "$t" | val sgemm_gflops) $("$b/fma_peak" "$t" | val fma_gflops)"
    oinf=$("$ortpy" bench/ort_peer.py infer "$t" "$b/bench.onnx" | val images_per_second)
    olat=$("$ortpy" bench/ort_peer.py latency "$t" "$b/bench.onnx" | val microseconds_per_image)
    echo "onnxruntime $t - $oinf $olat $g" >>"$rows"
  done
  ortv=$("$ortpy" -c 'import onnxruntime; print(onnxruntime.__version__)')
fi

# The standalone export (cnnc export) at batch 1 on one thread, beside the compiled network's
# batch-1 latency measured again here; its flash and RAM on a Cortex-M4 where the cross
# compiler is installed.
lat1=$("$b/bench_1" latency 1 | val microseconds_per_image)
elat=$("$b/bench_export_float" | val microseconds_per_image)
qlat=-
[ "$int8" = 1 ] && qlat=$("$b/bench_export_int8" | val microseconds_per_image)
m4size() { # m4size FILE.c: "text bss" of its Cortex-M4 object
  arm-none-eabi-gcc -std=c99 -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard -Os \
    -c "$1" -o "$1.m4.o" && arm-none-eabi-size "$1.m4.o" | awk 'NR == 2 { print $1, $3 }'
}
fsize="- -"
qsize="- -"
if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
  fsize=$(m4size "$b/bench_export_float.c")
  [ "$int8" = 1 ] && qsize=$(m4size "$b/bench_export_int8.c")
fi

# Peak memory of a training run (real data in memory, 300 steps), for networks that take
# Fashion-MNIST's images (the rest are timed on random inputs of their shape only); and the
# time to compile.
mem="-"
pmem=""
if "$build/cnnc" --summary "$net" | grep -q '^ input (InputLayer) *(None, 28, 28, 1)' &&
   cmake --build "$build" -j "$(nproc)" --target "$name" >/dev/null 2>&1; then
  mem=$("$b/peak_rss" "$build/$name" train --epochs 1 --limit 12000 --threads 2 | val peak_rss_mb)
  [ "$peer" = 1 ] && pmem=$(OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/pytorch_peer.py memory 2 "$net" | val peak_rss_mb)
fi
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
  echo "ceiling = the FMA peak measured in this run (bench/fma_peak.c: vector FMAs in registers, per"
  echo "thread count) / FLOPs per image; OpenBLAS's sgemm (2048^3) beside it. Medians of 5 one-second runs; batch 32 for"
  echo "training (Adam), 256 for inference, 1 for latency. PyTorch $( [ "$peer" = 1 ] && /usr/bin/python3 -c 'import torch; print(torch.__version__)' || echo 'absent: row skipped (apt-get install python3-torch)')."
  echo "ONNX Runtime (inference only, the file cnnc onnx writes): $ortv."
  echo
  echo "| backend | threads | train img/s | epoch of 48,000 (s) | infer img/s (batch 256) | latency (µs, batch 1) | train × PyTorch | infer × PyTorch | train % of ceiling | infer % of ceiling | FMA peak GFLOP/s | sgemm GFLOP/s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  awk -v fwd="$fwd" -v trn="$trn" '
    { row[NR] = $0; if ($1 == "pytorch") { ptr[$2] = $3; pinf[$2] = $4 } }
    END {
      for (i = 1; i <= NR; i++) {
        split(row[i], f, " ")
        xt = (f[2] in ptr) ? sprintf("%.2f", f[3] / ptr[f[2]]) : "-"
        xi = (f[2] in pinf) ? sprintf("%.2f", f[4] / pinf[f[2]]) : "-"
        if (f[3] == "-") { # inference only
          printf "| %s | %d | - | - | %.0f | %.0f | - | %s | - | %.0f%% | %.0f | %.0f |\n",
            f[1], f[2], f[4], f[5], xi, 100 * f[4] * fwd * 1e6 / (f[7] * 1e9), f[7], f[6]
          continue
        }
        printf "| %s | %d | %.0f | %.1f | %.0f | %.0f | %s | %s | %.0f%% | %.0f%% | %.0f | %.0f |\n",
          f[1], f[2], f[3], 48000 / f[3], f[4], f[5], xt, xi,
          100 * f[3] * trn * 1e6 / (f[7] * 1e9), 100 * f[4] * fwd * 1e6 / (f[7] * 1e9), f[7], f[6]
      }
    }' "$rows"
  echo
  if [ "$mem" = "-" ]; then
    echo "Timed on random inputs of the network's shape (its data are not Fashion-MNIST): no training run with data, no peak memory."
  else
    echo "Peak resident memory of a training run with the dataset in memory: cnnc ${mem} MB$( [ -n "$pmem" ] && echo ", PyTorch ${pmem} MB")."
  fi
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "Time to compile: cnnc %.3f s, then `cc -O3` %.2f s.\n", b - a, c - b }'
  echo
  echo "### Standalone export (cnnc export), batch 1, one thread"
  echo
  echo "Built as the trainers are (Release$( [ -n "$(grep -s 'CNNC_NATIVE:BOOL=ON' "$build/CMakeCache.txt")" ] && echo ', -march=native')); flash and RAM from \`arm-none-eabi-size\` of the file built with \`arm-none-eabi-gcc -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard -Os\` (text: constants and code; bss: the workspace). The weights are the network's initial ones and the int8 export is calibrated on random images: the speed does not depend on the values."
  echo
  echo "| build | latency (µs) | × compiled network | Cortex-M4 flash (bytes) | Cortex-M4 RAM (bytes) |"
  echo "|---|---|---|---|---|"
  awk -v l="$lat1" -v f="$elat" -v q="$qlat" -v fs="$fsize" -v qs="$qsize" 'BEGIN {
    split(fs, a, " "); split(qs, b, " ")
    printf "| compiled network (cnnc, batch 1) | %.1f | 1.00 | - | - |\n", l
    printf "| export, float | %.1f | %.2f | %s | %s |\n", f, f / l, a[1], a[2]
    if (q == "-") print "| export, int8 | - (not a classifier: cnnc export --int8 refuses it) | - | - | - |"
    else printf "| export, int8 | %.1f | %.2f | %s | %s |\n", q, q / l, b[1], b[2]
  }'
} | tee "$out"
echo "saved $out" >&2
