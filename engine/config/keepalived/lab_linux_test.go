package keepalived_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/engine"
	"github.com/seesawlb/seesaw/engine/config/keepalived"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// labSeed is a seed's keepalived node as the lab rebuilds it: its address
// on eth0, and the backends (answering the checks' ports) behind a sink
// namespace on the other end of the veth.
type labSeed struct {
	name       string
	conf       string
	peer       string
	clusterVIP []string
	node       []netip.Prefix // this node's eth0 addresses
	sink       []netip.Prefix // the sink's eth0 addresses (gateway for routed backends)
	routes     []netip.Prefix // backend networks routed via the sink's first address
	backends   []netip.Addr
	checkPort  int
}

// TestLabKeepalivedSameIPVS runs the real keepalived with each seed's own
// configuration on the lab's kernel, reads the IPVS table it programs
// (ipvsadm -Ln), and compares it with the table the engine plans for the
// imported configuration: the import means what keepalived meant, with
// the kernel as witness. The backends answer the checks so keepalived keeps
// every real server.
func TestLabKeepalivedSameIPVS(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatalf("keepalived is the reference here and is not installed (%v): deploy/deps.sh test installs it", err)
	}
	for _, s := range []labSeed{{
		name: "seed001", conf: "testdata/seed001/lb116.conf", peer: "testdata/seed001/lb75.conf",
		clusterVIP: []string{"192.168.128.119/24", "2004::192:168:128:119/64"},
		node:       []netip.Prefix{netip.MustParsePrefix("192.168.128.116/24"), netip.MustParsePrefix("2004::192:168:128:116/64")},
		sink:       []netip.Prefix{netip.MustParsePrefix("192.168.128.1/24"), netip.MustParsePrefix("2004::1/64")},
		routes: []netip.Prefix{netip.MustParsePrefix("192.168.129.0/24"), netip.MustParsePrefix("192.168.138.0/24"),
			netip.MustParsePrefix("192.168.143.0/24")},
		backends: addrs("192.168.143.192", "192.168.138.100", "192.168.129.100",
			"2004::192:168:143:192", "2004::192:168:138:100", "2004::192:168:129:100"),
		checkPort: 1936,
	}, {
		name: "seed003", conf: "testdata/seed003/master.conf", peer: "testdata/seed003/backup.conf",
		clusterVIP: []string{"192.168.100.46/24"},
		node:       []netip.Prefix{netip.MustParsePrefix("192.168.100.44/24")},
		sink:       []netip.Prefix{netip.MustParsePrefix("192.168.100.1/24")},
		backends:   addrs("192.168.100.41", "192.168.100.42", "192.168.100.43"),
		checkPort:  6443,
	}} {
		t.Run(s.name, func(t *testing.T) {
			want := plannedIPVS(t, s)
			got := keepalivedIPVS(t, bin, s, strings.Count(want, "->"))
			if got != want {
				t.Errorf("keepalived programmed:\n%s\nthe engine plans for the import:\n%s", got, want)
			}
		})
	}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// plannedIPVS imports the seed and plans this node's data plane as master.
func plannedIPVS(t *testing.T, s labSeed) string {
	t.Helper()
	self, err := keepalived.ParseFile(s.conf, keepalived.Options{})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := keepalived.ParseFile(s.peer, keepalived.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var vips []netip.Prefix
	for _, v := range s.clusterVIP {
		vips = append(vips, netip.MustParsePrefix(v))
	}
	r, err := keepalived.Import(keepalived.Input{Stmts: self}, &keepalived.Input{Stmts: peer}, keepalived.ImportOptions{ClusterVIP: vips})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range r.Files("lab") {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plan, _, err := engine.PlanFiles(filepath.Join(dir, "seesaw.cfg"), filepath.Join(dir, "cluster.pb"), seesawpb.HAState_HA_STATE_LEADER, true)
	if err != nil {
		t.Fatal(err)
	}
	return ipvsadm(plan.Desired)
}

// keepalivedIPVS runs keepalived with the seed's own file in a namespace
// wired as the seed's node and returns its IPVS table once it holds dests
// real servers.
func keepalivedIPVS(t *testing.T, bin string, s labSeed, dests int) string {
	t.Helper()
	n := labtest.NewTestNode(t, "ka")
	sink := labtest.NewTestNode(t, "kasink")
	if err := labtest.Veth(n, "eth0", sink, "eth0"); err != nil {
		t.Fatal(err)
	}
	for _, p := range s.node {
		if err := n.AddAddr("eth0", p); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range s.sink {
		if err := sink.AddAddr("eth0", p); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range s.routes {
		if err := n.AddRoute(r, s.sink[0].Addr()); err != nil {
			t.Fatal(err)
		}
	}
	// The backends live in the sink and answer the checks' TCP connects.
	for _, b := range s.backends {
		if err := sink.AddAddr("eth0", netip.PrefixFrom(b, b.BitLen())); err != nil {
			t.Fatal(err)
		}
		l, err := sink.Listen("tcp", netip.AddrPortFrom(b, uint16(s.checkPort)).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go accept(l)
	}

	dir := t.TempDir()
	conf, err := filepath.Abs(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "keepalived.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-n", "-l", "-f", conf, "-p", filepath.Join(dir, "keepalived.pid"),
		"-c", filepath.Join(dir, "checkers.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // one signal for its children too
	if err := n.Start(cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})

	// Poll with a generous deadline: the lab's kernel runs under TCG.
	var last string
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("keepalived exited: %v\n%s", err, b)
		default:
		}
		out, err := n.Output("ipvsadm", "-Ln")
		if err != nil {
			t.Fatal(err)
		}
		last = parseIPVSADM(string(out))
		if strings.Count(last, "->") == dests {
			return last
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("keepalived never programmed %d real servers; ipvsadm -Ln:\n%s\nlog:\n%s", dests, out, b)
		}
	}
}

func accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err == nil {
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}
}

// parseIPVSADM turns "ipvsadm -Ln" output into ipvsadm()'s form: services
// and destinations sorted, counters dropped.
func parseIPVSADM(out string) string {
	var svcs []string
	var cur string
	var dests []string
	flush := func() {
		if cur != "" {
			slices.Sort(dests)
			svcs = append(svcs, cur+"\n"+strings.Join(dests, "\n"))
		}
		cur, dests = "", nil
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "SCTP"):
			flush()
			cur = fmt.Sprintf("%s  %s %s", f[0], f[1], f[2])
			if len(f) >= 5 && f[3] == "persistent" {
				cur += " persistent " + f[4]
			}
		case len(f) >= 4 && f[0] == "->" && f[1] != "RemoteAddress:Port":
			dests = append(dests, fmt.Sprintf("  -> %s %s %s", f[1], f[2], f[3]))
		}
	}
	flush()
	slices.Sort(svcs)
	if len(svcs) == 0 {
		return ""
	}
	return strings.Join(svcs, "\n") + "\n"
}
