package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The forward test runs this test binary in the guest as a helper: with
// forwardHelperEnv set it plays the guest's part and exits instead of
// running tests.
const forwardHelperEnv = "SEESAW_LAB_FORWARD_HELPER"

func TestMain(m *testing.M) {
	if v := os.Getenv(forwardHelperEnv); v != "" {
		os.Exit(forwardHelper(v))
	}
	os.Exit(m.Run())
}

// forwardHelper runs in the guest. arg is "GUESTPORT OUTSIDE": it tries to
// reach OUTSIDE (an address the host listens on, as the guest would name
// it), says whether it could, then serves one connection on GUESTPORT.
func forwardHelper(arg string) int {
	port, outside, _ := strings.Cut(arg, " ")
	c, err := net.DialTimeout("tcp", outside, 3*time.Second)
	if err == nil {
		c.Close()
		fmt.Println("outbound: connected to", outside)
	} else {
		fmt.Println("outbound: blocked:", err)
	}
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	fmt.Println("listening")
	l.(*net.TCPListener).SetDeadline(time.Now().Add(2 * time.Minute))
	c, err = l.Accept()
	if err != nil {
		fmt.Println("accept:", err)
		return 1
	}
	fmt.Fprintf(c, "hello from the guest, you are %s\n", c.RemoteAddr())
	c.Close()
	return 0
}

func TestParseForward(t *testing.T) {
	for in, want := range map[string]Forward{
		"127.0.0.1:10257:10257": {"127.0.0.1", 10257, 10257},
		"8080:80":               {"127.0.0.1", 8080, 80},
		"127.0.0.2:1:65535":     {"127.0.0.2", 1, 65535},
	} {
		got, err := ParseForward(in)
		if err != nil || got != want {
			t.Errorf("ParseForward(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "80", "0.0.0.0:80:80", "192.0.2.1:80:80", "[::1]:80:80", "a:80", "80:b", "0:80", "80:65536", "1:2:3:4"} {
		if f, err := ParseForward(bad); err == nil {
			t.Errorf("ParseForward(%q) = %+v, want an error", bad, f)
		}
	}
}

// TestQemuArgsForward: a forward gives the guest a virtio NIC on a user
// network that is restricted (no outbound traffic) and forwards exactly the
// ports asked for, from a loopback address, to the guest's NIC; without one
// the guest has no NIC at all, and init is told the address to give it.
func TestQemuArgsForward(t *testing.T) {
	a := Assets{Vmlinuz: "/k", Initrd: "/i"}
	o := Options{Forward: []Forward{{"127.0.0.1", 18080, 10257}, {"127.0.0.2", 2222, 22}}}
	args := qemuArgs(a, o, "/c", nil)
	var netdev string
	for i, v := range args {
		if v == "-netdev" && i+1 < len(args) {
			netdev = args[i+1]
		}
	}
	parts := strings.Split(netdev, ",")
	want := []string{"user", "id=net0", "restrict=on", "ipv6=off",
		"hostfwd=tcp:127.0.0.1:18080-10.0.2.15:10257", "hostfwd=tcp:127.0.0.2:2222-10.0.2.15:22"}
	if strings.Join(parts, ",") != strings.Join(want, ",") {
		t.Errorf("-netdev %q, want %q", netdev, strings.Join(want, ","))
	}
	if !strings.Contains(strings.Join(args, " "), "-device virtio-net-pci,netdev=net0") {
		t.Errorf("no virtio NIC on net0: %q", args)
	}
	for _, v := range qemuArgs(a, Options{}, "/c", nil) {
		if v == "-netdev" || strings.Contains(v, "virtio-net") || strings.Contains(v, "hostfwd") {
			t.Errorf("a guest without forwards has a network: %q", v)
		}
	}

	ctl := t.TempDir()
	if err := writeControl(ctl, Options{Argv: []string{"true"}, Dir: "/", Env: []string{}, Forward: o.Forward}, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(ctl, "config")); !strings.Contains(string(b), "LAB_NET=10.0.2.15/24\n") {
		t.Errorf("control config lacks the NIC's address:\n%s", b)
	}
	if err := writeControl(ctl, Options{Argv: []string{"true"}, Dir: "/", Env: []string{}}, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(ctl, "config")); strings.Contains(string(b), "LAB_NET") {
		t.Errorf("control config without forwards names a NIC:\n%s", b)
	}

	o = Options{Forward: []Forward{{"", 80, 80}}}
	if err := fillDefaults(&o); err != nil || o.Forward[0].HostAddr != "127.0.0.1" {
		t.Errorf("default host address: %+v, %v", o.Forward, err)
	}
	o = Options{Forward: []Forward{{"0.0.0.0", 80, 80}}}
	if err := fillDefaults(&o); err == nil {
		t.Error("a forward from every host address was accepted")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRunForward boots a guest with a forwarded port: the host reaches a
// server in the guest through it, and the guest cannot reach the host (a
// listener on the host's loopback, which an unrestricted user network
// would let it reach as 10.0.2.2).
func TestRunForward(t *testing.T) {
	a := prepareForTest(t)
	t.Parallel()

	canary, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer canary.Close()
	var reached atomic.Int32
	go func() {
		for {
			c, err := canary.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	canaryPort := canary.Addr().(*net.TCPAddr).Port

	hostPort := freePort(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	var stderr strings.Builder
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := Run(context.Background(), a, Options{
			Argv:     []string{self},
			Env:      append(os.Environ(), fmt.Sprintf("%s=8080 10.0.2.2:%d", forwardHelperEnv, canaryPort)),
			ReadOnly: []string{filepath.Dir(self)},
			Forward:  []Forward{{HostPort: hostPort, GuestPort: 8080}},
			Stdout:   pw,
			Stderr:   &stderr,
			Timeout:  5 * time.Minute,
		})
		pw.Close()
		done <- result{code, err}
	}()

	var lines []string
	var greeting string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() != "listening" {
			continue
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(hostPort), 10*time.Second)
		if err != nil {
			t.Errorf("dial the forwarded port: %v", err)
			continue
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Errorf("read from the forwarded port: %v", err)
		}
		greeting = string(b)
	}
	io.Copy(io.Discard, pr)
	r := <-done
	if r.err != nil || r.code != 0 {
		t.Fatalf("guest: exit %d, %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, strings.Join(lines, "\n"), stderr.String())
	}
	if !strings.HasPrefix(greeting, "hello from the guest") {
		t.Errorf("through the forwarded port the host read %q, want the guest's greeting; guest said:\n%s", greeting, strings.Join(lines, "\n"))
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "outbound: blocked") {
		t.Errorf("the guest's connection out was not blocked; guest said:\n%s", strings.Join(lines, "\n"))
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the guest reached a listener on the host %d time(s)", n)
	}
}
