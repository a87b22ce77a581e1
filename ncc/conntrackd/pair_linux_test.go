package conntrackd

import (
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/deploy/testenv"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

var pairConns = flag.Int("pair_conns", 1000, "connections TestDaemonPairReal syncs and commits")

// inNode is a Daemon whose conntrackd runs in n's namespace.
func inNode(t *testing.T, n *labtest.Node) *Daemon {
	t.Helper()
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "conntrackd")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec ip netns exec "+n.NS+" "+DefaultBinary+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Binary: wrapper, Paths: Paths{Dir: filepath.Join(dir, "ctd")}, Logf: t.Logf}
	t.Cleanup(d.Stop)
	return d
}

// TestDaemonPairReal: two namespaces on the host's kernel, each with
// Debian's conntrackd as the NCC runs it. Connections the first one's
// kernel tracks reach the second's external cache, and becoming master
// commits them into the second's kernel (what a new master needs before
// its VIPs come up). The figure: how long the commit of 1,000 connections
// (-pair_conns) takes, and how long the sync took to carry them.
func TestDaemonPairReal(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := os.Stat(DefaultBinary); err != nil {
		t.Skipf("needs Debian's conntrackd (%v); make test installs it", err)
	}
	a, b := labtest.NewTestNode(t, "ctda"), labtest.NewTestNode(t, "ctdb")
	if err := labtest.Veth(a, "sync0", b, "sync0"); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		n    *labtest.Node
		addr string
	}{{a, "192.0.2.2/24"}, {b, "192.0.2.3/24"}} {
		if err := x.n.AddAddr("sync0", netip.MustParsePrefix(x.addr)); err != nil {
			t.Fatal(err)
		}
	}
	// The connections: 198.51.100.10 -> 198.51.100.1:80 on a's loopback
	// (neither node address, so synced). A rule that uses conntrack makes
	// the namespace track connections at all.
	for _, p := range []string{"198.51.100.1/32", "198.51.100.10/32"} {
		if err := a.AddAddr("lo", netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*labtest.Node{a, b} {
		n.Run(t, "nft", "add table inet t; add chain inet t c { type filter hook input priority 0; }; add rule inet t c ct state invalid counter")
	}
	ct := func(local, peer string) *nccpb.Conntrackd {
		return &nccpb.Conntrackd{Interface: "sync0", LocalAddress: local, PeerAddress: peer}
	}
	da, db := inNode(t, a), inNode(t, b)
	if _, err := da.Ensure(ct("192.0.2.2", "192.0.2.3")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Ensure(ct("192.0.2.3", "192.0.2.2")); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(da.Before(true), da.After(true), db.Before(false), db.After(false)); err != nil {
		t.Fatal(err)
	}

	l, err := a.Listen("tcp", "198.51.100.1:80")
	if err != nil {
		t.Fatal(err)
	}
	// The server's ends stay open until the test ends (each connection
	// takes two descriptors: mind ulimit -n with -pair_conns).
	accepted := make(chan []net.Conn, 1)
	go func() {
		var cs []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				accepted <- cs
				return
			}
			cs = append(cs, c)
		}
	}()
	defer func() {
		l.Close()
		for _, c := range <-accepted {
			c.Close()
		}
	}()
	n := *pairConns
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	opened := time.Now()
	err = a.Do(func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("198.51.100.10")}}
		for range n {
			c, err := d.Dial("tcp", "198.51.100.1:80")
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	count := func(out string) int {
		k := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "ESTABLISHED") && strings.Contains(line, "src=198.51.100.10 ") && strings.Contains(line, "dport=80 ") {
				k++
			}
		}
		return k
	}
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := b.Output(DefaultBinary, "-C", db.Paths.Config(), "-e")
		if err != nil {
			t.Fatal(err)
		}
		if got := count(string(out)); got == n {
			break
		} else if time.Now().After(deadline) {
			ia, _ := a.Output(DefaultBinary, "-C", da.Paths.Config(), "-i")
			sa, _ := a.Output(DefaultBinary, "-C", da.Paths.Config(), "-s")
			sb, _ := b.Output(DefaultBinary, "-C", db.Paths.Config(), "-s")
			ka, _ := a.Output("cat", "/proc/net/nf_conntrack")
			t.Fatalf("b's external cache holds %d of the %d connections after a minute; a's kernel %d, a's internal cache %d\na: %s\nb: %s\n%s",
				got, n, count(string(ka)), count(string(ia)), sa, sb, ka[:min(len(ka), 2000)])
		}
		time.Sleep(20 * time.Millisecond)
	}
	synced := time.Since(opened)
	kernel := func() int {
		out, err := b.Output("cat", "/proc/net/nf_conntrack")
		if err != nil {
			t.Fatal(err)
		}
		return count(string(out))
	}
	if k := kernel(); k != 0 {
		t.Fatalf("b's kernel tracks %d of the connections before the commit", k)
	}
	start := time.Now()
	if err := db.Before(true); err != nil {
		t.Fatal(err)
	}
	commit := time.Since(start)
	if k := kernel(); k != n {
		t.Fatalf("b's kernel tracks %d of the %d connections after the commit", k, n)
	}
	if err := db.After(true); err != nil || db.Role() != RoleMaster {
		t.Fatalf("b becoming master: %v (role %v)", err, db.Role())
	}
	t.Logf("bench: conntrackd carried %d connections to the peer's external cache within %v; the commit into the kernel took %v",
		n, synced.Round(time.Millisecond), commit.Round(time.Millisecond))
}
