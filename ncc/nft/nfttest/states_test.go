package nfttest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/reconcile"
)

// The states the tests apply: those of ncc/nft's namespace tests, so that
// the fake goes through what the kernel went through there.

var (
	v4  = netip.MustParseAddr("192.0.2.10")
	v6  = netip.MustParseAddr("2001:db8::10")
	src = netip.MustParseAddr("198.51.100.2")
)

// full is a state with every kind of rule: fwmarks and SNAT, IPv4 and
// IPv6, with and without a port or protocol.
func full() nft.State {
	return nft.State{
		Fwmarks: []nft.Fwmark{
			{Addr: v4, Proto: nft.TCP, Port: 80, Mark: 7},
			{Addr: v4, Proto: nft.UDP, Port: 53, Mark: 9},
			{Addr: v6, Proto: nft.TCP, Port: 80, Mark: 7},
			{Addr: v6, Proto: nft.SCTP, Mark: 0x10001},
			{Addr: netip.MustParseAddr("192.0.2.20"), Mark: 11},
		},
		SNAT: []nft.SNAT{
			{VIP: v4, Proto: nft.TCP, Port: 443, ToSource: src},
			{VIP: v6, Proto: nft.UDP, Port: 53, ToSource: netip.MustParseAddr("2001:db8:2::2")},
			{VIP: netip.MustParseAddr("192.0.2.20"), ToSource: src},
		},
	}
}

// fullText is full as the fake lists it, in the order applied.
const fullText = `table inet seesaw {
	chain fwmark {
		type filter hook prerouting priority mangle; policy accept;
		comment "fwmark TCP 192.0.2.10:80 mark 7"
		comment "fwmark UDP 192.0.2.10:53 mark 9"
		comment "fwmark TCP [2001:db8::10]:80 mark 7"
		comment "fwmark SCTP [2001:db8::10]:* mark 65537"
		comment "fwmark any 192.0.2.20 mark 11"
	}

	chain vip_snat {
		type nat hook postrouting priority srcnat; policy accept;
		comment "snat TCP 192.0.2.10:443 to 198.51.100.2"
		comment "snat UDP [2001:db8::10]:53 to 2001:db8:2::2"
		comment "snat any 192.0.2.20 to 198.51.100.2"
	}
}
`

// changed is full with a mark changed, a rule gone and one added.
func changed() nft.State {
	st := full()
	st.Fwmarks[1].Mark = 10
	st.Fwmarks = slices.Delete(st.Fwmarks, 4, 5)
	st.SNAT = append(st.SNAT, nft.SNAT{VIP: v4, Proto: nft.SCTP, Port: 9, ToSource: src})
	return st
}

// randomStates picks n states from a pool of rules, every eighth empty.
func randomStates(rng *rand.Rand, n int) []nft.State {
	var pool nft.State
	for i := range 6 {
		addr4 := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
		addr6 := netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", 10+i))
		for _, ad := range []netip.Addr{addr4, addr6} {
			to := src
			if ad.Is6() {
				to = netip.MustParseAddr("2001:db8:2::2")
			}
			pool.Fwmarks = append(pool.Fwmarks, nft.Fwmark{Addr: ad, Proto: nft.TCP, Port: 80, Mark: uint32(i + 1)},
				nft.Fwmark{Addr: ad, Proto: nft.UDP, Port: 53, Mark: uint32(i + 1)})
			pool.SNAT = append(pool.SNAT, nft.SNAT{VIP: ad, Proto: nft.TCP, Port: 80, ToSource: to},
				nft.SNAT{VIP: ad, Proto: nft.SCTP, ToSource: to})
			pool.ReplyDrops = append(pool.ReplyDrops, nft.ReplyDrop{Addr: ad, Proto: nft.TCP, Port: 8080})
		}
	}
	var out []nft.State
	for i := range n {
		var st nft.State
		if i%8 != 7 {
			for _, f := range pool.Fwmarks {
				if rng.IntN(2) == 0 {
					st.Fwmarks = append(st.Fwmarks, f)
				}
			}
			for _, s := range pool.SNAT {
				if rng.IntN(3) == 0 {
					st.SNAT = append(st.SNAT, s)
				}
			}
			for _, d := range pool.ReplyDrops {
				if rng.IntN(3) == 0 {
					st.ReplyDrops = append(st.ReplyDrops, d)
				}
			}
			rng.Shuffle(len(st.Fwmarks), func(i, j int) { st.Fwmarks[i], st.Fwmarks[j] = st.Fwmarks[j], st.Fwmarks[i] })
		}
		out = append(out, st)
	}
	return out
}

// keys is a state's rule keys, sorted.
func keys(st nft.State) []string {
	var out []string
	for _, f := range st.Fwmarks {
		out = append(out, f.Key())
	}
	for _, s := range st.SNAT {
		out = append(out, s.Key())
	}
	for _, d := range st.ReplyDrops {
		out = append(out, d.Key())
	}
	slices.Sort(out)
	return out
}

// open opens a reconciler over the fake, or skips where the reconciler
// does not exist.
func open(t *testing.T, k *Kernel) *nft.Reconciler {
	t.Helper()
	r, err := k.Reconciler(t.Logf)
	if errors.Is(err, nft.ErrNotSupported) {
		t.Skipf("the nft reconciler exists only on Linux: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// apply applies st and requires every write to have gone through.
func apply(t *testing.T, r *nft.Reconciler, st nft.State) []reconcile.Change {
	t.Helper()
	cs, err := r.Apply(st, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Err != nil {
			t.Fatalf("%s", c)
		}
	}
	return cs
}

func strs(cs []reconcile.Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.String() + "\n")
	}
	return b.String()
}

// sortedLines is text with its lines sorted: a repair appends rules, so
// their order is not what it was.
func sortedLines(s string) string {
	l := strings.Split(s, "\n")
	slices.Sort(l)
	return strings.Join(l, "\n")
}
