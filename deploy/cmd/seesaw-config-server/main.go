// Command seesaw-config-server is a minimal Seesaw config server, for tests
// and small fleets: it serves a directory of cluster.pb files over HTTPS the
// way the engine's "server" config source fetches them (Seesaw shipped none,
// its issue #100).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/golang/glog"

	"github.com/seesawlb/seesaw/engine/source"
)

const usage = `Usage: seesaw-config-server --dir DIR --cert FILE --key FILE [--listen ADDR]

Serves GET https://<host>:10255/config/<cluster> to Seesaw engines whose config
source is "server" ([config_server] primary/secondary/tertiary in seesaw.cfg).
For cluster <cluster> it reads, in this order,

    DIR/<cluster>.pb
    DIR/<cluster>/cluster.pb

(cluster.pb in protobuf text, as on a node's disk), checks it as the engine
would, and answers with it as a binary seesaw.config.Cluster
(Content-Type: application/x-protobuffer). A file that does not parse or
check is an error 500 naming the file and the problem; it is never served.
Files are read at each request: edit them in place (write and rename), and
raise metadata { last_updated } with each change, since an engine ignores a
config older than the one it runs.

The engines check the server's certificate against the cluster CA
(/etc/seesaw/ssl/ca.crt on the nodes), so --cert must be signed by it and
name the host or address the nodes use in [config_server].

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	glog.Flush()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "seesaw-config-server:", err)
		os.Exit(1)
	}
}

// run parses args (with glog's flags, which glog put on flag.CommandLine)
// and serves until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("seesaw-config-server", flag.ContinueOnError)
	flag.CommandLine.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory of the clusters' configs (required)")
	cert := fs.String("cert", "", "the server's certificate, PEM (required)")
	key := fs.String("key", "", "the server's private key, PEM (required)")
	listen := fs.String("listen", fmt.Sprintf(":%d", source.DefaultPort), "address to serve on")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *cert == "" || *key == "" {
		fs.Usage()
		return errors.New("--dir, --cert and --key are required")
	}
	if fi, err := os.Stat(*dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("--dir %s: not a directory", *dir)
	}
	kp, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		return fmt.Errorf("--cert/--key: %w", err)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           source.Handler(*dir, glog.Infof),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	glog.Infof("seesaw-config-server: serving %s on https://%s", *dir, lis.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(lis, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
