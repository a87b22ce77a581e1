package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/config"
	hapb "github.com/seesawlb/seesaw/proto/ha"
)

const gkeDir = "config/testdata/gke"

func loadGKE(t *testing.T) *config.Result {
	t.Helper()
	r := config.Check(filepath.Join(gkeDir, "seesaw.cfg"), filepath.Join(gkeDir, "cluster.pb"))
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHAConfigFromGKE(t *testing.T) {
	r := loadGKE(t)
	got := haConfig(r.Engine, r.Cluster, r.ThisNode)
	want := &hapb.Config{
		Enabled:      true,
		Interface:    "ens192",
		Vrid:         128,
		Priority:     255,
		LocalAddress: "203.0.113.2",
		Peers:        []string{"203.0.113.3"},
		Addresses:    []string{"203.0.113.4"},
	}
	want.AdvertInterval = got.AdvertInterval
	if !proto.Equal(got, want) {
		t.Errorf("haConfig =\n%v\nwant\n%v", got, want)
	}
	if got.AdvertInterval.AsDuration() != 500*time.Millisecond {
		t.Errorf("advert interval %v, want Seesaw's 500ms", got.AdvertInterval.AsDuration())
	}
	// seesaw.cfg's [cluster] advert_interval sets it.
	r.Engine.AdvertInterval = 100 * time.Millisecond
	if got := haConfig(r.Engine, r.Cluster, r.ThisNode).AdvertInterval.AsDuration(); got != 100*time.Millisecond {
		t.Errorf("advert interval %v with advert_interval = 100, want 100ms", got)
	}

}

// copyGKE copies the GKE fixture into a temporary directory and returns the
// paths of its seesaw.cfg and cluster.pb.
func copyGKE(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, f := range []string{"seesaw.cfg", "cluster.pb"} {
		b, err := os.ReadFile(filepath.Join(gkeDir, f))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, f)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out[0], out[1]
}
