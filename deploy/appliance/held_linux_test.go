package appliance

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// heldConns are connections a test holds open through VIPs and exchanges
// data on after each event, remembering the first failure of each: a
// connection lost once stays lost.
type heldConns struct {
	conns []*Conn
	lost  map[*Conn]string
}

func newHeld(t testing.TB, conns []*Conn) *heldConns {
	h := &heldConns{conns: conns, lost: map[*Conn]string{}}
	t.Cleanup(func() {
		for _, c := range h.conns {
			c.Close()
		}
	})
	return h
}

// exchange sends a line on every connection not yet lost, all at once,
// and waits for each to come back (generous timeout: a segment sent while
// a VIP was away is retransmitted at growing intervals). It logs how many
// answered and returns those lost now.
func (h *heldConns) exchange(t testing.TB, after string, timeout time.Duration) []string {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	var now []string
	for _, c := range h.conns {
		if h.lost[c] != "" {
			continue
		}
		wg.Go(func() {
			start := time.Now()
			err := c.Exchange(timeout)
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, time.Since(start))
			if err != nil {
				h.lost[c] = fmt.Sprintf("after %s: %v", after, err)
				now = append(now, fmt.Sprintf("%s -> %s (%s): %v", c.Src, c.Dst, c.Answer.Backend, err))
			}
		})
	}
	wg.Wait()
	t.Logf("after %s: %d of %d held connections exchanged data (slowest %v)", after, len(h.conns)-len(h.lost), len(h.conns), slowest.Round(time.Millisecond))
	return now
}

// report fails the test for each lost connection and logs the count.
func (h *heldConns) report(t testing.TB) {
	t.Helper()
	for c, why := range h.lost {
		t.Errorf("lost connection %s -> %s -> %s: %s", c.Src, c.Dst, c.Answer.Backend, why)
	}
	t.Logf("lost connections: %d of %d", len(h.lost), len(h.conns))
}
