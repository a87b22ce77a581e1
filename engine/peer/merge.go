package peer

import (
	"strings"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
)

// Merge returns the records of remote that this side must adopt: those
// whose target it knows no record of, or whose record is older. known
// looks up this side's record of a key (set or cleared). The newest set_at
// wins; a tie goes to the record that sorts first (by who, then state), so
// both sides settle on the same one. Adopting a record keeps its who and
// when, so that when it comes back from the peer it is no longer newer:
// nothing ping-pongs.
func Merge(known func(key string) *enginepb.OverrideRecord, remote []*enginepb.OverrideRecord) []*enginepb.OverrideRecord {
	var out []*enginepb.OverrideRecord
	for _, r := range remote {
		k := Key(r)
		if k == "" || r.GetInfo().GetSetAt() == nil {
			continue
		}
		if l := known(k); l == nil || Newer(r, l) {
			out = append(out, r)
		}
	}
	return out
}

// Newer reports whether a wins over b.
func Newer(a, b *enginepb.OverrideRecord) bool {
	ta, tb := a.GetInfo().GetSetAt().AsTime(), b.GetInfo().GetSetAt().AsTime()
	switch {
	case ta.After(tb):
		return true
	case ta.Before(tb):
		return false
	}
	if c := strings.Compare(a.GetInfo().GetSetBy(), b.GetInfo().GetSetBy()); c != 0 {
		return c < 0
	}
	return a.GetInfo().GetState() < b.GetInfo().GetState()
}

// Key is an override's target: "vserver NAME", "backend FQDN",
// "destination NAME" ("" for none).
func Key(r *enginepb.OverrideRecord) string {
	switch t := r.GetTarget().(type) {
	case *enginepb.OverrideRecord_Vserver:
		return "vserver " + t.Vserver
	case *enginepb.OverrideRecord_Backend:
		return "backend " + t.Backend
	case *enginepb.OverrideRecord_Destination:
		return "destination " + t.Destination
	}
	return ""
}
