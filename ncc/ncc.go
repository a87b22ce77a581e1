// Package ncc is the network control centre daemon: the only process that
// changes the host (IPVS, links, addresses, routes, nftables), on the
// engine's behalf.
//
// Apply takes the whole desired state and makes the kernel match it with
// the fewest writes (package reconcile), answering with what it changed;
// GetState reports what the kernel holds; Announce sends gratuitous ARP
// and unsolicited neighbour advertisements for the VIPs (which the NCC also
// does when the LB interface comes up, and periodically while it is up).
// It programs IPVS (services, destinations, sync daemons), the host's
// network configuration (the LB interface and its VRRP MAC, the dummy
// interface, VLANs, VIPs, policy routes and rules, sysctls) and the packet
// rules in its own nftables table, inet "seesaw" (firewall marks for
// fwmark services, source NAT for NAT-mode vservers; package nft).
// For full NAT on a pair it runs Debian's conntrackd as its child and
// commits the peer's conntrack state before the LB interface comes up
// (package conntrackd).
// On start the NCC adopts what IPVS and its nftables table hold (it never
// flushes), and a periodic audit repairs what someone else changed. It
// never exits for want of a kernel facility, so the watchdog does not
// restart it in a loop.
package ncc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/ncc/announce"
	"github.com/seesawlb/seesaw/ncc/conntrackd"
	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// DefaultSocket is where the NCC listens unless told otherwise.
var DefaultSocket = ipc.DefaultSocket("ncc")

// DefaultEngineUser is the user the engine runs as. When the flag keeps
// this default and no such user exists, the NCC answers root only.
const DefaultEngineUser = "seesaw"

// Config is what the NCC runs with.
type Config struct {
	// Socket is the path the NCC serves on.
	Socket string
	// EngineUser may call the NCC besides root (the engine's user). Empty:
	// root only.
	EngineUser string
	// ProbeInterval is how often the NCC looks for IPVS again, so that
	// loading ip_vs later is noticed without a restart. Default 30s.
	ProbeInterval time.Duration
	// Probe finds the kernel's IPVS; nil uses ipvs.Probe. Tests replace it.
	Probe func() (ipvs.GenlFamily, error)
	// IPVS opens the connection to the kernel's IPVS; nil uses ipvs.New.
	// Tests give a fake kernel's client (ipvstest).
	IPVS func() (reconcile.IPVS, error)
	// Net opens the host's network stack; nil uses rtnetlink in the NCC's
	// own namespace. Tests give a fake (netconftest).
	Net func() (netconf.Kernel, error)
	// NFT opens the kernel's nftables for the NCC's table; nil uses a
	// netlink connection in the NCC's own namespace. Tests give one in a
	// namespace of their own (nft.Open with its descriptor).
	NFT func() (*nft.Reconciler, error)
	// Sender opens what sends announcement frames; nil uses an AF_PACKET
	// socket (announce.NewSender). Tests give a recorder.
	Sender func() (FrameSender, error)
	// AnnounceInterval is how often, while the LB interface is up, the
	// NCC announces the VIPs marked for it. Default 10s.
	AnnounceInterval time.Duration
	// AuditInterval is how often the NCC reads the kernel and repairs
	// drift from the last applied state. Default 30s.
	AuditInterval time.Duration
	// StateFile, when set, keeps the last applied desired state, so that
	// Cleanup (seesaw_ncc --cleanup) knows which interface, routing tables
	// and VLANs are the NCC's. (Its nftables table is known by its name.)
	StateFile string
	// SkipRootCheck lets a test run the NCC as another user. The daemon
	// never sets it.
	SkipRootCheck bool
	// Conntrackd runs the conntrackd a desired state asks for (full NAT
	// on a pair). Run makes one (ConntrackdBinary, its files in
	// ConntrackdDir, default a "conntrackd" directory beside the socket);
	// NewServer leaves it nil unless given, and then a desired conntrackd
	// is not run (the engine's tests, against fake kernels).
	Conntrackd       *conntrackd.Daemon
	ConntrackdBinary string
	ConntrackdDir    string
}

// maxChanges caps the changes an Apply lists (ApplyResponse.changes_omitted
// counts the rest): 100,000 would not fit gRPC's 4 MiB default.
const maxChanges = 10000

