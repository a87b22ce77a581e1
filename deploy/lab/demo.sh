#!/usr/bin/env bash
# make demo: the two-node topology in the kernel lab, HTTP backends, the
# appliance (seesaw_watchdog and its daemons on lb1 and lb2), lb1's ECU
# forwarded to the host, a failover under a client's traffic (lb1 dies, its
# client's connection carries on through lb2), and a root shell on lb1.
#
#   deploy/lab/demo.sh            interactive: a shell in lb1's namespace
#   deploy/lab/demo.sh CMD...     run CMD in lb1's namespace instead, e.g.
#                                 deploy/lab/demo.sh ipvsadm -Ln
#
# Environment:
#   DEMO_PORT       the host's loopback port for lb1's ECU (default 10257)
#   DEMO_BIN        where the daemons are (default bin/, as make build leaves them)
#   DEMO_LAB_FLAGS  more seesaw-lab run flags, e.g. "--verbose" or "--writable DIR"
#
# On the host it builds seesaw-lab and boots the guest, which runs this same
# script with --in-guest. Inside, the repository is read-only; /tmp and /run
# are the guest's own. Leave the shell (exit, or Ctrl-D) to power off;
# Ctrl-A x kills the guest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
bin=${DEMO_BIN:-$root/bin}
port=${DEMO_PORT:-10257}
# The ECU's HTTP port in each LB namespace, and the guest port the host's
# DEMO_PORT reaches (on the guest's own NIC, outside every namespace).
ecu_port=10257
guest_port=10257
nic_addr=10.0.2.15 # the guest's NIC on qemu's user network (lab.GuestNICAddr)

