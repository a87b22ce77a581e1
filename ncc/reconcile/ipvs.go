// Package reconcile makes the kernel's data plane match a desired state
// with the fewest changes, and says what it changed: IPVSReconciler for
// IPVS, NetReconciler for the host's links, addresses, routes, rules and
// sysctls (see net.go).
//
// The IPVS reconciler owns the whole IPVS table of its network namespace:
// services that are not desired are deleted, one by one. It never flushes,
// so that a service that stays desired keeps its connections, and on its
// first run it reads what the kernel holds and adopts it: an NCC restarted
// with the same desired state writes nothing. Between runs it trusts its
// own record of the kernel, so that applying a state it already applied
// costs no kernel calls at all; Audit reads the kernel again and repairs
// what someone else changed.
package reconcile

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/seesawlb/seesaw/ncc/ipvs"
)

// IPVS is what the reconciler needs of the kernel; *ipvs.Client has it.
// Flush is deliberately not part of it. Write makes changes in order and
// says how each went; the client sends them in batches.
type IPVS interface {
	State() ([]ipvs.ServiceState, error)
	Services() ([]ipvs.ServiceStats, error)
	Destinations(ipvs.ServiceKey) ([]ipvs.DestinationStats, error)
	SyncDaemons() ([]ipvs.SyncDaemon, error)
	Timeouts() (ipvs.Timeouts, error)
	Write([]ipvs.Write) []error
}

// Op is what a change does.
type Op int

// Operations.
const (
	Add Op = iota + 1
	Update
	Delete
)

