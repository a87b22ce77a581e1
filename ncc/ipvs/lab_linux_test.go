package ipvs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvslab"
)

// These tests run inside the kernel lab (a guest kernel with IPVS); on the
// host they skip. Each gets a network namespace of its own, and IPVS is per
// namespace, so they do not see each other's services. ipvsadm, run in the
// same namespace, is the independent witness of what the client did.
//
//	go test -exec "$(pwd)/bin/seesaw-lab exec" -run '^TestLab' ./ncc/ipvs

// lab gives a test a fresh namespace with a dummy0 interface and a client
// whose socket lives there.
func lab(t *testing.T) (*labtest.Node, *ipvs.Client) {
	t.Helper()
	labtest.RequireLab(t)
	n, c := ipvslab.Node(t, "ipvs")
	return n, c
}

func ipvsadm(t *testing.T, n *labtest.Node, args ...string) string {
	t.Helper()
	out, err := n.Output("ipvsadm", args...)
	if err != nil {
		t.Fatalf("ipvsadm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sampleTable exercises every kind of service and destination ipvsadm can
// show: protocols, fwmarks, both families, the schedulers and their flags,
// persistence with netmasks, one-packet scheduling, every forwarding
// method and tunnel type.
func sampleTable() []ipvs.VirtualServer {
	a := netip.MustParseAddr
	ap := netip.MustParseAddrPort
	return []ipvs.VirtualServer{
		{
			Service: ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.TCP, ap("192.0.2.1:80")), Scheduler: "wrr"},
			Destinations: []ipvs.Destination{
				{Addr: a("10.1.0.1"), Port: 8080, Forward: ipvs.Masquerade, Weight: 3, UpperThreshold: 100, LowerThreshold: 10},
				{Addr: a("10.1.0.2"), Port: 80, Forward: ipvs.DirectRoute, Weight: 0},
				{Addr: a("10.1.0.3"), Port: 80, Forward: ipvs.Tunnel, Weight: 1},
				{Addr: a("10.1.0.4"), Port: 80, Forward: ipvs.Tunnel, Weight: 1, TunnelType: ipvs.GUE, TunnelPort: 6080},
				{Addr: a("10.1.0.5"), Port: 80, Forward: ipvs.Tunnel, Weight: 2, TunnelType: ipvs.GRE, TunnelFlags: ipvs.TunnelCSum},
				{Addr: a("10.1.0.6"), Port: 80, Forward: ipvs.Tunnel, Weight: 2, TunnelType: ipvs.GUE, TunnelPort: 6081, TunnelFlags: ipvs.TunnelRemCSum},
			},
		},
		{
			Service: ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.UDP, ap("192.0.2.1:53")), Scheduler: "sh",
				Flags: ipvs.FlagSHFallback | ipvs.FlagSHPort | ipvs.FlagPersistent | ipvs.FlagOnePacket, Timeout: 60, Netmask: 24},
			Destinations: []ipvs.Destination{{Addr: a("10.1.0.7"), Port: 53, Forward: ipvs.DirectRoute, Weight: 1}},
		},
		{Service: ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.SCTP, ap("192.0.2.1:9")), Scheduler: "mh", Flags: ipvs.FlagMHFallback | ipvs.FlagMHPort}},
		{Service: ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.TCP, ap("192.0.2.2:80")), Scheduler: "rr"}},
		{Service: ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.TCP, ap("192.0.2.3:80")), Scheduler: "lc", Flags: ipvs.FlagSched3}},
		{Service: ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.TCP, ap("192.0.2.4:80")), Scheduler: "wlc", Flags: ipvs.FlagPersistent, Timeout: 300}},
		{
			Service: ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.TCP, ap("[2001:db8::1]:443")), Scheduler: "wlc",
				Flags: ipvs.FlagPersistent, Timeout: 30, Netmask: 64},
			Destinations: []ipvs.Destination{
				{Addr: a("2001:db8:1::1"), Port: 443, Forward: ipvs.Masquerade, Weight: 1},
				{Addr: a("2001:db8:1::2"), Port: 443, Forward: ipvs.DirectRoute, Weight: 65535, UpperThreshold: 5},
			},
		},
		{
			Service:      ipvs.Service{ServiceKey: ipvs.FWMarkKey(ipvs.IPv4, 7), Scheduler: "lc", Flags: ipvs.FlagPersistent, Timeout: 360},
			Destinations: []ipvs.Destination{{Addr: a("10.1.0.9"), Forward: ipvs.DirectRoute, Weight: 1}},
		},
		{
			Service:      ipvs.Service{ServiceKey: ipvs.FWMarkKey(ipvs.IPv6, 8), Scheduler: "rr"},
			Destinations: []ipvs.Destination{{Addr: a("2001:db8:1::9"), Forward: ipvs.Tunnel, Weight: 1}},
		},
		{Service: ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.UDP, ap("[2001:db8::2]:53")), Scheduler: "mh"}},
	}
}