if [ "${1:-}" != --in-guest ]; then
	bin=$(mkdir -p "$bin" && cd "$bin" && pwd)
	export CGO_ENABLED=0 DEMO_BIN=$bin DEMO_PORT=$port
	go build -o "$bin/seesaw-lab" ./deploy/lab/cmd/seesaw-lab
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "demo: 127.0.0.1:$port is taken on this host; pick another port with DEMO_PORT=N" >&2
		exit 1
	fi
	# qemu's user network with restrict=on: the host reaches the guest's
	# port, the guest reaches nothing outside.
	flags=(--mem 2048 --timeout 0 --forward "127.0.0.1:$port:$guest_port")
	case $bin in
	/tmp/* | /run/*) flags+=(--readonly "$bin") ;; # the guest's own tmpfs would hide it
	esac
	read -ra extra <<<"${DEMO_LAB_FLAGS:-}"
	exec "$bin/seesaw-lab" run "${flags[@]}" "${extra[@]}" -- "$root/deploy/lab/demo.sh" --in-guest "$@"
fi
shift

lab=$bin/seesaw-lab
logs=/tmp/demo
mkdir -p "$logs"
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

echo "== topology (namespaces; ip netns exec NAME CMD to work in one)"
# Each LB node gets its LB NIC, eth2, on the node's L2 (where the router
# and the clients' traffic are), as Seesaw wants it. The backends' gateway,
# 198.51.100.1, is the NAT gateway: the master LB holds it on eth1.
$lab topo up --lbs 2 --backends 2 --lb-nic eth2

# Backends serve HTTP on 80 and answer the sample's health check port 8080.
for b in backend1 backend2; do
	inns "$b" "$lab" httpd --name "$b" --listen :80 --listen :8080 >"$logs/$b.log" 2>&1 &
	echo $! >"$logs/$b.pid"
done

# The appliance: each LB node gets its own config directory (a copy of
# deploy/samples, with lb2's node and peer addresses swapped), its own
# sockets and logs, and a watchdog.cfg written for it (the shipped file's
# services, dependencies and priorities, with this node's paths). Its
# watchdog runs in its namespace. Nothing here pretends: the status below
# is what the daemons themselves report.
demo=/run/seesaw-demo
# svc NAME DEPS EXTRA-KEYS ARGS...: one watchdog.cfg section.
svc() {
	local name=$1 deps=$2 keys=$3
	shift 3
	printf '[%s]\nbinary = %s\nargs = %s\n' "$name" "$bin/seesaw_$name" "$*"
	[ -z "$deps" ] || printf 'dependency = %s\n' "$deps"
	[ -z "$keys" ] || printf '%b' "$keys"
	echo
}
start_appliance() {
	local lb=$1 conf=$demo/$1 log=$logs/$1 p
	# Each daemon's socket: $run/<process>/<process>.sock. (Plain variables,
	# not $(...): every fork costs under emulation.)
	local run=$conf/run
	local ncc=$run/ncc/ncc.sock engine=$run/engine/engine.sock ha=$run/ha/ha.sock
	local hc=$run/healthcheck/healthcheck.sock ecu=$run/ecu/ecu.sock wd=$run/watchdog/watchdog.sock
	mkdir -p "$conf" "$log" "$run"/{watchdog,ncc,engine,ha,healthcheck,ecu}
	cp deploy/samples/seesaw.cfg deploy/samples/cluster.pb "$conf/"
	# The topology's LB NIC is eth2 (its eth1 faces the backends).
	sed -i 's/^lb = eth1$/lb = eth2/' "$conf/seesaw.cfg"
	# The web vserver as NAT without source NAT (keepalived's NAT): the
	# backends see the client and reply through the NAT gateway the master
	# holds, and the kernel's connection sync alone carries its connections
	# to the peer. (Seesaw's full NAT needs conntrack state synced too.)
	sed -i 's/^    mode: NAT$/    mode: NAT\n    source_nat: false/' "$conf/cluster.pb"
	printf '\n[nat_gateway]\nipv4 = 198.51.100.1/24\nipv6 = 2001:db8:0:2::1/64\ninterface = eth1\n' >>"$conf/seesaw.cfg"
	if [ "$lb" = lb2 ]; then
		sed -i -e 's/^node_ipv4 = 192.0.2.2$/node_ipv4 = X4/; s/^peer_ipv4 = 192.0.2.3$/peer_ipv4 = 192.0.2.2/; s/^node_ipv4 = X4$/node_ipv4 = 192.0.2.3/' \
			-e 's/^node_ipv6 = 2001:db8:0:1::2$/node_ipv6 = X6/; s/^peer_ipv6 = 2001:db8:0:1::3$/peer_ipv6 = 2001:db8:0:1::2/; s/^node_ipv6 = X6$/node_ipv6 = 2001:db8:0:1::3/' \
			"$conf/seesaw.cfg"
	fi
	# No seesaw user or group exists here: the engine's readers and
	# NCC's caller are root, as the daemons all are.
	{
		echo "# watchdog.cfg of $lb, written by deploy/lab/demo.sh"
		echo
		svc ncc "" 'priority = -10\n' -log_dir="$log" -socket="$ncc" -engine_user= -state_file="$run/ncc/desired.pb"
		svc engine ncc 'priority = -10\nterm_timeout = 10s\n' -log_dir="$log" \
			-socket="$engine" -ncc_socket="$ncc" -healthcheck_socket="$hc" -state_file="$run/engine/state.pb" \
			-conf="$conf/seesaw.cfg" -cluster="$conf/cluster.pb" -reader_group= -daemon_user=root
		svc ha engine 'priority = -15\n' -log_dir="$log" -socket="$ha" -engine_socket="$engine"
		svc healthcheck engine "" -log_dir="$log" -socket="$hc" -engine_socket="$engine"
		svc ecu engine "" -log_dir="$log" -socket="$ecu" -engine_socket="$engine" \
			-ncc_socket="$ncc" -ha_socket="$ha" -healthcheck_socket="$hc" -watchdog_socket="$wd" \
			-http_addr=:$ecu_port
	} >"$conf/watchdog.cfg"
	inns "$lb" "$bin/seesaw_watchdog" -config "$conf/watchdog.cfg" -socket "$wd" \
		-service_log_dir "$log" -log_dir "$log" -read_group= >"$log/watchdog.out" 2>&1 &
	echo $! >"$log/watchdog.pid"
}
appliance=
if [ -x "$bin/seesaw_watchdog" ]; then
	appliance=1
	for lb in lb1 lb2; do start_appliance "$lb"; done
	# lb1's ECU on the host: qemu brings DEMO_PORT to this port of the
	# guest's NIC, and seesaw-lab forward carries it into lb1's namespace.
	"$lab" forward --listen "$nic_addr:$guest_port" --netns lb1 --to "127.0.0.1:$ecu_port" >"$logs/forward.log" 2>&1 &
	echo $! >"$logs/forward.pid"
	# The seesaw command on lb1: seesaw_cli at lb1's engine, and for
	# config check lb1's files (a later --conf or --cluster wins).
	mkdir -p "$demo/bin"
	cat >"$demo/bin/seesaw" <<EOF
#!/bin/sh
# seesaw on lb1 (written by deploy/lab/demo.sh): seesaw_cli with lb1's engine socket.
if [ "\${1:-}" = config ] && [ "\${2:-}" = check ]; then
	shift 2
	exec "$bin/seesaw_cli" --engine "$demo/lb1/run/engine/engine.sock" config check --conf "$demo/lb1/seesaw.cfg" --cluster "$demo/lb1/cluster.pb" "\$@"
fi
exec "$bin/seesaw_cli" --engine "$demo/lb1/run/engine/engine.sock" "\$@"
EOF
	chmod 755 "$demo/bin/seesaw"
fi

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# fetch NS URL: the first line of the body; NS "" is the guest's own namespace.
fetch() {
	local ns=$1 url=$2
	if [ -n "$ns" ]; then inns "$ns" "$lab" get --timeout 3s "$url"; else "$lab" get --timeout 3s "$url"; fi 2>/dev/null | head -1
}
# ready NS URL [SECONDS]: fetch, giving a server that is still starting
# SECONDS (default 10) to answer.
ready() {
	local i got
	for i in $(seq $((${3:-10} * 2))); do
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
# Each node's ECU answering in its namespace, and the node's state as the
# CLI shows it (the ECU's page renders the same view).
ecu_status=
for lb in lb1 lb2; do
	# Under emulation the daemons take a while to start, one after another.
	ok=
	if alive "$logs/$lb/watchdog.pid"; then
		ok=$(ready "$lb" "http://127.0.0.1:$ecu_port/healthz" 60) || ok=
	fi
	if alive "$logs/$lb/watchdog.pid"; then
		echo "  $lb  seesaw_watchdog running (pid $(cat "$logs/$lb/watchdog.pid"), logs in $logs/$lb)"
		if [ -n "$ok" ]; then
			echo "       seesaw_ecu answers http://127.0.0.1:$ecu_port/healthz in $lb: $ok"
		else
			echo "       seesaw_ecu does NOT answer http://127.0.0.1:$ecu_port/healthz in $lb: $(inns "$lb" "$lab" get --timeout 3s "http://127.0.0.1:$ecu_port/healthz" 2>&1 | tail -1)"
		fi
		ecu_status+=$'\n'"== $lb: seesaw show ha; seesaw show vservers (the CLI on $lb's engine; the same view as the ECU's page)"$'\n'
		# Under emulation an engine still busy starting may drop a first
		# connection: a few tries.
		for try in 1 2 3 4 5; do
			page=$({ "$bin/seesaw_cli" --engine "$demo/$lb/run/engine/engine.sock" show ha && "$bin/seesaw_cli" --engine "$demo/$lb/run/engine/engine.sock" show vservers; } 2>&1) && break
			sleep 1
		done
		if [ "$try" -lt 5 ] || "$bin/seesaw_cli" --engine "$demo/$lb/run/engine/engine.sock" show ha >/dev/null 2>&1; then
			ecu_status+=$(sed 's/^/  /' <<<"$page")$'\n'
		else
			ecu_status+="  the engine does not answer: $page"$'\n'"  the watchdog's output, last lines ($logs/$lb/watchdog.out):"$'\n'
			ecu_status+=$(tail -5 "$logs/$lb/watchdog.out" | sed 's/^/    /')$'\n'
		fi
	elif [ -n "$appliance" ]; then
		echo "  $lb  seesaw_watchdog NOT running: it exited: $(tail -1 "$logs/$lb/watchdog.out")"
	else
		echo "  $lb  seesaw_watchdog not started: $bin/seesaw_watchdog is not built (make build)"
	fi
done
if [ -n "$appliance" ]; then
	if alive "$logs/forward.pid" && ready "" "http://$nic_addr:$guest_port/healthz" >/dev/null; then
		echo "  host http://127.0.0.1:$port/ is lb1's ECU, forwarded (the guest reaches nothing outside)"
	else
		echo "  host http://127.0.0.1:$port/ does NOT reach lb1's ECU: the forwarder in the guest fails (log: $logs/forward.log)"
	fi
fi
# The VIP: once HA has made lb1 master and the backends' checks have passed,
# the client's requests reach both backends through IPVS on lb1.
for vip in 192.0.2.100 '[2001:db8:0:1::100]'; do
	if got=$(ready client "http://$vip/" 60) && [ -n "$got" ]; then
		echo "  VIP  http://$vip/ answers the client: $got"
		declare -A seen=()
		for i in 1 2 3 4 5 6; do
			b=$(fetch client "http://$vip/" | awk '{print $1}')
			seen[$b]=$(( ${seen[$b]:-0} + 1 ))
		done
		spread=
		for b in "${!seen[@]}"; do spread+=" $b x${seen[$b]}"; done
		echo "       6 more requests were answered by:$spread"
		unset seen
	else
		echo "  VIP  http://$vip/ does NOT answer the client (see lb1's engine log, $logs/lb1/seesaw_engine.log)"
	fi
done
echo "  IPVS on lb1: $(inns lb1 ipvsadm -Ln | grep -cE '^(TCP|UDP|FWM)') services"
inns lb1 ipvsadm -Ln | sed 's/^/    /'
printf '%s' "$ecu_status"

# The pair at work: a client asks the VIP every 100 ms over one TCP
# connection; the master dies (every seesaw process SIGKILLed, its links
# down); the backup takes over with the connection already in its IPVS
# table (the kernel's sync, which the engines run on both nodes), and the
# client's connection carries on. Then the dead node comes back as it
# would after a reboot. The master is the node whose LB interface is up
# with the VIP: the backup holds the VIPs too, on its interface kept down.
master=
for lb in lb1 lb2; do
	if inns "$lb" ip -o addr show dev eth2 up 2>/dev/null | grep -q ' 192.0.2.100/'; then master=$lb; fi
done
if [ -n "$appliance" ] && [ -n "$master" ] && alive "$logs/lb1/watchdog.pid" && alive "$logs/lb2/watchdog.pid"; then
	backup=lb2
	[ "$master" = lb1 ] || backup=lb1
	n=$((${master#lb} + 1)) # the node's host part: lb1 is .2, lb2 .3
	echo
	echo "== failover under traffic: the client asks http://192.0.2.100/ every 100 ms over one connection; $master (the master) dies"
	inns client "$lab" get --every 100ms --for 14s --timeout 10s http://192.0.2.100/ >"$logs/client-session.log" 2>&1 &
	session=$!
	sleep 5
	echo "  $backup's IPVS connection table before: $(inns "$backup" ipvsadm -Lnc | grep -c ESTABLISHED) established (learnt from $master's sync daemon)"
	echo "  $(date +%T.%3N) $master: SIGKILL to every seesaw process, links down"
	kill -9 $(ip netns pids "$master") 2>/dev/null || true
	for l in eth0 eth1 eth2; do inns "$master" ip link set "$l" down; done
	status=0
	wait "$session" || status=$?
	sed -n '1p;$p' "$logs/client-session.log" | sed 's/^/  client: /'
	{ grep 'no answer' "$logs/client-session.log" || true; } | head -3 | sed 's/^/  client: /'
	if [ "$status" = 0 ]; then
		echo "  => the client's connection survived the master's death: every request answered on it"
	else
		echo "  => the client's session broke (log: $logs/client-session.log)"
		# What tells why: the session's last lines (a new connection
		# means the kept-alive one was closed or reset under the client),
		# the new master's connection table and what its engine did.
		tail -n 8 "$logs/client-session.log" | sed 's/^/     client: /'
		inns "$backup" ipvsadm -Lnc | head -12 | sed "s/^/     $backup ipvs: /"
		grep -h -v 'sysctl\|peer sync is off\|^Log\|^Running\|^Binary\|^Previous' "$logs/$backup"/seesaw_engine.INFO 2>/dev/null | tail -n 15 | sed "s/^/     $backup engine: /"
	fi
	echo "  $backup: $(inns "$backup" ip -o addr show dev eth2 | grep -c 'inet.* 192.0.2.100/') x VIP 192.0.2.100 on eth2, NAT gateway: $(inns "$backup" ip -o -4 addr show dev eth1 | grep -o '198.51.100.1/24' || echo none)"
	echo "  $master comes back: links up, its watchdog restarted"
	for l in eth0 eth1 eth2; do inns "$master" ip link set "$l" up; done
	# A link going down took its IPv6 addresses and the routes through it.
	inns "$master" ip -6 addr add "2001:db8:0:1::$n/64" dev eth0 nodad 2>/dev/null || true
	inns "$master" ip -6 addr add "2001:db8:0:2::$n/64" dev eth1 nodad 2>/dev/null || true
	inns "$master" ip route replace default via 192.0.2.1
	inns "$master" ip -6 route replace default via 2001:db8:0:1::1
	start_appliance "$master"
fi

path=$demo/bin:$bin:$PATH
if [ $# -gt 0 ]; then
	echo
	echo "== lb1# $*"
	inns lb1 env PATH="$path" "$@"
	exit
fi
cat <<EOF

== a root shell in lb1's namespace. Try:
  seesaw config check                  validate lb1's seesaw.cfg and cluster.pb (works today)
  seesaw                               the operator's shell on lb1 (Tab, ?, sh vs, show ha, drain ...)
  seesaw show vservers; seesaw show ha one-shot, --json for scripts
  http://127.0.0.1:$port/ on the host  lb1's ECU status page (and /metrics, /api/v1/)
  ipvsadm -Ln                          the IPVS table
  ip -br addr                          lb1's links
  ip netns exec client seesaw-lab get http://192.0.2.100/   the VIP, from the client
  seesaw_engine plan --conf /run/seesaw-demo/lb1/seesaw.cfg --cluster /run/seesaw-demo/lb1/cluster.pb
                                       what the engine computes from lb1's files
  ip netns exec backend1 ip route
Logs: $logs/lb1 and $logs/lb2 (watchdog.out, seesaw_*.log). Leave with exit (the guest powers off).
EOF
exec ip netns exec lb1 env PATH="$path" PS1='[lab lb1 \W]# ' bash --norc -i
