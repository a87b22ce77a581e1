#!/usr/bin/env bash
# make demo: the two-node topology in the kernel lab, HTTP backends, the
# appliance when it is built, and a root shell on lb1.
#
#   deploy/lab/demo.sh            interactive: a shell in lb1's namespace
#   deploy/lab/demo.sh CMD...     run CMD in lb1's namespace instead, e.g.
#                                 deploy/lab/demo.sh ipvsadm -Ln
#
# On the host it builds bin/seesaw-lab and boots the guest, which runs this
# same script with --in-guest. Inside, the repository is read-only; /tmp and
# /run are the guest's own. Leave the shell (exit, or Ctrl-D) to power off;
# Ctrl-A x kills the guest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

if [ "${1:-}" != --in-guest ]; then
	export CGO_ENABLED=0
	go build -o bin/seesaw-lab ./deploy/lab/cmd/seesaw-lab
	exec bin/seesaw-lab run --mem 2048 --timeout 0 -- "$root/deploy/lab/demo.sh" --in-guest "$@"
fi
shift

lab=bin/seesaw-lab
logs=/tmp/demo
mkdir -p "$logs"
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

echo "== topology (namespaces; ip netns exec NAME CMD to work in one)"
$lab topo up --lbs 2 --backends 2

# Backends serve HTTP on 80 and answer the sample's health check port 8080.
# They route through 198.51.100.1, the floating gateway the active LB takes.
for b in backend1 backend2; do
	inns "$b" "$lab" httpd --name "$b" --listen :80 --listen :8080 >"$logs/$b.log" 2>&1 &
	echo $! >"$logs/$b.pid"
done

# The appliance. Hook for seesaw_watchdog (the lead wires its flags when the
# daemons land): each LB node gets its own config directory, a copy of
# deploy/samples with lb2's node and peer addresses swapped, and runs the
# watchdog in its namespace. Nothing here pretends: the status below checks
# what really runs and answers.
start_appliance() {
	local lb=$1 conf=/run/seesaw-demo/$1
	mkdir -p "$conf" "$logs/$lb"
	cp deploy/samples/seesaw.cfg deploy/samples/cluster.pb "$conf/"
	# The daemons are the ones in bin/, not an installed copy.
	sed "s|/usr/local/seesaw/|$root/bin/|" deploy/watchdog.cfg >"$conf/watchdog.cfg"
	if [ "$lb" = lb2 ]; then
		sed -i -e 's/^node_ipv4 = 192.0.2.2$/node_ipv4 = X4/; s/^peer_ipv4 = 192.0.2.3$/peer_ipv4 = 192.0.2.2/; s/^node_ipv4 = X4$/node_ipv4 = 192.0.2.3/' \
			-e 's/^node_ipv6 = 2001:db8:0:1::2$/node_ipv6 = X6/; s/^peer_ipv6 = 2001:db8:0:1::3$/peer_ipv6 = 2001:db8:0:1::2/; s/^node_ipv6 = X6$/node_ipv6 = 2001:db8:0:1::3/' \
			"$conf/seesaw.cfg"
	fi
	# TODO(lead): point each daemon at $conf (seesaw.cfg, cluster.pb) and at
	# per-node socket directories through watchdog.cfg's args.
	inns "$lb" bin/seesaw_watchdog -config "$conf/watchdog.cfg" -service_log_dir "$logs/$lb" \
		-socket "$conf/watchdog.sock" >"$logs/$lb/watchdog.out" 2>&1 &
	echo $! >"$logs/$lb/watchdog.pid"
}
if [ -x bin/seesaw_watchdog ]; then
	for lb in lb1 lb2; do start_appliance "$lb"; done
	sleep 2
fi

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
fetch() { inns "$1" "$lab" get --timeout 3s "$2" 2>/dev/null | head -1; }
# ready NS URL: fetch, giving a server that is still starting ten seconds.
ready() {
	local i got
	for i in $(seq 20); do
		got=$(fetch "$1" "$2") && [ -n "$got" ] && { echo "$got"; return 0; }
		sleep 0.5
	done
	return 1
}

echo
echo "== what runs"
for b in backend1 backend2; do
	ip=$(inns "$b" ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
	if got=$(ready lb1 "http://$ip/") && alive "$logs/$b.pid"; then
		echo "  $b  http://$ip/ running; lb1 fetched: $got"
	else
		echo "  $b  http://$ip/ NOT answering (log: $logs/$b.log)"
	fi
done
for lb in lb1 lb2; do
	if alive "$logs/$lb/watchdog.pid"; then
		echo "  $lb  seesaw_watchdog running (pid $(cat "$logs/$lb/watchdog.pid"), logs in $logs/$lb)"
	elif [ -x bin/seesaw_watchdog ]; then
		echo "  $lb  seesaw_watchdog NOT running: it exited: $(head -1 "$logs/$lb/watchdog.out")"
	else
		echo "  $lb  seesaw_watchdog not started: bin/seesaw_watchdog is not built (make build)"
	fi
done
if got=$(fetch client http://192.0.2.100/) && [ -n "$got" ]; then
	echo "  VIP  http://192.0.2.100/ answers the client: $got"
else
	echo "  VIP  http://192.0.2.100/ does NOT answer the client: no load balancer serves it yet"
fi
echo "  IPVS on lb1: $(inns lb1 ipvsadm -Ln | grep -cE '^(TCP|UDP|FWM)') services"

if [ $# -gt 0 ]; then
	echo
	echo "== lb1# $*"
	inns lb1 "$@"
	exit
fi
cat <<'EOF'

== a root shell in lb1's namespace. Try:
  ipvsadm -Ln                                   the IPVS table
  ip -br addr                                   lb1's links
  ip netns exec client bin/seesaw-lab get http://192.0.2.100/
  ip netns exec backend1 ip route
Leave with exit (the guest powers off).
EOF
exec ip netns exec lb1 env PS1='[lab lb1 \W]# ' bash --norc -i
