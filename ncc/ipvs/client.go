package ipvs

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"

	"github.com/seesawlb/seesaw/ncc/ipvs/internal/uapi"
)

// dumpAttempts is how many times a dump is read before an interrupted one
// is reported: the kernel marks a dump interrupted when the table changed
// under it, which another writer can cause a few times in a row.
const dumpAttempts = 8

// Client reads and changes the kernel's IPVS tables over one generic
// netlink socket. It is safe for concurrent use; calls are serialised.
type Client struct {
	mu     sync.Mutex
	c      *genetlink.Conn
	nl     *netlink.Conn // the same socket, when the client can batch on it
	family genetlink.Family
	writes atomic.Uint64
	// readers are more sockets for State, which reads one service's
	// destinations per dump: a socket runs one dump at a time, so several
	// read a large table faster.
	readers []*reader
}

type reader struct {
	mu sync.Mutex
	c  *genetlink.Conn
}

// NewClient resolves the IPVS family on c and returns a client that uses c
// (and closes it on Close). A kernel without IPVS gives ErrNotAvailable.
func NewClient(c *genetlink.Conn) (*Client, error) {
	f, err := c.GetFamily(FamilyName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Op: "resolve generic netlink family", Object: FamilyName,
			Err: ErrNotAvailable, Hint: "is ip_vs loaded? " + Hint}
	}
	if err != nil {
		return nil, &Error{Op: "resolve generic netlink family", Object: FamilyName, Err: err}
	}
	return &Client{c: c, family: f}, nil
}

// NewClientNetlink is NewClient on a netlink socket of the generic netlink
// protocol (netlink.Dial(genetlink.Protocol, cfg)), which lets Write send
// changes in batches. Sockets in readers (opened the same way, in the same
// network namespace) let State read in parallel; Close closes them all.
func NewClientNetlink(nc *netlink.Conn, readers ...*netlink.Conn) (*Client, error) {
	c, err := NewClient(genetlink.NewConn(nc))
	if err != nil {
		return nil, err
	}
	c.nl = nc
	for _, r := range readers {
		c.readers = append(c.readers, &reader{c: genetlink.NewConn(r)})
	}
	// Failures then come back without a copy of the request: smaller
	// answers, more of them fit the receive buffer. Not every kernel (or
	// fake) has it; batches work without.
	nc.SetOption(netlink.CapAcknowledge, true)
	return c, nil
}

// Close closes the client's socket.
func (c *Client) Close() error {
	for _, r := range c.readers {
		r.c.Close()
	}
	return c.c.Close()
}

// Writes is how many changing requests (create, update, delete, flush,
// zero, timeouts, daemons) the client has sent, successful or not. A
// reconciler that had nothing to do leaves it unchanged.
func (c *Client) Writes() uint64 { return c.writes.Load() }

// message builds a request of cmd with the attributes fn writes.
func message(cmd uint8, fn func(ae *netlink.AttributeEncoder)) (genetlink.Message, error) {
	ae := netlink.NewAttributeEncoder()
	if fn != nil {
		fn(ae)
	}
	b, err := ae.Encode()
	if err != nil {
		return genetlink.Message{}, err
	}
	return genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: uapi.IPVS_GENL_VERSION},
		Data:   b,
	}, nil
}

// request sends a changing request that is not a Write (flush, zero,
// timeouts) and waits for the kernel's answer.
func (c *Client) request(cmd uint8, fn func(ae *netlink.AttributeEncoder)) error {
	m, err := message(cmd, fn)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes.Add(1)
	_, err = c.c.Execute(m, c.family.ID, netlink.Request|netlink.Acknowledge)
	return err
}

