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
  need[promtool]=prometheus     # the ECU's /metrics and alert rules are checked by promtool
  need[chromium]=chromium       # the ECU's status page is tested in a real headless browser
  need[lintian]=lintian         # the Debian package is checked with it
  need[systemd-nspawn]=systemd-container  # the unit under a real systemd
  need[conntrackd]=conntrackd   # the NCC runs it for full NAT on a pair (ncc/conntrackd)
fi
if [ "$what" = bench ]; then
  need[haproxy]=haproxy         # the peer the health-check benchmark measures against
  need[prometheus-node-exporter]=prometheus-node-exporter  # the peer the ECU's /metrics benchmark measures against
fi
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# protoc's well-known types (duration, timestamp, descriptor) come in
# libprotobuf-dev, only a Recommends of protobuf-compiler: without them
# proto/gen.sh cannot compile our .proto files.
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing+=(libprotobuf-dev)
# The kernel's user-space headers: the IPVS and nftables fakes check their
# numbers against <linux/ip_vs.h> and <linux/netfilter/nf_tables.h>.
if [ "$what" = test ] || [ "$what" = bench ]; then
  [ -f /usr/include/linux/netfilter/nf_tables.h ] && [ -f /usr/include/linux/ip_vs.h ] || missing+=(linux-libc-dev)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deploy/deps.sh: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

# Another apt or dpkg run (unattended-upgrades, a person, a parallel make)
# may hold the package manager's locks; wait for it rather than fail, for up
# to DEPS_LOCK_TIMEOUT seconds in all. apt-get's DPkg::Lock::Timeout covers
# dpkg's locks only, and silently: update fails at once on
# /var/lib/apt/lists/lock and install on /var/cache/apt/archives/lock. So
# apt-get waits for dpkg briefly, and a run that it says failed on a lock is
# tried again every DEPS_LOCK_POLL seconds. (flock(1) cannot watch these
# locks for us: apt and dpkg take fcntl locks, which flock does not see.)
lock_timeout=${DEPS_LOCK_TIMEOUT:-600}
lock_poll=${DEPS_LOCK_POLL:-3}
lock_deadline=$((SECONDS + lock_timeout))
lock_told=
# "Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1234 (apt)"
lock_re='Could not get lock (/[^ ]*[^. ])\.?( It is held by process ([0-9]+)( \(([^)]*)\))?)?'
# what apt-get says once its DPkg::Lock::Timeout has run out
lock_summary_re='Unable to (acquire the dpkg frontend lock|lock the administration directory) \((/[^)]*)\)'

# apt_get ARGS...: runs apt-get quietly, waiting for the package manager's
# locks; its output is shown only when it fails.
apt_get() {
  local out left lock held
  while :; do
    left=$((lock_deadline - SECONDS))
    ((left > 10)) && left=10
    ((left > 0)) || left=1
    if out=$(apt-get -o DPkg::Lock::Timeout="$left" "$@" 2>&1); then
      return 0
    fi
    if [[ $out =~ $lock_re ]]; then
      lock=${BASH_REMATCH[1]}
      held="another process"
      [ -z "${BASH_REMATCH[3]}" ] || held="PID ${BASH_REMATCH[3]}${BASH_REMATCH[5]:+ (${BASH_REMATCH[5]})}"
    elif [[ $out =~ $lock_summary_re ]]; then
      lock=${BASH_REMATCH[2]}
      held="another process"
    else
      printf '%s\n' "$out" >&2
      return 1
    fi
    if ((SECONDS >= lock_deadline)); then
      echo "deploy/deps.sh: the package manager's lock $lock is still held by $held after ${lock_timeout}s; let that apt or dpkg run finish (or stop it) and run again" >&2
      return 1
    fi
    if [ -z "$lock_told" ]; then
      echo "deploy/deps.sh: waiting for the package manager's lock held by $held on $lock (up to ${lock_timeout}s)" >&2
      lock_told=1
    fi
    sleep "$lock_poll"
  done
}

echo "deploy/deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_get update -qq
apt_get install -y -qq --no-install-recommends "${missing[@]}"