// FrameSender sends whole Ethernet frames on an interface (by index);
// *announce.Sender is one.
type FrameSender interface {
	Send(ifindex int, frames ...[]byte) error
}

// Server answers the NCC service. Run serves one on the NCC's socket;
// NewServer makes one for a process that calls it directly (the engine's
// tests, against fake kernels).
type Server struct {
	nccpb.UnimplementedNCCServer
	open       func() (reconcile.IPVS, error)
	openNet    func() (netconf.Kernel, error)
	openSender func() (FrameSender, error)
	openNFT    func() (*nft.Reconciler, error)
	stateFile  string

	mu   sync.Mutex
	k    reconcile.IPVS // nil until IPVS could be opened
	ipvs *reconcile.IPVSReconciler
	net  *reconcile.NetReconciler // nil until first needed
	netk netconf.Kernel
	send FrameSender     // nil until first needed
	nft  *nft.Reconciler // nil until first needed
	ctd  *conntrackd.Daemon
	// ctdWant is the conntrackd of the last Apply (nil: none), for the
	// audit to restart one that died.
	ctdWant *nccpb.Conntrackd
}

// nftReconciler opens nftables on first use. Hold s.mu.
func (s *Server) nftReconciler() (*nft.Reconciler, error) {
	if s.nft != nil {
		return s.nft, nil
	}
	r, err := s.openNFT()
	if err != nil {
		return nil, err
	}
	s.nft = r
	return r, nil
}

// netReconciler opens the network stack on first use. Hold s.mu.
func (s *Server) netReconciler() (*reconcile.NetReconciler, error) {
	if s.net != nil {
		return s.net, nil
	}
	k, err := s.openNet()
	if err != nil {
		return nil, err
	}
	s.net, s.netk = reconcile.NewNet(k, glog.Infof), k
	// Becoming the master, the VIPs are announced as soon as the LB
	// interface is up, not after the rest of the apply (Apply holds s.mu
	// while the reconciler calls this).
	s.net.OnTakeover(func(d netconf.State) {
		sent, errs := s.announceState(d, nil)
		glog.Infof("ncc: takeover: the LB interface is up: %d addresses announced", sent)
		if len(errs) > 0 {
			glog.Warningf("ncc: takeover: announce: %s", strings.Join(errs, "; "))
		}
	})
	// The links' own MACs, as an NCC before this one found them.
	if s.stateFile != "" {
		if st, err := loadState(s.stateFile); err == nil {
			s.net.RememberMACs(savedMACs(st))
		} else if !errors.Is(err, os.ErrNotExist) {
			glog.Warningf("ncc: %v", err)
		}
	}
	return s.net, nil
}

// reconciler opens IPVS on first use (it may be loaded after the NCC
// started). Hold s.mu.
func (s *Server) reconciler() (*reconcile.IPVSReconciler, error) {
	if s.ipvs != nil {
		return s.ipvs, nil
	}
	k, err := s.open()
	if err != nil {
		return nil, err
	}
	s.k, s.ipvs = k, reconcile.NewIPVS(k, glog.Infof)
	return s.ipvs, nil
}

func (s *Server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.k.(io.Closer); ok {
		c.Close()
	}
	s.k, s.ipvs = nil, nil
	if s.nft != nil {
		s.nft.Close()
		s.nft = nil
	}
	if s.ctd != nil {
		s.ctd.Stop()
	}
}

