package appliance

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// The failback bench: how long a returning node's table takes to catch up
// with the master's, at 10,000 and 100,000 connections.
//
// The connections are UDP flows through a DSR service of the pair, one per
// (source address, source port), sent from a raw socket on the client:
// one packet makes an IPVS entry on the master, with no socket anywhere.
// They are made while lb1 is dead; lb1 boots again, and the client sends
// one packet on every flow (the kernel resends a connection only when a
// packet of it passes, and at most once a sync_refresh_period: the flows
// are older than that). took is from the start of that pass until lb1's
// IPVS holds the master's count less the engine's 1% margin, read from
// both NCCs.

var failbackUDPVIP = netip.MustParseAddr("192.0.2.113")

const failbackUDPPort = 5353

// failbackBenchCluster is the pair with one UDP DSR service, whose checks
// are slow and patient: on the emulated CPU the pair's 1 s checks time out
// now and then, a destination out of service drops out of both nodes'
// counts, and the figure would measure that.
func failbackBenchCluster(backends []*labtest.Node) string {
	var be strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&be, "  backend { host { fqdn: %q ipv4: %q ipv6: %q status: PRODUCTION } weight: 1 }\n",
			fqdn(b), netip.PrefixFrom(b.IPv4(), labtest.BackendNet4.Bits()), netip.PrefixFrom(b.IPv6(), labtest.BackendNet6.Bits()))
	}
	return `# cluster.pb written by deploy/appliance
seesaw_vip { fqdn: "seesaw-vip.lab." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1.lab." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2.lab." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
` + fmt.Sprintf(`vserver {
  name: "udp@lab"
  entry_address { fqdn: "udp.lab." ipv4: "%s/32" status: PRODUCTION }
  rp: "lab@example.com"
  vserver_entry { protocol: UDP port: %d scheduler: RR mode: DSR }
  healthcheck { type: HTTP port: %d send: "/healthz" interval: 5 timeout: 5 retries: 5 }
%s}
`, failbackUDPVIP, failbackUDPPort, healthPort, be.String())
}

// flowSrc is flow i of round r: a client address (203.0.113.20 and up,
// 60,000 ports each) and port.
func flowSrc(r, i int) (netip.Addr, uint16) {
	a := labtest.ClientNet4.Addr().As4()
	a[3] = byte(20 + 4*r + i/60000)
	return netip.AddrFrom4(a), uint16(1024 + i%60000)
}

// sendFlows sends one UDP packet to dst from each of flows [0, n) of round
// r, from a raw socket in the client's namespace, paced so that no queue
// on the way overflows. It returns how long the pass took.
func sendFlows(c *labtest.Node, r, n int, dst netip.AddrPort) (time.Duration, error) {
	return sendFlowsUntil(c, r, n, dst, nil)
}

