#!/usr/bin/env bash
# Installs, when missing, the Debian packages that building and testing need.
# Idempotent and quiet when everything is present. Run as root (make test does).
#
#   deploy/deps.sh [build|test|bench]
set -euo pipefail
what=${1:-test}
# command -> Debian package
declare -A need=([protoc]=protobuf-compiler)
if [ "$what" = test ] || [ "$what" = bench ]; then
  need[systemd-analyze]=systemd
  need[ip]=iproute2
  need[keepalived]=keepalived   # HA interop tests: a real VRRPv3 peer
  need[nft]=nftables            # split-brain tests cut adverts with a drop rule
fi
if [ "$what" = bench ]; then
  need[haproxy]=haproxy         # the peer the health-check benchmark measures against
fi
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# protoc's well-known types (duration, timestamp, descriptor) come in
# libprotobuf-dev, only a Recommends of protobuf-compiler: without them
# proto/gen.sh cannot compile our .proto files.
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing+=(libprotobuf-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deploy/deps.sh: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "deploy/deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
