package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
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
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "usage: seesaw-lab get [--timeout D] URL")
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		fmt.Fprintln(e.stderr, "seesaw-lab get:", err)
		return 2
	}
	// Never a proxy: the addresses are the lab's own.
	c := &http.Client{Transport: &http.Transport{Proxy: nil}}
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
