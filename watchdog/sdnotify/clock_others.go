//go:build !linux

package sdnotify

import "time"

// monotonicNow is 0 where there is no systemd.
func monotonicNow() time.Duration { return 0 }