// sendFlowsUntil is sendFlows, stopping early once stop is closed.
func sendFlowsUntil(c *labtest.Node, r, n int, dst netip.AddrPort, stop <-chan struct{}) (time.Duration, error) {
	var fd int
	err := c.Do(func() (err error) {
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("raw socket: %w", err)
	}
	defer syscall.Close(fd)
	to := &syscall.SockaddrInet4{Addr: dst.Addr().As4()}
	pkt := make([]byte, 20+8+4)
	start := time.Now()
	for i := range n {
		src, port := flowSrc(r, i)
		// IPv4 header; the kernel fills in the checksum and the ID.
		pkt[0], pkt[1] = 0x45, 0
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		binary.BigEndian.PutUint32(pkt[4:], 0)
		pkt[8], pkt[9] = 64, syscall.IPPROTO_UDP
		binary.BigEndian.PutUint16(pkt[10:], 0)
		s4, d4 := src.As4(), dst.Addr().As4()
		copy(pkt[12:], s4[:])
		copy(pkt[16:], d4[:])
		// UDP, no checksum (allowed over IPv4).
		binary.BigEndian.PutUint16(pkt[20:], port)
		binary.BigEndian.PutUint16(pkt[22:], dst.Port())
		binary.BigEndian.PutUint16(pkt[24:], 8+4)
		binary.BigEndian.PutUint16(pkt[26:], 0)
		copy(pkt[28:], "ping")
		for {
			err := syscall.Sendto(fd, pkt, 0, to)
			if err == nil {
				break
			}
			if err != syscall.ENOBUFS && err != syscall.EAGAIN {
				return 0, fmt.Errorf("flow %d: sendto: %w", i, err)
			}
			time.Sleep(time.Millisecond)
		}
		if i%1000 == 999 {
			select {
			case <-stop:
				return time.Since(start), nil
			default:
			}
			time.Sleep(time.Millisecond)
		}
	}
	return time.Since(start), nil
}

// nccConns is the IPVS connection count an appliance's NCC reports, as the
// engine counts it.
func nccConns(a *Appliance) (int, error) {
	ctx, cancel := rpcCtx()
	defer cancel()
	st, err := a.NCC.GetState(ctx, &nccpb.GetStateRequest{WithStats: true})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range st.GetState().GetServices() {
		for _, d := range s.GetDestinations() {
			n += int(d.GetActiveConnections()) + int(d.GetInactiveConnections())
		}
	}
	return n, nil
}

// memAvailable is the guest's MemAvailable, in MiB.
func memAvailable() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
			var kb int
			fmt.Sscan(f[1], &kb)
			return fmt.Sprintf("%d MiB", kb>>10)
		}
	}
	return "?"
}

