package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
)

// cmdTopo creates or removes the demo's topology (see labtest.Build). It
// runs inside the guest; on the host it works too, without the links only
// the guest's kernel has.
func cmdTopo(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("seesaw-lab topo", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: seesaw-lab topo up|down [flags]\n\nup creates the namespaces client, router, lbN, backendN and switch (prefixed)\nand leaves them; down deletes them. Flags:")
		fs.PrintDefaults()
	}
	prefix := fs.String("prefix", "", "namespace name prefix")
	lbs := fs.Int("lbs", 2, "LB nodes")
	backends := fs.Int("backends", 2, "backends")
	lbNIC := fs.String("lb-nic", "", "give every LB node an LB NIC of this name on the node bridge (seesaw.cfg [interface] lb)")
	routed := fs.Bool("routed-backends", false, "plug the router into the backend bridge as the backends' gateway")
	if len(args) == 0 {
		fs.Usage()
		return 2
	}
	verb := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch verb {
	case "up":
		t, err := labtest.Build(labtest.Config{LBs: *lbs, Backends: *backends, Prefix: *prefix, LBNIC: *lbNIC, RoutedBackends: *routed})
		if err != nil {
			fmt.Fprintln(e.stderr, "seesaw-lab topo:", err)
			return 1
		}
		fmt.Fprintf(e.stdout, "%-10s %-22s %-5s %-18s %s\n", "node", "namespace", "link", "IPv4", "IPv6")
		fmt.Fprint(e.stdout, t.String())
		return 0
	case "down":
		if err := labtest.Teardown(*prefix); err != nil {
			fmt.Fprintln(e.stderr, "seesaw-lab topo:", err)
			return 1
		}
		return 0
	}
	fs.Usage()
	return 2
}

// cmdHTTPD is the demo's backend: every request gets the server's name, so
// a person sees which backend answered.
func cmdHTTPD(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("seesaw-lab httpd", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var listen multiFlag
	fs.Var(&listen, "listen", "address to serve on (repeatable); default :80")
	name := fs.String("name", "backend", "name to answer with")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(listen) == 0 {
		listen = multiFlag{":80"}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (you are %s)\n", *name, r.RemoteAddr)
	})
	errc := make(chan error, len(listen))
	var servers []*http.Server
	for _, a := range listen {
		l, err := net.Listen("tcp", a)
		if err != nil {
			fmt.Fprintln(e.stderr, "seesaw-lab httpd:", err)
			return 1
		}
		s := &http.Server{Handler: h}
		servers = append(servers, s)
		go func() { errc <- s.Serve(l) }()
	}
	fmt.Fprintf(e.stderr, "seesaw-lab httpd: %s serving on %s\n", *name, strings.Join(listen, ", "))
	select {
	case <-ctx.Done():
		for _, s := range servers {
			s.Close()
		}
		return 0
	case err := <-errc:
		fmt.Fprintln(e.stderr, "seesaw-lab httpd:", err)
		return 1
	}
}

// cmdGet fetches a URL and prints the body: the demo's client, since the
// static busybox's wget cannot resolve even a literal address here.
func cmdGet(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("seesaw-lab get", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "give up on a request after this long")
	every := fs.Duration("every", 0, "ask again this often, over one kept-alive connection, for --for (a client in the middle of a session)")
	span := fs.Duration("for", 10*time.Second, "with --every: how long to go on")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "usage: seesaw-lab get [--timeout D] [--every D [--for D]] URL")
		return 2
	}
	// Never a proxy: the addresses are the lab's own. One connection at
	// most, kept alive, so that --every is one client's session.
	c := &http.Client{Transport: &http.Transport{Proxy: nil, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	if *every > 0 {
		return getEvery(ctx, c, fs.Arg(0), *timeout, *every, *span, e)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		fmt.Fprintln(e.stderr, "seesaw-lab get:", err)
		return 2
	}
	resp, err := c.Do(req)
	if err != nil {
		fmt.Fprintln(e.stderr, "seesaw-lab get:", err)
		return 1
	}
	defer resp.Body.Close()
	if _, err := io.Copy(e.stdout, resp.Body); err != nil {
		fmt.Fprintln(e.stderr, "seesaw-lab get:", err)
		return 1
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(e.stderr, "seesaw-lab get:", resp.Status)
		return 1
	}
	return 0
}

// getEvery asks url every interval for span over one kept-alive
// connection, a line per answer, then sums up: how many were answered,
// over how many connections, and the longest time without an answer. It
// succeeds when every request was answered on the first connection.
func getEvery(ctx context.Context, c *http.Client, url string, timeout, interval, span time.Duration, e env) int {
	start := time.Now()
	var asked, answered int
	var conns []string
	var longest time.Duration
	last := start
	for time.Since(start) < span {
		asked++
		rctx, cancel := context.WithTimeout(ctx, timeout)
		var local string
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
			local = ci.Conn.LocalAddr().String()
			if !ci.Reused {
				conns = append(conns, local)
			}
		}}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(rctx, trace), http.MethodGet, url, nil)
		if err != nil {
			cancel()
			fmt.Fprintln(e.stderr, "seesaw-lab get:", err)
			return 2
		}
		resp, err := c.Do(req)
		now := time.Now()
		if err != nil {
			fmt.Fprintf(e.stdout, "%s  no answer: %v\n", now.Format("15:04:05.000"), err)
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			first, _, _ := strings.Cut(string(body), "\n")
			answered++
			longest = max(longest, now.Sub(last))
			last = now
			fmt.Fprintf(e.stdout, "%s  %s (from %s)\n", now.Format("15:04:05.000"), first, local)
		}
		cancel()
		select {
		case <-ctx.Done():
			return 1
		case <-time.After(interval):
		}
	}
	fmt.Fprintf(e.stdout, "%d of %d requests answered over %d connection(s) %v; the longest time between two answers: %v\n",
		answered, asked, len(conns), conns, longest.Round(time.Millisecond))
	if answered != asked || len(conns) != 1 {
		return 1
	}
	return 0
}
