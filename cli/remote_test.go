package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemoteAddr(t *testing.T) {
	for in, want := range map[string]string{
		"lb1":                "lb1:10256",
		"lb1:443":            "lb1:443",
		"192.0.2.1":          "192.0.2.1:10256",
		"2001:db8::1":        "[2001:db8::1]:10256",
		"[2001:db8::1]:9999": "[2001:db8::1]:9999",
		"":                   "error: empty",
		"[2001:db8::1":       "error: want host or host:port",
	} {
		got, err := remoteAddr(in)
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != want && !(strings.HasPrefix(want, "error: ") && strings.Contains(got, strings.TrimPrefix(want, "error: "))) {
			t.Errorf("remoteAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDefaultTLSFile: an operator's own ~/.seesaw/ file comes first, the
// node's /etc/seesaw/ssl/ otherwise.
func TestDefaultTLSFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if got := defaultTLSFile("seesaw.crt"); got != "/etc/seesaw/ssl/seesaw.crt" {
		t.Errorf("without ~/.seesaw: %s", got)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(home, ".seesaw"), 0o700))
	must(os.WriteFile(filepath.Join(home, ".seesaw", "seesaw.crt"), nil, 0o600))
	if got := defaultTLSFile("seesaw.crt"); got != filepath.Join(home, ".seesaw", "seesaw.crt") {
		t.Errorf("with ~/.seesaw/seesaw.crt: %s", got)
	}
}