func (o Op) String() string {
	switch o {
	case Add:
		return "add"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// Kinds of objects.
const (
	KindService     = "ipvs-service"
	KindDestination = "ipvs-destination"
	KindSyncDaemon  = "ipvs-sync-daemon"
	KindTimeouts    = "ipvs-timeouts"
)

// Change is one kernel write, done or failed.
type Change struct {
	Op     Op
	Kind   string // KindService, ...
	Object string // "TCP 192.0.2.1:80", "TCP 192.0.2.1:80 -> 10.0.0.1:80", "master"
	Detail string // what changed, e.g. "weight 1 -> 0"
	Err    error  // nil when it was done (or planned, in a dry run)
}

func (c Change) String() string {
	s := c.Op.String() + " " + c.Kind + " " + c.Object
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	if c.Err != nil {
		s += ": failed: " + c.Err.Error()
	}
	return s
}

// IPVSState is the IPVS part of the data plane.
type IPVSState struct {
	Services    []ipvs.VirtualServer
	SyncDaemons []ipvs.SyncDaemon
	// Timeouts, when set, are the connection timeouts to hold (a zero
	// field: whatever the kernel has); nil leaves them alone.
	Timeouts *ipvs.Timeouts
}

// Validate checks what the kernel cannot hold at once: one service per
// key, one destination per address and port in a service, at most one
// sync daemon per role.
func (s IPVSState) Validate() error {
	seen := map[ipvs.ServiceKey]bool{}
	for _, v := range s.Services {
		if seen[v.ServiceKey] {
			return fmt.Errorf("service %s is listed twice", v.ServiceKey)
		}
		seen[v.ServiceKey] = true
		if d, ok := duplicate(v.Destinations); ok {
			return fmt.Errorf("service %s lists destination %s twice", v.ServiceKey, d)
		}
	}
	roles := map[ipvs.SyncState]bool{}
	for _, d := range s.SyncDaemons {
		if roles[d.State] {
			return fmt.Errorf("two %s sync daemons", d.State)
		}
		roles[d.State] = true
	}
	return nil
}

// duplicate finds a destination listed twice; by comparison for the usual
// handful, by map for more.
func duplicate(ds []ipvs.Destination) (ipvs.Destination, bool) {
	if len(ds) <= 32 {
		for i := range ds {
			for j := i + 1; j < len(ds); j++ {
				if ds[i].Key() == ds[j].Key() {
					return ds[i], true
				}
			}
		}
		return ipvs.Destination{}, false
	}
	seen := make(map[ipvs.DestinationKey]struct{}, len(ds))
	for _, d := range ds {
		if _, ok := seen[d.Key()]; ok {
			return d, true
		}
		seen[d.Key()] = struct{}{}
	}
	return ipvs.Destination{}, false
}

type knownService struct {
	seen  uint64 // the plan that last found it desired
	svc   ipvs.Service
	dests map[ipvs.DestinationKey]ipvs.Destination
	// applied is the destination list, as the caller gave it, that dests
	// was made from by a fully successful apply; nil when dests came from
	// anywhere else. An identical list means no destination changed.
	applied []ipvs.Destination
	// order is the kernel's destination list, head first, for an mh
	// service (whose picks depend on it); nil for the others, and for an
	// mh service whose order is not known.
	order []ipvs.DestinationKey
}

// ordered says whether a service's destination order matters: Maglev
// hashing fills its table walking the list, so two nodes pick alike only
// if they hold the same destinations in the same order. (The kernel puts
// a new destination at the head of the list.)
func ordered(s ipvs.Service) bool { return s.Scheduler == "mh" }

func (ks *knownService) added(dk ipvs.DestinationKey) {
	if ks.order != nil {
		ks.order = slices.Insert(slices.DeleteFunc(ks.order, func(o ipvs.DestinationKey) bool { return o == dk }), 0, dk)
	}
}

func (ks *knownService) deleted(dk ipvs.DestinationKey) {
	if ks.order != nil {
		ks.order = slices.DeleteFunc(ks.order, func(o ipvs.DestinationKey) bool { return o == dk })
	}
}

// IPVSReconciler keeps the kernel's IPVS at a desired state. It is safe for
// concurrent use; runs are serialised.
type IPVSReconciler struct {
	mu       sync.Mutex
	k        IPVS
	logf     func(format string, args ...any)
	known    map[ipvs.ServiceKey]*knownService // nil: read the kernel first
	daemons  []ipvs.SyncDaemon
	timeouts ipvs.Timeouts
	desired  *IPVSState // the last state applied; nil before the first
	gen      uint64     // counts plans, for knownService.seen
}

// NewIPVS returns a reconciler over k. logf gets one line per kernel write
// and per drift found; nil discards them.
func NewIPVS(k IPVS, logf func(format string, args ...any)) *IPVSReconciler {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &IPVSReconciler{k: k, logf: logf}
}

// Forget drops the reconciler's record of the kernel, so that the next run
// reads it again.
func (r *IPVSReconciler) Forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.known = nil
}

// read loads the kernel's state into the record.
func (r *IPVSReconciler) read() error {
	st, err := r.k.State()
	if err != nil {
		return err
	}
	known := make(map[ipvs.ServiceKey]*knownService, len(st))
	for _, s := range st {
		ks := &knownService{svc: s.Service.Normalize(), dests: make(map[ipvs.DestinationKey]ipvs.Destination, len(s.Destinations))}
		if ordered(ks.svc) {
			ks.order = []ipvs.DestinationKey{}
		}
		for _, d := range s.Destinations {
			nd := d.Destination.Normalize()
			ks.dests[nd.Key()] = nd
			if ks.order != nil {
				ks.order = append(ks.order, nd.Key())
			}
		}
		known[s.ServiceKey] = ks
	}
	daemons, err := r.k.SyncDaemons()
	if err != nil {
		return err
	}
	timeouts, err := r.k.Timeouts()
	if err != nil {
		return err
	}
	r.known, r.daemons, r.timeouts = known, daemons, timeouts
	return nil
}

// Known is the reconciler's record of the kernel (read from it when there
// is none), sorted.
func (r *IPVSReconciler) Known() (IPVSState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil {
		if err := r.read(); err != nil {
			return IPVSState{}, err
		}
	}
	var st IPVSState
	for _, ks := range r.known {
		v := ipvs.VirtualServer{Service: ks.svc}
		for _, d := range ks.dests {
			v.Destinations = append(v.Destinations, d)
		}
		slices.SortFunc(v.Destinations, func(a, b ipvs.Destination) int { return strings.Compare(a.String(), b.String()) })
		st.Services = append(st.Services, v)
	}
	slices.SortFunc(st.Services, func(a, b ipvs.VirtualServer) int {
		return strings.Compare(a.ServiceKey.String(), b.ServiceKey.String())
	})
	st.SyncDaemons = slices.Clone(r.daemons)
	t := r.timeouts
	st.Timeouts = &t
	return st, nil
}

// Apply makes the kernel hold desired and returns the writes it made (or
// would make, with dryRun). Writes that failed are in the changes with
// their error; the rest were done. The error is for what stopped the run
// as a whole: an invalid state (a service or destination listed twice, two
// daemons of a role), or a kernel that cannot be read. The reconciler keeps
// desired (for Audit): the caller must not change it afterwards.
func (r *IPVSReconciler) Apply(desired IPVSState, dryRun bool) ([]Change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.apply(desired, dryRun)
}

// Audit reads the kernel and puts back what differs from the last applied
// state (someone ran ipvsadm). Before the first Apply it only reads: what
// the kernel holds then is adopted, not judged.
func (r *IPVSReconciler) Audit() ([]Change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.known = nil
	if r.desired == nil {
		return nil, r.read()
	}
	changes, err := r.apply(*r.desired, false)
	for _, c := range changes {
		r.logf("ipvs: audit: drift repaired: %s", c)
	}
	return changes, err
}

func (r *IPVSReconciler) apply(desired IPVSState, dryRun bool) ([]Change, error) {
	if r.known == nil {
		if err := r.read(); err != nil {
			return nil, fmt.Errorf("reconcile: ipvs: read the kernel's state: %w", err)
		}
	}
	ops, err := r.plan(desired)
	if err != nil {
		return nil, fmt.Errorf("reconcile: ipvs: %w", err)
	}
	if !dryRun {
		r.desired = &desired
	}
	if dryRun {
		out := make([]Change, len(ops))
		for i, o := range ops {
			out[i] = o.change
		}
		return out, nil
	}
	changes, drift := r.run(ops)
	if drift {
		// The kernel was not as recorded (someone else changed it):
		// read it and finish the job from what it really holds. The
		// writes that failed are tried again, so only the second
		// attempt's outcome is reported.
		if err := r.read(); err != nil {
			return changes, fmt.Errorf("reconcile: ipvs: read the kernel's state: %w", err)
		}
		changes = slices.DeleteFunc(changes, func(c Change) bool { return c.Err != nil })
		ops, err := r.plan(desired)
		if err != nil {
			return changes, fmt.Errorf("reconcile: ipvs: %w", err)
		}
		more, _ := r.run(ops)
		changes = append(changes, more...)
	}
	if r.known != nil && !slices.ContainsFunc(changes, func(c Change) bool { return c.Err != nil }) {
		// Everything desired is now in the record as given: the next
		// apply may compare destination lists wholesale.
		for _, v := range desired.Services {
			if ks := r.known[v.ServiceKey]; ks != nil {
				ks.applied = v.Destinations
			}
		}
	}
	return changes, nil
}

// run makes the writes, all in one Write. drift says a write failed
// because the kernel did not hold what the record said.
func (r *IPVSReconciler) run(ops []op) (changes []Change, drift bool) {
	if len(ops) == 0 {
		return nil, false
	}
	ws := make([]ipvs.Write, len(ops))
	for i, o := range ops {
		ws[i] = o.w
	}
	errs := r.k.Write(ws)
	failed := map[ipvs.ServiceKey]bool{}
	for i, o := range ops {
		c := o.change
		if o.needs != nil && failed[*o.needs] {
			continue // its service could not be made, so neither could it
		}
		if err := errs[i]; err != nil {
			c.Err = err
			r.logf("ipvs: %s", c)
			if isDrift(c, err) {
				drift = true
				r.known = nil
			} else if o.failKey != nil {
				failed[*o.failKey] = true
			}
			changes = append(changes, c)
			continue
		}
		r.logf("ipvs: %s", c)
		if r.known != nil {
			o.record(r)
		}
		changes = append(changes, c)
	}
	return changes, drift
}

// isDrift says whether a write failed because the kernel did not hold what
// the record said: what was to be added exists, or what was to be changed
// does not. (A missing scheduler module is also ENOENT, but on an add.)
func isDrift(c Change, err error) bool {
	if errors.Is(err, ipvs.ErrLostAnswers) {
		return true // the outcome is unknown: read the kernel
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EEXIST:
		return c.Op == Add
	case syscall.ESRCH:
		return true // no such service (or no such daemon to stop)
	case syscall.ENOENT:
		return c.Op != Add && c.Kind == KindDestination
	}
	return false
}

// op is one planned write: the change it reports, the write, and how it
// updates the record when it succeeds.
type op struct {
	change  Change
	w       ipvs.Write
	record  func(r *IPVSReconciler)
	needs   *ipvs.ServiceKey // skip when this service failed to be made
	failKey *ipvs.ServiceKey // a failure means this service was not made
}

// compareKeys orders service keys cheaply (no formatting), for a
// deterministic order of deletions.
func compareKeys(a, b ipvs.ServiceKey) int {
	return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.FWMark, b.FWMark),
		cmp.Compare(a.Protocol, b.Protocol), a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}

