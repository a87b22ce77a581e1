package healthcheck

import (
	"context"
	"flag"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

func TestMain(m *testing.M) {
	flag.Set("logtostderr", "true")
	os.Exit(m.Run())
}

// spec is a check of typ against addr:port. Its timeout is generous, for
// loaded test machines; short makes it short for checks that are meant to
// time out.
func spec(typ hcpb.CheckType, addr netip.AddrPort) *hcpb.Check {
	return &hcpb.Check{
		Type:      typ,
		Address:   addr.Addr().String(),
		Port:      uint32(addr.Port()),
		Timeout:   durationpb.New(5 * time.Second),
		TlsVerify: true,
	}
}

// shortTimeout is the timeout of checks meant to time out.
const shortTimeout = 300 * time.Millisecond

func short(c *hcpb.Check) *hcpb.Check {
	c.Timeout = durationpb.New(shortTimeout)
	return c
}

// runOnce builds and runs one check with env (a fresh Env when nil).
func runOnce(t *testing.T, c *hcpb.Check, env *Env) Outcome {
	t.Helper()
	if env == nil {
		env = NewEnv()
		defer env.Close()
	}
	k, err := NewChecker(c, env)
	if err != nil {
		t.Fatalf("NewChecker(%v): %v", c, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeoutOf(c))
	defer cancel()
	o := k.Check(ctx)
	// Checkers that also run on the I/O loop must come to the same
	// verdict, in the same words, there.
	if ac, ok := k.(asyncChecker); ok {
		done := make(chan Outcome, 1)
		if ac.start(env.getLoop(), time.Now().Add(timeoutOf(c)), func(o Outcome) { done <- o }) {
			if lo := <-done; lo != o {
				t.Errorf("on the I/O loop: %+v\non a goroutine: %+v", lo, o)
			}
		} else if runtime.GOOS == "linux" && (c.GetType() == hcpb.CheckType_TCP || c.GetType() == hcpb.CheckType_HTTP) {
			t.Errorf("%v did not run on the I/O loop", c)
		}
	}
	return o
}

// want checks an outcome's verdict and that its message contains each of
// parts.
func want(t *testing.T, o Outcome, ok bool, parts ...string) {
	t.Helper()
	if o.OK != ok {
		t.Errorf("outcome %+v: OK = %v, want %v", o, o.OK, ok)
	}
	for _, p := range parts {
		if !strings.Contains(o.Message, p) {
			t.Errorf("message %q does not contain %q", o.Message, p)
		}
	}
}

// tcpServer serves each connection on a loopback listener (network "tcp4"
// or "tcp6") with handle, and returns its address. It stops with the test.
func tcpServer(t *testing.T, network string, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	host := "127.0.0.1:0"
	if network == "tcp6" {
		host = "[::1]:0"
	}
	return tcpServerAt(t, host, handle)
}

// tcpServerAt is tcpServer listening on host (address:port).
func tcpServerAt(t *testing.T, host string, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	return addrOf(l.Addr())
}

func addrOf(a net.Addr) netip.AddrPort {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		panic(err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// closedPort returns a loopback address:port nothing listens on.
func closedPort(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	host := "127.0.0.1:0"
	if strings.HasSuffix(network, "6") {
		host = "[::1]:0"
	}
	var a netip.AddrPort
	if strings.HasPrefix(network, "udp") {
		c, err := net.ListenPacket(network, host)
		if err != nil {
			t.Fatal(err)
		}
		a = addrOf(c.LocalAddr())
		c.Close()
	} else {
		l, err := net.Listen(network, host)
		if err != nil {
			t.Fatal(err)
		}
		a = addrOf(l.Addr())
		l.Close()
	}
	return a
}

// silent is a handler that accepts and then never says anything: it holds
// the connection until the client gives up.
func silent(c net.Conn) { io.Copy(io.Discard, c) }
