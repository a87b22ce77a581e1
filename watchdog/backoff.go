package watchdog

import "time"

// Restart policy defaults. A service that exits is restarted after a delay:
// BackoffBase after a clean exit (status 0) or a first failure, doubling with
// each further consecutive failure (1s, 2s, 4s, ... 32s, 60s) up to
// BackoffMax. A run that lasted at least StableRun before failing counts as a
// first failure again, so one crash after a long healthy run is retried
// quickly. Seesaw waited a flat 2s plus min(failures*5s, 60s) and reset only on
// a clean exit.
const (
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = time.Minute
	DefaultStableRun   = time.Minute
)

// Backoff is the delay before the next start of a service that has failed
// failures times in a row: base for 0 or 1, then doubling, capped at max.
func Backoff(failures int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < failures; i++ {
		if d >= max/2 {
			return max
		}
		d *= 2
	}
	return min(d, max)
}

// nextFailures is the consecutive-failure count after exit, given the count
// before it. A clean exit resets the count; a failure after a stable run
// starts counting afresh.
func nextFailures(prev int, exit ExitInfo, stableRun time.Duration) int {
	if exit.Clean() {
		return 0
	}
	if exit.Err == "" && exit.Ran >= stableRun {
		return 1
	}
	return prev + 1
}
