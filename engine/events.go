package engine

import (
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
)

// maxEvents bounds the event log: at a few hundred bytes an event, the
// log costs well under a megabyte however busy the node is.
const maxEvents = 1000

// eventLog is the engine's bounded log of recent events (HA transitions,
// services and destinations going down and up, overrides, config reloads),
// for the status page and the CLI. It has its own lock so that it can be
// written with or without the engine's.
type eventLog struct {
	mu   sync.Mutex
	now  func() time.Time
	max  int
	ring []*enginepb.Event // oldest first
	next uint64            // seq of the next event
}

func newEventLog(now func() time.Time, max int) *eventLog {
	return &eventLog{now: now, max: max, next: 1, ring: make([]*enginepb.Event, 0, max)}
}

// add records one event. A nil log records nothing.
func (l *eventLog) add(kind, object string, problem bool, message string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := &enginepb.Event{Seq: l.next, Time: timestamppb.New(l.now()), Kind: kind, Object: object, Message: message, Problem: problem}
	l.next++
	if len(l.ring) == l.max {
		// Drop the oldest; copy down rather than reslice so that the
		// backing array does not grow without bound.
		copy(l.ring, l.ring[1:])
		l.ring = l.ring[:len(l.ring)-1]
	}
	l.ring = append(l.ring, ev)
}

// since returns copies of the events with seq > after, oldest first, and
// the seq the next event will have.
func (l *eventLog) since(after uint64) ([]*enginepb.Event, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*enginepb.Event
	for _, ev := range l.ring {
		if ev.Seq > after {
			out = append(out, proto.Clone(ev).(*enginepb.Event))
		}
	}
	return out, l.next
}