func (s *Server) Apply(_ context.Context, req *nccpb.ApplyRequest) (*nccpb.ApplyResponse, error) {
	start := time.Now()
	ds := req.GetDesired()
	// The whole state is checked before anything is written.
	want, err := ipvsFromProto(ds)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ncc: apply: desired state: %v", err)
	}
	var wantNet netconf.State
	if hasNet(ds) {
		if wantNet, err = netFromProto(ds); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "ncc: apply: desired state: %v", err)
		}
	}
	wantNFT, err := nftFromProto(ds)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ncc: apply: desired state: %v", err)
	}
	if ct := ds.GetConntrackd(); ct != nil {
		if err := conntrackd.Check(ct); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "ncc: apply: desired state: %v", err)
		}
	}
	resp := &nccpb.ApplyResponse{}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Full NAT's conntrack sync: becoming master, what the peer sent is
	// committed into the kernel before the LB interface and its VIPs come
	// up, so that a kept connection's next packet finds its source-NAT
	// binding (and does not get a new one the backend would reset).
	ctdErr := func(err error) {
		resp.Errors = append(resp.Errors, &nccpb.ApplyError{Kind: "conntrackd", Object: ds.GetConntrackd().GetInterface(), Message: err.Error()})
	}
	master := ds.GetLbInterface().GetUp()
	ctdRuns := false
	if !req.GetDryRun() {
		var err error
		if ctdRuns, err = s.ensureConntrackd(ds.GetConntrackd()); err != nil {
			ctdErr(err)
		} else if ctdRuns {
			if err := s.ctd.Before(master); err != nil {
				ctdErr(err)
			}
		}
	}
	// The network first: a sync daemon on the LB interface cannot start
	// before the interface is up (becoming the master). In a failover the
	// backup's services are in place already, so the VIPs do not arrive
	// before them.
	var changes []reconcile.Change
	if hasNet(ds) {
		if r, err := s.netReconciler(); err != nil {
			resp.Errors = append(resp.Errors, &nccpb.ApplyError{Kind: "net", Message: err.Error()})
		} else {
			cs, err := r.Apply(wantNet, req.GetDryRun())
			if err != nil {
				resp.Errors = append(resp.Errors, &nccpb.ApplyError{Kind: "net", Message: err.Error()})
			}
			changes = append(changes, cs...)
			// The LB interface just came up (this node became the
			// master): tell the LAN at once, not at the next tick.
			if !req.GetDryRun() && slices.ContainsFunc(cs, func(c reconcile.Change) bool {
				return c.Kind == reconcile.KindLink && c.Object == wantNet.LB.Name && c.Detail == "up" && c.Err == nil
			}) {
				if _, errs := s.announce(nil); len(errs) > 0 {
					glog.Warningf("ncc: announce after the LB interface came up: %s", strings.Join(errs, "; "))
				}
			}
		}
	}
	if ctdRuns {
		// Becoming master: the rest of the takeover (flush, resync, bulk
		// update); becoming backup: ask the new master for its state.
		if err := s.ctd.After(master); err != nil {
			ctdErr(err)
		}
	}
	if r, err := s.reconciler(); err != nil {
		resp.Errors = append(resp.Errors, &nccpb.ApplyError{Kind: "ipvs", Message: err.Error()})
	} else {
		cs, err := r.Apply(want, req.GetDryRun())
		if err != nil {
			resp.Errors = append(resp.Errors, &nccpb.ApplyError{Kind: "ipvs", Message: err.Error()})
		}
		changes = append(changes, cs...)
	}
	// Packet rules, after the VIPs and services they are for. With no
	// rules wanted the first Apply still looks, to remove a table an NCC
	// before this one left; after that the reconciler's record says there
	// is nothing, and nftables is not read again but by the audit.
	if r, err := s.nftReconciler(); err != nil {
		// Without nftables an empty rule set is already in place.
		if !wantNFT.Empty() || !errors.Is(err, nft.ErrNotSupported) {
			resp.Errors = append(resp.Errors, &nccpb.ApplyError{Kind: "nft", Message: err.Error()})
		}
	} else {
		cs, err := r.Apply(wantNFT, req.GetDryRun())
		if err != nil {
			resp.Errors = append(resp.Errors, &nccpb.ApplyError{Kind: "nft", Message: err.Error()})
		}
		changes = append(changes, cs...)
	}
	if !req.GetDryRun() && s.stateFile != "" {
		if err := saveState(s.stateFile, ds, s.originalMACs()); err != nil {
			glog.Warningf("ncc: %v", err)
		}
	}
	for _, c := range changes {
		if !req.GetDryRun() {
			resp.KernelWrites++
		}
		if c.Err != nil {
			resp.Errors = append(resp.Errors, &nccpb.ApplyError{Kind: c.Kind, Object: c.Object, Message: c.Err.Error()})
			continue
		}
		if len(resp.Changes) == maxChanges {
			resp.ChangesOmitted++
			continue
		}
		resp.Changes = append(resp.Changes, changeToProto(c))
	}
	resp.Took = durationpb.New(time.Since(start))
	if glog.V(2) {
		glog.Infof("ncc: apply: %d changes, %d errors, %d kernel writes in %v", len(resp.Changes), len(resp.Errors), resp.KernelWrites, time.Since(start))
	}
	return resp, nil
}

