package healthcheck

import (
	"net/netip"
	"testing"

	"github.com/seesawlb/seesaw/deploy/testenv"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

func TestPing(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t) // raw ICMP sockets
	env := &Env{ICMP: "raw"}
	defer env.Close()
	for _, a := range []string{"127.0.0.1", "::1"} {
		c := &hcpb.Check{Type: hcpb.CheckType_ICMP_PING, Address: a}
		want(t, runOnce(t, c, env), true, "ICMP_PING "+a+": echo reply")
	}
	// Many at once share the socket, each getting its own reply.
	errs := make(chan Outcome, 50)
	for range 50 {
		go func() { errs <- runOnce(t, &hcpb.Check{Type: hcpb.CheckType_ICMP_PING, Address: "::1"}, env) }()
	}
	for range 50 {
		want(t, <-errs, true)
	}
}

func TestPingMatching(t *testing.T) {
	t.Parallel()
	p := newPinger("raw")
	w := &pingWaiter{dst: netip.MustParseAddr("192.0.2.7"), done: make(chan error, 1)}
	p.waiters[7] = w
	reply := func(id, seq uint16, nonce [8]byte) []byte {
		m := []byte{icmpEchoReply, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq)}
		m = append(m, nonce[:]...)
		m = append(m, 0, 0, 0, 0, 0, 0, 0, 0)
		cs := icmpChecksum(m)
		m[2], m[3] = byte(cs>>8), byte(cs)
		return m
	}
	src := netip.MustParseAddr("192.0.2.7")
	// Someone else's reply, a reply from elsewhere, a wrong nonce, a bad
	// checksum: none wakes the waiter.
	p.deliver(reply(p.id+1, 7, p.nonce), src, false, false)
	p.deliver(reply(p.id, 7, p.nonce), netip.MustParseAddr("192.0.2.8"), false, false)
	p.deliver(reply(p.id, 7, [8]byte{1}), src, false, false)
	bad := reply(p.id, 7, p.nonce)
	bad[2] ^= 1
	p.deliver(bad, src, false, false)
	select {
	case err := <-w.done:
		t.Fatalf("woken by a reply that is not ours: %v", err)
	default:
	}
	p.deliver(reply(p.id, 7, p.nonce), src, false, false)
	if err := <-w.done; err != nil {
		t.Fatalf("our reply: %v", err)
	}
	// An unreachable quoting our request.
	quoted := []byte{0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 192, 0, 2, 7}
	quoted = append(quoted, icmpEchoRequest, 0, 0, 0, byte(p.id>>8), byte(p.id), 0, 7)
	unreach := append([]byte{icmpUnreachable, 1, 0, 0, 0, 0, 0, 0}, quoted...)
	p.deliver(unreach, netip.MustParseAddr("192.0.2.1"), false, false)
	if err := <-w.done; err == nil || err.Error() != "destination unreachable (host unreachable) from 192.0.2.1" {
		t.Fatalf("unreachable: %v", err)
	}
}
