package ha

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golang/glog"
)

// StandaloneConfig runs one speaker from flags, without an engine: for
// trying HA out, and for the namespace tests and benchmarks that run it
// against keepalived.
type StandaloneConfig struct {
	Params Params
	// Socket, if set, is where the HA status service is served (the same
	// GetStatus the engine's view is built from).
	Socket string
	// Out gets one line per transition, notice and error, each starting
	// with an RFC 3339 timestamp in nanoseconds, and a status line at the
	// end.
	Out io.Writer
	// OpenConn defaults to raw sockets.
	OpenConn OpenConnFunc
	// RetryDelay is the wait before retrying a socket that would not open
	// (default 1s).
	RetryDelay time.Duration
}

// lineWriter timestamps lines and keeps concurrent writers apart.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

// RunStandalone speaks VRRP with c.Params until ctx is done, then steps
// down (a master sends priority 0) and prints the final status.
func RunStandalone(ctx context.Context, c StandaloneConfig) error {
	if err := c.Params.VRRP.Validate(); err != nil {
		return fmt.Errorf("ha: standalone: %w", err)
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	out := &lineWriter{w: c.Out}
	cfg := Config{OpenConn: c.OpenConn, RetryMax: c.RetryDelay, RetryMin: c.RetryDelay}
	if cfg.RetryMax <= 0 {
		cfg.RetryMin, cfg.RetryMax = time.Second, time.Second
	}
	cfg.setDefaults()
	comp := newComponent()
	comp.SetDetail("mode", "standalone")
	logf := func(format string, args ...any) {
		glog.InfoDepth(1, fmt.Sprintf(format, args...))
		out.printf(format, args...)
	}
	n := newNode(comp, cfg, logf)
	comp.SetHook(n.hook)

	vctx, vcancel := context.WithCancel(context.Background())
	vdone := make(chan struct{})
	go func() {
		defer close(vdone)
		n.vrrpLoop(vctx)
	}()
	p := c.Params
	n.post(vrrpCmd{params: &p})

	var serveErr error
	if c.Socket != "" {
		srv, err := n.newServer(c.Socket)
		if err != nil {
			vcancel()
			<-vdone
			return err
		}
		serveErr = srv.Serve(ctx, time.Second)
	} else {
		<-ctx.Done()
	}
	vcancel()
	<-vdone
	st := n.status()
	var drops []string
	for r, k := range st.Dropped {
		drops = append(drops, fmt.Sprintf("%s=%d", r, k))
	}
	sort.Strings(drops)
	out.printf("status: state=%v transitions=%d adverts_sent=%d adverts_received=%d dropped={%s} dual_master=%d send_errors=%d receive_errors=%d warning=%q",
		st.State, st.Transitions, st.AdvertsSent, st.AdvertsReceived, strings.Join(drops, ","), st.DualMaster, st.SendErrors, st.ReceiveErrors, st.Warning)
	if serveErr != nil {
		return fmt.Errorf("ha: %w", serveErr)
	}
	return nil
}
