package healthcheck

import (
	"bufio"
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ioLoop runs plain TCP and HTTP checks without a goroutine per check: the
// run's goroutine starts the connection and leaves; one goroutine waits on
// an epoll set for every check in flight and finishes each as its socket
// becomes ready or its deadline passes. At thousands of checks a second
// this saves the parking, waking and stack growth of a goroutine per check
// blocked in the runtime's poller, which cost more than the check's own
// system calls. TLS checks, and the rarer types, keep to goroutines.
//
// The loop also keeps time for tickers (a Manager's scheduler): each turn
// it calls them, and waits no longer than the next time they ask for, so
// that starting the runs that fall due and finishing those in flight share
// one thread and one wait.
type ioLoop struct {
	epfd       int
	wakefd     int          // an eventfd in the epoll set, written to wake the loop
	sleepUntil atomic.Int64 // when the loop's current wait ends (UnixNano)
	done       chan struct{}

	mu      sync.Mutex
	ops     map[uint64]*ioOp
	dls     opHeap
	nextID  uint64
	tickers []ticker
	closed  bool
}

// ticker is called by the loop on every turn with the time; it returns
// when it next wants to be called (zero: no need).
type ticker interface {
	tick(now time.Time) time.Time
}

// loopProbe is a checker that runs on the loop: ready advances a run when
// its socket is ready (finished reports an outcome), expire ends one whose
// deadline passed.
type loopProbe interface {
	ready(l *ioLoop, op *ioOp) (o Outcome, finished bool)
	expire(op *ioOp) Outcome
}

// ioOp is one run in flight on the loop.
type ioOp struct {
	id       uint64
	fd       int
	sa       *rawSockaddr
	deadline time.Time
	idx      int // in ioLoop.dls
	probe    loopProbe
	done     func(Outcome)

	phase phase
	sent  int    // bytes of the request written
	buf   []byte // what has been read
	eof   bool   // the peer closed
}

// maxWait bounds each wait (wakeups are normally sooner: the next run due,
// the next deadline, a wakeup call).
const maxWait = time.Second

func newIOLoop() (*ioLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	// Id 0 is the eventfd's; ops count from 1.
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l := &ioLoop{epfd: epfd, wakefd: wakefd, done: make(chan struct{}), ops: map[uint64]*ioOp{}}
	go l.run()
	return l, nil
}

// wakeup makes the loop take a turn now.
func (l *ioLoop) wakeup() {
	one := [8]byte{1}
	sysWrite(l.wakefd, one[:])
}

func (l *ioLoop) addTicker(t ticker) {
	l.mu.Lock()
	l.tickers = append(l.tickers, t)
	l.mu.Unlock()
	l.wakeup()
}

// removeTicker stops calling t; a call in progress may still finish.
func (l *ioLoop) removeTicker(t ticker) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.Index(l.tickers, t); i >= 0 {
		l.tickers = slices.Delete(l.tickers, i, i+1)
	}
}

// add puts op's socket in the epoll set, waiting for events. The socket
// is registered before the op is listed, so that the loop can never close
// the socket (on a passed deadline) before it is registered: an event that
// comes before the op is listed is reported again, epoll being level-
// triggered here.
func (l *ioLoop) add(op *ioOp, events uint32) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errors.New("check cancelled")
	}
	l.nextID++
	op.id = l.nextID
	l.mu.Unlock()
	ev := unix.EpollEvent{Events: events, Fd: int32(op.id), Pad: int32(op.id >> 32)}
	if err := sysEpollCtl(l.epfd, unix.EPOLL_CTL_ADD, op.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errors.New("check cancelled")
	}
	l.ops[op.id] = op
	heap.Push(&l.dls, op)
	l.mu.Unlock()
	// Added from another goroutine while the loop sleeps past its deadline.
	if op.deadline.UnixNano() < l.sleepUntil.Load() {
		l.wakeup()
	}
	return nil
}

// wait changes the events op waits for. Only the loop calls it.
func (l *ioLoop) wait(op *ioOp, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(op.id), Pad: int32(op.id >> 32)}
	if err := sysEpollCtl(l.epfd, unix.EPOLL_CTL_MOD, op.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

func (l *ioLoop) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return
	}
	l.closed = true
	l.mu.Unlock()
	l.wakeup()
	<-l.done
}

