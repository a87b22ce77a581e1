package ha

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/ha/vrrp"
)

// TestSplitBrain runs two of our speakers in two namespaces, cuts the
// adverts between them with an nftables drop rule so that both become
// master, and heals the cut: each side reports the dual master (counter and
// warning in its HA status), and exactly one master remains, the one with
// the higher priority, or with equal priorities the higher address. How
// long that took is logged against the one advert interval plus skew it
// should take; it is not asserted (shared machines are noisy).
func TestSplitBrain(t *testing.T) {
	for _, c := range []struct {
		v6     bool
		prioA  int
		prioB  int
		winner int
	}{
		{false, 200, 100, 0},
		{true, 200, 100, 0},
		{false, 100, 100, 1}, // 192.0.2.2 > 192.0.2.1
		{true, 100, 100, 1},  // fe80::2 > fe80::1
	} {
		fam := "ipv4"
		if c.v6 {
			fam = "ipv6"
		}
		t.Run(fmt.Sprintf("%s-%d-%d", fam, c.prioA, c.prioB), func(t *testing.T) {
			t.Parallel()
			tp := newTopo(t)
			interval := interopInterval
			a := tp.startOurs(0, oursOpts{prio: c.prioA, interval: interval, v6: c.v6})
			waitState(t, a, "MASTER", settle)
			b := tp.startOurs(1, oursOpts{prio: c.prioB, interval: interval, v6: c.v6})
			waitState(t, b, "BACKUP", settle)
			holdState(t, b, "BACKUP", hold)

			heal := tp.cutAdverts(0)
			waitState(t, b, "MASTER", settle)
			holdState(t, a, "MASTER", hold)

			healed := time.Now()
			heal()
			sp := []*ours{a, b}
			winner, loser := sp[c.winner], sp[1-c.winner]
			ev := waitState(t, loser, "BACKUP", settle)
			holdState(t, winner, "MASTER", hold)
			holdState(t, loser, "BACKUP", 0)
			bound := interval + vrrp.SkewTime(interval, uint8(min(c.prioA, c.prioB)))
			t.Logf("one master (%s) %v after the cut healed; one advert interval plus skew is %v",
				winner.name(), ev.at.Sub(healed).Round(time.Microsecond), bound)

			for _, s := range sp {
				st := statusOf(t, s.socket)
				if st.DualMaster == 0 || !strings.Contains(st.Warning, "dual master: ") {
					t.Errorf("%s did not report the dual master: dual_master=%d warning=%q", s.name(), st.DualMaster, st.Warning)
				}
				t.Logf("%s: dual_master=%d warning=%q", s.name(), st.DualMaster, st.Warning)
			}
		})
	}
}