// get sends a request that has one reply.
func (c *Client) get(cmd uint8, fn func(ae *netlink.AttributeEncoder)) (genetlink.Message, error) {
	m, err := message(cmd, fn)
	if err != nil {
		return genetlink.Message{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs, err := c.c.Execute(m, c.family.ID, netlink.Request)
	if err != nil {
		return genetlink.Message{}, err
	}
	if len(msgs) != 1 {
		return genetlink.Message{}, fmt.Errorf("%d replies, want 1", len(msgs))
	}
	return msgs[0], nil
}

// dump reads a whole table, reading it again while the kernel marks the
// dump interrupted.
func (c *Client) dump(cmd uint8, fn func(ae *netlink.AttributeEncoder)) ([]genetlink.Message, error) {
	return c.dumpOn(&c.mu, c.c, cmd, fn)
}

func (c *Client) dumpOn(mu *sync.Mutex, gc *genetlink.Conn, cmd uint8, fn func(ae *netlink.AttributeEncoder)) ([]genetlink.Message, error) {
	m, err := message(cmd, fn)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	for range dumpAttempts {
		req, err := gc.Send(m, c.family.ID, netlink.Request|netlink.Dump)
		if err != nil {
			return nil, err
		}
		msgs, nmsgs, err := gc.Receive()
		if err != nil {
			return nil, err
		}
		if err := netlink.Validate(req, nmsgs); err != nil {
			return nil, err
		}
		interrupted := false
		for _, nm := range nmsgs {
			if nm.Header.Flags&netlink.DumpInterrupted != 0 {
				interrupted = true
			}
		}
		if !interrupted {
			return msgs, nil
		}
	}
	return nil, fmt.Errorf("%w (read %d times)", ErrDumpInterrupted, dumpAttempts)
}

// Info reports IPVS's version and connection table size.
func (c *Client) Info() (Info, error) {
	m, err := c.get(uapi.IPVS_CMD_GET_INFO, nil)
	if err != nil {
		return Info{}, newError("get info", "", err, "")
	}
	i, err := decodeInfo(m.Data)
	if err != nil {
		return Info{}, newError("get info", "", fmt.Errorf("decode: %w", err), "")
	}
	return i, nil
}

// Services lists every virtual service with its statistics.
func (c *Client) Services() ([]ServiceStats, error) {
	msgs, err := c.dump(uapi.IPVS_CMD_GET_SERVICE, nil)
	if err != nil {
		return nil, newError("list services", "", err, "")
	}
	out := make([]ServiceStats, 0, len(msgs))
	for _, m := range msgs {
		s, err := decodeServiceMessage(m.Data)
		if err != nil {
			return nil, newError("list services", "", err, "")
		}
		out = append(out, s)
	}
	return out, nil
}

func decodeServiceMessage(b []byte) (ServiceStats, error) {
	a, err := nested(b, uapi.IPVS_CMD_ATTR_SERVICE)
	if err != nil {
		return ServiceStats{}, fmt.Errorf("decode service: %w", err)
	}
	s, err := decodeService(a)
	if err != nil {
		return ServiceStats{}, fmt.Errorf("decode service: %w", err)
	}
	return s, nil
}

// Service reads one service. A missing one matches fs.ErrNotExist.
func (c *Client) Service(k ServiceKey) (ServiceStats, error) {
	if err := k.validate(); err != nil {
		return ServiceStats{}, &Error{Op: "get service", Object: k.String(), Err: err}
	}
	m, err := c.get(uapi.IPVS_CMD_GET_SERVICE, serviceKeyAttr(k))
	if err != nil {
		return ServiceStats{}, newError("get service", k.String(), err, "")
	}
	s, err := decodeServiceMessage(m.Data)
	if err != nil {
		return ServiceStats{}, newError("get service", k.String(), err, "")
	}
	return s, nil
}

func serviceKeyAttr(k ServiceKey) func(*netlink.AttributeEncoder) {
	return func(ae *netlink.AttributeEncoder) {
		ae.Nested(uapi.IPVS_CMD_ATTR_SERVICE, func(nae *netlink.AttributeEncoder) error {
			encodeServiceKey(nae, k)
			return nil
		})
	}
}

func serviceAttr(s Service) func(*netlink.AttributeEncoder) {
	return func(ae *netlink.AttributeEncoder) {
		ae.Nested(uapi.IPVS_CMD_ATTR_SERVICE, func(nae *netlink.AttributeEncoder) error {
			encodeService(nae, s)
			return nil
		})
	}
}

// CreateService adds a virtual service. An existing one matches
// fs.ErrExist.
func (c *Client) CreateService(s Service) error {
	return c.Write([]Write{{Op: OpCreateService, Service: s}})[0]
}

// UpdateService changes a service's scheduler, flags, timeout and netmask
// in place, keeping its destinations and connections.
func (c *Client) UpdateService(s Service) error {
	return c.Write([]Write{{Op: OpUpdateService, Service: s}})[0]
}

// DeleteService removes a service and its destinations. A missing one
// matches fs.ErrNotExist.
func (c *Client) DeleteService(k ServiceKey) error {
	return c.Write([]Write{{Op: OpDeleteService, Service: Service{ServiceKey: k}}})[0]
}

// Flush removes every service. The NCC never calls it (it would drop every
// connection); it is for tests and tools.
func (c *Client) Flush() error {
	if err := c.request(uapi.IPVS_CMD_FLUSH, nil); err != nil {
		return newError("flush", "", err, "")
	}
	return nil
}

// ZeroStats resets the counters of one service, or of all services when k
// is the zero ServiceKey.
func (c *Client) ZeroStats(k ServiceKey) error {
	var fn func(*netlink.AttributeEncoder)
	obj := "all services"
	if k != (ServiceKey{}) {
		if err := k.validate(); err != nil {
			return &Error{Op: "zero counters", Object: k.String(), Err: err}
		}
		fn, obj = serviceKeyAttr(k), k.String()
	}
	if err := c.request(uapi.IPVS_CMD_ZERO, fn); err != nil {
		return newError("zero counters", obj, err, "")
	}
	return nil
}

// Destinations lists a service's destinations with their statistics. A
// missing service matches fs.ErrNotExist.
func (c *Client) Destinations(k ServiceKey) ([]DestinationStats, error) {
	return c.destinationsOn(&c.mu, c.c, k)
}

func (c *Client) destinationsOn(mu *sync.Mutex, gc *genetlink.Conn, k ServiceKey) ([]DestinationStats, error) {
	if err := k.validate(); err != nil {
		return nil, &Error{Op: "list destinations", Object: k.String(), Err: err}
	}
	msgs, err := c.dumpOn(mu, gc, uapi.IPVS_CMD_GET_DEST, serviceKeyAttr(k))
	if err != nil {
		return nil, newError("list destinations", k.String(), err, "")
	}
	if len(msgs) == 0 {
		// The kernel answers a dump for a missing service with nothing;
		// tell that apart from a service without destinations.
		if _, err := c.Service(k); err != nil {
			return nil, err
		}
	}
	out := make([]DestinationStats, 0, len(msgs))
	for _, m := range msgs {
		d, err := decodeDestinationMessage(m.Data, k.Family)
		if err != nil {
			return nil, newError("list destinations", k.String(), err, "")
		}
		out = append(out, d)
	}
	return out, nil
}

func decodeDestinationMessage(b []byte, f Family) (DestinationStats, error) {
	a, err := nested(b, uapi.IPVS_CMD_ATTR_DEST)
	if err != nil {
		return DestinationStats{}, fmt.Errorf("decode destination: %w", err)
	}
	d, err := decodeDestination(a, f)
	if err != nil {
		return DestinationStats{}, fmt.Errorf("decode destination: %w", err)
	}
	return d, nil
}

// CreateDestination adds a destination to a service. A missing service
// matches fs.ErrNotExist, an existing destination fs.ErrExist.
func (c *Client) CreateDestination(k ServiceKey, d Destination) error {
	return c.Write([]Write{{Op: OpCreateDestination, Service: Service{ServiceKey: k}, Destination: d}})[0]
}

// UpdateDestination changes a destination's forwarding method, weight,
// thresholds and tunnel settings in place.
func (c *Client) UpdateDestination(k ServiceKey, d Destination) error {
	return c.Write([]Write{{Op: OpUpdateDestination, Service: Service{ServiceKey: k}, Destination: d}})[0]
}

func destObject(k ServiceKey, d Destination) string { return k.String() + " -> " + d.String() }

// DeleteDestination removes a destination (named by its address and port)
// from a service. A missing one matches fs.ErrNotExist.
func (c *Client) DeleteDestination(k ServiceKey, d Destination) error {
	return c.Write([]Write{{Op: OpDeleteDestination, Service: Service{ServiceKey: k}, Destination: d}})[0]
}

// Timeouts reads the TCP, TCP-FIN and UDP connection timeouts.
func (c *Client) Timeouts() (Timeouts, error) {
	m, err := c.get(uapi.IPVS_CMD_GET_CONFIG, nil)
	if err != nil {
		return Timeouts{}, newError("get timeouts", "", err, "")
	}
	t, err := decodeTimeouts(m.Data)
	if err != nil {
		return Timeouts{}, newError("get timeouts", "", fmt.Errorf("decode: %w", err), "")
	}
	return t, nil
}

// SetTimeouts sets the connection timeouts; a zero field is left as it is.
func (c *Client) SetTimeouts(t Timeouts) error {
	err := c.request(uapi.IPVS_CMD_SET_CONFIG, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP, t.TCP)
		ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, t.TCPFin)
		ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_UDP, t.UDP)
	})
	if err != nil {
		return newError("set timeouts", "", err, "")
	}
	return nil
}

