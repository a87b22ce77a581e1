package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/deploy/testenv"
)

// upperServer answers each connection with everything it sent, upper-cased,
// after the client has closed its side: a relay that does not pass the
// half-close on would hang it.
func upperServer(t *testing.T, l net.Listener) {
	t.Helper()
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write([]byte(strings.ToUpper(string(b))))
			}()
		}
	}()
}

// roundTrip sends msg through addr, closes the sending side and returns the
// reply; it retries the dial until the forwarder listens.
func roundTrip(addr, msg string) (string, error) {
	deadline := time.Now().Add(20 * time.Second)
	var c net.Conn
	var err error
	for {
		if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestServeForward(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upperServer(t, up)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var dials sync.WaitGroup
	done := make(chan error, 1)
	go func() {
		done <- serveForward(ctx, l, func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", up.Addr().String())
		}, t.Logf)
	}()
	for i := 0; i < 3; i++ {
		dials.Add(1)
		go func() {
			defer dials.Done()
			msg := "hello " + strconv.Itoa(i)
			if got, err := roundTrip(l.Addr().String(), msg); err != nil || got != strings.ToUpper(msg) {
				t.Errorf("through the forwarder: %q, %v; want %q", got, err, strings.ToUpper(msg))
			}
		}()
	}
	dials.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serveForward: %v", err)
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Error("the forwarder still accepts after its context ended")
	}
}

// TestForwardIntoNamespace runs seesaw-lab forward as make demo does: it
// accepts here and reaches a server that listens on 127.0.0.1 inside
// another network namespace, which nothing in this one could reach.
func TestForwardIntoNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	node := labtest.NewTestNode(t, "ecu")
	up, err := node.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upperServer(t, up)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"forward", "--listen", listen, "--netns", node.NS, "--to", up.Addr().String()}, env{stdout: io.Discard, stderr: pw})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() || !strings.Contains(sc.Text(), "in namespace "+node.NS) {
		t.Fatalf("seesaw-lab forward said %q", sc.Text())
	}
	go io.Copy(io.Discard, pr)
	if got, err := roundTrip(listen, "status?"); err != nil || got != "STATUS?" {
		t.Errorf("through the forwarder into %s: %q, %v", node.NS, got, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("seesaw-lab forward exited %d", code)
	}
}

func TestForwardErrors(t *testing.T) {
	for _, args := range [][]string{
		{"forward"},
		{"forward", "--listen", ":0"},
		{"forward", "--to", "127.0.0.1:1"},
		{"forward", "--listen", ":0", "--to", "no-port"},
		{"run", "--forward", "0.0.0.0:80:80", "--", "true"},
		{"run", "--forward", "80", "--", "true"},
	} {
		if code, _, stderr := runCLI(args...); code != 2 {
			t.Errorf("seesaw-lab %q: exit status %d, want 2; stderr:\n%s", args, code, stderr)
		}
	}
	code, _, stderr := runCLI("forward", "--listen", "127.0.0.1:0", "--netns", "no-such-namespace-here", "--to", "127.0.0.1:1")
	if code != 1 || !strings.Contains(stderr, "no-such-namespace-here") {
		t.Errorf("forward into a missing namespace: exit %d, stderr %q", code, stderr)
	}
}