func (l *ioLoop) run() {
	defer close(l.done)
	defer unix.Close(l.epfd)
	defer unix.Close(l.wakefd)
	events := make([]unix.EpollEvent, 512)
	var expired []*ioOp
	var tickers []ticker
	for {
		now := time.Now()
		l.mu.Lock()
		if l.closed {
			ops := l.ops
			l.ops, l.dls = nil, nil
			l.mu.Unlock()
			for _, op := range ops {
				closeFD(op.fd)
				op.done(Outcome{Message: "check cancelled"})
			}
			return
		}
		tickers = append(tickers[:0], l.tickers...)
		l.mu.Unlock()
		next := now.Add(maxWait)
		for _, t := range tickers {
			if n := t.tick(now); !n.IsZero() && n.Before(next) {
				next = n
			}
		}
		now = time.Now() // starting runs takes time
		wait := next.Sub(now)
		// Say the loop is going to sleep before looking at the deadlines: a
		// run added after that look sees this and wakes the loop (see add).
		l.sleepUntil.Store(now.Add(maxWait).UnixNano())
		l.mu.Lock()
		if len(l.dls) > 0 {
			wait = min(wait, l.dls[0].deadline.Sub(now))
		}
		l.mu.Unlock()
		// Round up: waking early would only mean waiting again.
		ms := max(int((wait+time.Millisecond-1)/time.Millisecond), 0)
		l.sleepUntil.Store(now.Add(time.Duration(ms) * time.Millisecond).UnixNano())
		n, err := unix.EpollWait(l.epfd, events, ms)
		l.sleepUntil.Store(0)
		if err != nil && err != unix.EINTR {
			// Not expected; keep the checks' deadlines working.
			time.Sleep(time.Millisecond)
		}
		l.handle(events[:max(n, 0)])
		// Take every event that is ready before judging any run timed
		// out: after a stall, a reply may be waiting for a run whose
		// deadline has passed since.
		for n == len(events) {
			n, _ = unix.EpollWait(l.epfd, events, 0)
			l.handle(events[:max(n, 0)])
		}
		now = time.Now()
		l.mu.Lock()
		for len(l.dls) > 0 && !l.dls[0].deadline.After(now) {
			expired = append(expired, heap.Pop(&l.dls).(*ioOp))
		}
		l.mu.Unlock()
		for i, op := range expired {
			l.finish(op, op.probe.expire(op))
			expired[i] = nil
		}
		expired = expired[:0]
	}
}

// handle advances the runs whose sockets are ready.
func (l *ioLoop) handle(events []unix.EpollEvent) {
	for i := range events {
		id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
		if id == 0 {
			var b [8]byte
			sysRead(l.wakefd, b[:])
			continue
		}
		l.mu.Lock()
		op := l.ops[id]
		l.mu.Unlock()
		if op == nil {
			continue // finished already, or not listed yet
		}
		if o, finished := op.probe.ready(l, op); finished {
			l.finish(op, o)
		}
	}
}

// finish ends op: unlisted, its socket closed (which also takes it out of
// the epoll set), its outcome reported.
func (l *ioLoop) finish(op *ioOp, o Outcome) {
	l.mu.Lock()
	if l.ops[op.id] != op {
		l.mu.Unlock()
		return
	}
	delete(l.ops, op.id)
	if op.idx >= 0 {
		heap.Remove(&l.dls, op.idx)
	}
	l.mu.Unlock()
	closeFD(op.fd)
	if op.buf != nil {
		readBufs.Put(op.buf[:0])
		op.buf = nil
	}
	op.done(o)
}

// readBufs recycles the read buffers of runs in flight.
var readBufs = sync.Pool{New: func() any { return make([]byte, 0, 1024) }}

// read reads once into op.buf, up to limit bytes in all: a reply usually
// comes whole, and if not, the loop (level-triggered) says when there is
// more, so reading on until EAGAIN would mostly cost a call. It returns an
// error other than EAGAIN; the peer closing sets op.eof.
func (op *ioOp) read(limit int) error {
	if op.buf == nil {
		op.buf = readBufs.Get().([]byte)
	}
	for len(op.buf) < limit && !op.eof {
		if len(op.buf) == cap(op.buf) {
			op.buf = append(op.buf, 0)[:len(op.buf)]
		}
		room := op.buf[len(op.buf):min(cap(op.buf), limit)]
		n, err := sysRead(op.fd, room)
		switch {
		case err == unix.EAGAIN:
			return nil
		case err == unix.EINTR:
			continue
		case err != nil:
			return os.NewSyscallError("read", err)
		case n == 0:
			op.eof = true
		}
		op.buf = op.buf[:len(op.buf)+n]
		return nil
	}
	return nil
}

