package healthcheck

import (
	"net"
	"net/netip"
	"sync"
	"testing"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// udpServer answers each datagram on a loopback socket with answer(request)
// (no reply when it returns nil).
func udpServer(t *testing.T, network string, answer func([]byte) []byte) netip.AddrPort {
	t.Helper()
	host := "127.0.0.1:0"
	if network == "udp6" {
		host = "[::1]:0"
	}
	return udpServerAt(t, host, answer)
}

// udpServerAt is udpServer on host (address:port).
func udpServerAt(t *testing.T, host string, answer func([]byte) []byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", host)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if r := answer(buf[:n]); r != nil {
				pc.WriteTo(r, from)
			}
		}
	})
	return addrOf(pc.LocalAddr())
}

func TestUDP(t *testing.T) {
	t.Parallel()
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			echo := udpServer(t, network, func(b []byte) []byte { return append([]byte("echo:"), b...) })
			c := spec(hcpb.CheckType_UDP, echo)
			c.Send, c.Receive = "ping", "echo:ping"
			want(t, runOnce(t, c, nil), true, "got the expected reply")

			c.Receive = ""
			want(t, runOnce(t, c, nil), true, "got a reply")

			c.Receive = "pong"
			want(t, runOnce(t, c, nil), false, `wrong reply: got "echo:ping", want it to start with "pong"`)

			mute := udpServer(t, network, func([]byte) []byte { return nil })
			c = short(spec(hcpb.CheckType_UDP, mute))
			c.Send = "ping"
			want(t, runOnce(t, c, nil), false, "no reply within 300ms")

			c = spec(hcpb.CheckType_UDP, closedPort(t, network))
			c.Send = "ping"
			want(t, runOnce(t, c, nil), false, "connection refused (port unreachable)")
		})
	}
}
