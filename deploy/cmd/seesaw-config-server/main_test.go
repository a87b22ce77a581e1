package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gen "github.com/seesawlb/seesaw/engine/config/configtest"
	"github.com/seesawlb/seesaw/engine/peer/peertest"
	"github.com/seesawlb/seesaw/engine/source"
)

func TestHelpDocumentsTheLayout(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"--help"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"DIR/<cluster>.pb", "DIR/<cluster>/cluster.pb", "/config/<cluster>", "-listen", "last_updated"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not say %q:\n%s", want, out.String())
		}
	}
}

func TestRequiredFlags(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"--dir", t.TempDir()}, &out); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("without --cert: %v", err)
	}
	if err := run(context.Background(), []string{"--dir", "/nonexistent", "--cert", "c", "--key", "k"}, &out); err == nil || !strings.Contains(err.Error(), "/nonexistent") {
		t.Errorf("a missing --dir: %v", err)
	}
}

// TestServes runs the command itself on loopback and fetches from it as
// the engine does.
func TestServes(t *testing.T) {
	ca := peertest.NewCA(t, "cluster CA")
	ssl := ca.WriteDir(t, "config server", "127.0.0.1")
	dir := t.TempDir()
	text := "metadata { last_updated: 1700000000 }\n" + gen.Cluster(2, 2, gen.Options{})
	if err := os.WriteFile(filepath.Join(dir, "gen.pb"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	var out strings.Builder
	go func() {
		errc <- run(ctx, []string{"--dir", dir, "--cert", filepath.Join(ssl, "seesaw.crt"), "--key", filepath.Join(ssl, "seesaw.key"), "--listen", addr}, &out)
	}()
	f := &source.Fetcher{Servers: []string{addr}, Cluster: "gen", CA: ca.Pool(), Timeout: 5 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, _, err := f.Fetch(context.Background())
		if err == nil {
			if len(c.Vserver) != 2 || c.GetMetadata().GetLastUpdated() != 1700000000 {
				t.Errorf("fetched %d vservers, last_updated %d", len(c.Vserver), c.GetMetadata().GetLastUpdated())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never served: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("run: %v", err)
	}
}
