// Package source is where the engine's cluster config comes from besides
// the disk: Seesaw's config server (an HTTPS GET of /config/<cluster> that
// returns a binary seesaw.config.Cluster), with the server side of that
// protocol for tests and small fleets, and the archive of applied configs.
//
// The engine picks one of four sources, Seesaw's names:
//
//	disk    cluster.pb on disk, watched
//	server  the [config_server] hosts of seesaw.cfg, in order
//	peer    the master's running config, over peer sync
//	none    keep what runs, never reload
package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	configpb "github.com/seesawlb/seesaw/proto/config"
)

// The sources' names.
const (
	Disk   = "disk"
	Server = "server"
	Peer   = "peer"
	None   = "none"
)

// Names are the sources, in the order the CLI lists them.
var Names = []string{Disk, Server, Peer, None}

// Valid reports whether name is a source.
func Valid(name string) bool {
	for _, n := range Names {
		if n == name {
			return true
		}
	}
	return false
}

// ContentType is what the config server answers with (Seesaw's spelling).
const ContentType = "application/x-protobuffer"

// DefaultPort is the config server's port.
const DefaultPort = 10255

// MaxConfigSize bounds a config's body.
const MaxConfigSize = 64 << 20

// Fetcher gets the cluster config from the config servers.
type Fetcher struct {
	Servers []string // hostnames or addresses, each optionally with ":port"
	Port    int      // for servers given without a port (DefaultPort)
	Cluster string   // the cluster's name: the path is /config/<Cluster>
	CA      *x509.CertPool
	Timeout time.Duration // per server (20s)
}

// Fetch asks each server in turn and returns the first config one gives,
// with the URL it came from. A redirect is refused, not followed (Seesaw's
// rule: the config must come from the servers the node names).
func (f *Fetcher) Fetch(ctx context.Context) (*configpb.Cluster, string, error) {
	if len(f.Servers) == 0 {
		return nil, "", errors.New("source: no config server in seesaw.cfg ([config_server] primary)")
	}
	if f.CA == nil {
		return nil, "", errors.New("source: no cluster CA to check the config server with")
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	client := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: f.CA, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       timeout,
	}
	defer client.CloseIdleConnections()
	var errs []string
	for _, s := range f.Servers {
		u := f.url(s)
		c, err := f.get(ctx, client, u)
		if err == nil {
			return c, u, nil
		}
		errs = append(errs, err.Error())
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", fmt.Errorf("source: every config server failed: %s", strings.Join(errs, "; "))
}

func (f *Fetcher) url(server string) string {
	host := server
	if _, _, err := net.SplitHostPort(server); err != nil {
		port := f.Port
		if port == 0 {
			port = DefaultPort
		}
		host = net.JoinHostPort(strings.Trim(server, "[]"), strconv.Itoa(port))
	}
	return (&url.URL{Scheme: "https", Host: host, Path: "/config/" + f.Cluster}).String()
}

func (f *Fetcher) get(ctx context.Context, client *http.Client, u string) (*configpb.Cluster, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	req.Close = true
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, fmt.Errorf("%s: redirect to %q refused (the config comes only from the configured servers)", u, resp.Header.Get("Location"))
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: HTTP %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	if ct := resp.Header.Get("Content-Type"); ct != ContentType {
		return nil, fmt.Errorf("%s: content type %q, want %q", u, ct, ContentType)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the body: %w", u, err)
	}
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("%s: config larger than %d bytes", u, MaxConfigSize)
	}
	c := &configpb.Cluster{}
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("%s: the body is not a binary seesaw.config.Cluster: %w", u, err)
	}
	return c, nil
}

// unwrapURL drops net/http's "Get \"url\": " prefix, the URL being said
// already.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