func (s *Server) GetState(_ context.Context, req *nccpb.GetStateRequest) (*nccpb.GetStateResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &nccpb.DesiredState{}
	if s.net != nil {
		known, err := s.net.Known()
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "ncc: get state: %v", err)
		}
		netToProto(known, st)
	}
	// The packet rules the kernel holds in the NCC's table, adopted or
	// applied.
	if r, err := s.nftReconciler(); err == nil {
		known, err := r.Known()
		switch {
		case errors.Is(err, nft.ErrNotSupported):
		case err != nil:
			return nil, status.Errorf(codes.Unavailable, "ncc: get state: %v", err)
		default:
			nftToProto(known, st)
		}
	}
	r, err := s.reconciler()
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "ncc: get state: %v", err)
	}
	if !req.GetWithStats() {
		known, err := r.Known()
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "ncc: get state: %v", err)
		}
		for _, v := range known.Services {
			p := serviceToProto(v.Service)
			for _, d := range v.Destinations {
				p.Destinations = append(p.Destinations, destToProto(d))
			}
			st.Services = append(st.Services, p)
		}
		for _, d := range known.SyncDaemons {
			st.SyncDaemons = append(st.SyncDaemons, daemonToProto(d))
		}
		return &nccpb.GetStateResponse{State: st}, nil
	}
	// Statistics are read from the kernel now, not from the record.
	svcs, err := s.k.State()
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "ncc: get state: %v", err)
	}
	for _, sv := range svcs {
		p := serviceToProto(sv.Service)
		p.Stats = statsToProto(sv.Stats)
		for _, d := range sv.Destinations {
			pd := destToProto(d.Destination)
			pd.Stats = statsToProto(d.Stats)
			pd.ActiveConnections, pd.InactiveConnections, pd.PersistentConnections = d.ActiveConns, d.InactiveConns, d.PersistentConns
			p.Destinations = append(p.Destinations, pd)
		}
		st.Services = append(st.Services, p)
	}
	daemons, err := s.k.SyncDaemons()
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "ncc: get state: %v", err)
	}
	for _, d := range daemons {
		st.SyncDaemons = append(st.SyncDaemons, daemonToProto(d))
	}
	return &nccpb.GetStateResponse{State: st}, nil
}

func (s *Server) Announce(_ context.Context, req *nccpb.AnnounceRequest) (*nccpb.AnnounceResponse, error) {
	var only []netip.Addr
	for _, a := range req.GetAddresses() {
		ad, err := netip.ParseAddr(a)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "ncc: announce: %q: %v", a, err)
		}
		only = append(only, ad.Unmap())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.net == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "ncc: announce: no network state has been applied")
	}
	sent, errs := s.announce(only)
	return &nccpb.AnnounceResponse{Sent: uint32(sent), Errors: errs}, nil
}

// announce sends a gratuitous ARP or unsolicited NA for each VIP of the
// applied state that is marked for it (or, given addresses, for those), on
// its link, with the link's current MAC. VIPs on the dummy interface are
// routed to the node, not found on the LAN: they are not announced. Hold
// s.mu.
func (s *Server) announce(only []netip.Addr) (sent int, errs []string) {
	d, ok := s.net.Desired()
	if !ok {
		return 0, []string{"no network state has been applied"}
	}
	return s.announceState(d, only)
}

