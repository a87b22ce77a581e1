package source

import (
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzHandlerPath: whatever the path, the config server serves only a
// cluster's file from its directory, never a file outside it.
func FuzzHandlerPath(f *testing.F) {
	for _, p := range []string{"/config/c", "/config/../secret", "/config/..%2Fsecret", "/config/c/../../secret", "/config/sub/c",
		"/config/", "/config/.", "/config/c.pb", "//config/c", "/config/%2e%2e/secret"} {
		f.Add(p)
	}
	root := f.TempDir()
	dir := filepath.Join(root, "configs")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "secret.pb"), []byte(`seesaw_vip { fqdn: "secret." ipv4: "10.0.0.4/16" status: PRODUCTION }`), 0o644)
	h := Handler(dir, nil)
	f.Fuzz(func(t *testing.T, p string) {
		u, err := url.Parse(p)
		if err != nil || !strings.HasPrefix(p, "/") {
			return
		}
		req := httptest.NewRequest("GET", "http://x/", nil)
		req.URL = u
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 404, 405:
		case 500:
			if strings.Contains(rec.Body.String(), "secret") {
				t.Errorf("%q reached a file outside the directory: %s", p, rec.Body)
			}
		default:
			t.Errorf("%q: %d %q (the directory holds no config)", p, rec.Code, rec.Body)
		}
	})
}
