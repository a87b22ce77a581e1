package ha

// Helpers for the namespace tests and benchmarks: two network namespaces
// joined by a veth pair, our seesaw_ha --standalone binary and keepalived
// run in them under `ip netns exec`, and a raw-socket observer that
// timestamps the adverts on the wire. Nothing here sends traffic outside
// the namespaces it creates.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/seesawlb/seesaw/deploy/testenv"
	"github.com/seesawlb/seesaw/ha/vrrp"
)

// binary builds seesaw_ha once per test binary.
var haBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func seesawHA(t testing.TB) string {
	t.Helper()
	haBinary.once.Do(func() {
		haBinary.dir, haBinary.err = os.MkdirTemp("", "seesaw-ha-test-")
		if haBinary.err != nil {
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		haBinary.path = filepath.Join(haBinary.dir, "seesaw_ha")
		out, err := exec.Command(goBin, "build", "-o", haBinary.path, "./cmd/seesaw_ha").CombinedOutput()
		if err != nil {
			haBinary.err = fmt.Errorf("go build ./cmd/seesaw_ha: %v\n%s", err, out)
		}
	})
	if haBinary.err != nil {
		t.Fatal(haBinary.err)
	}
	return haBinary.path
}

func init() {
	cleanups = append(cleanups, func() {
		if haBinary.dir != "" {
			os.RemoveAll(haBinary.dir)
		}
	})
}

// needKeepalived skips when keepalived is not installed.
func needKeepalived(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("keepalived")
	if err != nil {
		for _, c := range []string{"/usr/sbin/keepalived", "/sbin/keepalived"} {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
		t.Skip("needs keepalived (Debian package keepalived) for interop tests")
	}
	return p
}

var topoSeq atomic.Int64

// topo is two namespaces, A and B, joined by a veth pair named vrrp0 at
// both ends: A has 192.0.2.1 and fe80::1, B 192.0.2.2 and fe80::2.
type topo struct {
	t      testing.TB
	nsA    string
	nsB    string
	iface  string
	v4     [2]netip.Addr
	ll     [2]netip.Addr
	dir    string
	procMu sync.Mutex
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newTopo(t testing.TB) *topo {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	n := topoSeq.Add(1)
	tp := &topo{
		t:     t,
		nsA:   fmt.Sprintf("seesaw-ha-%d-%d-a", os.Getpid(), n),
		nsB:   fmt.Sprintf("seesaw-ha-%d-%d-b", os.Getpid(), n),
		iface: "vrrp0",
		v4:    [2]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")},
		ll:    [2]netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fe80::2")},
		dir:   t.TempDir(),
	}
	for _, ns := range []string{tp.nsA, tp.nsB} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "-n", tp.nsA, "link", "add", tp.iface, "type", "veth", "peer", "name", tp.iface, "netns", tp.nsB)
	for i, ns := range []string{tp.nsA, tp.nsB} {
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		// Fixed link-local addresses without DAD: the first advert can go
		// out at once, and the tie-break order is known.
		run(t, "ip", "-n", ns, "link", "set", tp.iface, "addrgenmode", "none")
		run(t, "ip", "-n", ns, "addr", "add", tp.v4[i].String()+"/24", "dev", tp.iface)
		run(t, "ip", "-n", ns, "addr", "add", tp.ll[i].String()+"/64", "dev", tp.iface, "nodad")
		run(t, "ip", "-n", ns, "link", "set", tp.iface, "up")
	}
	// Wait for carrier and the IPv6 multicast route, or the first adverts
	// fail with "network is unreachable".
	deadline := time.Now().Add(5 * time.Second)
	for _, ns := range []string{tp.nsA, tp.nsB} {
		for {
			link := run(t, "ip", "-n", ns, "link", "show", tp.iface)
			routes := run(t, "ip", "-n", ns, "-6", "route", "show", "table", "local", "dev", tp.iface)
			if strings.Contains(link, "LOWER_UP") && strings.Contains(routes, "ff00::/8") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s not ready:\n%s%s", ns, tp.iface, link, routes)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return tp
}

func (tp *topo) ns(i int) string {
	if i == 0 {
		return tp.nsA
	}
	return tp.nsB
}

// addr is node i's advert source for the family.
func (tp *topo) addr(i int, v6 bool) netip.Addr {
	if v6 {
		return tp.ll[i]
	}
	return tp.v4[i]
}

// vip is the address list both sides advertise.
func vipFor(v6 bool) netip.Addr {
	if v6 {
		return netip.MustParseAddr("2001:db8::100")
	}
	return netip.MustParseAddr("192.0.2.100")
}

// hasAddr reports whether node i's interface holds a (keepalived puts its
// VIP there as master).
func (tp *topo) hasAddr(i int, a netip.Addr) bool {
	out, err := exec.Command("ip", "-n", tp.ns(i), "-o", "addr", "show", "dev", tp.iface).CombinedOutput()
	if err != nil {
		tp.t.Fatalf("ip addr show: %v\n%s", err, out)
	}
	return strings.Contains(string(out), " "+a.String()+"/")
}

// cutAdverts drops VRRP in and out of node i with an nftables table of its
// own in that namespace; heal deletes it.
func (tp *topo) cutAdverts(i int) (heal func()) {
	tp.t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		tp.t.Skip("needs nft (Debian package nftables) to cut adverts")
	}
	table := "seesaw_ha_test_cut"
	rules := fmt.Sprintf(`table inet %s {
	chain in { type filter hook input priority 0; meta l4proto %d drop; }
	chain out { type filter hook output priority 0; meta l4proto %d drop; }
}
`, table, vrrp.Protocol, vrrp.Protocol)
	cmd := exec.Command("ip", "netns", "exec", tp.ns(i), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		tp.t.Fatalf("nft: %v\n%s", err, out)
	}
	return func() { run(tp.t, "ip", "netns", "exec", tp.ns(i), "nft", "delete", "table", "inet", table) }
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// event is a state change one of the speakers reported, with the time it
// reported it.
type event struct {
	at     time.Time
	from   string
	to     string
	reason string
}

// peer is a VRRP speaker under test: ours or keepalived.
type peer interface {
	name() string
	state() string // MASTER, BACKUP, or "" before the first state
	events() []event
	kill() // SIGKILL: no priority 0
	stop() // SIGTERM and wait: a master sends priority 0
	output() string
}

// speakerLog tracks the states a process reports.
type speakerLog struct {
	mu  sync.Mutex
	evs []event
	cur string
	ch  chan struct{} // closed and replaced on every event
}

func newSpeakerLog() *speakerLog { return &speakerLog{ch: make(chan struct{})} }

func (l *speakerLog) add(e event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, e)
	l.cur = e.to
	close(l.ch)
	l.ch = make(chan struct{})
}

func (l *speakerLog) state() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

func (l *speakerLog) events() []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]event(nil), l.evs...)
}

