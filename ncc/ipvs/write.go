package ipvs

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"

	"github.com/seesawlb/seesaw/ncc/ipvs/internal/uapi"
)

// WriteOp is a kind of change to the kernel's IPVS.
type WriteOp uint8

// The changes a Write can make.
const (
	OpCreateService WriteOp = iota + 1
	OpUpdateService
	OpDeleteService
	OpCreateDestination
	OpUpdateDestination
	OpDeleteDestination
	OpStartSyncDaemon
	OpStopSyncDaemon
	OpSetTimeouts
)

func (o WriteOp) String() string {
	switch o {
	case OpCreateService:
		return "create service"
	case OpUpdateService:
		return "update service"
	case OpDeleteService:
		return "delete service"
	case OpCreateDestination:
		return "create destination"
	case OpUpdateDestination:
		return "update destination"
	case OpDeleteDestination:
		return "delete destination"
	case OpStartSyncDaemon:
		return "start sync daemon"
	case OpStopSyncDaemon:
		return "stop sync daemon"
	case OpSetTimeouts:
		return "set timeouts"
	}
	return fmt.Sprintf("write(%d)", uint8(o))
}

// Write is one change for Client.Write.
type Write struct {
	Op WriteOp
	// Service is the service to create or update; for the other service
	// and destination writes only its key is used.
	Service Service
	// Destination is the destination to create or update; for deletes
	// only its address, port and family are used.
	Destination Destination
	// Daemon is the sync daemon to start; for stops only its State.
	Daemon SyncDaemon
	// Timeouts are the connection timeouts to set; a zero one is left.
	Timeouts Timeouts
}

func (w Write) object() string {
	switch w.Op {
	case OpCreateDestination, OpUpdateDestination, OpDeleteDestination:
		return destObject(w.Service.ServiceKey, w.Destination)
	case OpStartSyncDaemon:
		return w.Daemon.State.String() + " on " + w.Daemon.Interface
	case OpStopSyncDaemon:
		return w.Daemon.State.String()
	case OpSetTimeouts:
		return fmt.Sprintf("tcp %d tcpfin %d udp %d", w.Timeouts.TCP, w.Timeouts.TCPFin, w.Timeouts.UDP)
	}
	return w.Service.ServiceKey.String()
}

// validate refuses what the kernel would refuse with a bare EINVAL, so that
// the error says why.
func (w Write) validate() error {
	switch w.Op {
	case OpCreateService, OpUpdateService:
		return w.Service.validate()
	case OpDeleteService:
		return w.Service.ServiceKey.validate()
	case OpCreateDestination, OpUpdateDestination:
		if err := w.Service.ServiceKey.validate(); err != nil {
			return err
		}
		return w.Destination.validate()
	case OpDeleteDestination:
		if err := w.Service.ServiceKey.validate(); err != nil {
			return err
		}
		if !w.Destination.Addr.IsValid() {
			return errors.New("destination has no address")
		}
		return nil
	case OpStartSyncDaemon:
		return w.Daemon.validate()
	case OpStopSyncDaemon:
		if s := w.Daemon.State; s != SyncMaster && s != SyncBackup {
			return errors.New("neither master nor backup")
		}
		return nil
	case OpSetTimeouts:
		return nil
	}
	return fmt.Errorf("unknown write %d", w.Op)
}

