package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// TestEventsRPC: the engine logs what an operator would want to see
// happen (HA transitions, a backend going down and back, an override, a
// rejected config) and serves it oldest first, after a given seq.
func TestEventsRPC(t *testing.T) {
	cfg, cl := copyGKE(t)
	r := gkeServing(t, cfg, cl)
	ctx := context.Background()

	r.e.mu.Lock()
	var id uint64
	for _, c := range r.e.checks.Upsert {
		if c.Address == "100.115.222.163" {
			id = c.Id
		}
	}
	r.e.mu.Unlock()
	r.e.recordResults(&hcpb.Results{Results: []*hcpb.Result{{Id: id, Message: "HTTP GET: connection refused"}}})
	r.waitFor("the destination's down event", func() bool {
		evs, _ := r.e.Events(ctx, &enginepb.EventsRequest{})
		return strings.Contains(fmt.Sprint(evs), "connection refused")
	})
	r.e.recordResults(&hcpb.Results{Results: []*hcpb.Result{{Id: id, Healthy: true, Success: true, Message: "ok"}}})
	r.waitFor("the destination's up event", func() bool {
		evs, _ := r.e.Events(ctx, &enginepb.EventsRequest{})
		return strings.Contains(fmt.Sprint(evs), "in service (weight 1)")
	})
	if _, err := r.e.Override(ctx, &enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Backend{Backend: "admin-2"}, State: enginepb.OverrideState_OVERRIDE_DISABLED}); err != nil {
		t.Fatal(err)
	}
	evs, err := r.e.Events(ctx, &enginepb.EventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var prev, override uint64
	for _, ev := range evs.Events {
		if ev.Kind == "override" {
			override = ev.Seq
		}
		if ev.Seq <= prev || ev.Time == nil {
			t.Errorf("event out of order or without time: %v", ev)
		}
		prev = ev.Seq
		lines = append(lines, fmt.Sprintf("%s|%s|%v|%s", ev.Kind, ev.Object, ev.Problem, ev.Message))
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"config|" + cl + "|false|config loaded",
		"ha|this node|false|HA HA_STATE_UNKNOWN -> HA_STATE_LEADER",
		"destination|admin-control-plane/100.115.222.163:443/TCP|true|out of service: HTTP/10256: HTTP GET: connection refused",
		"destination|admin-control-plane/100.115.222.163:443/TCP|false|in service (weight 1)",
		"override|backend admin-2|true|override disabled (was default)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("events lack %q:\n%s", want, all)
		}
	}
	if evs.NextSeq != prev+1 {
		t.Errorf("next_seq %d after the last event %d", evs.NextSeq, prev)
	}
	after, _ := r.e.Events(ctx, &enginepb.EventsRequest{After: override - 1})
	if len(after.Events) == 0 || after.Events[0].Seq != override || after.Events[0].Kind != "override" {
		t.Errorf("events after %d: %v", override-1, after.Events)
	}
}

// TestEventLogIsBounded: the log keeps the newest events only.
func TestEventLogIsBounded(t *testing.T) {
	l := newEventLog(func() time.Time { return time.Unix(0, 0) }, 3)
	for i := range 10 {
		l.add("ha", "x", false, fmt.Sprint(i))
	}
	evs, next := l.since(0)
	if len(evs) != 3 || evs[0].Message != "7" || evs[2].Message != "9" || evs[2].Seq != 10 || next != 11 {
		t.Errorf("after 10 events in a log of 3: %v, next %d", evs, next)
	}
	if cap(l.ring) > 3 {
		t.Errorf("the ring grew to %d", cap(l.ring))
	}
}
