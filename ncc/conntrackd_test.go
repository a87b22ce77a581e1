package ncc

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/seesawlb/seesaw/ncc/conntrackd"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvstest"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/netconf/netconftest"
	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// eventLog is one ordered record of what the network stack and conntrackd
// were told.
type eventLog struct {
	mu   sync.Mutex
	path string // conntrackd's calls are appended here by its stand-in
}

func (l *eventLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	fmt.Fprintln(f, s)
	f.Close()
}

func (l *eventLog) take(t *testing.T) string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, err := os.ReadFile(l.path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	os.Remove(l.path)
	return strings.TrimSpace(string(b))
}

// loggedNet records the LB interface's state changes and the addresses
// added to it.
type loggedNet struct {
	*netconftest.Kernel
	log *eventLog
}

func (k loggedNet) SetUp(name string, up bool) error {
	k.log.add(fmt.Sprintf("link %s up=%v", name, up))
	return k.Kernel.SetUp(name, up)
}

func (k loggedNet) AddAddr(name string, p netip.Prefix) error {
	k.log.add(fmt.Sprintf("addr %s %s", name, p))
	return k.Kernel.AddAddr(name, p)
}

// fakeConntrackd writes a stand-in for conntrackd: run as a daemon
// ("-C CONF") it makes its socket and sleeps; run as a client it appends
// its command to the log.
func fakeConntrackd(t *testing.T, log string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "conntrackd")
	script := `#!/bin/sh
dir=$(dirname "$2")
if [ $# -eq 2 ]; then
  echo "conntrackd daemon" >> ` + log + `
  : > "$dir/ctl.sock"
  exec sleep 600
fi
[ "$3" = -s ] && exit 0
echo "conntrackd $3" >> ` + log + `
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestApplyConntrackdOrder: the NCC commits conntrackd's external cache
// before the LB interface comes up with its VIPs (and flushes, resyncs
// and sends a bulk update after), and asks for a resync after it went down; an
// unchanged role tells conntrackd nothing; a state without conntrackd stops
// it; without the binary, the rest is applied and the answer says what is
// missing and what to do.
func TestApplyConntrackdOrder(t *testing.T) {
	log := &eventLog{path: filepath.Join(t.TempDir(), "events")}
	nk := netconftest.New(nil)
	nk.AddPhysical("eth1", net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, false)
	k := ipvstest.New()
	d := &conntrackd.Daemon{Binary: fakeConntrackd(t, log.path), Paths: conntrackd.Paths{Dir: filepath.Join(t.TempDir(), "ctd")}, Logf: t.Logf}
	s := NewServer(Config{
		IPVS:       func() (reconcile.IPVS, error) { return k.Client() },
		Net:        func() (netconf.Kernel, error) { return loggedNet{nk, log}, nil },
		NFT:        func() (*nft.Reconciler, error) { return nil, nft.ErrNotSupported },
		Sender:     func() (FrameSender, error) { return &recorder{}, nil },
		Conntrackd: d,
	})
	defer s.Close()
	ct := &nccpb.Conntrackd{Interface: "eth0", LocalAddress: "192.0.2.2", PeerAddress: "192.0.2.3"}
	state := func(up bool, ct *nccpb.Conntrackd) *nccpb.DesiredState {
		return &nccpb.DesiredState{
			LbInterface: &nccpb.LBInterface{Name: "eth1", Up: up, Vrid: 60},
			Vips:        []*nccpb.VIP{{Address: "192.0.2.4/24", Placement: nccpb.VIPPlacement_VIP_ON_LB_INTERFACE}},
			Conntrackd:  ct,
		}
	}
	apply := func(ds *nccpb.DesiredState) *nccpb.ApplyResponse {
		t.Helper()
		resp, err := s.Apply(context.Background(), &nccpb.ApplyRequest{Desired: ds})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, step := range []struct {
		what string
		ds   *nccpb.DesiredState
		want string
	}{
		// The backup holds the VIPs on its LB interface, down: they come
		// up with it.
		{"backup at start", state(false, ct), "conntrackd daemon\naddr eth1 192.0.2.4/24\nconntrackd -n"},
		{"becoming master", state(true, ct), "conntrackd -c\nlink eth1 up=true\nconntrackd -f\nconntrackd -R\nconntrackd -B"},
		{"master still", state(true, ct), ""},
		{"becoming backup", state(false, ct), "link eth1 up=false\nconntrackd -n"},
		{"no conntrackd wanted", state(false, nil), ""},
	} {
		if resp := apply(step.ds); len(resp.Errors) > 0 {
			t.Fatalf("%s: %v", step.what, resp.Errors)
		}
		if got := log.take(t); got != step.want {
			t.Errorf("%s: the kernel and conntrackd were told\n%s\nwant\n%s", step.what, got, step.want)
		}
	}
	if d.Running() {
		t.Error("conntrackd runs after a state without it")
	}

	// Without conntrackd installed: the LB interface still comes up.
	d.Binary = filepath.Join(t.TempDir(), "conntrackd")
	resp := apply(state(true, ct))
	if len(resp.Errors) != 1 || resp.Errors[0].Kind != "conntrackd" || !strings.Contains(resp.Errors[0].Message, "conntrackd is not installed") ||
		!strings.Contains(resp.Errors[0].Message, "full-NAT connections will not survive a failover") {
		t.Errorf("without conntrackd: %v", resp.Errors)
	}
	if got := log.take(t); got != "link eth1 up=true" {
		t.Errorf("without conntrackd the kernel was told %q", got)
	}

	// A state no conntrackd could run is refused whole.
	bad := state(true, &nccpb.Conntrackd{Interface: "eth0", LocalAddress: "192.0.2.2", PeerAddress: "2001:db8::3"})
	if _, err := s.Apply(context.Background(), &nccpb.ApplyRequest{Desired: bad}); err == nil || !strings.Contains(err.Error(), "different families") {
		t.Errorf("a bad conntrackd: %v", err)
	}
}
