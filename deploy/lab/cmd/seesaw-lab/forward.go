package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// cmdForward relays TCP connections accepted here (in the guest's own
// namespace, where the NIC that the host's forwarded port reaches lives) to
// an address inside a named network namespace: it is how make demo shows
// lb1's ECU on the host.
func cmdForward(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("seesaw-lab forward", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: seesaw-lab forward --listen ADDR [--netns NAME] --to IP:PORT\n\nAccepts TCP connections on ADDR in this namespace and relays each to\nIP:PORT, dialled inside the named namespace (/run/netns/NAME). Flags:")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "", "host:port to accept on, in this process's namespace")
	nsName := fs.String("netns", "", "named network namespace to dial in; empty: this one")
	to := fs.String("to", "", "IP:PORT to relay to (an address, not a name: resolving would happen outside the namespace)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *listen == "" || *to == "" || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	if _, _, err := net.SplitHostPort(*to); err != nil {
		fmt.Fprintln(e.stderr, "seesaw-lab forward: --to:", err)
		return 2
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", *to)
	}
	if *nsName != "" {
		ns, err := netns.GetFromName(*nsName)
		if err != nil {
			fmt.Fprintf(e.stderr, "seesaw-lab forward: namespace %s: %v\n", *nsName, err)
			return 1
		}
		defer ns.Close()
		dial = func(ctx context.Context) (net.Conn, error) {
			return dialInNamespace(ctx, ns, "tcp", *to)
		}
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(e.stderr, "seesaw-lab forward:", err)
		return 1
	}
	where := "this namespace"
	if *nsName != "" {
		where = "namespace " + *nsName
	}
	fmt.Fprintf(e.stderr, "seesaw-lab forward: %s -> %s in %s\n", l.Addr(), *to, where)
	logf := func(format string, args ...any) {
		fmt.Fprintf(e.stderr, "seesaw-lab forward: "+format+"\n", args...)
	}
	if err := serveForward(ctx, l, dial, logf); err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}

// serveForward accepts on l until ctx ends and relays each connection to a
// fresh one from dial. It closes l and waits for the relays it started.
func serveForward(ctx context.Context, l net.Listener, dial func(context.Context) (net.Conn, error), logf func(string, ...any)) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.Close()
			return fmt.Errorf("accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			up, err := dial(dctx)
			cancel()
			if err != nil {
				logf("%s: %v", c.RemoteAddr(), err)
				return
			}
			defer up.Close()
			relay(ctx, c, up)
		}()
	}
}

// relay copies both ways until both directions have ended, passing each
// half-close on, or until ctx ends.
func relay(ctx context.Context, a, b net.Conn) {
	stop := context.AfterFunc(ctx, func() { a.Close(); b.Close() })
	defer stop()
	var wg sync.WaitGroup
	half := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go half(a, b)
	go half(b, a)
	wg.Wait()
}

// dialInNamespace connects from inside ns, on an OS thread locked into it
// for the dial: the socket belongs to the namespace for good and is used
// from any thread afterwards. A thread that cannot be moved back stays
// locked, so the runtime retires it with its goroutine.
func dialInNamespace(ctx context.Context, ns netns.NsHandle, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: fmt.Errorf("current namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
