package healthcheck

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/seesawlb/seesaw/deploy/testenv"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// netnsChild names the test a re-executed test binary runs inside its own
// network namespace.
const netnsChild = "SEESAW_HEALTHCHECK_NETNS_TEST"

// inOwnNetns runs the calling test in a fresh network namespace: the first
// call re-executes the test binary for just this test in a child process
// cloned into a new namespace and reports false (the caller returns); in
// the child it brings lo up and reports true. The namespace, with every
// address and nftables table the test made in it, goes when the child
// exits.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	testenv.RequireRoot(t)
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages iproute2, nftables)", tool)
		}
	}
	if os.Getenv(netnsChild) == t.Name() {
		sh(t, "ip link set lo up")
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsChild+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	t.Logf("in a new network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("%s in its own network namespace: %v", t.Name(), err)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("%s did not pass in its namespace", t.Name())
	}
	return false
}

// sh runs a command (split on spaces) and fails the test if it fails.
func sh(t *testing.T, cmdline string) string {
	t.Helper()
	f := strings.Fields(cmdline)
	out, err := exec.Command(f[0], f[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}
	return string(out)
}

// nft loads an nftables script.
func nft(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s\n%s", err, out, script)
	}
}

var counterRE = regexp.MustCompile(`packets (\d+) bytes`)

// counter reads a named counter of table inet hctest.
func counter(t *testing.T, name string) int {
	t.Helper()
	m := counterRE.FindStringSubmatch(sh(t, "nft list counter inet hctest "+name))
	if m == nil {
		t.Fatalf("counter %s not found", name)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

const (
	vip4   = "10.255.0.1"
	vip6   = "2001:db8:ff::1"
	mark   = 0x10001
	wrongM = 0x10002
)

// TestMarkedProbes proves that DSR and TUN probes carry the check's
// firewall mark, for every checker that can use those modes: in its own
// namespace it puts the VIP on lo with services behind it, and an nftables
// output chain that counts packets to the VIP carrying the mark and drops
// those that do not. A marked probe then succeeds and is counted; the same
// probe unmarked, or marked otherwise, is dropped and times out.
func TestMarkedProbes(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	sh(t, "ip addr add "+vip4+"/32 dev lo")
	sh(t, "ip addr add "+vip6+"/128 dev lo nodad")
	nft(t, fmt.Sprintf(`
table inet hctest {
	counter marked4 {}
	counter marked6 {}
	counter unmarked {}
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr %[1]s th dport { 1000-1999 } meta mark %#[3]x counter name marked4 accept
		ip6 daddr %[2]s th dport { 1000-1999 } meta mark %#[3]x counter name marked6 accept
		ip daddr %[1]s th dport { 1000-1999 } counter name unmarked drop
		ip6 daddr %[2]s th dport { 1000-1999 } counter name unmarked drop
	}
}`, vip4, vip6, mark))
	t.Cleanup(func() { exec.Command("nft", "delete", "table", "inet", "hctest").Run() })

	// The services behind the VIP, one port each.
	at := func(port int) string { return net.JoinHostPort(vip4, strconv.Itoa(port)) }
	tcpServerAt(t, at(1001), replyAfter("PING", "PONG"))
	tcpServerAt(t, "["+vip6+"]:1001", replyAfter("PING", "PONG"))
	udpServerAt(t, at(1002), func(b []byte) []byte { return b })
	hl, err := net.Listen("tcp", at(1003))
	if err != nil {
		t.Fatal(err)
	}
	hs := &httptest.Server{Listener: hl, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "OK")
	})}}
	hs.Start()
	defer hs.Close()
	startDNSAt(t, at(1004))
	r := &radiusResponder{secret: []byte("s")}
	udpServerAt(t, at(1005), r.answer)
	_, pool, cfg := tlsServer(t, silent)
	tl, err := net.Listen("tcp", at(1006))
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				tc.Handshake()
				io.Copy(io.Discard, tc)
			}()
		}
	}()
	env := &Env{RootCAs: pool}
	defer env.Close()

	dsr := func(typ hcpb.CheckType, vip string, port int) *hcpb.Check {
		c := spec(typ, netip.AddrPortFrom(netip.MustParseAddr(vip), uint16(port)))
		c.Address = "10.255.9.9" // the backend: only named, never dialled
		if strings.Contains(vip, ":") {
			c.Address = "2001:db8:ff::99"
		}
		c.Mode, c.Target, c.Fwmark = hcpb.CheckMode_DSR, vip, mark
		return c
	}
	checks := map[string]*hcpb.Check{}
	checks["TCP"] = dsr(hcpb.CheckType_TCP, vip4, 1001)
	checks["TCP"].Send, checks["TCP"].Receive = "PING", "PONG"
	checks["TCP6"] = dsr(hcpb.CheckType_TCP, vip6, 1001)
	checks["TUN"] = dsr(hcpb.CheckType_TCP, vip4, 1001)
	checks["TUN"].Mode = hcpb.CheckMode_TUN
	checks["UDP"] = dsr(hcpb.CheckType_UDP, vip4, 1002)
	checks["UDP"].Send, checks["UDP"].Receive = "hello", "hello"
	checks["HTTP"] = dsr(hcpb.CheckType_HTTP, vip4, 1003)
	checks["HTTP"].Receive = "OK"
	checks["DNS"] = dsr(hcpb.CheckType_DNS, vip4, 1004)
	checks["DNS"].Send, checks["DNS"].Receive = "www.example.com", "192.0.2.10"
	checks["DNS-TCP"] = dsr(hcpb.CheckType_DNS, vip4, 1004) // truncated over UDP: TCP too
	checks["DNS-TCP"].Send, checks["DNS-TCP"].Method = "big.example.com", "TXT"
	checks["RADIUS"] = dsr(hcpb.CheckType_RADIUS, vip4, 1005)
	checks["RADIUS"].Send = "alice:right:s"
	checks["TCP_TLS"] = dsr(hcpb.CheckType_TCP_TLS, vip4, 1006)
	checks["TCP_TLS"].TlsVerify = false

	for name, c := range checks {
		ctr := "marked4"
		if strings.Contains(c.Target, ":") {
			ctr = "marked6"
		}
		before, dropped := counter(t, ctr), counter(t, "unmarked")
		want(t, runOnce(t, c, env), true, "mark 0x10001")
		if n := counter(t, ctr) - before; n == 0 {
			t.Errorf("%s: no marked packet counted", name)
		}
		if counter(t, "unmarked") != dropped {
			t.Errorf("%s: an unmarked packet went to the VIP", name)
		}
	}

	// The same probes without the mark (PLAIN to the VIP) or with another
	// mark are dropped: TCP retries its SYN until the timeout, a datagram's
	// send fails at once.
	for name, msg := range map[string]string{
		"TCP":  "connect timed out after 300ms",
		"HTTP": "connect timed out after 300ms",
		"UDP":  "dropped by this host's firewall",
	} {
		c := short(checks[name])
		c.Fwmark = wrongM
		dropped := counter(t, "unmarked")
		want(t, runOnce(t, c, env), false, "mark 0x10002", msg)
		c.Mode, c.Fwmark, c.Target, c.Address = hcpb.CheckMode_PLAIN, 0, "", vip4
		want(t, runOnce(t, c, env), false, msg)
		if counter(t, "unmarked") == dropped {
			t.Errorf("%s: no unmarked packet dropped", name)
		}
	}
}

