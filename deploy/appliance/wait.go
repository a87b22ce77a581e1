package appliance

import (
	"errors"
	"testing"
	"time"
)

// PollInterval is how often Wait tries again.
const PollInterval = 100 * time.Millisecond

// permanent marks an error that no amount of waiting will cure.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent wraps err so that Wait gives up at once instead of trying
// again until its deadline.
func Permanent(err error) error { return permanent{err} }

// Wait calls f every PollInterval until it returns nil, and returns how
// long that took. It fails t with what and f's last error when timeout
// passes first, or at once when f returns a Permanent error. The deadline
// only stops a test that would otherwise hang: tests wait for a condition,
// never for time to pass, and they assert no duration (the lab runs under
// emulation on shared machines); they log what they measure.
func Wait(t testing.TB, timeout time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		var p permanent
		if errors.As(err, &p) {
			t.Fatalf("%s: %v", what, p.error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %v: %v", what, time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(PollInterval)
	}
}
