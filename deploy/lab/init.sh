#!/bin/sh
# /init of the seesaw-lab initramfs, run by busybox sh as PID 1.
#
# It loads the kernel modules, mounts the host's root (read-only) and the
# per-run control share that seesaw-lab wrote, sets up a chroot of the host
# with the guest's own /proc, /sys, /dev and tmpfs /tmp and /run, runs the
# command there, writes its exit status to the control share and powers off.
# Everything per-run (shares, the command, its environment) is in the
# control share, so this file and the initramfs stay the same between runs.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

fail() {
	echo "seesaw-lab init: $*" >&2
	[ -w /ctl ] && echo "$*" >/ctl/init-error
	poweroff -f
	sleep 60
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Seconds since the kernel started, at each stage, for seesaw-lab --verbose.
mark() { read -r up _ </proc/uptime; timing="$timing$1=$up "; }
mark init
# Each line is a wave of modules whose dependencies came in earlier waves:
# load a wave's modules side by side, then check they all loaded.
while read -r wave; do
	for m in $wave; do
		insmod "/lib/modules/$m.ko" &
	done
	wait
	for m in $wave; do
		[ -d "/sys/module/$m" ] || fail "insmod $m failed"
	done
done </etc/lab-modules
mark modules

p9=trans=virtio,version=9p2000.L,msize=512000
mkdir -p /ctl /host
mount -t 9p -o "$p9" labctl /ctl || fail "cannot mount the control share"
# The host's root: read-only, cached (nothing is written through it).
mount -t 9p -o "$p9,ro,cache=loose" hostroot /host || fail "cannot mount the host's root"
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
mount -t tmpfs -o mode=755 tmpfs /host/run
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup 2>/dev/null
mount -t bpf bpf /host/sys/fs/bpf 2>/dev/null

# share TAG PATH MODE: mount a host directory at the same path in the chroot.
share() {
	mkdir -p "/host$2" 2>/dev/null
	mount -t 9p -o "$p9,$3" "$1" "/host$2" || fail "cannot mount $2 ($3) in the guest"
}
LAB_TTY=0
. /ctl/config

mkdir -p /host/run/seesaw-lab
cp /ctl/cmd.sh /host/run/seesaw-lab/cmd.sh
ip link set lo up
if [ -n "${LAB_NET:-}" ]; then
	# The host forwards ports to this address over qemu's user-mode network
	# (restricted: nothing goes out). The virtio NIC is the guest's only
	# one; it is named once its driver has probed it.
	nic= i=0
	while [ -z "$nic" ]; do
		for d in /sys/class/net/*; do
			[ -e "$d/device" ] && nic=${d##*/}
		done
		i=$((i + 1))
		[ $i -gt 200 ] && fail "the virtio network card for the forwarded ports did not appear"
		[ -z "$nic" ] && sleep 0.05
	done
	ip addr add "$LAB_NET" dev "$nic" && ip link set "$nic" up ||
		fail "cannot give $nic the address $LAB_NET"
fi
hostname seesaw-lab
# The tunnel modules put fallback devices (tunl0, gre0, sit0...) in every
# new namespace; keep them to the guest's own, so tests' namespaces hold
# only what the tests made.
echo 1 >/proc/sys/net/core/fb_tunnels_only_for_init_net
mark mounts

if [ "$LAB_TTY" = 1 ]; then
	# ttyS1 is the person's terminal; the kernel's console is ttyS0. The
	# size is set while the command holds the tty open: it resets on the
	# last close.
	size=
	[ -n "$LAB_ROWS" ] && size="stty rows $LAB_ROWS cols $LAB_COLS;"
	: >/ctl/started
	setsid -c sh -c "$size exec chroot /host /bin/sh /run/seesaw-lab/cmd.sh" </dev/ttyS1 >/dev/ttyS1 2>&1
	rc=$?
else
	# The ports show up when the host has announced them, which happens
	# after the driver loaded: wait for them (30 s at most, for a busy host).
	out= err= i=0
	while [ -z "$out" ] || [ -z "$err" ]; do
		for d in /sys/class/virtio-ports/*; do
			[ -r "$d/name" ] || continue
			case "$(cat "$d/name")" in
			lab.stdout) out=/dev/${d##*/} ;;
			lab.stderr) err=/dev/${d##*/} ;;
			esac
		done
		i=$((i + 1))
		[ $i -gt 600 ] && fail "the virtio serial ports for stdout and stderr did not appear"
		[ -z "$out" ] || [ -z "$err" ] && sleep 0.05
	done
	mark ports
	: >/ctl/started
	chroot /host /bin/sh /run/seesaw-lab/cmd.sh </dev/null >"$out" 2>"$err"
	rc=$?
fi
mark command
echo "$timing" >/ctl/timing
echo "$rc" >/ctl/status
sync
poweroff -f
sleep 60
