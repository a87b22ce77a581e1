// Package browsertest drives Debian's chromium, headless, for the tests of
// the ECU's status page: the ECU's own (against an in-process engine) and
// make demo's (against the demo's forwarded ECU).
package browsertest

import (
	"context"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Start starts chromium headless with a fresh profile and a window of
// width x height, or skips the test when chromium is not installed. The
// whole browser session has one deadline, timeout, so that a hang fails
// the test instead of blocking it (the waits inside poll).
func Start(t testing.TB, width, height int, timeout time.Duration) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian's chromium package; deploy/deps.sh installs it)")
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel3)
	return ctx
}

// Requests are the URLs a page asked for, recorded from the browser's own
// network events (what proves that a page asks nothing of another host).
type Requests struct {
	mu   sync.Mutex
	urls []string
}

// Record starts recording the browser's requests; call it before the
// first navigation.
func Record(t testing.TB, ctx context.Context) *Requests {
	t.Helper()
	r := &Requests{}
	if err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok {
			r.mu.Lock()
			r.urls = append(r.urls, ev.Request.URL)
			r.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("chromium: listen for requests: %v", err)
	}
	return r
}

// URLs are the requests so far, in order.
func (r *Requests) URLs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.urls...)
}
