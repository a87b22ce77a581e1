#!/usr/bin/env bash
# Regenerates the Go code for every .proto under proto/ with pinned generators:
# protoc from Debian bookworm (checked below), protoc-gen-go and
# protoc-gen-go-grpc at the versions go.mod pins as tools.
#
#   proto/gen.sh          regenerate in place (make proto)
#   proto/gen.sh OUTDIR   write the generated tree to OUTDIR instead (make proto-check)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/proto}
want_protoc="libprotoc 3.21.12"
have=$(protoc --version 2>/dev/null || true)
if [ "$have" != "$want_protoc" ]; then
  echo "proto/gen.sh: need $want_protoc (Debian bookworm's protobuf-compiler), have '${have:-none}'" >&2
  echo "  install it with: apt-get install -y protobuf-compiler libprotobuf-dev" >&2
  exit 1
fi
if [ ! -f /usr/include/google/protobuf/descriptor.proto ]; then
  echo "proto/gen.sh: protoc's well-known types are missing (/usr/include/google/protobuf)" >&2
  echo "  install them with: apt-get install -y libprotobuf-dev" >&2
  exit 1
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$root" && go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go &&
  go build -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc)
mkdir -p "$out"
cd "$root/proto"
files=$(find . -name '*.proto' | sed 's|^\./||' | sort)
PATH="$bin:$PATH" protoc -I . -I /usr/include \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  $files
