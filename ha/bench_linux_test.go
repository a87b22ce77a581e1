package ha

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/ha/vrrp"
)

// BenchmarkFailover measures failover on the veth topology of the
// namespace tests, for ours (two seesaw_ha --standalone) and keepalived (two
// keepalived 2.2.7), at advert intervals of 1s, 100ms and 20ms:
//
//   - master death: SIGKILL the master just after one of its adverts reached
//     the backup, then time until the backup's first advert is on the wire;
//     also from that last advert, which is what RFC 5798's master down
//     interval (3 * interval + skew) predicts (the precise figure: the
//     delay between seeing the advert and the kill is the bench's own);
//   - graceful stop: SIGTERM the master (it sends priority 0), then time
//     until the backup's first advert; also from the priority-0 advert,
//     which the RFC's skew time predicts.
//
// Times are taken where both implementations are alike: raw-socket
// observers in each namespace timestamp the adverts as they arrive. Each
// figure is the median of the trials (the machines are shared and a single
// trial can be late by a scheduling delay); ratios are medians of per-trial
// ratios. It prints
// `bench:` lines; one interval can be chosen with
// -bench 'BenchmarkFailover/interval=20ms':
//
//	go test -run '^$' -bench BenchmarkFailover -benchtime 1x ./ha
func BenchmarkFailover(b *testing.B) {
	needKeepalived(b)
	newTopo(b) // skips unless root
	plans := []struct {
		interval       time.Duration
		kills, stops   int
		startupTimeout time.Duration
	}{
		{time.Second, 3, 1, 15 * time.Second},
		{100 * time.Millisecond, 7, 5, 5 * time.Second},
		{20 * time.Millisecond, 7, 5, 5 * time.Second},
	}
	for _, p := range plans {
		b.Run(fmt.Sprintf("interval=%v", p.interval), func(b *testing.B) {
			for range b.N {
				var res [2]benchResult
				for i, impl := range []string{"ours", "keepalived"} {
					res[i] = benchImpl(b, impl, p.interval, p.kills, p.stops, p.startupTimeout)
				}
				report(p.interval, res[0], res[1])
			}
		})
	}
}

// benchResult is one implementation's trials at one interval.
type benchResult struct {
	kill       []time.Duration // SIGKILL -> backup's first advert
	killAdvert []time.Duration // master's last advert -> backup's first advert
	killRFC    []time.Duration // master down interval for the backup's priority
	stop       []time.Duration // SIGTERM -> backup's first advert
	stopAdvert []time.Duration // priority-0 advert -> backup's first advert
	stopRFC    []time.Duration // skew time for the backup's priority
}

func benchImpl(b *testing.B, impl string, interval time.Duration, kills, stops int, startup time.Duration) benchResult {
	tp := newTopo(b)
	prio := [2]int{200, 100}
	start := func(i int) peer {
		if impl == "ours" {
			return tp.startOurs(i, oursOpts{prio: prio[i], interval: interval})
		}
		return tp.startKeepalived(i, kaOpts{prio: prio[i], interval: interval, nopreempt: true})
	}
	// obs[i] sees what arrives in namespace i: the other node's adverts.
	obs := [2]*observer{tp.observe(0, false), tp.observe(1, false)}
	var p [2]peer
	p[0] = start(0)
	waitState(b, p[0], "MASTER", startup)
	p[1] = start(1)
	waitState(b, p[1], "BACKUP", startup)
	time.Sleep(3 * interval)

	var r benchResult
	master := 0
	for trial := range kills + stops {
		graceful := trial >= kills
		backup := 1 - master
		mAddr, bAddr := tp.v4[master], tp.v4[backup]
		ctx, cancel := context.WithTimeout(context.Background(), 10*interval+5*time.Second)
		obs[backup].drain()
		obs[master].drain()
		// Act right after an advert from the master reached the backup.
		last, err := obs[backup].next(ctx, mAddr, func(o observed) bool { return o.adv.Priority > 0 })
		if err != nil {
			b.Fatalf("%s %v: %v", impl, interval, err)
		}
		// The signal goes out at once; kill and stop then wait for the
		// process to be reaped, which is not part of the failover.
		acted := time.Now()
		stopped := make(chan struct{})
		if graceful {
			go func() { defer close(stopped); p[master].stop() }()
		} else {
			p[master].kill()
			close(stopped)
		}
		var zero observed
		if graceful {
			zero, err = obs[backup].next(ctx, mAddr, func(o observed) bool { return o.adv.Priority == 0 })
			if err != nil {
				b.Fatalf("%s %v: no priority 0 advert on stop: %v", impl, interval, err)
			}
		}
		// Only adverts after the act count: under load a backup can time out
		// spuriously before it (and yield again), which is not a takeover.
		first, err := obs[master].next(ctx, bAddr, func(o observed) bool { return o.adv.Priority > 0 && o.at.After(acted) })
		cancel()
		if err != nil {
			b.Fatalf("%s %v: backup never took over: %v\n%s", impl, interval, err, p[backup].output())
		}
		bp := uint8(prio[backup])
		b.Logf("%s %v trial %d graceful=%v backup prio %d: act->takeover %v, last/zero advert at %v, first at %v",
			impl, interval, trial, graceful, bp, first.at.Sub(acted), last.at.Sub(acted), first.at.Sub(acted))
		if graceful {
			b.Logf("  zero advert %v after act", zero.at.Sub(acted))
		}
		if graceful {
			r.stop = append(r.stop, first.at.Sub(acted))
			r.stopAdvert = append(r.stopAdvert, first.at.Sub(zero.at))
			r.stopRFC = append(r.stopRFC, vrrp.SkewTime(interval, bp))
		} else {
			r.kill = append(r.kill, first.at.Sub(acted))
			r.killAdvert = append(r.killAdvert, first.at.Sub(last.at))
			r.killRFC = append(r.killRFC, vrrp.MasterDownInterval(interval, bp))
		}
		waitState(b, p[backup], "MASTER", startup)
		<-stopped
		// The old master comes back as a backup (no preemption) for the
		// next trial, in which the roles are swapped.
		p[master] = start(master)
		waitState(b, p[master], "BACKUP", startup)
		time.Sleep(3 * interval)
		master = backup
	}
	return r
}