func program(t *testing.T, c *ipvs.Client, table []ipvs.VirtualServer) {
	t.Helper()
	for _, v := range table {
		if err := c.CreateService(v.Service); err != nil {
			t.Fatal(err)
		}
		for _, d := range v.Destinations {
			if err := c.CreateDestination(v.ServiceKey, d); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func readTable(t *testing.T, c *ipvs.Client) []ipvs.VirtualServer {
	t.Helper()
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	var out []ipvs.VirtualServer
	for _, s := range st {
		out = append(out, s.Config())
	}
	return out
}

// normalized sorts a table and fills in what the kernel reports for unset
// fields, so that tables compare with ==.
func normalized(table []ipvs.VirtualServer) []ipvs.VirtualServer {
	out := make([]ipvs.VirtualServer, 0, len(table))
	for _, v := range table {
		n := ipvs.VirtualServer{Service: v.Service.Normalize()}
		for _, d := range v.Destinations {
			n.Destinations = append(n.Destinations, d.Normalize())
		}
		slices.SortFunc(n.Destinations, func(a, b ipvs.Destination) int { return strings.Compare(a.String(), b.String()) })
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b ipvs.VirtualServer) int {
		return strings.Compare(a.ServiceKey.String(), b.ServiceKey.String())
	})
	return out
}

func diffTables(t *testing.T, want, got []ipvs.VirtualServer) {
	t.Helper()
	want, got = normalized(want), normalized(got)
	if len(want) != len(got) {
		t.Fatalf("%d services, want %d:\ngot:\n%s\nwant:\n%s", len(got), len(want), ipvs.Save(got), ipvs.Save(want))
	}
	for i := range want {
		if want[i].Service != got[i].Service {
			t.Errorf("service:\n got %+v\nwant %+v", got[i].Service, want[i].Service)
		}
		if !slices.Equal(want[i].Destinations, got[i].Destinations) {
			t.Errorf("destinations of %s:\n got %+v\nwant %+v", want[i].ServiceKey, got[i].Destinations, want[i].Destinations)
		}
	}
}

// TestLabClientProgramsWhatIpvsadmShows writes every kind of rule with the
// client and checks the kernel's table with ipvsadm, and with the client's
// own reading.
func TestLabClientProgramsWhatIpvsadmShows(t *testing.T) {
	n, c := lab(t)
	table := sampleTable()
	program(t, c, table)

	if got, want := ipvs.CanonicalSave(ipvsadm(t, n, "-Sn")), ipvs.Save(table); got != want {
		t.Errorf("ipvsadm -Sn:\n%s\nwant:\n%s", got, want)
	}
	diffTables(t, table, readTable(t, c))

	// ipvsadm -S leaves thresholds out; -L --thresholds shows them.
	th := parseList(t, ipvsadm(t, n, "-Ln", "--thresholds"))
	for _, v := range table {
		for _, d := range v.Destinations {
			row := th[v.ServiceKey.String()+" -> "+d.String()]
			want := []string{strconv.Itoa(int(d.UpperThreshold)), strconv.Itoa(int(d.LowerThreshold))}
			if len(row) < 2 || !slices.Equal(row[:2], want) {
				t.Errorf("thresholds of %s -> %s: ipvsadm shows %v, want %v", v.ServiceKey, d, row, want)
			}
		}
	}
}

// TestLabClientReadsWhatIpvsadmWrote has ipvsadm restore a table and the
// client read it back.
func TestLabClientReadsWhatIpvsadmWrote(t *testing.T) {
	n, c := lab(t)
	rules := ipvs.Save(sampleTable())
	cmd := exec.Command("ipvsadm", "-R")
	cmd.Stdin = strings.NewReader(rules)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := n.Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ipvsadm -R: %v\n%s", err, out.String())
	}
	got := readTable(t, c)
	if s := ipvs.Save(got); s != rules {
		t.Errorf("client read:\n%s\nipvsadm restored:\n%s", s, rules)
	}
	// Restore cannot set thresholds: everything else must match.
	want := sampleTable()
	for i := range want {
		for j := range want[i].Destinations {
			want[i].Destinations[j].UpperThreshold, want[i].Destinations[j].LowerThreshold = 0, 0
		}
	}
	diffTables(t, want, got)
}

// TestLabClientUpdatesInPlace changes services and destinations without
// removing them and checks that the kernel took every field.
func TestLabClientUpdatesInPlace(t *testing.T) {
	n, c := lab(t)
	table := sampleTable()
	program(t, c, table)

	web := &table[0]
	web.Scheduler = "wlc"
	web.Flags = ipvs.FlagPersistent | ipvs.FlagOnePacket
	web.Timeout, web.Netmask = 120, 16
	if err := c.UpdateService(web.Service); err != nil {
		t.Fatal(err)
	}
	d := &web.Destinations[0]
	d.Forward, d.Weight, d.UpperThreshold, d.LowerThreshold = ipvs.DirectRoute, 7, 0, 0
	if err := c.UpdateDestination(web.ServiceKey, *d); err != nil {
		t.Fatal(err)
	}
	// From a GUE tunnel to a plain one: the tunnel settings go with it.
	d = &web.Destinations[3]
	d.TunnelType, d.TunnelPort, d.TunnelFlags = ipvs.IPIP, 0, 0
	if err := c.UpdateDestination(web.ServiceKey, *d); err != nil {
		t.Fatal(err)
	}
	// Flags are replaced, not merged: sh loses its fallback flag.
	dns := &table[1]
	dns.Flags = ipvs.FlagSHPort
	if err := c.UpdateService(dns.Service); err != nil {
		t.Fatal(err)
	}

	diffTables(t, table, readTable(t, c))
	if got, want := ipvs.CanonicalSave(ipvsadm(t, n, "-Sn")), ipvs.Save(table); got != want {
		t.Errorf("ipvsadm -Sn:\n%s\nwant:\n%s", got, want)
	}

	if err := c.DeleteDestination(web.ServiceKey, web.Destinations[1]); err != nil {
		t.Fatal(err)
	}
	web.Destinations = slices.Delete(web.Destinations, 1, 2)
	if err := c.DeleteService(table[2].ServiceKey); err != nil {
		t.Fatal(err)
	}
	table = slices.Delete(table, 2, 3)
	if got, want := ipvs.CanonicalSave(ipvsadm(t, n, "-Sn")), ipvs.Save(table); got != want {
		t.Errorf("after deletes, ipvsadm -Sn:\n%s\nwant:\n%s", got, want)
	}

	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := ipvs.CanonicalSave(ipvsadm(t, n, "-Sn")); got != "" {
		t.Errorf("after flush, ipvsadm -Sn:\n%s", got)
	}
}

// TestLabClientErrors checks the kernel's refusals come back as errors
// that match fs.ErrNotExist and fs.ErrExist and say what failed.
func TestLabClientErrors(t *testing.T) {
	_, c := lab(t)
	svc := ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.9:80")), Scheduler: "rr"}
	dst := ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Weight: 1}

	if _, err := c.Service(svc.ServiceKey); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("get missing service: %v, want ErrNotExist", err)
	}
	if _, err := c.Destinations(svc.ServiceKey); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("destinations of a missing service: %v, want ErrNotExist", err)
	}
	if err := c.DeleteService(svc.ServiceKey); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("delete missing service: %v, want ErrNotExist", err)
	}
	if err := c.UpdateService(svc); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("update missing service: %v, want ErrNotExist", err)
	}
	if err := c.CreateDestination(svc.ServiceKey, dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("destination of a missing service: %v, want ErrNotExist", err)
	}
	bad := svc
	bad.Scheduler = "nosuch"
	err := c.CreateService(bad)
	if err == nil || !strings.Contains(err.Error(), "ip_vs_nosuch") || !strings.Contains(err.Error(), "create service TCP 192.0.2.9:80") {
		t.Errorf("unknown scheduler: %v, want an error naming the service and the module", err)
	}

	if err := c.CreateService(svc); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateService(svc); !errors.Is(err, fs.ErrExist) {
		t.Errorf("create twice: %v, want ErrExist", err)
	}
	if ds, err := c.Destinations(svc.ServiceKey); err != nil || len(ds) != 0 {
		t.Errorf("destinations of an empty service: %v, %v", ds, err)
	}
	if err := c.UpdateDestination(svc.ServiceKey, dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("update missing destination: %v, want ErrNotExist", err)
	}
	if err := c.DeleteDestination(svc.ServiceKey, dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("delete missing destination: %v, want ErrNotExist", err)
	}
	if err := c.CreateDestination(svc.ServiceKey, dst); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDestination(svc.ServiceKey, dst); !errors.Is(err, fs.ErrExist) {
		t.Errorf("create destination twice: %v, want ErrExist", err)
	}
	v6 := ipvs.Service{ServiceKey: ipvs.FWMarkKey(ipvs.IPv6, 3), Scheduler: "rr"}
	if err := c.CreateService(v6); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Service(ipvs.FWMarkKey(ipvs.IPv4, 3)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("fwmark 3 exists for IPv6 only, IPv4 lookup: %v", err)
	}
}

