package source

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gen "github.com/seesawlb/seesaw/engine/config/configtest"
	"github.com/seesawlb/seesaw/engine/peer/peertest"
	configpb "github.com/seesawlb/seesaw/proto/config"
)

// The fetcher against the config server's handler over real TLS on
// loopback, with certificates made here.

// serveTLS serves h over TLS on 127.0.0.1 with a certificate of ca, and
// returns the server's host:port.
func serveTLS(t *testing.T, ca *peertest.CA, h http.Handler) string {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{ca.TLSCert(t, "config server", "127.0.0.1")}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

func writeCluster(t *testing.T, path string, lastUpdated int64, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	text := gen.Cluster(n, 2, gen.Options{})
	if lastUpdated != 0 {
		text = "metadata { last_updated: " + strconv.FormatInt(lastUpdated, 10) + " }\n" + text
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFetchFromTheConfigServer(t *testing.T) {
	ca := peertest.NewCA(t, "cluster CA")
	dir := t.TempDir()
	writeCluster(t, filepath.Join(dir, "au-syd.pb"), 1700000000, 2)
	writeCluster(t, filepath.Join(dir, "us-nyc", "cluster.pb"), 1700000100, 3)
	addr := serveTLS(t, ca, Handler(dir, t.Logf))

	for _, tc := range []struct {
		cluster  string
		vservers int
		updated  int64
	}{{"au-syd", 2, 1700000000}, {"us-nyc", 3, 1700000100}} {
		f := &Fetcher{Servers: []string{addr}, Cluster: tc.cluster, CA: ca.Pool()}
		c, from, err := f.Fetch(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", tc.cluster, err)
		}
		if len(c.Vserver) != tc.vservers || c.GetMetadata().GetLastUpdated() != tc.updated || from != "https://"+addr+"/config/"+tc.cluster {
			t.Errorf("%s: %d vservers, last_updated %d, from %s", tc.cluster, len(c.Vserver), c.GetMetadata().GetLastUpdated(), from)
		}
	}

	// An unknown cluster, and a name trying to leave the directory.
	for _, name := range []string{"nowhere", "..%2Fetc"} {
		f := &Fetcher{Servers: []string{addr}, Cluster: name, CA: ca.Pool()}
		if _, _, err := f.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFetchTriesTheServersInOrder(t *testing.T) {
	ca := peertest.NewCA(t, "cluster CA")
	dir := t.TempDir()
	writeCluster(t, filepath.Join(dir, "c.pb"), 5, 1)
	good := serveTLS(t, ca, Handler(dir, nil))
	// A port nothing listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	f := &Fetcher{Servers: []string{dead, good}, Cluster: "c", CA: ca.Pool(), Timeout: 5 * time.Second}
	_, from, err := f.Fetch(context.Background())
	if err != nil || !strings.Contains(from, good) {
		t.Errorf("from %q: %v", from, err)
	}
}

func TestFetchRefusesRedirects(t *testing.T) {
	ca := peertest.NewCA(t, "cluster CA")
	dir := t.TempDir()
	writeCluster(t, filepath.Join(dir, "c.pb"), 5, 1)
	var followed atomic.Int32
	good := serveTLS(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		Handler(dir, nil).ServeHTTP(w, r)
	}))
	redirect := serveTLS(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+good+"/config/c", http.StatusFound)
	}))
	f := &Fetcher{Servers: []string{redirect}, Cluster: "c", CA: ca.Pool()}
	c, _, err := f.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "redirect") || c != nil {
		t.Errorf("a redirect: %v, %v", c, err)
	}
	if followed.Load() != 0 {
		t.Error("the redirect was followed")
	}
}

func TestFetchRefusesAnotherCA(t *testing.T) {
	ca, other := peertest.NewCA(t, "cluster CA"), peertest.NewCA(t, "another CA")
	dir := t.TempDir()
	writeCluster(t, filepath.Join(dir, "c.pb"), 5, 1)
	addr := serveTLS(t, other, Handler(dir, nil))
	f := &Fetcher{Servers: []string{addr}, Cluster: "c", CA: ca.Pool()}
	if _, _, err := f.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a server of another CA: %v", err)
	}
	// And a certificate of the right CA for another name.
	addr = serveTLS(t, ca, Handler(dir, nil))
	f = &Fetcher{Servers: []string{"localhost:" + strings.Split(addr, ":")[1]}, Cluster: "c", CA: ca.Pool()}
	if _, _, err := f.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a certificate for another name: %v", err)
	}
}

func TestFetchChecksTheAnswer(t *testing.T) {
	ca := peertest.NewCA(t, "cluster CA")
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"wrong type", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }, "content type"},
		{"not a proto", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ContentType)
			w.Write([]byte{0xff, 0xff, 0xff})
		}, "not a binary"},
		{"error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, "500"},
	} {
		addr := serveTLS(t, ca, tc.h)
		f := &Fetcher{Servers: []string{addr}, Cluster: "c", CA: ca.Pool()}
		if _, _, err := f.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestHandlerRefusesABadConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.pb"), []byte("seesaw_vip { fqdn: \"vip.\"\n"), 0o644)
	rec := httptest.NewRecorder()
	Handler(dir, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/config/c", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "c.pb:") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

func TestArchivePrunes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var names []string
	for i := range 5 {
		c := &configpb.Cluster{Metadata: &configpb.Metadata{LastUpdated: ptr(int64(i))}}
		name, err := Archive(dir, 3, c, "test", t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	got, err := Archived(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != strings.Join(names[2:], " ") {
		t.Errorf("archive holds %v, want the newest three %v", got, names[2:])
	}
	b, _ := os.ReadFile(got[2])
	if !strings.HasPrefix(string(b), "# applied 2026-01-02T03:04:09Z from test\n") || !strings.Contains(strings.Join(strings.Fields(string(b)), " "), "last_updated: 4") {
		t.Errorf("archived file:\n%s", b)
	}
}

func ptr[T any](v T) *T { return &v }
