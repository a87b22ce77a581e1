package healthcheck

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// fullListener is a loopback listener whose accept queue is full and never
// drained: the kernel drops further SYNs, so connecting times out, as to a
// black-holed backend.
func fullListener(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	// Fill the queue: a backlog of 0 holds one connection.
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp4", ap.String(), 200*time.Millisecond)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return ap
}

func TestTCPConnectTimeout(t *testing.T) {
	t.Parallel()
	c := short(spec(hcpb.CheckType_TCP, fullListener(t)))
	want(t, runOnce(t, c, nil), false, "connect timed out after 300ms")
	c.Type = hcpb.CheckType_HTTP
	want(t, runOnce(t, c, nil), false, "connect timed out after 300ms")
}