// TestLabClientTimeouts sets timeouts both ways round.
func TestLabClientTimeouts(t *testing.T) {
	n, c := lab(t)
	if err := c.SetTimeouts(ipvs.Timeouts{TCP: 901, TCPFin: 121, UDP: 301}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(ipvsadm(t, n, "-Ln", "--timeout")); got != "Timeout (tcp tcpfin udp): 901 121 301" {
		t.Errorf("ipvsadm: %q", got)
	}
	// Zero leaves a timeout alone.
	if err := c.SetTimeouts(ipvs.Timeouts{UDP: 17}); err != nil {
		t.Fatal(err)
	}
	ipvsadm(t, n, "--set", "0", "33", "0")
	got, err := c.Timeouts()
	if err != nil {
		t.Fatal(err)
	}
	if want := (ipvs.Timeouts{TCP: 901, TCPFin: 33, UDP: 17}); got != want {
		t.Errorf("timeouts %+v, want %+v", got, want)
	}
}

// TestLabClientSyncDaemons starts, lists and stops both sync daemons and
// compares with ipvsadm --list-daemon.
func TestLabClientSyncDaemons(t *testing.T) {
	n, c := lab(t)
	if ds, err := c.SyncDaemons(); err != nil || len(ds) != 0 {
		t.Fatalf("daemons at start: %v, %v", ds, err)
	}
	master := ipvs.SyncDaemon{State: ipvs.SyncMaster, Interface: "dummy0", SyncID: 5, MaxLen: 1400,
		MulticastGroup: netip.MustParseAddr("239.1.2.3"), Port: 8849, TTL: 3}
	if err := c.StartSyncDaemon(master); err != nil {
		t.Fatal(err)
	}
	ipvsadm(t, n, "--start-daemon", "backup", "--mcast-interface", "dummy0", "--syncid", "6")
	got, err := c.SyncDaemons()
	if err != nil {
		t.Fatal(err)
	}
	backup := ipvs.SyncDaemon{State: ipvs.SyncBackup, Interface: "dummy0", SyncID: 6, MaxLen: 1472,
		MulticastGroup: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}
	slices.SortFunc(got, func(a, b ipvs.SyncDaemon) int { return int(a.State) - int(b.State) })
	if !slices.Equal(got, []ipvs.SyncDaemon{master, backup}) {
		t.Errorf("daemons:\n got %+v\nwant %+v", got, []ipvs.SyncDaemon{master, backup})
	}
	l := ipvsadm(t, n, "-L", "--daemon")
	if !strings.Contains(l, "master sync daemon (mcast=dummy0, syncid=5, maxlen=1400, group=239.1.2.3, port=8849, ttl=3)") {
		t.Errorf("ipvsadm --list-daemon:\n%s", l)
	}
	if err := c.StartSyncDaemon(master); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second master: %v, want ErrExist", err)
	}
	if err := c.StopSyncDaemon(ipvs.SyncMaster); err != nil {
		t.Fatal(err)
	}
	if l := ipvsadm(t, n, "-L", "--daemon"); strings.Contains(l, "master") || !strings.Contains(l, "backup") {
		t.Errorf("after stopping the master, ipvsadm --list-daemon:\n%s", l)
	}
	if err := c.StopSyncDaemon(ipvs.SyncBackup); err != nil {
		t.Fatal(err)
	}
	if ds, err := c.SyncDaemons(); err != nil || len(ds) != 0 {
		t.Errorf("daemons after stop: %v, %v", ds, err)
	}
	// An IPv6 group.
	m6 := ipvs.SyncDaemon{State: ipvs.SyncMaster, Interface: "dummy0", SyncID: 1, MulticastGroup: netip.MustParseAddr("ff02::1:2"), Port: 9000, TTL: 2}
	if err := c.StartSyncDaemon(m6); err != nil {
		t.Fatal(err)
	}
	if l := ipvsadm(t, n, "-L", "--daemon"); !strings.Contains(l, "group=ff02::1:2, port=9000, ttl=2") {
		t.Errorf("IPv6 group: ipvsadm --list-daemon:\n%s", l)
	}
}

