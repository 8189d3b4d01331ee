#!/bin/sh
# Runs each libFuzzer target of tests/fuzz for SECONDS: `fuzz.sh BUILD SECONDS [TARGET...]`.
# BUILD is a tree configured with -DCNNC_FUZZ=ON. Corpora grow in BUILD/corpus/TARGET, seeded
# from the repository's files and from fuzz_seeds; every input in tests/fuzz/regressions/TARGET
# (what earlier runs found) is run first. Prints one line of figures per target; fails on a
# finding, which libFuzzer leaves as BUILD/findings/TARGET/crash-* (or leak-, timeout-, oom-).
set -eu
build=$1
seconds=$2
shift 2
targets=${*:-fuzz_front fuzz_checkpoint fuzz_idx fuzz_onnx}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$build/tests/fuzz
status=0

for t in $targets; do
    corpus=$build/corpus/$t
    findings=$build/findings/$t
    mkdir -p "$corpus" "$findings"
    case $t in
    fuzz_front)
        cp "$root"/models/*.net "$root"/models/graph/*.net "$root"/models/tiny/*.net \
           "$root"/tests/nets/*.net "$root"/tests/graphs/*.net "$root"/tests/bad/*.net "$corpus"/
        extra="-dict=$root/tests/fuzz/front.dict" ;;
    fuzz_checkpoint)
        "$bin/fuzz_seeds" "$build/seeds" && cp "$build"/seeds/checkpoint/* "$corpus"/
        extra="" ;;
    fuzz_idx)
        "$bin/fuzz_seeds" "$build/seeds" && cp "$build"/seeds/idx/* "$corpus"/
        extra="" ;;
    fuzz_onnx) # ONNX's test cases of the ops cnnc imports (libonnx-testdata), as small files
        for m in /usr/include/onnx/backend/test/data/node/test_*/model.onnx \
                 /usr/include/onnx/backend/test/data/pytorch-converted/test_*/model.onnx; do
            [ -f "$m" ] && [ "$(wc -c < "$m")" -le 4096 ] &&
                cp "$m" "$corpus/$(basename "$(dirname "$m")").onnx"
        done
        extra="" ;;
    *) echo "fuzz.sh: unknown target $t" >&2; exit 2 ;;
    esac
    regressions=$root/tests/fuzz/regressions/$t
    if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
        if ! "$bin/$t" -runs=1 "$regressions"/* > "$build/$t.regressions.log" 2>&1; then
            echo "fuzz: $t fails on a regression input (log: $build/$t.regressions.log)" >&2
            status=1
            continue
        fi
    fi
    log=$build/$t.log
    # One worker: the machine's cores are few. -rss_limit_mb: a reader that believes a header
    # claiming gigabytes shows up as a finding.
    if "$bin/$t" $extra -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=4096 -print_final_stats=1 -artifact_prefix="$findings/" \
        "$corpus" > "$log" 2>&1; then
        result=ok
    else
        result="FINDING (log: $log; inputs: $findings)"
        status=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
    corp=$(ls "$corpus" | wc -l)
    echo "fuzz: $t: ${seconds}s, $execs executions, $cov edges, corpus $corp files: $result"
done
exit $status
