package ha

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/seesawlb/seesaw/ha/vrrp"
)

// hub is a fake Ethernet segment for speakers: every Write to the
// multicast group reaches every other live port, a unicast Write the port
// with that address, all with hop limit 255 and no delay.
type hub struct {
	mu    sync.Mutex
	ports map[netip.Addr]*port
	log   []sent // every advert that left a port
}

type sent struct {
	at       time.Time
	src, dst netip.Addr
	adv      vrrp.Advertisement
}

func newHub() *hub { return &hub{ports: map[netip.Addr]*port{}} }

type port struct {
	h      *hub
	addr   netip.Addr
	in     chan vrrp.Packet
	closed chan struct{}
	poke   chan struct{} // wakes a blocked Read to look at failReads
	once   sync.Once

	// Guarded by h.mu.
	dead               bool // crashed: sends nothing, hears nothing
	failWrites         int  // the next n writes fail
	failReads          int  // the next n reads fail
	writes, readErrors int
}

// open returns an OpenConnFunc that attaches to the hub.
func (h *hub) open(cc ConnConfig) (Conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.ports[cc.Local]; ok {
		select {
		case <-old.closed:
		default:
			return nil, errors.New("hub: address in use")
		}
	}
	p := &port{h: h, addr: cc.Local, in: make(chan vrrp.Packet, 256), closed: make(chan struct{}), poke: make(chan struct{}, 1)}
	h.ports[cc.Local] = p
	return p, nil
}

func (h *hub) port(a netip.Addr) *port {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ports[a]
}

// sentBy returns the adverts a port sent, in order.
func (h *hub) sentBy(a netip.Addr) []sent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []sent
	for _, s := range h.log {
		if s.src == a {
			out = append(out, s)
		}
	}
	return out
}

func (p *port) Read() (vrrp.Packet, error) {
	for {
		p.h.mu.Lock()
		if p.failReads > 0 {
			p.failReads--
			p.readErrors++
			p.h.mu.Unlock()
			return vrrp.Packet{}, errors.New("fake receive error")
		}
		p.h.mu.Unlock()
		select {
		case pkt := <-p.in:
			return pkt, nil
		case <-p.closed:
			return vrrp.Packet{}, ErrClosed
		case <-p.poke:
		}
	}
}

func (p *port) Write(dst netip.Addr, payload []byte) error {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	select {
	case <-p.closed:
		return ErrClosed
	default:
	}
	if p.failWrites > 0 {
		p.failWrites--
		return errors.New("fake send error")
	}
	p.writes++
	if p.dead {
		return nil
	}
	if a, err := vrrp.Parse(payload, p.addr, dst); err == nil {
		p.h.log = append(p.h.log, sent{time.Now(), p.addr, dst, a})
	}
	for a, q := range p.h.ports {
		if q == p || q.dead || (!dst.IsMulticast() && a != dst) {
			continue
		}
		select {
		case <-q.closed:
			continue
		default:
		}
		select {
		case q.in <- vrrp.Packet{Src: p.addr, Dst: dst, HopLimit: vrrp.HopLimit, Payload: slices.Clone(payload)}:
		default: // a full queue drops, as a socket buffer would
		}
	}
	return nil
}

func (p *port) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

// setDead crashes or revives a port.
func (p *port) setDead(d bool) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	p.dead = d
}

func (p *port) fail(writes, reads int) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	p.failWrites, p.failReads = writes, reads
	select {
	case p.poke <- struct{}{}:
	default:
	}
}