// parseList reads `ipvsadm -Ln` tables into rows keyed "TCP 1.2.3.4:80" for
// services and "TCP 1.2.3.4:80 -> 10.0.0.1:80" for destinations; the value
// is the columns after the address (and scheduler, for services).
func parseList(t *testing.T, out string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	svc := ""
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "TCP", "UDP", "SCTP":
			svc = f[0] + " " + f[1]
			rows[svc] = f[2:]
		case "FWM":
			svc, f = "FWM "+f[1], f[2:]
			if len(f) > 0 && f[0] == "IPv6" {
				svc, f = svc+" IPv6", f[1:]
			}
			rows[svc] = f
		case "->":
			if svc != "" && f[1] != "RemoteAddress:Port" {
				rows[svc+" -> "+f[1]] = f[2:]
			}
		}
	}
	return rows
}

// TestLabClientStatistics sends real connections through a service whose
// destination is the namespace itself, and compares the client's counters
// with ipvsadm's.
func TestLabClientStatistics(t *testing.T) {
	n, c := lab(t)
	vip := netip.MustParseAddrPort("198.51.100.1:80")
	real := netip.MustParseAddrPort("198.51.100.2:8080")
	for _, p := range []string{"198.51.100.1/32", "198.51.100.2/32"} {
		if err := n.AddAddr("dummy0", netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := n.Listen("tcp", real.String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello\n")
			held <- c
		}
	}()
	svc := ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.TCP, vip), Scheduler: "rr", Flags: ipvs.FlagPersistent, Timeout: 60}
	if err := c.CreateService(svc); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDestination(svc.ServiceKey, ipvs.Destination{Addr: real.Addr(), Port: real.Port(), Forward: ipvs.Masquerade, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cn, err := n.Dial(ctx, "tcp", vip.String())
		cancel()
		if err != nil {
			t.Fatalf("connect to the VIP: %v\n%s", err, ipvsadm(t, n, "-Ln"))
		}
		cn.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 6)
		if _, err := io.ReadFull(cn, buf); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn)
	}
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	// Three connections are open: three active, one persistence template.
	ds, err := c.Destinations(svc.ServiceKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].ActiveConns != 3 || ds[0].PersistentConns != 1 {
		t.Fatalf("destination %+v, want 3 active and 1 persistent connection", ds)
	}
	key := svc.ServiceKey.String() + " -> " + real.String()
	if row := parseList(t, ipvsadm(t, n, "-Ln", "--persistent-conn"))[key]; !slices.Equal(row, []string{"1", "1", "3", "0"}) {
		t.Errorf("ipvsadm --persistent-conn %s: %v, want weight 1, persist 1, active 3, inactive 0", key, row)
	}

	// The kernel adds up its per-CPU counters every two seconds (the rate
	// estimator's tick): wait for the three connections to show.
	var st ipvs.ServiceStats
	for deadline := time.Now().Add(10 * time.Second); ; {
		if st, err = c.Service(svc.ServiceKey); err != nil {
			t.Fatal(err)
		}
		if st.Stats.Connections == 3 && st.Stats.PacketsOut > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stats := parseList(t, ipvsadm(t, n, "-Ln", "--stats", "--exact"))
	s := st.Stats
	want := []string{fmt.Sprint(s.Connections), fmt.Sprint(s.PacketsIn), fmt.Sprint(s.PacketsOut), fmt.Sprint(s.BytesIn), fmt.Sprint(s.BytesOut)}
	if row := stats[svc.ServiceKey.String()]; !slices.Equal(row, want) {
		t.Errorf("ipvsadm --stats: %v, client: %v", row, want)
	}
	if s.Connections != 3 || s.PacketsIn == 0 || s.PacketsOut == 0 || s.BytesOut == 0 {
		t.Errorf("stats %+v, want 3 connections and traffic both ways", s)
	}
	if ds, err = c.Destinations(svc.ServiceKey); err != nil {
		t.Fatal(err)
	}
	d := ds[0].Stats
	if d.Connections != 3 {
		t.Errorf("destination counted %d connections, want 3", d.Connections)
	}
	if row, want := stats[key], []string{fmt.Sprint(d.Connections), fmt.Sprint(d.PacketsIn), fmt.Sprint(d.PacketsOut), fmt.Sprint(d.BytesIn), fmt.Sprint(d.BytesOut)}; !slices.Equal(row, want) {
		t.Errorf("destination stats: ipvsadm %v, client %+v", row, d)
	}

	if err := c.ZeroStats(ipvs.ServiceKey{}); err != nil {
		t.Fatal(err)
	}
	st, err = c.Service(svc.ServiceKey)
	if err != nil {
		t.Fatal(err)
	}
	if st.Stats.Connections != 0 || st.Stats.PacketsIn != 0 {
		t.Errorf("after zeroing: %+v", st.Stats)
	}
	if row := parseList(t, ipvsadm(t, n, "-Ln", "--stats", "--exact"))[svc.ServiceKey.String()]; len(row) < 2 || row[0] != "0" || row[1] != "0" {
		t.Errorf("after zeroing, ipvsadm --stats: %v", row)
	}
}

