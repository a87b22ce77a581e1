package watchdog

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const base, max = time.Second, time.Minute
	want := []time.Duration{1, 1, 2, 4, 8, 16, 32, 60, 60}
	for failures, w := range want {
		if got := Backoff(failures, base, max); got != w*time.Second {
			t.Errorf("Backoff(%d) = %v, want %v", failures, got, w*time.Second)
		}
	}
	// Enormous failure counts must not overflow into short or negative delays.
	if got := Backoff(1000, base, max); got != max {
		t.Errorf("Backoff(1000) = %v", got)
	}
	if got := Backoff(70, time.Duration(1)<<62, time.Duration(1)<<62+1); got != time.Duration(1)<<62+1 {
		t.Errorf("Backoff near overflow = %v", got)
	}
}

func TestNextFailures(t *testing.T) {
	const stable = time.Minute
	tests := []struct {
		name string
		prev int
		exit ExitInfo
		want int
	}{
		{"clean exit resets", 5, ExitInfo{Code: 0, Ran: time.Second}, 0},
		{"quick crash counts", 2, ExitInfo{Code: 1, Ran: time.Second}, 3},
		{"signal counts", 0, ExitInfo{Code: -1, Signal: "killed", Ran: time.Second}, 1},
		{"crash after stable run starts over", 7, ExitInfo{Code: 1, Ran: stable}, 1},
		{"kill after stable run starts over", 7, ExitInfo{Code: -1, Signal: "killed", Ran: time.Hour}, 1},
		{"start failure counts", 3, ExitInfo{Code: -1, Err: "no such file"}, 4},
	}
	for _, tc := range tests {
		if got := nextFailures(tc.prev, tc.exit, stable); got != tc.want {
			t.Errorf("%s: nextFailures(%d, %+v) = %d, want %d", tc.name, tc.prev, tc.exit, got, tc.want)
		}
	}
}