// TestLabBenchFailback prints one bench: line per size.
func TestLabBenchFailback(t *testing.T) {
	labtest.RequireLab(t)
	if !*benchFlag {
		t.Skip("a benchmark: run with -args -appliance.bench (make bench does)")
	}
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	topo := labtest.New(t, labtest.Config{LBs: 2, Backends: 2, LBNIC: "eth2"})
	lb1, client := topo.LBs[0], topo.Client
	for _, b := range topo.Backends {
		if err := DSR(b, failbackUDPVIP); err != nil {
			t.Fatal(err)
		}
		Serve(t, b, ServeOptions{TCP: []string{fmt.Sprintf(":%d", svcPort)}, Health: []string{fmt.Sprintf(":%d", healthPort)}})
	}
	cluster := failbackBenchCluster(topo.Backends)
	ssl1, ssl2 := pairSSL(t, lb1, topo.LBs[1])
	o1 := Options{Bin: bin, SeesawCfg: failbackCfg(1, 2, "catch_up_limit = 600\n"), ClusterPB: cluster, SSLDir: ssl1}
	a1 := Start(t, lb1, o1)
	a1.WaitRunning(t, 2*time.Minute)
	a1.WaitMaster(t, 2*time.Minute)
	a2 := Start(t, topo.LBs[1], Options{Bin: bin, SeesawCfg: failbackCfg(2, 1, "catch_up_limit = 600\n"), ClusterPB: cluster, SSLDir: ssl2})
	a2.WaitRunning(t, 2*time.Minute)
	key := ServiceKey("UDP", failbackUDPVIP, failbackUDPPort)
	Wait(t, 2*time.Minute, "lb2 warm with the UDP service", func() error {
		tab, err := IPVS(topo.LBs[1])
		if err != nil {
			return err
		}
		if s := tab.Service(key); s == nil || len(s.Dests) != len(topo.Backends) {
			return fmt.Errorf("lb2 lacks %s:\n%s", key, tab.Text)
		}
		return nil
	})
	dst := netip.AddrPortFrom(failbackUDPVIP, failbackUDPPort)
	t.Logf("guest MemAvailable at the start: %s", memAvailable())

	for r, n := range []int{10000, 100000} {
		die(t, a1)
		a2.WaitMaster(t, time.Minute)
		before, err := nccConns(a2)
		if err != nil {
			t.Fatal(err)
		}
		// The flows, through lb2 alone; a pass again while some were
		// dropped on the way.
		made := time.Now()
		var have int
		for pass := 0; ; pass++ {
			if _, err := sendFlows(client, r, n, dst); err != nil {
				t.Fatal(err)
			}
			made = time.Now()
			Wait(t, time.Minute, "lb2's count settling", func() error {
				c, err := nccConns(a2)
				if err != nil {
					return err
				}
				if c == have {
					return nil
				}
				have = c
				time.Sleep(time.Second)
				return fmt.Errorf("lb2 at %d", c)
			})
			if have-before >= n || pass == 3 {
				break
			}
		}
		t.Logf("round %d: lb2 holds %d connections (%d before the round's %d flows); guest MemAvailable %s", r, have, before, n, memAvailable())

		// lb2's part-filled sync buffer flushed before lb1 is back (see
		// TestLabPairFailback).
		time.Sleep(10 * time.Second)
		reboot(t, lb1)
		a1 = Start(t, lb1, o1)
		a1.WaitRunning(t, 3*time.Minute)
		a1.Wait(t, 3*time.Minute, "lb1 holding back", func() error {
			s, _, err := failbackStatus(a1)
			if err != nil {
				return err
			}
			if _, _, ok := holding(s); !ok {
				return fmt.Errorf("lb1's failback status: %q", s)
			}
			return nil
		})
		// Every flow older than the sync refresh period (10 s): the next
		// packet of each is resent.
		if d := 11*time.Second - time.Since(made); d > 0 {
			time.Sleep(d)
		}
		m, err := nccConns(a2)
		if err != nil {
			t.Fatal(err)
		}
		n0, err := nccConns(a1)
		if err != nil {
			t.Fatal(err)
		}
		// The flows are chatty: the client sends on each, pass after pass,
		// until lb1 has caught up. One pass is not enough: the sync is
		// multicast UDP, and on this emulated CPU a few percent of its
		// messages are lost; the master resends those flows at their next
		// packet a refresh period later.
		start := time.Now()
		stop := make(chan struct{})
		passes := make(chan time.Duration, 100)
		go func() {
			defer close(passes)
			for {
				d, err := sendFlowsUntil(client, r, n, dst, stop)
				if err != nil {
					t.Error(err)
					return
				}
				select {
				case <-stop:
					return
				case passes <- d:
				}
			}
		}()
		var learnt int
		took := time.Duration(-1)
		end := time.Now().Add(5 * time.Minute)
		for time.Now().Before(end) {
			if learnt, err = nccConns(a1); err != nil {
				t.Fatal(err)
			}
			// The master's count now: older flows expire meanwhile
			// (udp_timeout), and a 100,000-flow pass outlasts it.
			if m, err = nccConns(a2); err != nil {
				t.Fatal(err)
			}
			if learnt+m/100 >= m {
				took = time.Since(start)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		close(stop)
		var pass time.Duration
		npass := 0
		for d := range passes {
			if npass == 0 {
				pass = d
			}
			npass++
		}
		master := "not within 5 minutes"
		if took >= 0 {
			a1.WaitMaster(t, 3*time.Minute)
			master = time.Since(start).Round(time.Millisecond).String()
		}
		_, last, _ := failbackStatus(a1)
		tookS := "timeout"
		if took >= 0 {
			tookS = took.Round(time.Millisecond).String()
		}
		fmt.Printf("bench: failback catch-up conns=%d took=%s (from the client's first packet; a pass over every flow takes %v on this emulated CPU, %d passes ran; master's count %d, lb1 had %d at the start and %d at the end; lb1 master %s after the first packet; guest MemAvailable %s)\n",
			n, tookS, pass.Round(time.Millisecond), npass, m, n0, learnt, master, memAvailable())
		t.Logf("lb1's failback: %s", last)
	}
}
