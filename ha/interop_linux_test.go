package ha

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/proto/ipc"

	hapb "github.com/seesawlb/seesaw/proto/ha"
)

// Interop with keepalived 2.2.7 (VRRPv3) across a veth pair: ours in
// namespace A, keepalived in B, advertising every 100ms with the same VRID
// and VIP. keepalived's state comes from its notify FIFO and is checked
// against where its VIP is.

const (
	interopInterval = 100 * time.Millisecond
	settle          = 5 * time.Second     // ample for any election at 100ms
	hold            = 6 * interopInterval // "stays": longer than any master down interval
)

type family struct {
	name    string
	v6      bool
	unicast bool
}

var families = []family{
	{"ipv4", false, false},
	{"ipv6", true, false},
	{"ipv4-unicast", false, true},
	{"ipv6-unicast", true, true},
}

// TestKeepalivedHigherPriority: keepalived's higher priority wins and ours
// stays backup; killing keepalived makes ours master; a nopreempt
// keepalived leaves ours master, a preempting one takes over, and its
// graceful stop (priority 0) hands back at once.
func TestKeepalivedHigherPriority(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			tp := newTopo(t)
			vip := vipFor(f.v6)
			kaAddr := tp.addr(1, f.v6)
			ka := tp.startKeepalived(1, kaOpts{prio: 150, interval: interopInterval, v6: f.v6, unicast: f.unicast})
			waitState(t, ka, "MASTER", settle)
			o := tp.startOurs(0, oursOpts{prio: 100, interval: interopInterval, v6: f.v6, unicast: f.unicast})
			waitState(t, o, "BACKUP", settle)
			holdState(t, o, "BACKUP", hold)
			if !tp.hasAddr(1, vip) {
				t.Errorf("keepalived reports MASTER but does not hold %v", vip)
			}

			// keepalived dies without a word: ours takes over after the
			// master down interval.
			ka.kill()
			ev := waitState(t, o, "MASTER", settle)
			if !strings.Contains(ev.reason, "no advert from master "+kaAddr.String()) {
				t.Errorf("takeover reason %q", ev.reason)
			}

			// keepalived with nopreempt joins a lower-priority master (ours)
			// and stays backup.
			ka = tp.startKeepalived(1, kaOpts{prio: 150, interval: interopInterval, v6: f.v6, unicast: f.unicast, nopreempt: true})
			waitState(t, ka, "BACKUP", settle)
			holdState(t, ka, "BACKUP", hold)
			holdState(t, o, "MASTER", 0)
			ka.kill() // a backup: stopping it says nothing on the wire

			// Without nopreempt it preempts ours.
			ka = tp.startKeepalived(1, kaOpts{prio: 150, interval: interopInterval, v6: f.v6, unicast: f.unicast})
			waitState(t, ka, "MASTER", settle)
			ev = waitState(t, o, "BACKUP", settle)
			if !strings.Contains(ev.reason, "higher priority 150") {
				t.Errorf("yield reason %q", ev.reason)
			}
			if !tp.hasAddr(1, vip) {
				t.Errorf("keepalived MASTER without %v", vip)
			}

			// keepalived stops gracefully: its priority-0 advert makes ours
			// master after the skew time.
			ka.stop()
			ev = waitState(t, o, "MASTER", settle)
			if !strings.Contains(ev.reason, "stepped down (priority 0 advert)") {
				t.Errorf("takeover reason %q", ev.reason)
			}
			o.stop()
			checkNoDrops(t, o)
		})
	}
}

// TestOursHigherPriority: preemption off keeps ours backup under a
// lower-priority keepalived master; preemption on takes over and
// keepalived yields; after a split brain keepalived yields to ours, which
// reports the dual master; ours' graceful stop hands back to keepalived.
func TestOursHigherPriority(t *testing.T) {
	for _, f := range families[:2] {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			tp := newTopo(t)
			vip := vipFor(f.v6)
			ka := tp.startKeepalived(1, kaOpts{prio: 150, interval: interopInterval, v6: f.v6})
			waitState(t, ka, "MASTER", settle)

			o := tp.startOurs(0, oursOpts{prio: 200, interval: interopInterval, v6: f.v6})
			waitState(t, o, "BACKUP", settle)
			holdState(t, o, "BACKUP", hold)
			holdState(t, ka, "MASTER", 0)
			o.kill() // a backup: stopping it says nothing on the wire

			o = tp.startOurs(0, oursOpts{prio: 200, interval: interopInterval, v6: f.v6, preempt: true})
			ev := waitState(t, o, "MASTER", settle)
			if !strings.Contains(ev.reason, "preempted lower-priority master") {
				t.Errorf("takeover reason %q", ev.reason)
			}
			waitState(t, ka, "BACKUP", settle)
			waitFor(t, deadlineCtx(t, settle), "keepalived drops its VIP", func() bool { return !tp.hasAddr(1, vip) })

			// Split brain with keepalived: with adverts cut, a restarted
			// keepalived becomes master too. When the cut heals keepalived
			// yields to ours, which never leaves MASTER and reports the dual
			// master (keepalived's higher_prio_send_advert, like our own
			// farewell advert, tells the winner there were two masters).
			ka.kill() // a backup
			n := len(o.events())
			heal := tp.cutAdverts(1)
			ka = tp.startKeepalived(1, kaOpts{prio: 150, interval: interopInterval, v6: f.v6, higherPrioSendAdvert: true})
			waitState(t, ka, "MASTER", settle)
			heal()
			waitState(t, ka, "BACKUP", settle)
			holdState(t, ka, "BACKUP", hold)
			if evs := o.events(); len(evs) != n {
				t.Errorf("ours changed state during the split: %v", evs[n:])
			}
			st := statusOf(t, o.socket)
			if st.DualMaster == 0 || !strings.Contains(st.Warning, "dual master: "+tp.addr(1, f.v6).String()) {
				t.Errorf("keepalived's mastership not reported: dual_master=%d warning=%q", st.DualMaster, st.Warning)
			}

			// Ours stops gracefully: keepalived takes over.
			o.stop()
			waitState(t, ka, "MASTER", settle)
			checkNoDrops(t, o)
		})
	}
}

func deadlineCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// statusOf asks a standalone seesaw_ha for its HA status.
func statusOf(t testing.TB, sock string) *hapb.Status {
	t.Helper()
	cc, err := ipc.Dial(sock, ipc.DialOptions{MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := hapb.NewHAClient(cc).GetStatus(ctx, &hapb.GetStatusRequest{})
	if err != nil {
		t.Fatalf("GetStatus %s: %v", sock, err)
	}
	return st
}

// checkNoDrops: everything keepalived sent passed every check (checksum,
// TTL, VRID, address family, peer).
func checkNoDrops(t *testing.T, o *ours) {
	t.Helper()
	line := o.finalLine()
	if !strings.Contains(line, "dropped={}") || strings.Contains(line, "adverts_received=0 ") {
		t.Errorf("final status %q: want adverts received and none dropped", line)
	}
}
