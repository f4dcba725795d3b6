#!/usr/bin/env bash
# Figures of the face-login chart on the real test node (docs/benchmarks.md): time from
# `helm install` to every pod Ready, and each pod's resident memory at rest and after one
# sign-in side by side with the memory limit the chart gives its container (the baseline),
# as a ratio. Runs apps/facelogin/e2e's TestOnTheNode with the full test environment; needs
# root and the tool cache (make node kube). Usage: bench/node-app.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
cache=${EDGELINE_CACHE:-$PWD/.cache}
dsn=$(./hack/postgres.sh)
for i in $(seq "$runs"); do
  env EDGELINE_MODELS="$PWD/models" EDGELINE_FACES="$PWD/testdata/faces" \
    EDGELINE_TEST_KUBE="$cache/bin" EDGELINE_TEST_NODE="$cache/bin" \
    EDGELINE_TEST_CHROMIUM=/usr/bin/chromium EDGELINE_TEST_POSTGRES="$dsn" \
    go test -count=1 -timeout 20m -run '^TestOnTheNode$' -v ./apps/facelogin/e2e
done | awk '
  /helm install → every pod Ready/ { sub(/.*Ready: /, ""); ready = ready " " $0 }
  /memory (at rest|after one sign-in): pod/ {
    when = ($0 ~ /at rest/) ? "at rest" : "after sign-in"
    match($0, /pod [^ ]+/); pod = substr($0, RSTART + 4, RLENGTH - 4)
    comp = pod; sub(/-[a-z0-9]+-[a-z0-9]+$/, "", comp); sub(/^face-facelogin-/, "", comp)
    match($0, /RSS [0-9]+ MiB/); rss = substr($0, RSTART + 4, RLENGTH - 8)
    match($0, /working set [0-9]+ MiB/); ws = substr($0, RSTART + 12, RLENGTH - 16)
    match($0, /peak [0-9]+ MiB/); peak = substr($0, RSTART + 5, RLENGTH - 9)
    match($0, /limit [0-9]+[MG]i/); lim = substr($0, RSTART + 6, RLENGTH - 6)
    l = lim; sub(/[MG]i$/, "", l); if (lim ~ /Gi$/) l = l * 1024
    printf "| %s | %s | %s MiB | %s MiB | %s MiB | %s | %.2f |\n", comp, when, rss, ws, peak, lim, peak / l
  }
  END { print ""; print "helm install → all pods Ready (s):" ready }
' | { echo "| component | when | RSS | working set | peak | limit | peak/limit |"; echo "|---|---|---|---|---|---|---|"; cat; }
