package announce

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/deploy/testenv"
)

// TestAnnouncementsMoveNeighbours: a neighbour that knows the VIPs at an
// old MAC (the other node's, before a failover) learns the new one from
// the frames, for IPv4 (ARP) and IPv6 (NA). The neighbour is a real kernel
// in another namespace, at the other end of a veth.
func TestAnnouncementsMoveNeighbours(t *testing.T) {
	testenv.RequireRoot(t)
	id := rand.Uint32() % 1000000
	lb, err := labtest.NewNode("lb", fmt.Sprintf("annlb%d", id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	peer, err := labtest.NewNode("peer", fmt.Sprintf("annpeer%d", id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	if err := labtest.Veth(lb, "eth1", peer, "p1"); err != nil {
		t.Fatal(err)
	}
	v4, v6 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")
	for _, a := range []struct {
		n    *labtest.Node
		link string
		p    string
	}{{lb, "eth1", "192.0.2.10/24"}, {lb, "eth1", "2001:db8::10/64"}, {peer, "p1", "192.0.2.2/24"}, {peer, "p1", "2001:db8::2/64"}} {
		if err := a.n.AddAddr(a.link, netip.MustParsePrefix(a.p)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := lb.Handle().LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	mac := l.Attrs().HardwareAddr
	// The peer knows the VIPs at the old node's MAC.
	for _, a := range []string{v4.String(), v6.String()} {
		peer.Run(t, "ip", "neigh", "replace", a, "lladdr", "02:00:00:00:00:99", "dev", "p1", "nud", "stale")
	}

	var s *Sender
	if err := lb.Do(func() (err error) { s, err = NewSender(); return err }); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, a := range []netip.Addr{v4, v6} {
		f, err := Frame(mac, a)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(l.Attrs().Index, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []netip.Addr{v4, v6} {
		var out string
		for deadline := time.Now().Add(10 * time.Second); ; {
			out = peer.Run(t, "ip", "neigh", "show", a.String(), "dev", "p1")
			if strings.Contains(out, mac.String()) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the peer still has %s at: %s (want %s)", a, out, mac)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
