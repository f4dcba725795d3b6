#!/usr/bin/env bash
# Puts axe-core's axe.min.js (and its MPL-2.0 licence) into DEST for the browser tests'
# accessibility checks: `npm pack` of the pinned version, accepted only when the tarball's
# sha512 matches the pinned integrity. Does nothing when DEST already holds that version.
# Usage: hack/axe.sh DEST VERSION INTEGRITY (mk/web.mk pins both).
set -euo pipefail
dest=$1 version=$2 integrity=$3
stamp="$dest/INTEGRITY"
if [ -f "$dest/axe.min.js" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$integrity" ]; then exit 0; fi
command -v npm >/dev/null || { echo "axe: npm is missing; run 'make setup' (installs npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "axe-core@$version" >/dev/null)
tgz="$tmp/axe-core-$version.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$integrity" ]; then
  echo "axe: axe-core@$version has integrity $got, want $integrity; not using it" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$tmp" package/axe.min.js package/LICENSE
mkdir -p "$dest"
cp "$tmp/package/axe.min.js" "$tmp/package/LICENSE" "$dest/"
echo "$integrity" > "$stamp"
echo "axe: axe-core@$version (integrity checked) in $dest"
