package ecu

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimitAnswersAtOnce: with every slot held by a client that does not
// finish, another request is answered 503 at once, not queued.
func TestLimitAnswersAtOnce(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	h := limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}), 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) })
	}
	<-entered
	<-entered
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("a third request with two slots held: %d %v", rec.Code, rec.Header())
	}
	close(release)
	wg.Wait()
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("after the slots are free: %d", rec.Code)
	}
}

// TestSnapshotsShared: many requests at once cost the engine one read;
// one whose client gives up does not spoil it for the others; a request
// after maxAge reads again.
func TestSnapshotsShared(t *testing.T) {
	var reads atomic.Int64
	gate := make(chan struct{})
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	s := &snapshots{maxAge: time.Second, now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		fetch: func(ctx context.Context, prev *snapshot) *snapshot {
			reads.Add(1)
			<-gate
			mu.Lock()
			defer mu.Unlock()
			return &snapshot{Tried: now}
		}}
	// One client gives up while the read is under way.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if got := s.get(gone); got != nil {
		t.Errorf("a client that gave up before any snapshot: %v", got)
	}
	var wg sync.WaitGroup
	got := make([]*snapshot, 20)
	for i := range got {
		wg.Go(func() { got[i] = s.get(context.Background()) })
	}
	close(gate)
	wg.Wait()
	for i, g := range got {
		if g == nil || g != got[0] {
			t.Fatalf("request %d got %p, request 0 %p", i, g, got[0])
		}
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("21 requests at once: %d engine reads, want 1", n)
	}
	s.get(context.Background())
	if n := reads.Load(); n != 1 {
		t.Errorf("a request within maxAge read the engine again (%d reads)", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if g := s.get(context.Background()); g == got[0] || reads.Load() != 2 {
		t.Errorf("after maxAge: %d reads, same snapshot %v", reads.Load(), g == got[0])
	}
}