// SyncDaemons lists the running connection-sync daemons (at most a master
// and a backup).
func (c *Client) SyncDaemons() ([]SyncDaemon, error) {
	msgs, err := c.dump(uapi.IPVS_CMD_GET_DAEMON, nil)
	if err != nil {
		return nil, newError("list sync daemons", "", err, "")
	}
	var out []SyncDaemon
	for _, m := range msgs {
		d, err := decodeDaemonMessage(m.Data)
		if err != nil {
			return nil, newError("list sync daemons", "", err, "")
		}
		out = append(out, d)
	}
	return out, nil
}

func decodeDaemonMessage(b []byte) (SyncDaemon, error) {
	a, err := nested(b, uapi.IPVS_CMD_ATTR_DAEMON)
	if err != nil {
		return SyncDaemon{}, fmt.Errorf("decode sync daemon: %w", err)
	}
	d, err := decodeDaemon(a)
	if err != nil {
		return SyncDaemon{}, fmt.Errorf("decode sync daemon: %w", err)
	}
	return d, nil
}

// StartSyncDaemon starts a master or backup sync daemon. One of each may
// run; starting a second of the same role matches fs.ErrExist.
func (c *Client) StartSyncDaemon(d SyncDaemon) error {
	return c.Write([]Write{{Op: OpStartSyncDaemon, Daemon: d}})[0]
}

