package peer

import (
	"strings"
	"testing"
	"time"
)

func TestHealthDecider(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ok := HealthInput{Master: true, PeerBackup: true, SameConfig: true, Total: 100, PeerTotal: 100}
	// in is ok at second s with h healthy here and ph on the backup.
	in := func(s float64, h, ph int) HealthInput {
		i := ok
		i.Now, i.Healthy, i.PeerHealthy = t0.Add(time.Duration(s*float64(time.Second))), h, ph
		return i
	}
	with := func(i HealthInput, f func(*HealthInput)) HealthInput { f(&i); return i }
	type step struct {
		in   HealthInput
		want bool
		why  string // part of the reason
	}
	for _, tc := range []struct {
		name   string
		policy HealthPolicy
		steps  []step
	}{
		{"equal health: never", HealthPolicy{}, []step{{in(0, 100, 100), false, "hand over at 10 more"}, {in(60, 100, 100), false, ""}}},
		{"clearly worse, held: hands over once the hold passed", HealthPolicy{}, []step{
			{in(0, 50, 100), false, "handing over after 10s"},
			{in(5, 50, 100), false, "since"},
			{in(10, 50, 100), true, "this master 50, of 100, for 10s"},
		}},
		{"below the margin: never", HealthPolicy{}, []step{{in(0, 91, 100), false, ""}, {in(30, 91, 100), false, ""}}},
		{"the margin has a floor on small clusters", HealthPolicy{}, []step{
			{with(in(0, 3, 4), func(i *HealthInput) { i.Total, i.PeerTotal = 4, 4 }), false, "hand over at 2 more"},
			{with(in(0, 2, 4), func(i *HealthInput) { i.Total, i.PeerTotal = 4, 4 }), false, "handing over"},
			{with(in(10, 2, 4), func(i *HealthInput) { i.Total, i.PeerTotal = 4, 4 }), true, ""},
		}},
		{"a flapping backend restarts the hold every time", HealthPolicy{MinMargin: 1, Fraction: 0.01}, []step{
			{in(0, 99, 100), false, "handing over"},
			{in(4, 100, 100), false, ""},
			{in(8, 99, 100), false, "handing over"},
			{in(12, 100, 100), false, ""},
			{in(16, 99, 100), false, "handing over"},
			{in(20, 100, 100), false, ""},
			{in(24, 99, 100), false, "handing over"},
			{in(28, 100, 100), false, ""},
		}},
		{"cooldown after a handover", HealthPolicy{Cooldown: time.Minute}, []step{
			{in(0, 50, 100), false, ""},
			{in(10, 50, 100), true, ""},
			{in(11, 50, 100), false, ""},
			{in(21, 50, 100), false, "cooldown"},
			{in(71, 50, 100), true, ""},
		}},
		{"not the master", HealthPolicy{}, []step{
			{with(in(0, 50, 100), func(i *HealthInput) { i.Master = false }), false, "not the master"},
			{with(in(20, 50, 100), func(i *HealthInput) { i.Master = false }), false, ""},
		}},
		{"the peer gone resets the hold", HealthPolicy{}, []step{
			{in(0, 50, 100), false, ""},
			{with(in(5, 50, 100), func(i *HealthInput) { i.PeerBackup = false }), false, "not a reachable backup"},
			{in(9, 50, 100), false, ""},
			{in(15, 50, 100), false, ""},
			{in(19, 50, 100), true, ""},
		}},
		{"another config: counts do not compare", HealthPolicy{}, []step{
			{with(in(0, 50, 100), func(i *HealthInput) { i.SameConfig = false }), false, "another config"},
			{with(in(20, 50, 100), func(i *HealthInput) { i.PeerTotal = 120 }), false, "another config"},
		}},
		{"off", HealthPolicy{Disabled: true}, []step{{in(0, 0, 100), false, "off"}, {in(60, 0, 100), false, "off"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewHealthDecider(tc.policy)
			for i, s := range tc.steps {
				got, why := d.Decide(s.in)
				if got != s.want || !strings.Contains(why, s.why) {
					t.Errorf("step %d (%v here %d, backup %d): %v %q, want %v with %q", i, s.in.Now.Sub(t0), s.in.Healthy, s.in.PeerHealthy, got, why, s.want, s.why)
				}
			}
		})
	}
}