// TestPingSockets: the unprivileged ping socket works where
// ping_group_range allows it (the sysctl is per namespace), and a ping
// dropped on its way times out with its own message, on either kind of
// socket.
func TestPingSockets(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 0"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "ip addr add 127.0.0.2/8 dev lo")
	sh(t, "ip addr add 127.0.0.3/8 dev lo")
	// Requests to .2 are dropped on arrival (no reply: a timeout); those
	// to .3 on their way out (the send fails).
	nft(t, `
table inet hctest {
	chain in {
		type filter hook input priority 0; policy accept;
		ip daddr 127.0.0.2 icmp type echo-request drop
	}
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr 127.0.0.3 icmp type echo-request drop
	}
}`)
	for _, mode := range []string{"dgram", "raw"} {
		env := &Env{ICMP: mode}
		for _, a := range []string{"127.0.0.1", "::1"} {
			want(t, runOnce(t, &hcpb.Check{Type: hcpb.CheckType_ICMP_PING, Address: a}, env), true, "echo reply")
		}
		c := short(&hcpb.Check{Type: hcpb.CheckType_ICMP_PING, Address: "127.0.0.2"})
		want(t, runOnce(t, c, env), false, "no echo reply within 300ms")
		c.Address = "127.0.0.3"
		want(t, runOnce(t, c, env), false, "dropped by this host's firewall")
		env.mu.Lock()
		if s := env.pinger.socks[0]; s == nil || s.dgram != (mode == "dgram") {
			t.Errorf("mode %s: socket %+v", mode, s)
		}
		env.mu.Unlock()
		env.Close()
	}
}

// TestLateConnect: a connection that is not made at once (its first SYN
// lost, so the kernel resends it a second later) is waited for, on a
// goroutine and on the I/O loop alike. nftables drops every other SYN to
// the port, so each check's first SYN is dropped and its retry passes.
func TestLateConnect(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") }))
	defer hs.Close()
	ap := addrOf(hs.Listener.Addr())
	nft(t, fmt.Sprintf(`
table inet hctest {
	counter dropped {}
	chain in {
		type filter hook input priority 0; policy accept;
		tcp dport %d tcp flags & (syn | ack) == syn numgen inc mod 2 == 0 counter name dropped drop
	}
}`, ap.Port()))
	for _, typ := range []hcpb.CheckType{hcpb.CheckType_TCP, hcpb.CheckType_HTTP} {
		before := counter(t, "dropped")
		want(t, runOnce(t, spec(typ, ap), nil), true)
		// runOnce ran the check twice: on a goroutine, then on the loop.
		if n := counter(t, "dropped") - before; n != 2 {
			t.Errorf("%v: %d SYNs dropped, want one per run (2)", typ, n)
		}
	}
}