func compareDests(a, b ipvs.Destination) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}

// plan lists the writes that take the recorded kernel state to desired, in
// an order that never leaves a kept service without destinations it is
// meant to have: old services go first, then each kept service is updated
// (new destinations before old ones leave), then new services come, in the
// order desired lists them.
//
// It runs on every apply over the whole state, so it formats nothing and
// sorts only what goes away.
func (r *IPVSReconciler) plan(desired IPVSState) ([]op, error) {
	// One pass marks the recorded services that stay (and finds a service
	// listed twice), counts what is new, and sizes the op list for a cold
	// start so that appending never copies: an op is a few hundred bytes,
	// and there may be 100,000.
	r.gen++
	n, kept := 4, 0
	var fresh map[ipvs.ServiceKey]struct{}
	for _, v := range desired.Services {
		if ks, ok := r.known[v.ServiceKey]; ok {
			if ks.seen == r.gen {
				return nil, fmt.Errorf("service %s is listed twice", v.ServiceKey)
			}
			ks.seen = r.gen
			kept++
			continue
		}
		if fresh == nil {
			fresh = map[ipvs.ServiceKey]struct{}{}
		}
		if _, dup := fresh[v.ServiceKey]; dup {
			return nil, fmt.Errorf("service %s is listed twice", v.ServiceKey)
		}
		fresh[v.ServiceKey] = struct{}{}
		n += 1 + len(v.Destinations)
	}
	var gone []ipvs.ServiceKey
	if kept < len(r.known) {
		for k, ks := range r.known {
			if ks.seen != r.gen {
				gone = append(gone, k)
			}
		}
		slices.SortFunc(gone, compareKeys)
	}
	n += len(gone)
	ops := make([]op, 0, n)
	for _, k := range gone {
		ops = append(ops, serviceOp(Delete, ipvs.Service{ServiceKey: k}, ipvs.Service{}))
	}
	adds := make([]op, 0, n-len(gone))
	for _, v := range desired.Services {
		k, svc := v.ServiceKey, v.Service.Normalize()
		ks, ok := r.known[k]
		if !ok {
			if d, dup := duplicate(v.Destinations); dup {
				return nil, fmt.Errorf("service %s lists destination %s twice", k, d)
			}
			adds = append(adds, serviceOp(Add, svc, ipvs.Service{}))
			if ordered(svc) {
				// Each goes to the head: the last first.
				for i := len(v.Destinations) - 1; i >= 0; i-- {
					adds = append(adds, destOp(Add, k, v.Destinations[i].Normalize(), ipvs.Destination{}))
				}
				continue
			}
			for _, d := range v.Destinations {
				adds = append(adds, destOp(Add, k, d.Normalize(), ipvs.Destination{}))
			}
			continue
		}
		if ks.svc == svc && ks.applied != nil && slices.Equal(ks.applied, v.Destinations) {
			continue // the usual case: nothing about this service changed
		}
		if d, dup := duplicate(v.Destinations); dup {
			return nil, fmt.Errorf("service %s lists destination %s twice", k, d)
		}
		if ks.svc != svc {
			ops = append(ops, serviceOp(Update, svc, ks.svc))
		}
		if ordered(svc) {
			ops = append(ops, planOrdered(k, ks, ordered(ks.svc), v.Destinations)...)
			continue
		}
		var updates []op
		kept := 0
		for _, d := range v.Destinations {
			d = d.Normalize()
			old, ok := ks.dests[d.Key()]
			switch {
			case !ok:
				ops = append(ops, destOp(Add, k, d, ipvs.Destination{}))
			case old != d:
				kept++
				updates = append(updates, destOp(Update, k, d, old))
			default:
				kept++
			}
		}
		ops = append(ops, updates...)
		if kept == len(ks.dests) {
			continue // plan checked desired's destinations are unique
		}
		wantD := make(map[ipvs.DestinationKey]struct{}, len(v.Destinations))
		for _, d := range v.Destinations {
			wantD[d.Normalize().Key()] = struct{}{}
		}
		var goneD []ipvs.Destination
		for dk, d := range ks.dests {
			if _, ok := wantD[dk]; !ok {
				goneD = append(goneD, d)
			}
		}
		slices.SortFunc(goneD, compareDests)
		for _, d := range goneD {
			ops = append(ops, destOp(Delete, k, d, ipvs.Destination{}))
		}
	}
	ops = append(ops, adds...)
	daemons, err := r.planDaemons(desired.SyncDaemons)
	if err != nil {
		return nil, err
	}
	ops = append(ops, daemons...)
	if t := desired.Timeouts; t != nil {
		want := r.timeouts
		for _, f := range []struct{ want, have *uint32 }{{&t.TCP, &want.TCP}, {&t.TCPFin, &want.TCPFin}, {&t.UDP, &want.UDP}} {
			if *f.want != 0 {
				*f.have = *f.want
			}
		}
		if want != r.timeouts {
			old := r.timeouts
			ops = append(ops, op{
				change: Change{Op: Update, Kind: KindTimeouts, Object: "timeouts", Detail: fmt.Sprintf("tcp %d -> %d, tcpfin %d -> %d, udp %d -> %d",
					old.TCP, want.TCP, old.TCPFin, want.TCPFin, old.UDP, want.UDP)},
				w:      ipvs.Write{Op: ipvs.OpSetTimeouts, Timeouts: want},
				record: func(r *IPVSReconciler) { r.timeouts = want },
			})
		}
	}
	return ops, nil
}