// waitState waits until p reports want, failing t at the deadline.
func waitState(t testing.TB, p peer, want string, within time.Duration) event {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if p.state() == want {
			ev := p.events()
			return ev[len(ev)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not %s within %v (now %q); events %v\n%s", p.name(), want, within, p.state(), p.events(), p.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// holdState checks that p stays in want for d.
func holdState(t testing.TB, p peer, want string, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		if s := p.state(); s != want {
			t.Fatalf("%s: not %s but %q; events %v\n%s", p.name(), want, s, p.events(), p.output())
		}
		if !time.Now().Before(end) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ours is seesaw_ha --standalone in a namespace.
type ours struct {
	label  string
	cmd    *exec.Cmd
	log    *speakerLog
	stdout *syncBuffer
	stderr *syncBuffer
	socket string
	done   chan struct{}
	waited atomic.Bool
}

// transition lines: "<RFC3339Nano> ha: vrrp: BACKUP -> MASTER: reason".
var transitionRE = regexp.MustCompile(`^(\S+) ha: vrrp: (\w+) -> (\w+): (.*)$`)

type oursOpts struct {
	prio     int
	interval time.Duration
	v6       bool
	unicast  bool
	preempt  bool
	delay    time.Duration
	extra    []string
}

func (tp *topo) startOurs(i int, o oursOpts) *ours {
	tp.t.Helper()
	bin := seesawHA(tp.t)
	args := []string{"netns", "exec", tp.ns(i), bin, "--standalone",
		"--interface", tp.iface, "--vrid", "51", "--priority", fmt.Sprint(o.prio),
		"--advert_interval", o.interval.String(), "--address", vipFor(o.v6).String(),
		"--local", tp.addr(i, o.v6).String(), "--peer", tp.addr(1-i, o.v6).String(),
	}
	if o.unicast {
		args = append(args, "--unicast")
	}
	if o.preempt {
		args = append(args, "--preempt")
	}
	if o.delay > 0 {
		args = append(args, "--preempt_delay", o.delay.String())
	}
	sock := filepath.Join(tp.dir, fmt.Sprintf("ha-%d-%d.sock", i, time.Now().UnixNano()))
	args = append(args, "--socket", sock)
	args = append(args, o.extra...)
	p := &ours{
		label: fmt.Sprintf("seesaw_ha[%s prio %d]", string("AB"[i]), o.prio),
		cmd:   exec.Command("ip", args...), log: newSpeakerLog(),
		stdout: &syncBuffer{}, stderr: &syncBuffer{}, socket: sock, done: make(chan struct{}),
	}
	p.cmd.Stderr = p.stderr
	pipe, err := p.cmd.StdoutPipe()
	if err != nil {
		tp.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		tp.t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			p.stdout.Write([]byte(line + "\n"))
			if m := transitionRE.FindStringSubmatch(line); m != nil {
				at, _ := time.Parse(time.RFC3339Nano, m[1])
				p.log.add(event{at: at, from: m[2], to: m[3], reason: m[4]})
			}
		}
		p.cmd.Wait()
	}()
	tp.t.Cleanup(p.kill)
	return p
}

func (p *ours) name() string    { return p.label }
func (p *ours) state() string   { return p.log.state() }
func (p *ours) events() []event { return p.log.events() }
func (p *ours) output() string {
	return "stdout:\n" + p.stdout.String() + "stderr (tail):\n" + tail(p.stderr.String(), 30)
}
func (p *ours) finalLine() string { return lastLineWith(p.stdout.String(), " status: ") }

func (p *ours) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

func (p *ours) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

func lastLineWith(s, sub string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}

// keepalived runs keepalived 2.2.7 in a namespace with a generated
// config, its own pid files, and a notify FIFO that reports its states.
type keepalived struct {
	label string
	cmd   *exec.Cmd
	log   *speakerLog
	out   *syncBuffer
	fifo  *os.File
	done  chan struct{}
}

type kaOpts struct {
	prio      int
	interval  time.Duration
	v6        bool
	unicast   bool
	nopreempt bool
	// higherPrioSendAdvert: a master that hears a higher priority sends
	// one more advert before yielding.
	higherPrioSendAdvert bool
}

func (tp *topo) startKeepalived(i int, o kaOpts) *keepalived {
	tp.t.Helper()
	bin := needKeepalived(tp.t)
	dir, err := os.MkdirTemp(tp.dir, "keepalived-")
	if err != nil {
		tp.t.Fatal(err)
	}
	fifo := filepath.Join(dir, "notify.fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		tp.t.Fatal(err)
	}
	state := "BACKUP"
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n  router_id seesaw_ha_test_%d\n  vrrp_version 3\n  notify_fifo %s\n}\n", i, fifo)
	fmt.Fprintf(&b, "vrrp_instance VI_1 {\n  state %s\n  interface %s\n  virtual_router_id 51\n  priority %d\n  advert_int %.2f\n",
		state, tp.iface, o.prio, o.interval.Seconds())
	if o.nopreempt {
		b.WriteString("  nopreempt\n")
	}
	if o.higherPrioSendAdvert {
		b.WriteString("  higher_prio_send_advert\n")
	}
	if o.unicast {
		fmt.Fprintf(&b, "  unicast_src_ip %s\n  unicast_peer {\n    %s\n  }\n", tp.addr(i, o.v6), tp.addr(1-i, o.v6))
	}
	plen := 32
	if o.v6 {
		plen = 128
	}
	fmt.Fprintf(&b, "  virtual_ipaddress {\n    %s/%d\n  }\n}\n", vipFor(o.v6), plen)
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		tp.t.Fatal(err)
	}
	// Open the FIFO read-write so that neither side blocks or sees EOF.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		tp.t.Fatal(err)
	}
	k := &keepalived{
		label: fmt.Sprintf("keepalived[%s prio %d]", string("AB"[i]), o.prio),
		log:   newSpeakerLog(), out: &syncBuffer{}, fifo: f, done: make(chan struct{}),
		cmd: exec.Command("ip", "netns", "exec", tp.ns(i), bin, "-n", "-l", "-D", "-P", "-f", conf,
			"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid")),
	}
	k.out.Write([]byte("config:\n" + b.String()))
	k.cmd.Stdout, k.cmd.Stderr = k.out, k.out
	// Its own process group, so that a kill reaches the VRRP child too.
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		tp.t.Fatal(err)
	}
	go func() {
		defer close(k.done)
		k.cmd.Wait()
		f.Close()
	}()
	go func() {
		// INSTANCE "VI_1" MASTER 150
		sc := bufio.NewScanner(f)
		prev := ""
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			// Only states: it also reports events such as
			// MASTER_RX_LOWER_PRI.
			if len(fs) >= 3 && fs[0] == "INSTANCE" && kaStates[fs[2]] {
				k.log.add(event{at: time.Now(), from: prev, to: fs[2]})
				prev = fs[2]
			}
		}
	}()
	tp.t.Cleanup(k.kill)
	return k
}

