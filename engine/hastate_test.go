package engine

import (
	"testing"
	"time"

	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

const (
	leader  = seesawpb.HAState_HA_STATE_LEADER
	backup  = seesawpb.HAState_HA_STATE_BACKUP
	unknown = seesawpb.HAState_HA_STATE_UNKNOWN
)

func TestHATracker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		at       time.Duration
		report   seesawpb.HAState // 0 (UNKNOWN): no report, only look
		demotion bool
		want     seesawpb.HAState
	}
	tests := []struct {
		name  string
		adopt bool
		steps []step
	}{
		{"nothing heard is UNKNOWN", false, []step{{0, unknown, false, unknown}, {time.Hour, unknown, false, unknown}}},
		{"reports are followed", false, []step{{0, backup, false, backup}, {time.Second, leader, false, leader}, {2 * time.Second, backup, true, backup}}},
		{"30 s of silence is UNKNOWN", false, []step{{0, leader, false, leader}, {29 * time.Second, unknown, false, leader}, {31 * time.Second, unknown, false, unknown}}},
		{"a restarted HA's BACKUP is held, then followed", false, []step{
			{0, leader, false, leader},
			{10 * time.Second, backup, false, leader}, // HA restarted: speaker begins as BACKUP
			{12 * time.Second, backup, false, leader}, // within 2 s + margin of the first
			{13*time.Second + time.Millisecond, unknown, false, backup},
			{14 * time.Second, backup, false, backup},
		}},
		{"a restarted HA that becomes master keeps the VIPs", false, []step{
			{0, leader, false, leader}, {10 * time.Second, backup, false, leader}, {11 * time.Second, leader, false, leader}, {20 * time.Second, unknown, false, leader},
		}},
		{"a demotion is followed at once", false, []step{{0, leader, false, leader}, {time.Second, backup, true, backup}}},
		{"adopted master holds until HA speaks", true, []step{{0, unknown, false, leader}, {5 * time.Second, unknown, false, leader}, {6 * time.Second, backup, false, leader}, {10 * time.Second, unknown, false, backup}}},
		{"adopted master without HA lapses", true, []step{{0, unknown, false, leader}, {11 * time.Second, unknown, false, unknown}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newHATracker(30 * time.Second)
			if tc.adopt {
				tr.adopt(t0, 10*time.Second)
			}
			for i, s := range tc.steps {
				if s.report != unknown {
					tr.report(at(s.at), s.report, s.demotion, 2*time.Second)
				}
				if got := tr.state(at(s.at)); got != s.want {
					t.Fatalf("step %d at %v: state %v, want %v", i, s.at, got, s.want)
				}
			}
		})
	}
}