// serviceOp is the write that adds, updates (from old) or deletes a
// service. (A function of its own, so that the closures' variables are
// allocated only for the services that change.)
func serviceOp(o Op, svc, old ipvs.Service) op {
	k := svc.ServiceKey
	switch o {
	case Add:
		return op{
			change: Change{Op: Add, Kind: KindService, Object: k.String(), Detail: describeService(svc)},
			w:      ipvs.Write{Op: ipvs.OpCreateService, Service: svc},
			record: func(r *IPVSReconciler) {
				ks := &knownService{svc: svc, dests: map[ipvs.DestinationKey]ipvs.Destination{}}
				if ordered(svc) {
					ks.order = []ipvs.DestinationKey{}
				}
				r.known[k] = ks
			},
			failKey: &k,
		}
	case Update:
		return op{
			change: Change{Op: Update, Kind: KindService, Object: k.String(), Detail: diffService(old, svc)},
			w:      ipvs.Write{Op: ipvs.OpUpdateService, Service: svc},
			record: func(r *IPVSReconciler) {
				ks := r.known[k]
				if ordered(svc) && !ordered(ks.svc) {
					// The order is unknown; planOrdered re-adds them all.
					ks.order = []ipvs.DestinationKey{}
				} else if !ordered(svc) {
					ks.order = nil
				}
				ks.svc, ks.applied = svc, nil
			},
		}
	}
	return op{
		change: Change{Op: Delete, Kind: KindService, Object: k.String()},
		w:      ipvs.Write{Op: ipvs.OpDeleteService, Service: ipvs.Service{ServiceKey: k}},
		record: func(r *IPVSReconciler) { delete(r.known, k) },
	}
}

