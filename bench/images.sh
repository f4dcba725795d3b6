#!/usr/bin/env bash
# Image build times and sizes (docs/benchmarks.md#images): `edgeline images build` for
# amd64 and arm64 run three times from this checkout:
#   cold:  an empty Go build cache and an empty layer cache (a fresh CI runner);
#   warm:  the same again, both caches kept (a rebuild of the same commit);
#   other: the machine's usual Go build cache and a third, empty layer cache;
# then the compressed size of each image per architecture, and whether the three builds
# gave the same digests (the same commit gives the same images, whichever cache built them).
# Needs bin/edgeline (make build) and make setup. Usage: bench/images.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/gocache"

build() { # name gocache
  local start end
  start=$(date +%s.%N)
  env GOCACHE="$2" bin/edgeline images build --layout "$tmp/layout-$1" --cache "$tmp/layers-$1" \
    >"$tmp/$1.out" 2>"$tmp/$1.err" || { cat "$tmp/$1.err" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%s %.0f\n' "$1" "$(echo "$end - $start" | bc)" >>"$tmp/times"
  echo "$1 build: $(tail -1 "$tmp/times" | cut -d' ' -f2)s, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
}

build cold "$tmp/gocache"
# The warm build reuses the cold build's layer cache.
cp -r "$tmp/layers-cold" "$tmp/layers-warm"
build warm "$tmp/gocache"
build other "$(go env GOCACHE)"

echo "| build | seconds |"
echo "|---|---|"
awk '{ printf "| %s | %s |\n", $1, $2 }' "$tmp/times"
echo
for b in cold warm other; do sed "s/^/$b: /" <(grep '^compiled ' "$tmp/$b.err"); done
echo
echo "| image | platform | layers (MB, gzip) | total (MB, gzip) |"
echo "|---|---|---|---|"
# "facelogin-api arm64: 15 libraries from 12 packages, layers 0.0 + 14.1 + 28.6 + 20.7 MB (gzip)"
awk '/ layers .* MB \(gzip\)/ {
  img = $1; arch = $2; sub(/:$/, "", arch)
  s = $0; sub(/.* layers /, "", s); sub(/ MB \(gzip\).*/, "", s)
  n = split(s, p, / \+ /); total = 0; for (i = 1; i <= n; i++) total += p[i]
  printf "| %s | linux/%s | %s | %.1f |\n", img, arch, s, total }' "$tmp/cold.err"
echo
for b in cold warm other; do
  echo "$b: $(grep -E '^facelogin-(api|web) sha256:' "$tmp/$b.out" | tr '\n' ' ')"
done
if [ "$(grep -E '^facelogin' "$tmp/cold.out")" = "$(grep -E '^facelogin' "$tmp/warm.out")" ] &&
   [ "$(grep -E '^facelogin' "$tmp/cold.out")" = "$(grep -E '^facelogin' "$tmp/other.out")" ]; then
  echo "digests: the same in all three builds"
else
  echo "digests: DIFFER between the builds" >&2
  exit 1
fi
du -sh "$tmp/layout-cold" | awk '{ print "layout on disk: " $1 }'
