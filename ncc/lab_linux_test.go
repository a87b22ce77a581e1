package ncc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// TestLabRestartKeepsConnections runs the NCC against the lab's kernel,
// applies a service, opens connections through it, restarts the NCC and
// applies the same state again: nothing is written, and the connections
// opened before the restart still carry data after it. Then --cleanup
// removes the service.
func TestLabRestartKeepsConnections(t *testing.T) {
	labtest.RequireLab(t)
	n, err := labtest.NewNode("ncc", fmt.Sprintf("ncc%d", rand.Uint32()%1000000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.AddLink(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "dummy0"}}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"lo", "dummy0"} {
		if err := n.LinkUp(l); err != nil {
			t.Fatal(err)
		}
	}
	vip, real := netip.MustParseAddrPort("198.51.100.1:80"), netip.MustParseAddrPort("198.51.100.2:8080")
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
	go func() { // an echo server
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()

	var writes func() uint64
	open := func() (reconcile.IPVS, error) {
		var c *ipvs.Client
		err := n.Do(func() (err error) { c, err = ipvs.New(); return err })
		if err == nil {
			writes = c.Writes
		}
		return c, err
	}
	sock := filepath.Join(t.TempDir(), "ncc.sock")
	start := func() (nccpb.NCCClient, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Config{Socket: sock, AuditInterval: time.Hour, IPVS: open, NFT: nodeNFT(n, t.Logf),
				Probe: func() (ipvs.GenlFamily, error) { return ipvs.GenlFamily{ID: 1}, nil }})
		}()
		cc, err := ipc.Dial(sock, ipc.DialOptions{MaxBackoff: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		return nccpb.NewNCCClient(cc), func() {
			once.Do(func() {
				cc.Close()
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		}
	}
	ds := &nccpb.DesiredState{Services: []*nccpb.Service{{
		Protocol: nccpb.Protocol_TCP, Address: vip.Addr().String(), Port: uint32(vip.Port()), Scheduler: "wlc",
		Destinations: []*nccpb.Destination{{Address: real.Addr().String(), Port: uint32(real.Port()), Forward: nccpb.Forward_FORWARD_NAT, Weight: 1}},
	}}}

	c, stop := start()
	resp, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: ds})
	if err != nil || len(resp.Errors) != 0 || resp.KernelWrites != 2 {
		t.Fatalf("apply: %v %v", resp, err)
	}
	want := "-A -t 198.51.100.1:80 -s wlc\n-a -t 198.51.100.1:80 -r 198.51.100.2:8080 -m -w 1\n"
	if out := n.Run(t, "ipvsadm", "-Sn"); ipvs.CanonicalSave(out) != want {
		t.Fatalf("ipvsadm -Sn:\n%s\nwant:\n%s", out, want)
	}

	var conns []net.Conn
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cn, err := n.Dial(ctx, "tcp", vip.String())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		defer cn.Close()
		conns = append(conns, cn)
	}
	echo := func(when string) {
		t.Helper()
		for i, cn := range conns {
			cn.SetDeadline(time.Now().Add(10 * time.Second))
			msg := fmt.Sprintf("%s %d\n", when, i)
			if _, err := io.WriteString(cn, msg); err != nil {
				t.Fatalf("connection %d %s: %v", i, when, err)
			}
			got, err := bufio.NewReader(cn).ReadString('\n')
			if err != nil || got != msg {
				t.Fatalf("connection %d %s: %q, %v", i, when, got, err)
			}
		}
	}
	echo("before the restart")

	stop()
	c, stop = start()
	defer stop()
	resp, err = call(t, c.Apply, &nccpb.ApplyRequest{Desired: ds})
	if err != nil || len(resp.Errors) != 0 || resp.KernelWrites != 0 || writes() != 0 {
		t.Fatalf("apply after the restart: %v %v (client writes %d)", resp, err, writes())
	}
	echo("after the restart")
	if row := n.Run(t, "ipvsadm", "-Ln"); !strings.Contains(row, "Masq    1      3") {
		t.Errorf("ipvsadm -Ln after the restart, want 3 active connections:\n%s", row)
	}

	stop()
	if err := CleanupWith(Config{IPVS: open, NFT: nodeNFT(n, t.Logf)}); err != nil {
		t.Fatal(err)
	}
	if out := n.Run(t, "ipvsadm", "-Sn"); strings.TrimSpace(out) != "" {
		t.Errorf("after cleanup, ipvsadm -Sn:\n%s", out)
	}
}