// message is the request that makes the change.
func (w Write) message() (genetlink.Message, error) {
	key := w.Service.ServiceKey
	switch w.Op {
	case OpCreateService:
		return message(uapi.IPVS_CMD_NEW_SERVICE, serviceAttr(w.Service))
	case OpUpdateService:
		return message(uapi.IPVS_CMD_SET_SERVICE, serviceAttr(w.Service))
	case OpDeleteService:
		return message(uapi.IPVS_CMD_DEL_SERVICE, serviceKeyAttr(key))
	case OpCreateDestination, OpUpdateDestination:
		cmd := uint8(uapi.IPVS_CMD_NEW_DEST)
		if w.Op == OpUpdateDestination {
			cmd = uapi.IPVS_CMD_SET_DEST
		}
		return message(cmd, func(ae *netlink.AttributeEncoder) {
			serviceKeyAttr(key)(ae)
			ae.Nested(uapi.IPVS_CMD_ATTR_DEST, func(nae *netlink.AttributeEncoder) error {
				encodeDestination(nae, w.Destination)
				return nil
			})
		})
	case OpDeleteDestination:
		return message(uapi.IPVS_CMD_DEL_DEST, func(ae *netlink.AttributeEncoder) {
			serviceKeyAttr(key)(ae)
			ae.Nested(uapi.IPVS_CMD_ATTR_DEST, func(nae *netlink.AttributeEncoder) error {
				encodeDestinationKey(nae, w.Destination)
				return nil
			})
		})
	case OpStartSyncDaemon:
		return message(uapi.IPVS_CMD_NEW_DAEMON, func(ae *netlink.AttributeEncoder) {
			ae.Nested(uapi.IPVS_CMD_ATTR_DAEMON, func(nae *netlink.AttributeEncoder) error {
				encodeDaemon(nae, w.Daemon)
				return nil
			})
		})
	case OpStopSyncDaemon:
		return message(uapi.IPVS_CMD_DEL_DAEMON, func(ae *netlink.AttributeEncoder) {
			ae.Nested(uapi.IPVS_CMD_ATTR_DAEMON, func(nae *netlink.AttributeEncoder) error {
				nae.Uint32(uapi.IPVS_DAEMON_ATTR_STATE, uint32(w.Daemon.State))
				return nil
			})
		})
	case OpSetTimeouts:
		return message(uapi.IPVS_CMD_SET_CONFIG, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP, w.Timeouts.TCP)
			ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, w.Timeouts.TCPFin)
			ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_UDP, w.Timeouts.UDP)
		})
	}
	return genetlink.Message{}, fmt.Errorf("unknown write %d", w.Op)
}

// batchSize is how many requests go in one sendmsg. The kernel answers only
// those that fail (and the last), each answer a small datagram in the
// socket's receive buffer (212 KiB by default), so even a batch that fails
// whole fits.
const batchSize = 128

// answerWait bounds the wait for a batch's answers after sendmsg returns.
// The kernel handles netlink requests in the sender's system call, so every
// answer it will ever send is queued by then and is read at once; the wait
// only runs out when an answer never comes, which is what the kernel does
// for a request whose handler says it was interrupted (EINTR: stopping a
// sync daemon whose thread had not run yet). A short bound keeps that from
// stalling the NCC.
const answerWait = 250 * time.Millisecond

// Write makes the changes in order and returns one error per change (nil:
// done). Each error is what the single call (CreateService, ...) would
// return. The kernel takes the changes one after another as if they were
// sent one by one: a change that fails does not stop the next.
//
// On a socket the client opened itself (New, NewClientNetlink), the changes
// travel in batches: one system call sends many requests, and the kernel
// answers only the ones that fail, plus the last of each batch so that the
// client knows it has heard everything. That makes a cold start of
// thousands of services as fast as the kernel allows.
func (c *Client) Write(ws []Write) []error {
	errs := make([]error, len(ws))
	msgs := make([]genetlink.Message, 0, len(ws))
	idx := make([]int, 0, len(ws))
	for i, w := range ws {
		if err := w.validate(); err != nil {
			errs[i] = &Error{Op: w.Op.String(), Object: w.object(), Err: err}
			continue
		}
		m, err := w.message()
		if err != nil {
			errs[i] = &Error{Op: w.Op.String(), Object: w.object(), Err: err}
			continue
		}
		msgs = append(msgs, m)
		idx = append(idx, i)
	}
	c.mu.Lock()
	c.writes.Add(uint64(len(msgs)))
	var kerrs []error
	if c.nl != nil {
		kerrs = c.sendBatches(msgs)
	} else {
		kerrs = make([]error, len(msgs))
		for j, m := range msgs {
			_, kerrs[j] = c.c.Execute(m, c.family.ID, netlink.Request|netlink.Acknowledge)
		}
	}
	c.mu.Unlock()
	for j, err := range kerrs {
		w := ws[idx[j]]
		if w.Op == OpStopSyncDaemon && errors.Is(err, ErrNoAnswer) {
			// Stopping a daemon whose thread had not run yet ends
			// in EINTR, unanswered, with the daemon stopped: ask.
			if ds, lerr := c.SyncDaemons(); lerr == nil && !slices.ContainsFunc(ds, func(d SyncDaemon) bool { return d.State == w.Daemon.State }) {
				err = nil
			}
		}
		if err != nil {
			sched := ""
			if w.Op == OpCreateService || w.Op == OpUpdateService {
				sched = w.Service.Scheduler
			}
			errs[idx[j]] = newError(w.Op.String(), w.object(), err, sched)
		}
	}
	return errs
}

