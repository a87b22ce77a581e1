#!/usr/bin/env bash
# Installs the built appliance the way Seesaw's guides lay it out:
#   binaries  /usr/local/seesaw/  (one multi-call file, seesaw-multicall, with
#             a hard link for each binary's name; /usr/bin/seesaw -> seesaw_cli)
#   configs   /etc/seesaw/        (existing files are never overwritten)
#   logs      /var/log/seesaw/
#   unit      /etc/systemd/system/seesaw_watchdog.service
# DESTDIR=dir installs under dir (for packaging). Run after `make build`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${DESTDIR:-}
bindir=${BINDIR:-$root/bin}
multi=seesaw-multicall
bins="seesaw_watchdog seesaw_engine seesaw_ncc seesaw_ha seesaw_healthcheck seesaw_ecu seesaw_cli"
[ -x "$bindir/$multi" ] || { echo "install: $bindir/$multi missing; run 'make build' first" >&2; exit 1; }
install -d -m 0755 "$dest/usr/local/seesaw" "$dest/etc/seesaw" "$dest/usr/bin" "$dest/etc/systemd/system"
install -d -m 0750 "$dest/var/log/seesaw" "$dest/var/lib/seesaw"
# One file and a hard link per name, never a copy per name: the daemons
# share the memory of one file's code, and would share nothing of seven.
# install writes a new file (running daemons keep the old one until the
# watchdog restarts them); ln -f then points every name at it.
install -m 0755 "$bindir/$multi" "$dest/usr/local/seesaw/$multi"
for b in $bins; do
  ln -f "$dest/usr/local/seesaw/$multi" "$dest/usr/local/seesaw/$b"
done
ln -sf /usr/local/seesaw/seesaw_cli "$dest/usr/bin/seesaw"
install -m 0644 "$root/README.md" "$dest/usr/local/seesaw/README.md"
for f in watchdog.cfg samples/seesaw.cfg samples/cluster.pb; do
  name=$(basename "$f")
  if [ -e "$dest/etc/seesaw/$name" ]; then
    install -m 0644 "$root/deploy/$f" "$dest/etc/seesaw/$name.dist"
    echo "install: kept /etc/seesaw/$name; the shipped version is $name.dist"
  else
    install -m 0644 "$root/deploy/$f" "$dest/etc/seesaw/$name"
  fi
done
install -m 0644 "$root/deploy/seesaw_watchdog.service" "$dest/etc/systemd/system/seesaw_watchdog.service"
if [ -z "$dest" ]; then
  getent group seesaw >/dev/null || groupadd --system seesaw
  command -v systemctl >/dev/null && systemctl daemon-reload 2>/dev/null || true
  echo "install: done. Edit /etc/seesaw/seesaw.cfg and cluster.pb, check them with"
  echo "  seesaw config check"
  echo "then: systemctl enable --now seesaw_watchdog"
fi