// median of ds (the mean of the middle two for an even count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratio is the median of a[i]/b[i]: trial i of each series had the same
// backup priority (the roles alternate), so only same-trial ratios compare
// like with like.
func ratio(a, b []time.Duration) float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			rs = append(rs, float64(a[i])/float64(b[i]))
		}
	}
	if len(rs) == 0 {
		return 0
	}
	slices.Sort(rs)
	if len(rs)%2 == 1 {
		return rs[len(rs)/2]
	}
	return (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
}

// offBy is the median of a[i]-b[i], in milliseconds.
func offBy(a, b []time.Duration) float64 {
	var d []time.Duration
	for i := range a {
		d = append(d, a[i]-b[i])
	}
	return float64(median(d)) / 1e6
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

// spread is "min..max" of ds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return ms(slices.Min(ds)) + ".." + ms(slices.Max(ds))
}

func report(interval time.Duration, o, k benchResult) {
	fmt.Printf("bench: ha failover (SIGKILL) interval=%v n=%d: kill->takeover ours %s [%s] keepalived %s [%s] ours/keepalived=%.3f\n",
		interval, len(o.kill), ms(median(o.kill)), spread(o.kill), ms(median(k.kill)), spread(k.kill), ratio(o.kill, k.kill))
	fmt.Printf("bench: ha failover (SIGKILL) interval=%v n=%d: last advert->takeover ours %s vs RFC master down interval %s ours/RFC=%.4f (%+.2fms); keepalived %s keepalived/RFC=%.4f (%+.2fms); ours/keepalived=%.3f\n",
		interval, len(o.kill), ms(median(o.killAdvert)), ms(median(o.killRFC)), ratio(o.killAdvert, o.killRFC), offBy(o.killAdvert, o.killRFC),
		ms(median(k.killAdvert)), ratio(k.killAdvert, k.killRFC), offBy(k.killAdvert, k.killRFC), ratio(o.killAdvert, k.killAdvert))
	fmt.Printf("bench: ha graceful stop (priority 0) interval=%v n=%d: stop->takeover ours %s [%s] keepalived %s [%s] ours/keepalived=%.3f\n",
		interval, len(o.stop), ms(median(o.stop)), spread(o.stop), ms(median(k.stop)), spread(k.stop), ratio(o.stop, k.stop))
	fmt.Printf("bench: ha graceful stop (priority 0) interval=%v n=%d: priority-0 advert->takeover ours %s vs RFC skew time %s ours/RFC=%.4f (%+.2fms); keepalived %s keepalived/RFC=%.4f (%+.2fms); ours/keepalived=%.3f\n",
		interval, len(o.stop), ms(median(o.stopAdvert)), ms(median(o.stopRFC)), ratio(o.stopAdvert, o.stopRFC), offBy(o.stopAdvert, o.stopRFC),
		ms(median(k.stopAdvert)), ratio(k.stopAdvert, k.stopRFC), offBy(k.stopAdvert, k.stopRFC), ratio(o.stopAdvert, k.stopAdvert))
}
