// Package conntrackd runs Debian's conntrackd for the NCC: the sync of
// netfilter connection-tracking state that full NAT needs to keep its
// connections through a failover.
//
// Full NAT is IPVS masquerade plus a source NAT of the connection to the
// cluster VIP (net.ipv4.vs.conntrack=1). IPVS connection sync carries the
// IPVS half to the backup; the source-NAT binding (which port of the
// cluster VIP the backend sees) lives only in conntrack. A new master
// without it makes a new binding, with another port (the rule picks ports
// at random), and the backend resets the connection it no longer
// recognises. conntrackd in FTFW mode sends every conntrack change to the
// peer, which keeps them aside (its external cache) until told to commit
// them into its kernel.
//
// The NCC runs conntrackd as its own child process (in its network
// namespace, killed with it), with a configuration it writes from the
// desired state into a directory of its own: unicast UDP between the two
// nodes' addresses on the node interface. The role changes are the
// classic ones (keepalived's primary-backup.sh does the same with a
// script): becoming master, commit the external cache into the kernel
// before the LB interface and its VIPs come up, and after, flush the
// caches, resync the internal cache from the kernel and send the peer a
// bulk update; becoming backup, after the interface is down, ask the new
// master for a resync.
package conntrackd

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// DefaultPort is conntrackd's usual UDP port.
const DefaultPort = 3780

// DefaultBinary is where Debian's package installs conntrackd.
const DefaultBinary = "/usr/sbin/conntrackd"

// Paths are the files of one conntrackd under its directory.
type Paths struct {
	Dir string
}

func (p Paths) Config() string { return filepath.Join(p.Dir, "conntrackd.conf") }
func (p Paths) Socket() string { return filepath.Join(p.Dir, "ctl.sock") }
func (p Paths) Lock() string   { return filepath.Join(p.Dir, "lock") }
func (p Paths) Log() string    { return filepath.Join(p.Dir, "conntrackd.log") }

// maxSocketPath is the longest Unix socket path the kernel takes.
const maxSocketPath = 107

// Check says what is wrong with a desired conntrackd, naming the field.
func Check(c *nccpb.Conntrackd) error {
	if c.GetInterface() == "" {
		return fmt.Errorf("conntrackd: no interface")
	}
	if strings.ContainsAny(c.Interface, " \t\n{}\"#/") {
		return fmt.Errorf("conntrackd: interface %q is not an interface name", c.Interface)
	}
	local, err := netip.ParseAddr(c.GetLocalAddress())
	if err != nil {
		return fmt.Errorf("conntrackd: local_address %q: %v", c.GetLocalAddress(), err)
	}
	peer, err := netip.ParseAddr(c.GetPeerAddress())
	if err != nil {
		return fmt.Errorf("conntrackd: peer_address %q: %v", c.GetPeerAddress(), err)
	}
	if local.Is4() != peer.Is4() {
		return fmt.Errorf("conntrackd: local_address %s and peer_address %s are of different families", local, peer)
	}
	if local == peer {
		return fmt.Errorf("conntrackd: local_address and peer_address are both %s", local)
	}
	if c.GetPort() > 65535 {
		return fmt.Errorf("conntrackd: port %d is not a UDP port", c.GetPort())
	}
	for i, a := range c.GetIgnoreAddresses() {
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("conntrackd: ignore_addresses[%d] %q: %v", i, a, err)
		}
	}
	return nil
}