// announceState is announce of the desired network state d. Hold s.mu.
func (s *Server) announceState(d netconf.State, only []netip.Addr) (sent int, errs []string) {
	if s.send == nil {
		snd, err := s.openSender()
		if err != nil {
			return 0, []string{err.Error()}
		}
		s.send = snd
	}
	links, err := s.netk.Links()
	if err != nil {
		return 0, []string{err.Error()}
	}
	byName := map[string]netconf.Link{}
	for _, l := range links {
		byName[l.Name] = l
	}
	vips := d.VIPs
	for _, f := range d.Floating {
		// A held floating address moved here: the backends must learn
		// where it is now, as clients must of a VIP.
		if f.Held {
			vips = append(slices.Clip(vips), netconf.VIP{Addr: f.Addr, Link: f.Link, Announce: true})
		}
	}
	for _, v := range vips {
		addr := v.Addr.Addr()
		if only != nil && !slices.Contains(only, addr) || only == nil && !v.Announce {
			continue
		}
		if only != nil {
			only = slices.DeleteFunc(only, func(a netip.Addr) bool { return a == addr })
		}
		l, ok := byName[v.Link]
		switch {
		case v.Link == d.LB.Dummy:
			errs = append(errs, fmt.Sprintf("%s is on the dummy interface %s: not announced", addr, v.Link))
			continue
		case !ok:
			errs = append(errs, fmt.Sprintf("%s: link %s does not exist", addr, v.Link))
			continue
		case v.Link == d.LB.VMAC6Link() && (l.Kind != "macvlan" || l.Parent != d.LB.Name):
			// Someone else's link has the name: its MAC is not the
			// VRRP one, and telling the LAN so would misdirect it.
			errs = append(errs, fmt.Sprintf("%s: %s is not the NCC's macvlan on %s: not announced", addr, v.Link, d.LB.Name))
			continue
		case !l.Up:
			errs = append(errs, fmt.Sprintf("%s: link %s is down", addr, v.Link))
			continue
		}
		f, err := announce.Frame(l.MAC, addr)
		if err == nil {
			err = s.send.Send(l.Index, f)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", addr, err))
			continue
		}
		sent++
	}
	for _, a := range only {
		errs = append(errs, fmt.Sprintf("%s is not a VIP of the applied state", a))
	}
	return sent, errs
}

// announcePeriodic re-announces the marked VIPs while the LB interface is
// meant to be up (this node is the master), so that caches that missed the
// first announcement, or aged it out, learn it.
func (s *Server) announcePeriodic() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.net == nil {
		return
	}
	if d, ok := s.net.Desired(); !ok || !d.LB.Up {
		return
	}
	if _, errs := s.announce(nil); len(errs) > 0 && glog.V(1) {
		glog.Infof("ncc: periodic announcement: %s", strings.Join(errs, "; "))
	}
}

// ensureConntrackd makes the NCC's conntrackd run as ct says (nil:
// stopped), and says whether it runs. Hold s.mu.
func (s *Server) ensureConntrackd(ct *nccpb.Conntrackd) (bool, error) {
	s.ctdWant = ct
	if s.ctd == nil {
		if ct != nil {
			glog.V(1).Infof("ncc: this NCC runs no conntrackd; the desired one is not run")
		}
		return false, nil
	}
	if ct == nil {
		s.ctd.Stop()
		return false, nil
	}
	if _, err := s.ctd.Ensure(ct); err != nil {
		return false, err
	}
	return true, nil
}

// auditConntrackd starts again a conntrackd that died since the last
// Apply, and tells it the node's role. Hold s.mu.
func (s *Server) auditConntrackd() {
	if s.ctd == nil || s.ctdWant == nil || s.ctd.Running() {
		return
	}
	if _, err := s.ctd.Ensure(s.ctdWant); err != nil {
		glog.Warningf("ncc: audit: %v", err)
		return
	}
	master := false
	if s.net != nil {
		if d, ok := s.net.Desired(); ok {
			master = d.LB.Up
		}
	}
	if err := errors.Join(s.ctd.Before(master), s.ctd.After(master)); err != nil {
		glog.Warningf("ncc: audit: %v", err)
	}
}

// audit reads the kernel and repairs drift from the last applied state.
// Before the first Apply it only adopts what the kernel holds.
func (s *Server) audit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auditConntrackd()
	if s.net != nil {
		changes, err := s.net.Audit()
		if err != nil {
			glog.Warningf("ncc: audit: %v", err)
		} else if len(changes) > 0 {
			glog.Warningf("ncc: audit: the host's network had drifted from the applied state; %d writes put it back", len(changes))
		}
	}
	if s.nft != nil {
		changes, err := s.nft.Audit()
		if err != nil {
			glog.Warningf("ncc: audit: %v", err)
		} else if len(changes) > 0 {
			glog.Warningf("ncc: audit: the NCC's nftables table had drifted from the applied state; %d writes put it back", len(changes))
		}
	}
	r, err := s.reconciler()
	if err != nil {
		return // the probe reports a missing IPVS
	}
	changes, err := r.Audit()
	if err != nil {
		glog.Warningf("ncc: audit: %v", err)
		return
	}
	if len(changes) > 0 {
		glog.Warningf("ncc: audit: IPVS had drifted from the applied state; %d writes put it back", len(changes))
	}
}

