#!/usr/bin/env bash
# Builds the Debian package seesaw_<version>_<arch>.deb from the binaries
# make build wrote, with dpkg-deb and the hand-written control files in
# deploy/debian (no packaging tool, and nothing new in the binaries).
#
#   deploy/deb.sh [outdir]      (default: the repository's top directory)
#
# BINDIR (default bin/) holds the build; DEB_VERSION overrides the version,
# which is otherwise 0~git<commit time>.<commit> (.dirty for a changed tree).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root}
export BINDIR=${BINDIR:-$root/bin}
command -v dpkg-deb >/dev/null || { echo "deb: dpkg-deb missing (Debian package dpkg)" >&2; exit 1; }
version=${DEB_VERSION:-}
if [ -z "$version" ]; then
  if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    version="0~git$(git -C "$root" log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S).$(git -C "$root" rev-parse --short=8 HEAD)"
    git -C "$root" diff --quiet HEAD 2>/dev/null || version+=.dirty
  else
    version=0~dev
  fi
fi
[[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || { echo "deb: version $version: must start with a digit and hold only A-Za-z0-9.+~" >&2; exit 1; }
arch=${DEB_ARCH:-$(go env GOARCH 2>/dev/null || dpkg --print-architecture)}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
# Everything in the package belongs to root, whoever builds it.
umask 022
PACKAGE=1 DESTDIR="$stage" "$root/deploy/install.sh"
d=$root/deploy/debian
install -d -m 0755 "$stage/DEBIAN" "$stage/usr/share/lintian/overrides"
install -m 0644 "$d/copyright" "$stage/usr/share/doc/seesaw/copyright"
date=$(git -C "$root" log -1 --format=%cD 2>/dev/null || date -R)
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$date/" "$d/changelog" | gzip -9n > "$stage/usr/share/doc/seesaw/changelog.gz"
chmod 0644 "$stage/usr/share/doc/seesaw/changelog.gz"
gzip -9n < "$stage/usr/share/doc/seesaw/README.md" > "$stage/usr/share/doc/seesaw/README.md.gz"
rm "$stage/usr/share/doc/seesaw/README.md"
install -m 0644 "$d/lintian-overrides" "$stage/usr/share/lintian/overrides/seesaw"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" "$d/control" > "$stage/DEBIAN/control"
install -m 0644 "$d/conffiles" "$stage/DEBIAN/conffiles"
install -m 0755 "$d/postinst" "$d/prerm" "$d/postrm" "$stage/DEBIAN/"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"
mkdir -p "$out"
deb=$out/seesaw_${version}_${arch}.deb
SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s) \
  dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