// StopSyncDaemon stops the master or the backup sync daemon.
func (c *Client) StopSyncDaemon(s SyncState) error {
	return c.Write([]Write{{Op: OpStopSyncDaemon, Daemon: SyncDaemon{State: s}}})[0]
}

// State reads every service with its destinations and statistics. A
// service deleted between the two reads is left out. With reader sockets
// (New opens some) it reads several services' destinations at once.
func (c *Client) State() ([]ServiceState, error) {
	svcs, err := c.Services()
	if err != nil {
		return nil, err
	}
	out := make([]ServiceState, len(svcs))
	gone := make([]bool, len(svcs))
	type worker struct {
		mu *sync.Mutex
		c  *genetlink.Conn
	}
	workers := []worker{{&c.mu, c.c}}
	if len(svcs) >= 16 {
		for _, r := range c.readers {
			workers = append(workers, worker{&r.mu, r.c})
		}
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	for _, w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(svcs) {
					return
				}
				ds, err := c.destinationsOn(w.mu, w.c, svcs[i].ServiceKey)
				switch {
				case errors.Is(err, fs.ErrNotExist):
					gone[i] = true
				case err != nil:
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					next.Store(int64(len(svcs))) // stop the others
					return
				default:
					out[i] = ServiceState{ServiceStats: svcs[i], Destinations: ds}
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	kept := out[:0]
	for i := range out {
		if !gone[i] {
			kept = append(kept, out[i])
		}
	}
	return kept, nil
}