// TestLabClientInfo reads the version and table size ipvsadm prints.
func TestLabClientInfo(t *testing.T) {
	n, c := lab(t)
	i, err := c.Info()
	if err != nil {
		t.Fatal(err)
	}
	head := strings.SplitN(ipvsadm(t, n, "-Ln"), "\n", 2)[0]
	if want := fmt.Sprintf("IP Virtual Server version %s (size=%d)", i.VersionString(), i.ConnTableSize); head != want {
		t.Errorf("ipvsadm says %q, client %q", head, want)
	}
}

// TestLabClientSchedulers creates a service with each of the kernel's
// schedulers. The six Seesaw uses must exist; the others are logged when
// this kernel lacks them.
func TestLabClientSchedulers(t *testing.T) {
	n, c := lab(t)
	required := map[string]bool{"rr": true, "wrr": true, "lc": true, "wlc": true, "sh": true, "mh": true}
	var made []ipvs.VirtualServer
	for i, s := range []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"} {
		svc := ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.TCP, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.50"), uint16(1000+i))), Scheduler: s}
		err := c.CreateService(svc)
		switch {
		case err == nil:
			made = append(made, ipvs.VirtualServer{Service: svc})
		case errors.Is(err, fs.ErrNotExist) && !required[s]:
			t.Logf("scheduler %s is not in this kernel: %v", s, err)
		default:
			t.Errorf("scheduler %s: %v", s, err)
		}
	}
	if got, want := ipvs.CanonicalSave(ipvsadm(t, n, "-Sn")), ipvs.Save(made); got != want {
		t.Errorf("ipvsadm -Sn:\n%s\nwant:\n%s", got, want)
	}
	diffTables(t, made, readTable(t, c))
}