// originalMACs are the links' own MACs to keep in the state file: the
// network reconciler's, or before it is opened, the file's. Hold s.mu.
func (s *Server) originalMACs() map[string]net.HardwareAddr {
	if s.net != nil {
		return s.net.OriginalMACs()
	}
	if st, err := loadState(s.stateFile); err == nil {
		return savedMACs(st)
	}
	return nil
}

// saveState keeps the applied desired state, and the links' own MACs, for
// a restarted NCC and for Cleanup, replacing the file whole so that a
// crash leaves the old or the new one.
func saveState(path string, ds *nccpb.DesiredState, macs map[string]net.HardwareAddr) error {
	st := &nccpb.SavedState{Desired: ds, OriginalMacs: map[string]string{}}
	for name, mac := range macs {
		st.OriginalMacs[name] = mac.String()
	}
	b, err := proto.Marshal(st)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

func loadState(path string) (*nccpb.SavedState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	st := &nccpb.SavedState{}
	if err := proto.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return st, nil
}

// savedMACs reads the MACs of a state file, skipping (and logging) any
// that does not parse.
func savedMACs(st *nccpb.SavedState) map[string]net.HardwareAddr {
	out := map[string]net.HardwareAddr{}
	for name, s := range st.GetOriginalMacs() {
		mac, err := net.ParseMAC(s)
		if err != nil {
			glog.Warningf("ncc: state file: the MAC of %s: %v", name, err)
			continue
		}
		out[name] = mac
	}
	return out
}

// Cleanup is CleanupWith for the given IPVS and network openers and state
// file, with nftables in the NCC's own namespace.
func Cleanup(open func() (reconcile.IPVS, error), openNetFn func() (netconf.Kernel, error), stateFile string) error {
	return CleanupWith(Config{IPVS: open, Net: openNetFn, StateFile: stateFile})
}

// CleanupWith removes everything the NCC owns: every IPVS service and sync
// daemon, its nftables table (inet "seesaw", whatever it holds; no other
// table is touched) and, when cfg.StateFile holds the last applied state,
// the VIPs, VLANs, routes and rules it placed, with the LB interface down
// and its own MAC back. It is for `seesaw_ncc --cleanup`, by hand or when
// the package is removed: the connections through this node end with it.
// Of cfg it uses the openers (nil ones use the host's) and StateFile.
func CleanupWith(cfg Config) error {
	open := cfg.IPVS
	if open == nil {
		open = openIPVS
	}
	if cfg.NFT == nil {
		cfg.NFT = openNFT
	}
	failed := releaseNet(cfg)
	// The table goes whether or not a state file says anything: it is
	// known by its name.
	if r, err := cfg.NFT(); err != nil {
		failed = append(failed, err)
	} else {
		changes, err := r.Cleanup()
		if errors.Is(err, nft.ErrNotSupported) {
			err = nil // no nftables, no table
		}
		failed = append(failed, changeErrors(changes, err)...)
		r.Close()
	}
	k, err := open()
	switch {
	case errors.Is(err, ipvs.ErrNotAvailable):
		// Nothing can be left in an IPVS that is not there.
	case err != nil:
		failed = append(failed, err)
	default:
		if c, ok := k.(io.Closer); ok {
			defer c.Close()
		}
		failed = append(failed, changeErrors(reconcile.NewIPVS(k, glog.Infof).Apply(reconcile.IPVSState{}, false))...)
	}
	if len(failed) > 0 {
		return fmt.Errorf("ncc: cleanup: %w", errors.Join(failed...))
	}
	return nil
}

// ReleaseWith gives up what would fight the peer once the appliance has
// stopped or died, and nothing else: from the last applied state in
// cfg.StateFile, the VIPs, VLANs, routes and rules go and the LB interface
// is down with its own MAC back (so the VRRP MAC and the VIPs are the
// peer's alone, and nothing here announces them). The IPVS services, their
// connection table and sync daemons, and the nftables table stay, for the
// next NCC to adopt: a restart or an upgrade keeps every connection. It is
// for `seesaw_ncc --release` (the unit's ExecStopPost). Without a state
// file there is nothing of the NCC's on the links to release. Of cfg it
// uses Net and StateFile.
func ReleaseWith(cfg Config) error {
	if failed := releaseNet(cfg); len(failed) > 0 {
		return fmt.Errorf("ncc: release: %w", errors.Join(failed...))
	}
	return nil
}

// releaseNet takes down what the last applied state in cfg.StateFile
// placed on the links: the LB interface down with its own MAC, without
// the NCC's VIPs, VLANs, routes and rules.
func releaseNet(cfg Config) []error {
	if cfg.StateFile == "" {
		return nil
	}
	openNetFn := cfg.Net
	if openNetFn == nil {
		openNetFn = openNet
	}
	st, err := loadState(cfg.StateFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		glog.Infof("ncc: no state file %s: no links to release", cfg.StateFile)
		return nil
	case err != nil:
		return []error{err}
	case st.GetDesired().GetLbInterface() == nil:
		return nil
	}
	lb := st.GetDesired().GetLbInterface()
	k, err := openNetFn()
	if err != nil {
		return []error{err}
	}
	// What is left: the interface, down, with its own MAC, and nothing of
	// the NCC's on it or in its table; no floating address held (the NAT
	// gateway, a shared LB interface's VIPs: a stopped node holds none).
	// A shared LB interface is the node's own NIC: left up as it is.
	r := reconcile.NewNet(k, glog.Infof)
	r.RememberMACs(savedMACs(st))
	rel := netconf.State{LB: netconf.LBInterface{
		Name: lb.GetName(), Dummy: lb.GetDummyInterface(), Table: int(lb.GetRoutingTable()), Shared: lb.GetShared()}}
	for _, f := range st.GetDesired().GetFloatingAddresses() {
		if p, err := netip.ParsePrefix(f.GetAddress()); err == nil && f.GetInterface() != "" {
			rel.Floating = append(rel.Floating, netconf.Floating{Addr: p, Link: f.GetInterface()})
		}
	}
	return changeErrors(r.Apply(rel, false))
}

// changeErrors are err and the errors of changes.
func changeErrors(changes []reconcile.Change, err error) []error {
	var out []error
	if err != nil {
		out = append(out, err)
	}
	for _, c := range changes {
		if c.Err != nil {
			out = append(out, c.Err)
		}
	}
	return out
}

// openNFT is nftables in the NCC's own namespace.
func openNFT() (*nft.Reconciler, error) { return nft.Open(0, glog.Infof) }

func openIPVS() (reconcile.IPVS, error) {
	c, err := ipvs.New()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// requireRoot refuses any user but root: the NCC changes the host's network
// state and must not run half-able.
func requireRoot(euid int) error {
	if euid != 0 {
		return fmt.Errorf("ncc: must run as root (uid 0), not uid %d: it is the process that changes the host's network state", euid)
	}
	return nil
}

// Run serves the NCC until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	if err := requireRoot(os.Geteuid()); err != nil && !cfg.SkipRootCheck {
		return err
	}
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 30 * time.Second
	}
	if cfg.Probe == nil {
		cfg.Probe = ipvs.Probe
	}
	if cfg.IPVS == nil {
		cfg.IPVS = openIPVS
	}
	if cfg.AuditInterval <= 0 {
		cfg.AuditInterval = 30 * time.Second
	}
	if cfg.Net == nil {
		cfg.Net = openNet
	}
	if cfg.NFT == nil {
		cfg.NFT = openNFT
	}
	if cfg.AnnounceInterval <= 0 {
		cfg.AnnounceInterval = 10 * time.Second
	}
	if cfg.Conntrackd == nil {
		dir := cfg.ConntrackdDir
		if dir == "" {
			dir = filepath.Join(filepath.Dir(cfg.Socket), "conntrackd")
		}
		cfg.Conntrackd = &conntrackd.Daemon{Binary: cfg.ConntrackdBinary, Paths: conntrackd.Paths{Dir: dir}, Logf: glog.Infof}
	}
	policy, gid, err := policy(cfg.EngineUser)
	if err != nil {
		return err
	}

	comp := ipc.NewComponent("ncc")
	comp.SetFacility("dataplane", true, "programs IPVS, the host's links, VIPs, VLANs, routes, rules and sysctls, and the firewall marks and source NAT of its nftables table inet "+nft.Table+"; announces VIPs")
	comp.SetDetail("socket", cfg.Socket)
	probe(comp, cfg.Probe)

	srv, err := ipc.NewServer(ipc.ServerOptions{
		Path:       cfg.Socket,
		DirMode:    0o750,
		SocketMode: 0o660,
		GID:        gid,
		Policy:     policy,
		Logf:       glog.Warningf,
	})
	if err != nil {
		return fmt.Errorf("ncc: %w", err)
	}
	nsrv := newServer(cfg)
	defer nsrv.close()
	nccpb.RegisterNCCServer(srv, nsrv)
	seesawpb.RegisterComponentServer(srv, comp)
	glog.Infof("ncc: serving on %s", cfg.Socket)

	var wg sync.WaitGroup
	wg.Go(func() { every(ctx, cfg.ProbeInterval, func() { probe(comp, cfg.Probe) }) })
	wg.Go(func() { every(ctx, cfg.AnnounceInterval, nsrv.announcePeriodic) })
	wg.Go(func() {
		// Adopt what IPVS holds now, then audit it (and the rest of the
		// applied state) periodically.
		nsrv.audit()
		every(ctx, cfg.AuditInterval, nsrv.audit)
	})
	err = srv.Serve(ctx, 5*time.Second)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("ncc: %w", err)
	}
	glog.Infof("ncc: stopped")
	return nil
}