func destOp(o Op, k ipvs.ServiceKey, d, old ipvs.Destination) op {
	obj := k.String() + " -> " + d.String()
	switch o {
	case Add:
		return op{
			change: Change{Op: Add, Kind: KindDestination, Object: obj, Detail: describeDest(d)},
			w:      ipvs.Write{Op: ipvs.OpCreateDestination, Service: ipvs.Service{ServiceKey: k}, Destination: d},
			record: func(r *IPVSReconciler) {
				ks := r.known[k]
				ks.dests[d.Key()] = d
				ks.applied = nil
				ks.added(d.Key())
			},
			needs: &k,
		}
	case Update:
		return op{
			change: Change{Op: Update, Kind: KindDestination, Object: obj, Detail: diffDest(old, d)},
			w:      ipvs.Write{Op: ipvs.OpUpdateDestination, Service: ipvs.Service{ServiceKey: k}, Destination: d},
			record: func(r *IPVSReconciler) { r.known[k].dests[d.Key()] = d; r.known[k].applied = nil },
		}
	}
	return op{
		change: Change{Op: Delete, Kind: KindDestination, Object: obj},
		w:      ipvs.Write{Op: ipvs.OpDeleteDestination, Service: ipvs.Service{ServiceKey: k}, Destination: d},
		record: func(r *IPVSReconciler) {
			ks := r.known[k]
			delete(ks.dests, d.Key())
			ks.applied = nil
			ks.deleted(d.Key())
		},
	}
}

