package peer

import (
	"fmt"
	"math"
	"time"
)

// Failover on health: HA alone fails over when the master dies, not when
// its path to the backends breaks while it lives. With peer sync each node
// knows how many destinations the other finds healthy, so a master that
// sees clearly fewer than its backup hands mastership over. Hysteresis
// keeps one flapping backend from flapping the pair: the backup must be
// ahead by a margin, uninterrupted for a hold time, and after a handover
// none follows for a cooldown.

// HealthPolicy is when the master hands over; the zero value is the
// defaults.
type HealthPolicy struct {
	Disabled bool
	// The backup must see at least this many more healthy destinations
	// (default 2), and at least Fraction of all of them more (default 0.1).
	MinMargin int
	Fraction  float64
	// Hold is how long the backup must stay ahead, uninterrupted (10s).
	Hold time.Duration
	// Cooldown is how long after a handover no other one is made (5m).
	Cooldown time.Duration
	// Interval is how often the engine decides (1s).
	Interval time.Duration
}

// WithDefaults fills in the zero fields.
func (p HealthPolicy) WithDefaults() HealthPolicy {
	if p.MinMargin <= 0 {
		p.MinMargin = 2
	}
	if p.Fraction <= 0 {
		p.Fraction = 0.1
	}
	if p.Hold <= 0 {
		p.Hold = 10 * time.Second
	}
	if p.Cooldown <= 0 {
		p.Cooldown = 5 * time.Minute
	}
	if p.Interval <= 0 {
		p.Interval = time.Second
	}
	return p
}

// HealthInput is what one decision looks at.
type HealthInput struct {
	Now time.Time
	// Master: this node is the master. PeerBackup: the peer is connected,
	// its view fresh, and it is the backup.
	Master, PeerBackup bool
	// SameConfig: both run the same config, so their counts compare.
	SameConfig bool
	// Healthy of Total destinations of enabled services, here and on the
	// peer.
	Healthy, Total         int
	PeerHealthy, PeerTotal int
}

// HealthDecider decides, one input after the other, when to hand over.
type HealthDecider struct {
	policy HealthPolicy
	since  time.Time // the backup has been ahead since
	last   time.Time // the last handover
}

// NewHealthDecider returns a decider with policy p (defaults filled in).
func NewHealthDecider(p HealthPolicy) *HealthDecider {
	return &HealthDecider{policy: p.WithDefaults()}
}

// Margin is how many more healthy destinations the backup needs, of total.
func (p HealthPolicy) Margin(total int) int {
	return max(p.MinMargin, int(math.Ceil(p.Fraction*float64(total))))
}

// Decide reports whether to hand mastership over now, and why (or why
// not), for the log and the status.
func (d *HealthDecider) Decide(in HealthInput) (bool, string) {
	p := d.policy
	reset := func(why string) (bool, string) {
		d.since = time.Time{}
		return false, why
	}
	switch {
	case p.Disabled:
		return reset("off")
	case !in.Master:
		return reset("this node is not the master")
	case !in.PeerBackup:
		return reset("the peer is not a reachable backup")
	case !in.SameConfig || in.Total != in.PeerTotal:
		return reset("the peer runs another config")
	case in.Total == 0:
		return reset("no destinations")
	}
	margin := p.Margin(in.Total)
	ahead := in.PeerHealthy - in.Healthy
	if ahead < margin {
		return reset(fmt.Sprintf("healthy destinations: here %d, the backup %d, of %d (hand over at %d more)",
			in.Healthy, in.PeerHealthy, in.Total, margin))
	}
	if d.since.IsZero() {
		d.since = in.Now
	}
	held := in.Now.Sub(d.since)
	switch {
	case held < p.Hold:
		return false, fmt.Sprintf("the backup sees %d healthy destinations, here %d, of %d, since %s: handing over after %s",
			in.PeerHealthy, in.Healthy, in.Total, d.since.UTC().Format(time.RFC3339), p.Hold)
	case !d.last.IsZero() && in.Now.Sub(d.last) < p.Cooldown:
		return false, fmt.Sprintf("the backup sees %d healthy destinations, here %d, of %d, but the last handover was at %s (cooldown %s)",
			in.PeerHealthy, in.Healthy, in.Total, d.last.UTC().Format(time.RFC3339), p.Cooldown)
	}
	d.last, d.since = in.Now, time.Time{}
	return true, fmt.Sprintf("the backup sees %d healthy destinations, this master %d, of %d, for %s",
		in.PeerHealthy, in.Healthy, in.Total, held.Round(time.Millisecond))
}