// NewServer returns the NCC's service for cfg's kernel openers (nil ones
// open the host's), without a socket, an audit or periodic announcements:
// the caller calls Apply, GetState and Announce itself, and Close at the
// end. Nothing is opened before the first call that needs it.
func NewServer(cfg Config) *Server {
	if cfg.IPVS == nil {
		cfg.IPVS = openIPVS
	}
	if cfg.Net == nil {
		cfg.Net = openNet
	}
	if cfg.NFT == nil {
		cfg.NFT = openNFT
	}
	return newServer(cfg)
}

// Close releases what the server opened.
func (s *Server) Close() { s.close() }

func newServer(cfg Config) *Server {
	if cfg.Sender == nil {
		cfg.Sender = func() (FrameSender, error) { return announce.NewSender() }
	}
	return &Server{open: cfg.IPVS, openNet: cfg.Net, openSender: cfg.Sender, openNFT: cfg.NFT, stateFile: cfg.StateFile, ctd: cfg.Conntrackd}
}

// every calls fn every d until ctx is done.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// probe looks for IPVS and records the answer, logging only when it changes.
func probe(comp *ipc.Component, p func() (ipvs.GenlFamily, error)) {
	f, err := p()
	switch {
	case err == nil:
		comp.SetDetail("ipvs_family_id", strconv.Itoa(int(f.ID)))
		if comp.SetFacility("ipvs", true, fmt.Sprintf("generic netlink family %q id %d version %d", ipvs.FamilyName, f.ID, f.Version)) {
			glog.Infof("ncc: IPVS available (generic netlink family id %d)", f.ID)
		}
	case errors.Is(err, ipvs.ErrNotAvailable):
		comp.SetDetail("ipvs_family_id", "")
		if comp.SetFacility("ipvs", false, fmt.Sprintf("%v: %s", ipvs.ErrNotAvailable, ipvs.Hint)) {
			glog.Errorf("ncc: IPVS is not available: %v; the NCC keeps running and reports this in its status", err)
		}
	default:
		comp.SetDetail("ipvs_family_id", "")
		if comp.SetFacility("ipvs", false, err.Error()) {
			glog.Errorf("ncc: cannot tell whether IPVS is available: %v", err)
		}
	}
}

// policy lets root and the engine's user call every method. It also returns
// the engine user's primary group, which owns the socket's directory so that
// the engine can reach the socket.
func policy(engineUser string) (ipc.Policy, int, error) {
	if engineUser == "" {
		glog.Infof("ncc: no engine user given: answering root only")
		return ipc.RootOnly, -1, nil
	}
	uid, gid, err := ipc.LookupUser(engineUser)
	if errors.Is(err, ipc.ErrUnknownName) && engineUser == DefaultEngineUser {
		glog.Infof("ncc: user %q does not exist: answering root only", engineUser)
		return ipc.RootOnly, -1, nil
	}
	if err != nil {
		return ipc.Policy{}, 0, fmt.Errorf("ncc: engine user: %w", err)
	}
	glog.Infof("ncc: answering root and user %q (uid %d)", engineUser, uid)
	r := ipc.Rule{UIDs: []uint32{uid}}
	return ipc.Policy{Read: r, Write: r, Internal: r}, int(gid), nil
}