// planOrdered plans a kept mh service's destinations so that the kernel's
// list ends up in exactly the order desired gives, whatever the history of
// this node's kernel: the peer, with another history, then holds the same
// list, and Maglev picks the same destination on both for a connection
// that the sync missed. The longest tail of the kernel's list that is
// already right stays; each destination before it is added again, last
// first, so that it lands at the head in turn. Re-adding a destination the
// kernel holds is a delete and an add in one batch: the kernel keeps a
// deleted destination with connections aside and gives the same one back
// on the add, so its connections carry on. Destinations no longer desired
// go last. knownOrder says whether ks.order is the kernel's (it is not
// when the service was just switched to mh: then every one is re-added).
func planOrdered(k ipvs.ServiceKey, ks *knownService, knownOrder bool, want []ipvs.Destination) []op {
	norm := make([]ipvs.Destination, len(want))
	wantKeys := make(map[ipvs.DestinationKey]struct{}, len(want))
	for i, d := range want {
		norm[i] = d.Normalize()
		wantKeys[norm[i].Key()] = struct{}{}
	}
	var kept []ipvs.DestinationKey // the kernel's list without what goes
	if knownOrder {
		for _, dk := range ks.order {
			if _, ok := wantKeys[dk]; ok {
				kept = append(kept, dk)
			}
		}
	}
	tail := 0
	for tail < len(kept) && tail < len(norm) && kept[len(kept)-1-tail] == norm[len(norm)-1-tail].Key() {
		tail++
	}
	var ops []op
	for _, d := range norm[len(norm)-tail:] {
		if old := ks.dests[d.Key()]; old != d {
			ops = append(ops, destOp(Update, k, d, old))
		}
	}
	for i := len(norm) - tail - 1; i >= 0; i-- {
		d := norm[i]
		if old, ok := ks.dests[d.Key()]; ok {
			del := destOp(Delete, k, old, ipvs.Destination{})
			del.change.Detail = "to be added again at the head (mh order)"
			ops = append(ops, del)
		}
		ops = append(ops, destOp(Add, k, d, ipvs.Destination{}))
	}
	var goneD []ipvs.Destination
	for dk, d := range ks.dests {
		if _, ok := wantKeys[dk]; !ok {
			goneD = append(goneD, d)
		}
	}
	slices.SortFunc(goneD, compareDests)
	for _, d := range goneD {
		ops = append(ops, destOp(Delete, k, d, ipvs.Destination{}))
	}
	return ops
}

// daemonMatches says whether a running daemon is the desired one; zero
// optional fields in the desired one take whatever default the kernel
// chose.
func daemonMatches(want, have ipvs.SyncDaemon) bool {
	return want.State == have.State && want.Interface == have.Interface && want.SyncID == have.SyncID &&
		(want.MaxLen == 0 || want.MaxLen == have.MaxLen) &&
		(!want.MulticastGroup.IsValid() || want.MulticastGroup == have.MulticastGroup) &&
		(want.Port == 0 || want.Port == have.Port) &&
		(want.TTL == 0 || want.TTL == have.TTL)
}