// send writes what is left of req. It reports whether all of it is sent.
func (op *ioOp) send(req []byte) (bool, error) {
	for op.sent < len(req) {
		n, err := sysWrite(op.fd, req[op.sent:])
		switch {
		case err == unix.EAGAIN:
			return false, nil
		case err == unix.EINTR:
			continue
		case err != nil:
			return false, os.NewSyscallError("write", err)
		}
		op.sent += n
	}
	return true, nil
}

type opHeap []*ioOp

func (h opHeap) Len() int           { return len(h) }
func (h opHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h opHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *opHeap) Push(x any) {
	op := x.(*ioOp)
	op.idx = len(*h)
	*h = append(*h, op)
}
func (h *opHeap) Pop() any {
	old := *h
	op := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	op.idx = -1
	return op
}

const (
	evIn  = unix.EPOLLIN | unix.EPOLLRDHUP
	evOut = unix.EPOLLOUT
)

// errTimedOut stands for a passed deadline in messages.
var errTimedOut = os.ErrDeadlineExceeded

// startOnLoop starts a run of p on env's loop: connect, then hand the
// socket to the loop. afterConnect, given a connected op, sends what the
// probe sends first; it reports an outcome when the run ends there.
func startOnLoop(l *ioLoop, t *target, connectOnly bool, what string, timeout time.Duration, deadline time.Time, p loopProbe,
	afterConnect func(op *ioOp) (Outcome, bool, uint32), done func(Outcome)) bool {
	if l == nil {
		return false
	}
	fd, connected, err := startConnect(t, connectOnly)
	if err != nil {
		done(fail(what, describe(phaseConnect, err, timeout)))
		return true
	}
	op := &ioOp{fd: fd, sa: t.rawDst(), deadline: deadline, probe: p, done: done, phase: phaseConnect, idx: -1}
	events := uint32(evOut)
	if connected {
		o, finished, ev := afterConnect(op)
		if finished {
			closeFD(fd)
			if op.buf != nil {
				readBufs.Put(op.buf[:0])
			}
			done(o)
			return true
		}
		events = ev
	}
	if err := l.add(op, events); err != nil {
		closeFD(fd)
		done(fail(what, err.Error()))
	}
	return true
}

// start runs the check on the loop, unless it needs TLS.
func (k *tcpChecker) start(l *ioLoop, deadline time.Time, done func(Outcome)) bool {
	if k.tls != nil {
		return false
	}
	return startOnLoop(l, k.t, k.connectOnly(), k.what, k.timeout, deadline, k, k.afterConnect, done)
}

func (k *tcpChecker) afterConnect(op *ioOp) (Outcome, bool, uint32) {
	if len(k.send) == 0 && len(k.receive) == 0 {
		return Outcome{OK: true, Message: k.okMsg}, true, 0
	}
	op.phase = phaseSend
	sent, err := op.send(k.send)
	if err != nil {
		return fail(k.what, describe(phaseSend, err, k.timeout)), true, 0
	}
	if !sent {
		return Outcome{}, false, evOut
	}
	if len(k.receive) == 0 {
		return Outcome{OK: true, Message: k.okMsg}, true, 0
	}
	op.phase = phaseReply
	return Outcome{}, false, evIn
}

func (k *tcpChecker) ready(l *ioLoop, op *ioOp) (Outcome, bool) {
	return readyStep(l, op, k.what, k.timeout, k.afterConnect, func() (Outcome, bool) {
		err := op.read(len(k.receive))
		switch {
		case err != nil:
			return k.judgeReply(op.buf, err), true
		case len(op.buf) >= len(k.receive):
			return k.judgeReply(op.buf, nil), true
		case op.eof && len(op.buf) == 0:
			return k.judgeReply(op.buf, io.EOF), true
		case op.eof:
			return k.judgeReply(op.buf, io.ErrUnexpectedEOF), true
		}
		return Outcome{}, false
	})
}

func (k *tcpChecker) expire(op *ioOp) Outcome {
	if op.phase == phaseReply {
		return k.judgeReply(op.buf, errTimedOut)
	}
	return fail(k.what, describe(op.phase, errTimedOut, k.timeout))
}