// ErrNoAnswer is wrapped when the kernel sent no answer to a change: it
// does not acknowledge a request whose handler reports EINTR, so the change
// may or may not have been made, and the caller should read the kernel's
// state. (Write itself does that for a sync daemon stop.)
var ErrNoAnswer = errors.New("the kernel sent no answer (it sends none for a request it reports as interrupted); read the state to know whether the change was made")

// ErrLostAnswers is wrapped when the kernel's answers to a batch could not
// all be read (the receive buffer overflowed): those changes may or may not
// have been made, and the caller should read the kernel's state.
var ErrLostAnswers = errors.New("answers to a batch of changes were lost")

// sendBatches sends msgs in batches on the raw netlink socket. Hold c.mu.
func (c *Client) sendBatches(msgs []genetlink.Message) []error {
	errs := make([]error, len(msgs))
	if len(msgs) == 0 {
		return errs
	}
	defer c.nl.SetReadDeadline(time.Time{})
	for start := 0; start < len(msgs); start += batchSize {
		end := min(start+batchSize, len(msgs))
		c.sendBatch(msgs[start:end], errs[start:end])
	}
	return errs
}

func (c *Client) sendBatch(msgs []genetlink.Message, errs []error) {
	nms := make([]netlink.Message, len(msgs))
	for i, m := range msgs {
		b, err := m.MarshalBinary()
		if err != nil {
			errs[i] = err
			continue
		}
		nms[i] = netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(c.family.ID), Flags: netlink.Request}, Data: b}
	}
	// Only the last asks for an acknowledgement: its answer closes the
	// batch. Failures are answered anyway.
	nms[len(nms)-1].Header.Flags |= netlink.Acknowledge
	sent, err := c.nl.SendMessages(nms)
	if err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return
	}
	c.nl.SetReadDeadline(time.Now().Add(answerWait))
	bySeq := make(map[uint32]int, len(sent))
	for i, m := range sent {
		bySeq[m.Header.Sequence] = i
	}
	last := sent[len(sent)-1].Header.Sequence
	for {
		ms, err := c.nl.Receive()
		var oe *netlink.OpError
		if err != nil && errors.As(err, &oe) && oe.Sequence != 0 {
			i, ok := bySeq[oe.Sequence]
			if !ok {
				continue // a late answer to an earlier batch
			}
			errs[i] = oe
			if oe.Sequence == last {
				return
			}
			continue
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Every answer was queued before sendmsg returned,
				// and the kernel answers every failure, so the
				// unanswered requests before the last succeeded
				// (or were interrupted: see answerWait). Only the
				// last, which asked for an answer, is in doubt.
				if errs[len(errs)-1] == nil {
					errs[len(errs)-1] = ErrNoAnswer
				}
				return
			}
			// The answers are lost (ENOBUFS) or could not be read:
			// say so of every change not yet answered.
			lost := fmt.Errorf("%w: %w", ErrLostAnswers, err)
			if errors.Is(err, syscall.ENOBUFS) {
				lost = fmt.Errorf("%w (%w)", ErrLostAnswers, syscall.ENOBUFS)
			}
			for i := range errs {
				if errs[i] == nil {
					errs[i] = lost
				}
			}
			return
		}
		for _, m := range ms {
			if m.Header.Sequence == last {
				return
			}
		}
	}
}