func (r *IPVSReconciler) planDaemons(desired []ipvs.SyncDaemon) ([]op, error) {
	for i, d := range desired {
		if slices.IndexFunc(desired[:i], func(o ipvs.SyncDaemon) bool { return o.State == d.State }) >= 0 {
			return nil, fmt.Errorf("two %s sync daemons", d.State)
		}
	}
	var ops []op
	for _, st := range []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup} {
		wi := slices.IndexFunc(desired, func(d ipvs.SyncDaemon) bool { return d.State == st })
		hi := slices.IndexFunc(r.daemons, func(d ipvs.SyncDaemon) bool { return d.State == st })
		if wi >= 0 && hi >= 0 && daemonMatches(desired[wi], r.daemons[hi]) {
			continue
		}
		if hi >= 0 {
			ops = append(ops, op{
				change: Change{Op: Delete, Kind: KindSyncDaemon, Object: st.String(), Detail: describeDaemon(r.daemons[hi])},
				w:      ipvs.Write{Op: ipvs.OpStopSyncDaemon, Daemon: ipvs.SyncDaemon{State: st}},
				record: func(r *IPVSReconciler) {
					r.daemons = slices.DeleteFunc(r.daemons, func(d ipvs.SyncDaemon) bool { return d.State == st })
				},
			})
		}
		if wi >= 0 {
			d := desired[wi]
			ops = append(ops, op{
				change: Change{Op: Add, Kind: KindSyncDaemon, Object: st.String(), Detail: describeDaemon(d)},
				w:      ipvs.Write{Op: ipvs.OpStartSyncDaemon, Daemon: d},
				// The kernel fills in defaults: read them at the next
				// audit; until then the desired values stand for them.
				record: func(r *IPVSReconciler) { r.daemons = append(r.daemons, d) },
			})
		}
	}
	return ops, nil
}

func describeService(s ipvs.Service) string {
	d := "scheduler " + s.Scheduler
	if f := s.Flags &^ ipvs.FlagHashed; f != 0 {
		d += ", flags " + f.String()
	}
	if s.Flags&ipvs.FlagPersistent != 0 {
		d += fmt.Sprintf(", persistence %ds /%d", s.Timeout, s.Netmask)
	}
	return d
}

func diffService(a, b ipvs.Service) string {
	var d []string
	if a.Scheduler != b.Scheduler {
		d = append(d, "scheduler "+a.Scheduler+" -> "+b.Scheduler)
	}
	if a.Flags != b.Flags {
		d = append(d, "flags "+a.Flags.String()+" -> "+b.Flags.String())
	}
	if a.Timeout != b.Timeout {
		d = append(d, fmt.Sprintf("timeout %d -> %d", a.Timeout, b.Timeout))
	}
	if a.Netmask != b.Netmask {
		d = append(d, fmt.Sprintf("netmask /%d -> /%d", a.Netmask, b.Netmask))
	}
	if a.PEName != b.PEName {
		d = append(d, fmt.Sprintf("persistence engine %q -> %q", a.PEName, b.PEName))
	}
	return strings.Join(d, ", ")
}

func describeDest(d ipvs.Destination) string {
	s := fmt.Sprintf("%s weight %d", d.Forward, d.Weight)
	if d.UpperThreshold != 0 || d.LowerThreshold != 0 {
		s += fmt.Sprintf(" thresholds %d/%d", d.UpperThreshold, d.LowerThreshold)
	}
	if d.Forward == ipvs.Tunnel {
		s += " " + d.TunnelType.String()
	}
	return s
}

func diffDest(a, b ipvs.Destination) string {
	var d []string
	if a.Forward != b.Forward {
		d = append(d, "forward "+a.Forward.String()+" -> "+b.Forward.String())
	}
	if a.Weight != b.Weight {
		d = append(d, fmt.Sprintf("weight %d -> %d", a.Weight, b.Weight))
	}
	if a.UpperThreshold != b.UpperThreshold || a.LowerThreshold != b.LowerThreshold {
		d = append(d, fmt.Sprintf("thresholds %d/%d -> %d/%d", a.UpperThreshold, a.LowerThreshold, b.UpperThreshold, b.LowerThreshold))
	}
	if a.TunnelType != b.TunnelType || a.TunnelPort != b.TunnelPort || a.TunnelFlags != b.TunnelFlags {
		d = append(d, fmt.Sprintf("tunnel %s:%d:%d -> %s:%d:%d", a.TunnelType, a.TunnelPort, a.TunnelFlags, b.TunnelType, b.TunnelPort, b.TunnelFlags))
	}
	if a.Family != b.Family {
		d = append(d, "family "+a.Family.String()+" -> "+b.Family.String())
	}
	return strings.Join(d, ", ")
}

func describeDaemon(d ipvs.SyncDaemon) string {
	s := fmt.Sprintf("interface %s sync id %d", d.Interface, d.SyncID)
	if d.MulticastGroup.IsValid() {
		s += " group " + d.MulticastGroup.String()
	}
	if d.Port != 0 {
		s += fmt.Sprintf(" port %d", d.Port)
	}
	if d.TTL != 0 {
		s += fmt.Sprintf(" ttl %d", d.TTL)
	}
	return s
}
