package ipvstest

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/seesawlb/seesaw/ncc/ipvs"
)

func client(t *testing.T, k *Kernel) *ipvs.Client {
	t.Helper()
	c, err := k.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestKernelKeepsWhatTheClientWrites(t *testing.T) {
	k := New()
	c := client(t, k)
	web := ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.1:80")), Scheduler: "wrr"}
	fwm := ipvs.Service{ServiceKey: ipvs.FWMarkKey(ipvs.IPv6, 7), Scheduler: "mh", Flags: ipvs.FlagMHFallback | ipvs.FlagPersistent, Timeout: 30}
	for _, s := range []ipvs.Service{web, fwm} {
		if err := c.CreateService(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []ipvs.Destination{
		{Addr: netip.MustParseAddr("10.0.0.2"), Port: 8080, Forward: ipvs.Masquerade, Weight: 2, UpperThreshold: 10, LowerThreshold: 5},
		{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Forward: ipvs.DirectRoute, Weight: 1},
	} {
		if err := c.CreateDestination(web.ServiceKey, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CreateDestination(fwm.ServiceKey, ipvs.Destination{Addr: netip.MustParseAddr("2001:db8::1"), Forward: ipvs.Tunnel, Weight: 1, TunnelType: ipvs.GUE, TunnelPort: 6080}); err != nil {
		t.Fatal(err)
	}
	if err := c.StartSyncDaemon(ipvs.SyncDaemon{State: ipvs.SyncMaster, Interface: "eth1", SyncID: 3}); err != nil {
		t.Fatal(err)
	}
	want := `-A -f 7 -6 -s mh -p 30 -b mh-fallback
-a -f 7 -6 -r [2001:db8::1]:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum
-A -t 192.0.2.1:80 -s wrr
-a -t 192.0.2.1:80 -r 10.0.0.1:80 -g -w 1
-a -t 192.0.2.1:80 -r 10.0.0.2:8080 -m -w 2 -x 10 -y 5
master sync daemon (mcast=eth1, syncid=3, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)
`
	if got := k.String(); got != want {
		t.Errorf("state:\n%s\nwant:\n%s", got, want)
	}
	if k.Writes() != 6 {
		t.Errorf("%d writes, want 6", k.Writes())
	}

	// What the client reads back is what it wrote.
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	var got []ipvs.VirtualServer
	for _, s := range st {
		got = append(got, s.Config())
	}
	if ipvs.Save(got) != k.Save() {
		t.Errorf("client reads:\n%s\nkernel holds:\n%s", ipvs.Save(got), k.Save())
	}
	if k.Writes() != 6 {
		t.Errorf("reading wrote: %d writes", k.Writes())
	}

	// The kernel's refusals.
	if err := c.CreateService(web); !errors.Is(err, fs.ErrExist) {
		t.Errorf("create twice: %v", err)
	}
	if err := c.DeleteService(ipvs.FWMarkKey(ipvs.IPv4, 7)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("delete the IPv4 twin of an IPv6 fwmark service: %v", err)
	}
	bad := web
	bad.Scheduler = "nosuch"
	if err := c.UpdateService(bad); err == nil || !strings.Contains(err.Error(), "ip_vs_nosuch") {
		t.Errorf("unknown scheduler: %v", err)
	}

	// Interrupted dumps are read again.
	k.InterruptDumps(3)
	if svcs, err := c.Services(); err != nil || len(svcs) != 2 {
		t.Errorf("services after interrupted dumps: %v, %v", svcs, err)
	}

	k.Flush()
	if k.Save() != "" {
		t.Errorf("after Flush: %q", k.Save())
	}
}

// TestRandomOpsAreDeterministic guards the lab comparison: the same seed
// makes the same calls, with the same outcomes on the fake.
func TestRandomOpsAreDeterministic(t *testing.T) {
	run := func() string {
		k := New()
		c := client(t, k)
		var b strings.Builder
		for _, o := range randomOps(rand.New(rand.NewPCG(1, 2)), 300) {
			b.WriteString(o.name + ": " + outcome(o.do(c)) + "\n")
		}
		return b.String() + k.String()
	}
	a, b := run(), run()
	if a != b {
		t.Fatal("two runs of one seed differ")
	}
	for _, want := range []string{": ok", "file exists", "no such process", "no such file or directory", "refused by the client"} {
		if !strings.Contains(a, want) {
			t.Errorf("300 random calls never gave %q", want)
		}
	}
}

// TestBatchedWritesMatchOneByOne: Write sends random changes in batches
// (many requests per system call, the kernel answering only failures);
// each must come out as it does sent alone on a socket that cannot batch,
// and the tables must end equal.
func TestBatchedWritesMatchOneByOne(t *testing.T) {
	ops := randomOps(rand.New(rand.NewPCG(3, 4)), 1000)
	batched := New()
	bc := client(t, batched)
	errs := bc.Write(writes(ops))

	single := New()
	sc, err := ipvs.NewClient(single.Dial())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	failures := 0
	for i, o := range ops {
		want := outcome(o.do(sc))
		if got := outcome(errs[i]); got != want {
			t.Fatalf("call %d, %s: batched %q, alone %q", i, o.name, got, want)
		}
		if errs[i] != nil {
			failures++
			if !strings.Contains(errs[i].Error(), strings.SplitN(o.w.Op.String(), " ", 2)[0]) {
				t.Errorf("error %q does not name the operation %s", errs[i], o.w.Op)
			}
		}
	}
	if batched.String() != single.String() {
		t.Errorf("batched:\n%s\none by one:\n%s", batched, single)
	}
	if failures < 100 || failures > 900 {
		t.Errorf("%d of 1000 failed: the test does not exercise both outcomes", failures)
	}
	// The family lookup, then the valid requests in batches of at most 128.
	if batched.Requests() != single.Requests() || batched.Sends() > 1+(batched.Requests()+127)/128 {
		t.Errorf("%d requests in %d sends (one by one: %d requests)", batched.Requests(), batched.Sends(), single.Requests())
	}
}

// TestStateReadsInParallel reads a table large enough for the client to
// spread the destination dumps over its reader sockets.
func TestStateReadsInParallel(t *testing.T) {
	k := New()
	c := client(t, k)
	var ws []ipvs.Write
	for i := range 200 {
		key := ipvs.AddrPortKey(ipvs.TCP, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 80))
		ws = append(ws, ipvs.Write{Op: ipvs.OpCreateService, Service: ipvs.Service{ServiceKey: key, Scheduler: "rr"}})
		for j := range i % 4 {
			ws = append(ws, ipvs.Write{Op: ipvs.OpCreateDestination, Service: ipvs.Service{ServiceKey: key},
				Destination: ipvs.Destination{Addr: netip.AddrFrom4([4]byte{10, 1, byte(j), byte(i)}), Port: 80, Weight: 1}})
		}
	}
	for i, err := range c.Write(ws) {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	var table []ipvs.VirtualServer
	for _, s := range st {
		table = append(table, s.Config())
	}
	if len(st) != 200 || ipvs.Save(table) != k.Save() {
		t.Errorf("State read %d services:\n%s\nkernel:\n%s", len(st), ipvs.Save(table), k.Save())
	}
}