// readyStep advances a run through connecting and sending, and leaves
// reading to reply.
func readyStep(l *ioLoop, op *ioOp, what string, timeout time.Duration,
	afterConnect func(*ioOp) (Outcome, bool, uint32), reply func() (Outcome, bool)) (Outcome, bool) {
	switch op.phase {
	case phaseConnect:
		done, err := connected(op.fd, op.sa)
		if err != nil {
			return fail(what, describe(phaseConnect, err, timeout)), true
		}
		if !done {
			return Outcome{}, false
		}
		o, finished, ev := afterConnect(op)
		if finished {
			return o, true
		}
		if err := l.wait(op, ev); err != nil {
			return fail(what, err.Error()), true
		}
		return Outcome{}, false
	case phaseSend:
		// afterConnect resumes the send where it stopped.
		o, finished, ev := afterConnect(op)
		if finished {
			return o, true
		}
		if ev != evOut {
			if err := l.wait(op, ev); err != nil {
				return fail(what, err.Error()), true
			}
		}
		return Outcome{}, false
	}
	return reply()
}

// maxResponse bounds what an HTTP check reads: the status line, headers
// and as much body as receive needs must fit.
const maxResponse = 64 << 10

// start runs the check on the loop, unless it needs TLS or a CONNECT.
func (k *httpChecker) start(l *ioLoop, deadline time.Time, done func(Outcome)) bool {
	if k.tls != nil || k.connect != nil {
		return false
	}
	return startOnLoop(l, k.t, false, k.what, k.timeout, deadline, k, k.afterConnect, done)
}

func (k *httpChecker) afterConnect(op *ioOp) (Outcome, bool, uint32) {
	op.phase = phaseSend
	sent, err := op.send(k.request)
	if err != nil {
		return fail(k.what, describe(phaseSend, err, k.timeout)), true, 0
	}
	if !sent {
		return Outcome{}, false, evOut
	}
	op.phase = phaseReply
	return Outcome{}, false, evIn
}

func (k *httpChecker) ready(l *ioLoop, op *ioOp) (Outcome, bool) {
	return readyStep(l, op, k.what, k.timeout, k.afterConnect, func() (Outcome, bool) {
		if err := op.read(maxResponse); err != nil {
			return k.judgeBuffer(op.buf, err)
		}
		if op.eof {
			return k.judgeBuffer(op.buf, io.EOF)
		}
		o, finished := k.judgeBuffer(op.buf, nil)
		if !finished && len(op.buf) >= maxResponse {
			return fail(k.what, fmt.Sprintf("malformed HTTP response: no end of headers in the first %d bytes", maxResponse)), true
		}
		return o, finished
	})
}

func (k *httpChecker) expire(op *ioOp) Outcome {
	if op.phase == phaseReply {
		o, _ := k.judgeBuffer(op.buf, errTimedOut)
		return o
	}
	return fail(k.what, describe(op.phase, errTimedOut, k.timeout))
}

// judgeBuffer judges the response read so far. end is why no more will
// come (io.EOF: the peer closed; a timeout; a reset), or nil while the
// connection is open, when an incomplete response asks for more
// (finished false).
func (k *httpChecker) judgeBuffer(buf []byte, end error) (Outcome, bool) {
	br := bufs.Get().(*bufio.Reader)
	defer func() {
		br.Reset(nil)
		bufs.Put(br)
	}()
	br.Reset(bytes.NewReader(buf))
	resp, err := http.ReadResponse(br, k.req())
	if err != nil {
		if !isEOF(err) {
			return fail(k.what, k.readError(err)), true
		}
		// The headers are not all here.
		switch {
		case end == nil:
			return Outcome{}, false
		case end == io.EOF && len(buf) > 0:
			return fail(k.what, k.readError(io.ErrUnexpectedEOF)), true
		}
		return fail(k.what, k.readError(end)), true
	}
	defer resp.Body.Close()
	if o, done := k.judgeStatus(resp); done {
		return o, true
	}
	if len(k.receive) == 0 {
		return Outcome{OK: true, Message: k.okMsg}, true
	}
	body := make([]byte, len(k.receive))
	n := 0
	var rerr error
	for n < len(body) && rerr == nil {
		var m int
		m, rerr = resp.Body.Read(body[n:])
		n += m
	}
	// The body's reader runs out where the bytes read so far do, which
	// is its end only when it says io.EOF and its length is known (or the
	// peer has closed).
	closeDelimited := resp.ContentLength < 0 && len(resp.TransferEncoding) == 0
	complete := rerr == nil || (rerr == io.EOF && !closeDelimited)
	switch {
	case complete, end == io.EOF:
	case rerr != io.EOF && rerr != io.ErrUnexpectedEOF:
		return fail(k.what, k.readError(rerr)), true
	case end == nil:
		return Outcome{}, false
	default:
		return fail(k.what, fmt.Sprintf("got %s, then reading the body: %s", resp.Status, describe(phaseReply, end, k.timeout))), true
	}
	return k.judgeBody(resp, body[:n]), true
}