// Config is the conntrackd.conf for a desired conntrackd, its files under
// p. It checks c first (Check).
//
// The choices: FTFW (acknowledged, resends what the peer missed); the
// external cache on, so that the backup holds the peer's entries aside
// until it becomes master and commits them; TCP and UDP only, and not
// the nodes' own connections (health checks, the sync itself, sessions to
// the node), which have nothing to fail over to; TCP entries only once
// established, as IPVS syncs them (a handshake in progress is not worth
// the traffic); the socket buffers and netlink buffer large enough for a
// burst of 100,000 connections.
func Config(c *nccpb.Conntrackd, p Paths) (string, error) {
	if err := Check(c); err != nil {
		return "", err
	}
	if len(p.Socket()) > maxSocketPath {
		return "", fmt.Errorf("conntrackd: the control socket %s is longer than %d bytes", p.Socket(), maxSocketPath)
	}
	local, peer := netip.MustParseAddr(c.LocalAddress), netip.MustParseAddr(c.PeerAddress)
	port := c.GetPort()
	if port == 0 {
		port = DefaultPort
	}
	fam := "IPv4"
	if local.Is6() {
		fam = "IPv6"
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# conntrackd.conf written by seesaw_ncc from the engine's desired state; do not edit.")
	w("Sync {")
	w("\tMode FTFW {")
	w("\t\tDisableExternalCache off")
	w("\t\tStartupResync on")
	w("\t}")
	w("\tUDP {")
	w("\t\t%s_address %s", fam, local)
	w("\t\t%s_Destination_Address %s", fam, peer)
	w("\t\tPort %d", port)
	w("\t\tInterface %s", c.Interface)
	w("\t\tSndSocketBuffer 4194304")
	w("\t\tRcvSocketBuffer 4194304")
	w("\t\tChecksum on")
	w("\t}")
	w("}")
	w("General {")
	w("\tSystemd off")
	w("\tHashSize 32768")
	w("\tHashLimit 262144")
	w("\tLogFile %s", p.Log())
	w("\tSyslog off")
	w("\tLockFile %s", p.Lock())
	w("\tUNIX {")
	w("\t\tPath %s", p.Socket())
	w("\t}")
	w("\tNetlinkBufferSize 4194304")
	w("\tNetlinkBufferSizeMaxGrowth 16777216")
	w("\tNetlinkOverrunResync on")
	w("\tNetlinkEventsReliable on")
	w("\tFilter From Userspace {")
	w("\t\tProtocol Accept {")
	w("\t\t\tTCP")
	w("\t\t\tUDP")
	w("\t\t}")
	w("\t\tAddress Ignore {")
	for _, a := range ignored(c, local, peer) {
		f := "IPv4"
		if a.Is6() {
			f = "IPv6"
		}
		w("\t\t\t%s_address %s", f, a)
	}
	w("\t\t}")
	w("\t\tState Accept {")
	w("\t\t\tESTABLISHED CLOSED TIME_WAIT CLOSE_WAIT for TCP")
	w("\t\t}")
	w("\t}")
	w("}")
	return b.String(), nil
}

// ignored are the addresses whose connections are not synced: loopback,
// both nodes' sync addresses and the ones the desired state names, each
// once, in that order.
func ignored(c *nccpb.Conntrackd, local, peer netip.Addr) []netip.Addr {
	out := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback(), local, peer}
	for _, s := range c.GetIgnoreAddresses() {
		out = append(out, netip.MustParseAddr(s))
	}
	seen := map[netip.Addr]bool{}
	var uniq []netip.Addr
	for _, a := range out {
		if a = a.Unmap(); !seen[a] {
			seen[a] = true
			uniq = append(uniq, a)
		}
	}
	return uniq
}

// Role is what conntrackd was last told this node is.
type Role int

const (
	RoleUnknown Role = iota // just started: told nothing yet
	RoleMaster
	RoleBackup
)

func (r Role) String() string {
	switch r {
	case RoleMaster:
		return "master"
	case RoleBackup:
		return "backup"
	}
	return "unknown"
}

// Step is one conntrackd client command (conntrackd -C CONF <Flag>).
type Step struct {
	Flag string
	What string // for logs and errors
}

var (
	StepCommit  = Step{"-c", "commit the external cache into the kernel"}
	StepFlush   = Step{"-f", "flush the internal and external caches"}
	StepResync  = Step{"-R", "resync the internal cache with the kernel"}
	StepBulk    = Step{"-B", "send a bulk update to the peer"}
	StepRequest = Step{"-n", "request a resync from the peer"}
)

// Transition is what to tell conntrackd when the node's role goes from
// prev to master (LB interface up) or backup: the steps to run before the
// network is applied and those to run after. Only the commit comes
// before: the VIPs come up after it, so that the first packet of a kept
// connection finds its binding; the rest (each a client run, some tens of
// milliseconds) would only delay the takeover.
// Nothing when the role is unchanged.
func Transition(prev Role, master bool) (before, after []Step) {
	switch {
	case master && prev != RoleMaster:
		return []Step{StepCommit}, []Step{StepFlush, StepResync, StepBulk}
	case !master && prev != RoleBackup:
		return nil, []Step{StepRequest}
	}
	return nil, nil
}
