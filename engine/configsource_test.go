package engine

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	gen "github.com/seesawlb/seesaw/engine/config/configtest"
	"github.com/seesawlb/seesaw/engine/peer/peertest"
	"github.com/seesawlb/seesaw/engine/source"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// The config sources, with the config server's handler over real TLS on
// loopback and a real pair for the peer source.

// clusterText is the generated cluster of n vservers with a last_updated.
func clusterText(n int, lastUpdated int64) string {
	return "metadata { last_updated: " + strconv.FormatInt(lastUpdated, 10) + " }\n" + gen.Cluster(n, 3, gen.Options{})
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) vservers() int {
	cur, _ := r.e.current()
	return cur.res.Cluster.Counts().Vservers
}

func (r *rig) source() *enginepb.ConfigSourceResponse {
	r.t.Helper()
	resp, err := r.e.ConfigSource(context.Background(), &enginepb.ConfigSourceRequest{})
	if err != nil {
		r.t.Fatal(err)
	}
	return resp
}

func archived(t *testing.T, dir string) []string {
	t.Helper()
	files, err := source.Archived(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return files
}

func TestConfigSourceServer(t *testing.T) {
	ca := peertest.NewCA(t, "cluster CA")
	srvDir := t.TempDir()
	writeText(t, filepath.Join(srvDir, "gen.pb"), clusterText(2, 2000))
	hs := httptest.NewUnstartedServer(source.Handler(srvDir, t.Logf))
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{ca.TLSCert(t, "config server", "127.0.0.1")}}
	hs.StartTLS()
	defer hs.Close()

	cfg, cl := fixture(t, pairCfg(lb1Addr, "[config_server]\nprimary = "+hs.Listener.Addr().String()+"\n"), clusterText(1, 1000))
	archive := filepath.Join(t.TempDir(), "archive")
	state := filepath.Join(t.TempDir(), "state.pb")
	r := newRig(t, cfg, cl, nil, func(c *Config) {
		c.SSLDir, c.StateFile, c.ConfigArchive, c.ArchiveKeep = ca.WriteDir(t, "lb1", "10.0.0.2"), state, archive, 2
	})
	ctx := context.Background()
	if r.vservers() != 1 || r.source().Source != "disk" {
		t.Fatalf("at start: %d vservers from %s", r.vservers(), r.source().Source)
	}

	// Fetch.
	resp, err := r.e.ConfigSource(ctx, &enginepb.ConfigSourceRequest{Source: "server"})
	if err != nil || resp.Source != "server" || resp.Previous != "disk" || resp.ReloadError != "" {
		t.Fatalf("set server: %v, %v", resp, err)
	}
	if r.vservers() != 2 {
		t.Errorf("the server's config is not running: %d vservers", r.vservers())
	}
	st, _ := r.e.ConfigStatus(ctx, nil)
	if st.Source != "server" || !strings.Contains(st.SourceDetail, "https://"+hs.Listener.Addr().String()+"/config/gen") || st.LastError != "" {
		t.Errorf("ConfigStatus: %v", st)
	}
	if files := archived(t, archive); len(files) != 1 {
		t.Errorf("archive: %v", files)
	}
	r.settle()

	// An older config is ignored, and the status says so.
	writeText(t, filepath.Join(srvDir, "gen.pb"), clusterText(3, 1500))
	if err := r.e.Reload(); err == nil || !strings.Contains(err.Error(), "older") {
		t.Errorf("reload of an older config: %v", err)
	}
	if r.vservers() != 2 {
		t.Errorf("an older config was applied: %d vservers", r.vservers())
	}
	if st, _ := r.e.ConfigStatus(ctx, nil); !strings.Contains(st.LastError, "older") {
		t.Errorf("ConfigStatus after an older config: %v", st)
	}

	// Newer ones apply, and the archive keeps the newest two.
	for i, n := range []int{3, 4, 1} {
		writeText(t, filepath.Join(srvDir, "gen.pb"), clusterText(n, int64(3000+i)))
		must(t, r.e.Reload())
		if r.vservers() != n {
			t.Errorf("after update %d: %d vservers, want %d", i, r.vservers(), n)
		}
	}
	files := archived(t, archive)
	if len(files) != 2 {
		t.Errorf("archive not pruned to 2: %v", files)
	} else if b, _ := os.ReadFile(files[1]); !strings.Contains(strings.Join(strings.Fields(string(b)), " "), "last_updated: 3002") {
		t.Errorf("the newest archived config:\n%s", b)
	}

	// The source holds across HA transitions and a restart; the restarted
	// engine pulls from the server.
	r.ha(seesawpb.HAState_HA_STATE_UNKNOWN, seesawpb.HAState_HA_STATE_LEADER)
	r.ha(seesawpb.HAState_HA_STATE_LEADER, seesawpb.HAState_HA_STATE_BACKUP)
	if s := r.source().Source; s != "server" {
		t.Errorf("after HA transitions the source is %s", s)
	}
	writeText(t, filepath.Join(srvDir, "gen.pb"), clusterText(2, 4000))
	r.restart()
	if s := r.source().Source; s != "server" {
		t.Errorf("after a restart the source is %s", s)
	}
	if r.vservers() != 2 {
		t.Errorf("after a restart: %d vservers, want the server's 2", r.vservers())
	}

	// A disk edit does not apply under the server source.
	writeText(t, cl, clusterText(5, 9000))
	must(t, r.e.Reload())
	if r.vservers() != 2 {
		t.Errorf("a disk edit applied under the server source: %d vservers", r.vservers())
	}

	// With the server gone, a restarted engine runs the last config the
	// server gave (from the archive), not the disk's.
	hs.Close()
	r.restart()
	if r.vservers() != 2 {
		t.Errorf("restarted without the server: %d vservers, want the archived 2", r.vservers())
	}
	if st, _ := r.e.ConfigStatus(ctx, nil); !strings.Contains(st.SourceDetail, "archive: "+archive) || st.LastError == "" {
		t.Errorf("ConfigStatus without the server: %v", st)
	}

	// none keeps what runs.
	resp, err = r.e.ConfigSource(ctx, &enginepb.ConfigSourceRequest{Source: "none"})
	if err != nil || resp.Previous != "server" || resp.ReloadError != "" {
		t.Fatalf("set none: %v, %v", resp, err)
	}
	writeText(t, filepath.Join(srvDir, "gen.pb"), clusterText(4, 5000))
	must(t, r.e.Reload())
	if r.vservers() != 2 {
		t.Errorf("the none source reloaded: %d vservers", r.vservers())
	}
	r.restart()
	if s := r.source().Source; s != "none" {
		t.Errorf("after a restart the source is %s", s)
	}

	// And disk picks up the disk's file again.
	_, err = r.e.ConfigSource(ctx, &enginepb.ConfigSourceRequest{Source: "disk"})
	if err != nil || r.vservers() != 5 {
		t.Errorf("back to disk: %d vservers, %v", r.vservers(), err)
	}
}

