package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, cfg, pb string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath, pbPath := filepath.Join(dir, "seesaw.cfg"), filepath.Join(dir, "cluster.pb")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pbPath, []byte(pb), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, pbPath
}

func TestCrossCheck(t *testing.T) {
	const head = "[cluster]\nname = c\n"
	tests := []struct {
		name string
		cfg  string
		want []string // with "CFG" and "PB" standing for the file paths
	}{
		{"ok", head + "node_ipv4 = 192.0.2.1\nnode_ipv6 = 2001:db8::1\npeer_ipv4 = 192.0.2.2\npeer_ipv6 = 2001:db8::2\nvip_ipv4 = 192.0.2.10\nvip_ipv6 = 2001:db8::10\n", nil},
		{"node not in cluster", head + "node_ipv4 = 192.0.2.9\n",
			[]string{"CFG:3: [cluster] node_ipv4: 192.0.2.9 is not the address of any node in PB"}},
		{"node_ipv6 not in cluster", head + "node_ipv4 = 192.0.2.1\nnode_ipv6 = 2001:db8::99\n",
			[]string{"CFG:4: [cluster] node_ipv6: 2001:db8::99 is not the address of any node in PB"}},
		{"node_ipv6 of another node", head + "node_ipv4 = 192.0.2.1\nnode_ipv6 = 2001:db8::2\n",
			[]string{`CFG:4: [cluster] node_ipv6: 2001:db8::2 belongs to node "b." but node_ipv4 to node "a."`}},
		{"peer not in cluster", head + "node_ipv4 = 192.0.2.1\npeer_ipv4 = 192.0.2.7\n",
			[]string{"CFG:4: [cluster] peer_ipv4: 192.0.2.7 is not the address of any node in PB"}},
		{"peer_ipv6 is this node", head + "node_ipv4 = 192.0.2.1\npeer_ipv4 = 192.0.2.2\npeer_ipv6 = 2001:db8::1\n",
			[]string{`CFG:5: [cluster] peer_ipv6: 2001:db8::1 is this node's own address (node "a.")`}},
		{"vip differs", head + "node_ipv4 = 192.0.2.1\nvip_ipv4 = 192.0.2.11\nvip_ipv6 = 2001:db8::11\n", []string{
			"CFG:4: [cluster] vip_ipv4: 192.0.2.11 differs from seesaw_vip ipv4 192.0.2.10 in PB",
			"CFG:5: [cluster] vip_ipv6: 2001:db8::11 differs from seesaw_vip ipv6 2001:db8::10 in PB",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfgPath, pbPath := writeFiles(t, tc.cfg, baseCluster)
			r := Check(cfgPath, pbPath)
			var got []string
			for _, err := range r.Errors {
				got = append(got, strings.NewReplacer(cfgPath, "CFG", pbPath, "PB").Replace(err.Error()))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if (r.Err() == nil) != (tc.want == nil) {
				t.Errorf("Err() = %v", r.Err())
			}
		})
	}
}

func TestCheckCollectsFromBothFiles(t *testing.T) {
	cfgPath, pbPath := writeFiles(t, "[cluster]\nname = c\nnode_ipv4 = 192.0.2.9\nvrid = 0\nfoo = 1\n",
		baseCluster+web(`healthcheck { type: TCP }`))
	r := Check(cfgPath, pbPath)
	want := []string{
		cfgPath + ":4: [cluster] vrid: 0 is out of range 1..255",
		pbPath + `: vserver "web@site" healthcheck #1: a vserver-level healthcheck needs a port`,
		cfgPath + ":3: [cluster] node_ipv4: 192.0.2.9 is not the address of any node in " + pbPath,
	}
	if got := strings.Split(r.Err().Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0].String(), `unknown key "foo"`) {
		t.Errorf("warnings = %v", r.Warnings)
	}
}

func TestCheckMissingFiles(t *testing.T) {
	r := Check("testdata/nope.cfg", "testdata/nope.pb")
	if len(r.Errors) != 2 || !errors.Is(r.Errors[0], os.ErrNotExist) || !errors.Is(r.Err(), os.ErrNotExist) {
		t.Errorf("errors = %v", r.Errors)
	}
	if r.Engine != nil || r.Cluster != nil {
		t.Errorf("Check returned configs for missing files")
	}
}
