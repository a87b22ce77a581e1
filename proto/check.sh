#!/usr/bin/env bash
# Fails when the committed generated code differs from what proto/gen.sh makes
# now, or when a .pb.go has no .proto (or the reverse).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/proto/gen.sh" "$tmp"
(cd "$root/proto" && find . -name '*.pb.go' | sort) >"$tmp/.committed"
(cd "$tmp" && find . -name '*.pb.go' | sort) >"$tmp/.generated"
if ! diff -u "$tmp/.committed" "$tmp/.generated"; then
  echo "proto: the set of generated files differs; run 'make proto'" >&2
  exit 1
fi
status=0
while read -r f; do
  if ! cmp -s "$root/proto/$f" "$tmp/$f"; then
    echo "proto: $f is stale; run 'make proto' and commit the result" >&2
    diff -u "$root/proto/$f" "$tmp/$f" | head -20 >&2 || true
    status=1
  fi
done <"$tmp/.generated"
[ "$status" = 0 ] && echo "proto: generated code is up to date"
exit "$status"