var kaStates = map[string]bool{"MASTER": true, "BACKUP": true, "FAULT": true, "STOP": true}

func (k *keepalived) name() string    { return k.label }
func (k *keepalived) state() string   { return k.log.state() }
func (k *keepalived) events() []event { return k.log.events() }
func (k *keepalived) output() string  { return tail(k.out.String(), 60) }

func (k *keepalived) kill() {
	if k.cmd.Process != nil {
		syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-k.done
}

func (k *keepalived) stop() {
	k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(10 * time.Second):
		k.kill()
	}
}

// observed is an advert seen on the wire.
type observed struct {
	at  time.Time
	src netip.Addr
	adv vrrp.Advertisement
}

// observer timestamps every advert that arrives in a namespace.
type observer struct {
	fd      int
	stopped atomic.Bool
	ch      chan observed
	done    chan struct{}
}

// inNetns runs f on a thread switched into the named namespace.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is left locked (and so discarded) if switching back
		// fails.
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// observe listens for adverts in node i's namespace (multicast and any
// unicast to it).
func (tp *topo) observe(i int, v6 bool) *observer {
	tp.t.Helper()
	o := &observer{ch: make(chan observed, 4096), done: make(chan struct{})}
	err := inNetns(tp.ns(i), func() error {
		ifi, err := net.InterfaceByName(tp.iface)
		if err != nil {
			return err
		}
		fam := unix.AF_INET
		if v6 {
			fam = unix.AF_INET6
		}
		fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, vrrp.Protocol)
		if err != nil {
			return err
		}
		o.fd = fd
		if v6 {
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			return unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, &unix.IPv6Mreq{Multiaddr: vrrp.GroupV6().As16(), Interface: uint32(ifi.Index)})
		}
		return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &unix.IPMreqn{Multiaddr: vrrp.GroupV4().As4(), Ifindex: int32(ifi.Index)})
	})
	if err != nil {
		tp.t.Fatalf("observer in %s: %v", tp.ns(i), err)
	}
	unix.SetsockoptTimeval(o.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000})
	// Kernel receive timestamps: what the test process's own scheduling
	// does to it must not show in the figures.
	if err := unix.SetsockoptInt(o.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		tp.t.Fatalf("SO_TIMESTAMPNS: %v", err)
	}
	go func() {
		defer close(o.done)
		buf, oob := make([]byte, 1<<16), make([]byte, 256)
		for !o.stopped.Load() {
			n, oobn, _, from, err := unix.Recvmsg(o.fd, buf, oob, 0)
			now := time.Now()
			if err != nil {
				continue
			}
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
						ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
						now = time.Unix(ts.Unix())
					}
				}
			}
			var p vrrp.Packet
			if v6 {
				rc := &rawConn{v6: true}
				p, err = rc.parse6(buf[:n], oob[:oobn], from)
				if err != nil {
					continue
				}
			} else {
				var ok bool
				if p, ok = parse4(buf[:n]); !ok {
					continue
				}
			}
			a, err := vrrp.Parse(p.Payload, p.Src, p.Dst)
			if err != nil {
				continue
			}
			select {
			case o.ch <- observed{at: now, src: p.Src, adv: a}:
			default:
			}
		}
	}()
	tp.t.Cleanup(o.close)
	return o
}

func (o *observer) close() {
	if o.stopped.Swap(true) {
		return
	}
	<-o.done
	unix.Close(o.fd)
}

// drain forgets what has been seen so far.
func (o *observer) drain() {
	for {
		select {
		case <-o.ch:
		default:
			return
		}
	}
}

// next returns the next advert from src that satisfies ok.
func (o *observer) next(ctx context.Context, src netip.Addr, ok func(observed) bool) (observed, error) {
	for {
		select {
		case ob := <-o.ch:
			if ob.src.WithZone("") == src && (ok == nil || ok(ob)) {
				return ob, nil
			}
		case <-ctx.Done():
			return observed{}, fmt.Errorf("no advert from %v: %w", src, ctx.Err())
		}
	}
}
