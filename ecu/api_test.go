package ecu

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestAPIGolden: each part of the JSON API, from a fixed engine, is its
// golden file (go test -update rewrites them).
func TestAPIGolden(t *testing.T) {
	base := runFixedECU(t)
	for _, path := range []string{"cluster", "ha", "config", "vservers", "vservers/web", "backends", "checks", "events", "events?after=1"} {
		name := strings.NewReplacer("/", "_", "?", "_", "=", "_").Replace(path) + ".json"
		resp, err := http.Get(base + "/api/v1/" + path)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Seesaw-Stale") != "false" {
			t.Errorf("%s: %d %v", path, resp.StatusCode, resp.Header)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, body.Bytes(), "", "  "); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", path, err, body.Bytes())
		}
		golden := filepath.Join("testdata", "api", name)
		if *update {
			must(t, os.WriteFile(golden, pretty.Bytes(), 0o644))
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pretty.Bytes(), want) {
			t.Errorf("/api/v1/%s differs from %s:\n%s", path, golden, pretty.Bytes())
		}
	}
}

// TestAPIErrors: what is not there is a 404 with a message naming it;
// bad input is a 400 naming the parameter.
func TestAPIErrors(t *testing.T) {
	base := runFixedECU(t)
	for path, want := range map[string]struct {
		code int
		msg  string
	}{
		"vservers/nosuch":  {http.StatusNotFound, `no vserver \"nosuch\"`},
		"events?after=abc": {http.StatusBadRequest, `after=\"abc\": not a sequence number`},
		"nosuch":           {http.StatusNotFound, ""},
	} {
		resp, err := http.Get(base + "/api/v1/" + path)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want.code || !strings.Contains(body.String(), want.msg) {
			t.Errorf("%s: %d %s, want %d %s", path, resp.StatusCode, body.String(), want.code, want.msg)
		}
	}
	resp, err := http.Get(base + "/api/v1/components")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var comps struct {
		Components map[string]struct {
			Component string `json:"component"`
			Healthy   bool   `json:"healthy"`
		} `json:"components"`
		Engine struct {
			Stale bool `json:"stale"`
		} `json:"engine"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&comps); err != nil {
		t.Fatal(err)
	}
	if comps.Components["engine"].Component != "engine" || comps.Components["ecu"].Component != "ecu" || comps.Engine.Stale {
		t.Errorf("components: %+v", comps)
	}
}
