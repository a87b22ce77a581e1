#!/usr/bin/env bash
# Installs the built appliance in the layout of the Debian package (make deb
# runs this with DESTDIR and PACKAGE=1), so that a source install and a
# package install look alike:
#   binaries  /usr/lib/seesaw/     one multi-call file, seesaw-multicall, with
#                                  a hard link for each daemon's name
#   CLI       /usr/bin/seesaw      -> /usr/lib/seesaw/seesaw_cli
#   unit      /lib/systemd/system/seesaw_watchdog.service
#   configs   /etc/seesaw/watchdog.cfg (an existing file is never overwritten)
#   samples   /usr/share/doc/seesaw/examples/{seesaw.cfg,cluster.pb}
#   user      /usr/lib/sysusers.d/seesaw.conf (the seesaw user and group)
#   dirs      /usr/lib/tmpfiles.d/seesaw.conf (/run/seesaw; /var/log/seesaw
#             with files older than 30 days removed)
#   man page  /usr/share/man/man1/seesaw.1.gz
# DESTDIR=dir installs under dir. PACKAGE=1 leaves out what the package's
# maintainer scripts do (users, directories, systemd). Run after make build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${DESTDIR:-}
bindir=${BINDIR:-$root/bin}
package=${PACKAGE:-}
multi=seesaw-multicall
lib=/usr/lib/seesaw
bins="seesaw_watchdog seesaw_engine seesaw_ncc seesaw_ha seesaw_healthcheck seesaw_ecu seesaw_cli"
[ -x "$bindir/$multi" ] || { echo "install: $bindir/$multi missing; run 'make build' first" >&2; exit 1; }
install -d -m 0755 "$dest$lib" "$dest/etc/seesaw" "$dest/usr/bin" "$dest/lib/systemd/system" \
  "$dest/usr/share/doc/seesaw/examples" "$dest/usr/share/man/man1" "$dest/usr/lib/sysusers.d" "$dest/usr/lib/tmpfiles.d"
# One file and a hard link per name, never a copy per name: the daemons
# share the memory of one file's code, and would share nothing of seven.
# install writes a new file (running daemons keep the old one until a
# reload restarts them); ln -f then points every name at it.
install -m 0755 "$bindir/$multi" "$dest$lib/$multi"
for b in $bins; do
  ln -f "$dest$lib/$multi" "$dest$lib/$b"
done
ln -sf ../lib/seesaw/seesaw_cli "$dest/usr/bin/seesaw"
install -m 0644 "$root/deploy/seesaw_watchdog.service" "$dest/lib/systemd/system/seesaw_watchdog.service"
install -m 0644 "$root/deploy/debian/sysusers.conf" "$dest/usr/lib/sysusers.d/seesaw.conf"
install -m 0644 "$root/deploy/debian/tmpfiles.conf" "$dest/usr/lib/tmpfiles.d/seesaw.conf"
install -m 0644 "$root/README.md" "$dest/usr/share/doc/seesaw/README.md"
install -m 0644 "$root/deploy/samples/seesaw.cfg" "$root/deploy/samples/cluster.pb" "$dest/usr/share/doc/seesaw/examples/"
gzip -9n -c "$root/deploy/debian/seesaw.1" > "$dest/usr/share/man/man1/seesaw.1.gz"
chmod 0644 "$dest/usr/share/man/man1/seesaw.1.gz"
if [ -n "$package" ]; then
  # dpkg keeps the operator's edits of a conffile.
  install -m 0644 "$root/deploy/watchdog.cfg" "$dest/etc/seesaw/watchdog.cfg"
  exit 0
fi
# The unit an older install.sh put in /etc/systemd/system would override
# this one (and clean up on every stop): move it aside.
old_unit=$dest/etc/systemd/system/seesaw_watchdog.service
if [ -f "$old_unit" ] && grep -q '^ExecStart=/usr/local/seesaw/' "$old_unit"; then
  mv "$old_unit" "$old_unit.old"
  echo "install: moved the old layout's unit aside to /etc/systemd/system/seesaw_watchdog.service.old;"
  echo "  /usr/local/seesaw is no longer used (point /etc/seesaw/watchdog.cfg at /usr/lib/seesaw)"
fi
if [ -e "$dest/etc/seesaw/watchdog.cfg" ]; then
  install -m 0644 "$root/deploy/watchdog.cfg" "$dest/etc/seesaw/watchdog.cfg.dist"
  echo "install: kept /etc/seesaw/watchdog.cfg; the shipped version is watchdog.cfg.dist"
else
  install -m 0644 "$root/deploy/watchdog.cfg" "$dest/etc/seesaw/watchdog.cfg"
fi
if [ -z "$dest" ]; then
  if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers seesaw.conf
  else
    getent group seesaw >/dev/null || groupadd --system seesaw
    getent passwd seesaw >/dev/null || useradd --system --gid seesaw --home-dir /nonexistent --shell /usr/sbin/nologin seesaw
  fi
  command -v systemd-tmpfiles >/dev/null && systemd-tmpfiles --create seesaw.conf || true
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl daemon-reload
    # An upgrade in place: restart the services on the new binaries one at
    # a time, keeping every connection (a restart would also keep them,
    # but leaves the node without a master for a while).
    systemctl try-reload-or-restart seesaw_watchdog.service || true
  fi
  echo "install: done. Write /etc/seesaw/seesaw.cfg and cluster.pb (samples in"
  echo "/usr/share/doc/seesaw/examples), check them with"
  echo "  seesaw config check"
  echo "then: systemctl enable --now seesaw_watchdog"
fi
