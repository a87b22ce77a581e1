package healthcheck

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histSub is the number of buckets per power of two: quantiles are upper
// bounds within 1/histSub (12.5%) of the true value.
const (
	histSubBits = 3
	histSub     = 1 << histSubBits
	histBuckets = 64 * histSub
)

// Histogram counts durations in logarithmic buckets. It is safe for
// concurrent use and costs a few nanoseconds per observation, so it can
// time every run.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
}

// HistogramSnapshot is a Histogram's counts at one moment.
type HistogramSnapshot struct {
	Counts [histBuckets]uint64
}

func histIndex(d time.Duration) int {
	if d < histSub {
		return max(int(d), 0)
	}
	v := uint64(d)
	e := bits.Len64(v) - 1 // v's leading bit
	sub := int(v>>(e-histSubBits)) & (histSub - 1)
	return (e-histSubBits+1)*histSub + sub
}

// histUpper is the largest duration in bucket i.
func histUpper(i int) time.Duration {
	if i < histSub {
		return time.Duration(i)
	}
	e := i/histSub + histSubBits - 1
	sub := i % histSub
	return time.Duration(uint64(histSub+sub+1)<<(e-histSubBits) - 1)
}

func (h *Histogram) observe(d time.Duration) { h.counts[histIndex(d)].Add(1) }

// Snapshot copies the counts.
func (h *Histogram) Snapshot() HistogramSnapshot {
	var s HistogramSnapshot
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	return s
}

// Sub is the observations in s that are not in before.
func (s HistogramSnapshot) Sub(before HistogramSnapshot) HistogramSnapshot {
	for i := range s.Counts {
		s.Counts[i] -= before.Counts[i]
	}
	return s
}

// Count is the number of observations.
func (s HistogramSnapshot) Count() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// Quantile is an upper bound of the q-quantile (0 < q <= 1), or 0 with no
// observations.
func (s HistogramSnapshot) Quantile(q float64) time.Duration {
	n := s.Count()
	if n == 0 {
		return 0
	}
	want := uint64(q*float64(n) + 0.999999)
	want = max(want, 1)
	var seen uint64
	for i, c := range s.Counts {
		seen += c
		if seen >= want {
			return histUpper(i)
		}
	}
	return histUpper(histBuckets - 1)
}