func TestConfigSourceServerBadCA(t *testing.T) {
	ca, other := peertest.NewCA(t, "cluster CA"), peertest.NewCA(t, "another CA")
	srvDir := t.TempDir()
	writeText(t, filepath.Join(srvDir, "gen.pb"), clusterText(2, 2000))
	hs := httptest.NewUnstartedServer(source.Handler(srvDir, nil))
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{other.TLSCert(t, "impostor", "127.0.0.1")}}
	hs.StartTLS()
	defer hs.Close()
	cfg, cl := fixture(t, pairCfg(lb1Addr, "[config_server]\nprimary = "+hs.Listener.Addr().String()+"\n"), clusterText(1, 1000))
	r := newRig(t, cfg, cl, nil, func(c *Config) { c.SSLDir = ca.WriteDir(t, "lb1", "10.0.0.2") })
	resp, err := r.e.ConfigSource(context.Background(), &enginepb.ConfigSourceRequest{Source: "server"})
	if err != nil || !strings.Contains(resp.ReloadError, "certificate") {
		t.Errorf("a server of another CA: %v, %v", resp, err)
	}
	if r.vservers() != 1 {
		t.Errorf("%d vservers", r.vservers())
	}
	if st, _ := r.e.ConfigStatus(context.Background(), nil); st.Source != "server" || !strings.Contains(st.LastError, "certificate") {
		t.Errorf("ConfigStatus: %v", st)
	}
}

// pollSource runs the rig's source poller until the test ends.
func (n *pairNode) pollSource() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e := n.e
	go func() {
		defer close(done)
		e.pollSource(ctx)
	}()
	n.t.Cleanup(func() {
		cancel()
		<-done
	})
}

func TestConfigSourcePeer(t *testing.T) {
	a, b, _ := newPair(t)
	b.pollSource()
	a.ha(seesawpb.HAState_HA_STATE_UNKNOWN, seesawpb.HAState_HA_STATE_LEADER)
	b.ha(seesawpb.HAState_HA_STATE_UNKNOWN, seesawpb.HAState_HA_STATE_BACKUP)
	writeText(t, a.cl, clusterText(4, 2000))
	must(t, a.e.Reload())

	resp, err := b.e.ConfigSource(context.Background(), &enginepb.ConfigSourceRequest{Source: "peer"})
	if err != nil || resp.ReloadError != "" {
		t.Fatalf("set peer: %v, %v", resp, err)
	}
	if b.vservers() != 4 {
		t.Errorf("lb2 runs %d vservers, want lb1's 4", b.vservers())
	}
	// A change on the master reaches the backup by itself: the view says
	// the version changed, and the backup fetches.
	writeText(t, a.cl, clusterText(2, 3000))
	must(t, a.e.Reload())
	// (The archive is written once the config is applied.)
	b.waitFor("lb2 following lb1's config, archived", func() bool {
		return b.vservers() == 2 && len(archived(t, b.e.cfg.ConfigArchive)) == 2
	})
	// The backup's config is not taken by the master.
	a.e.ConfigSource(context.Background(), &enginepb.ConfigSourceRequest{Source: "peer"})
	if st, _ := a.e.ConfigStatus(context.Background(), nil); !strings.Contains(st.LastError, "not the master") {
		t.Errorf("lb1 with the peer source: %v", st)
	}
}
