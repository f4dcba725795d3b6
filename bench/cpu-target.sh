#!/usr/bin/env bash
# Per-frame cost of go-face built for the baseline CPU (the default: -march=x86-64-v2 on
# amd64, what the images ship) against the same code built for this machine's CPU
# (-tags facenative: -march=native), side by side (docs/benchmarks.md#images).
#
# It compiles apps/facelogin/face's test binary twice, once per build, then runs
# BenchmarkFrame from each in turn, alternating which goes first, so both see the same
# machine load, and prints each round's bare go-face and service milliseconds per frame
# and the baseline/native ratio of the means. On a shared machine, set EDGELINE_BENCH_LOCK
# to a lock file (/tmp/edgeline-bench.lock): the runs, not the compiles, then hold it.
# Usage: bench/cpu-target.sh [rounds] [benchtime]   (defaults: 3 rounds of 12x)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
benchtime=${2:-12x}
models=${EDGELINE_MODELS:-$PWD/models}
faces=${EDGELINE_FACES:-$PWD/testdata/faces}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for build in baseline native; do
  tags=()
  [ "$build" = native ] && tags=(-tags facenative)
  start=$(date +%s)
  go test -c "${tags[@]}" -o "$tmp/face-$build.test" ./apps/facelogin/face
  echo "compiled the $build test binary in $(( $(date +%s) - start ))s" >&2
done

run() { # build round
  (cd apps/facelogin/face && env EDGELINE_MODELS="$models" EDGELINE_FACES="$faces" OPENBLAS_NUM_THREADS=1 \
    "$tmp/face-$1.test" -test.run '^$' -test.bench '^BenchmarkFrame$' -test.benchtime "$benchtime") |
    awk -v build="$1" -v round="$2" '/^BenchmarkFrame\// {
      split($1, n, "/"); sub(/-[0-9]+$/, "", n[2])
      for (i = 3; i < NF; i++) { if ($(i+1) == "bare-ms") bare = $i; if ($(i+1) == "service-ms") svc = $i }
      print build, round, n[2], bare, svc }'
}

rounds() {
  for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order="native baseline"; else order="baseline native"; fi
    for build in $order; do run "$build" "$r"; done
  done
}
if [ -n "${EDGELINE_BENCH_LOCK:-}" ]; then
  exec 9>"$EDGELINE_BENCH_LOCK"
  flock 9
fi
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
rounds | tee "$tmp/runs" >&2

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
  { key = $1 " " $3; bare[key] = bare[key] " " $4; sb[key] += $4; ss[key] += $5; n[key]++ }
  END {
    print "| frame | build | bare-ms per round | mean bare-ms | mean service-ms |"
    print "|---|---|---|---|---|"
    split("jpeg png", fs, " ")
    for (f = 1; f <= 2; f++) for (b = 1; b <= 2; b++) {
      build = (b == 1) ? "native" : "baseline"; key = build " " fs[f]
      if (n[key]) printf "| %s | %s |%s | %.1f | %.1f |\n", fs[f], build, bare[key], sb[key] / n[key], ss[key] / n[key]
    }
    print ""
    for (f = 1; f <= 2; f++) {
      nk = "native " fs[f]; bk = "baseline " fs[f]
      if (n[nk] && n[bk]) printf "%s: baseline/native bare %.2f, service %.2f\n", fs[f], (sb[bk] / n[bk]) / (sb[nk] / n[nk]), (ss[bk] / n[bk]) / (ss[nk] / n[nk])
    }
  }' "$tmp/runs"