// TestLabSyncDaemonStartStop starts and at once stops each sync daemon,
// over and over. When the stop comes before the daemon's thread has run,
// the kernel stops it, reports EINTR and, by netlink's rules for EINTR,
// sends no answer at all; the client must neither hang nor report a
// failure for a daemon that is gone. Without that, a few of these stops
// come back as errors after the read deadline.
func TestLabSyncDaemonStartStop(t *testing.T) {
	n, c := lab(t)
	for i := 0; i < 12; i++ {
		for _, st := range []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup} {
			d := ipvs.SyncDaemon{State: st, Interface: "dummy0", SyncID: 1, MulticastGroup: netip.MustParseAddr("239.0.0.9"), Port: 9000, TTL: 1}
			for j, err := range c.Write([]ipvs.Write{{Op: ipvs.OpStartSyncDaemon, Daemon: d}, {Op: ipvs.OpStopSyncDaemon, Daemon: d}}) {
				if err != nil {
					t.Fatalf("round %d, %s, write %d: %v", i, st, j, err)
				}
			}
			ds, err := c.SyncDaemons()
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 0 {
				t.Fatalf("round %d: after stopping the %s daemon, the kernel lists %+v", i, st, ds)
			}
		}
	}
	if out := ipvsadm(t, n, "-L", "--daemon"); strings.TrimSpace(out) != "" {
		t.Errorf("ipvsadm -L --daemon: %q, want nothing", out)
	}
}
