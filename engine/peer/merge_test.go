package peer

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
)

func rec(vs string, st enginepb.OverrideState, by string, at int64) *enginepb.OverrideRecord {
	return &enginepb.OverrideRecord{Target: &enginepb.OverrideRecord_Vserver{Vserver: vs},
		Info: &enginepb.OverrideInfo{State: st, SetBy: by, SetAt: timestamppb.New(time.Unix(at, 0))}}
}

func TestMerge(t *testing.T) {
	const (
		dis = enginepb.OverrideState_OVERRIDE_DISABLED
		ena = enginepb.OverrideState_OVERRIDE_ENABLED
		def = enginepb.OverrideState_OVERRIDE_DEFAULT
	)
	for _, tc := range []struct {
		name   string
		local  *enginepb.OverrideRecord
		remote *enginepb.OverrideRecord
		adopt  bool
	}{
		{"unknown here", nil, rec("a", dis, "alice", 10), true},
		{"newer there", rec("a", dis, "alice", 10), rec("a", ena, "bob", 11), true},
		{"older there", rec("a", dis, "alice", 10), rec("a", ena, "bob", 9), false},
		{"the same record back (no ping-pong)", rec("a", dis, "alice", 10), rec("a", dis, "alice", 10), false},
		{"a newer clearing", rec("a", dis, "alice", 10), rec("a", def, "bob", 12), true},
		{"an older clearing", rec("a", dis, "alice", 10), rec("a", def, "bob", 8), false},
		{"a tie: the first by who wins", rec("a", dis, "bob", 10), rec("a", ena, "alice", 10), true},
		{"a tie, seen from the other side", rec("a", ena, "alice", 10), rec("a", dis, "bob", 10), false},
		{"no time: ignored", nil, &enginepb.OverrideRecord{Target: &enginepb.OverrideRecord_Vserver{Vserver: "a"}, Info: &enginepb.OverrideInfo{State: dis}}, false},
		{"no target: ignored", nil, &enginepb.OverrideRecord{Info: &enginepb.OverrideInfo{State: dis, SetAt: timestamppb.Now()}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Merge(func(k string) *enginepb.OverrideRecord {
				if tc.local != nil && k == Key(tc.local) {
					return tc.local
				}
				return nil
			}, []*enginepb.OverrideRecord{tc.remote})
			if (len(got) == 1) != tc.adopt {
				t.Errorf("adopted %v, want adopt=%v", got, tc.adopt)
			}
		})
	}
}
