package watchdog

import "time"

// Clock is the supervisor's source of time. Tests substitute one whose
// timers they fire by hand, so backoff and stable-run logic is checked
// without sleeping.
type Clock interface {
	Now() time.Time
	// After is time.After: the channel receives once, d from now.
	After(d time.Duration) <-chan time.Time
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
