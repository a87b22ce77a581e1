package keepalived

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seesawlb/seesaw/engine/config"
)

// FuzzParse feeds arbitrary text to the parser and the importer. Neither
// may panic or hang; every parse error must name the file and a line inside
// it; and whatever imports must render to files that config check either
// accepts or rejects with its own messages (the renderer never writes text
// the loader cannot parse).
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.conf")
	more, _ := filepath.Glob("testdata/*/conf.d/*.conf")
	for _, p := range append(seeds, more...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(string(data))
		}
	}
	f.Add(okVRRP + "virtual_server 10.0.0.10 80 {\n real_server 10.0.1.1 80 {\n  HTTP_GET { url { path / } }\n }\n}\n")
	f.Add(okVRRP + "virtual_server fwmark 7 {\n lb_algo sh\n ops\n real_server 10.0.1.1 {\n  TCP_CHECK { connect_port 80 }\n }\n}\n")
	f.Add("$A=${A}${A}\nx $A\n@a b {\n\"q\\\" {\ninclude /k.conf\n")
	f.Fuzz(func(t *testing.T, text string) {
		fs := memFS{"/k.conf": text, "/inc.conf": "x 1\n"}
		stmts, err := ParseFile("/k.conf", fs.options("a"))
		lines := strings.Count(text, "\n") + 1
		for _, e := range errStrings(err) {
			if !strings.HasPrefix(e, "/k.conf:") && !strings.HasPrefix(e, "/inc.conf:") {
				t.Fatalf("error without a file:line: %q", e)
			}
		}
		if iss, ok := err.(config.Errors); ok {
			for _, e := range iss {
				if is, ok := e.(config.Issue); ok && is.File == "/k.conf" && (is.Line < 1 || is.Line > lines) {
					t.Fatalf("error line %d outside 1..%d: %v", is.Line, lines, is)
				}
			}
		}
		// The CLI imports a tree with parse errors too, to report the
		// mapping's errors in the same pass.
		fm := FWMark{Mark: 7, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.99")}, Ports: []ProtoPort{{"TCP", 80}, {"UDP", 53}}}
		r, ierr := Import(Input{Stmts: stmts}, nil, ImportOptions{FWMarks: []FWMark{fm}})
		if err != nil || ierr != nil {
			return
		}
		files := r.Files("fuzz")
		res := config.CheckData("seesaw.cfg", files["seesaw.cfg"], "cluster.pb", files["cluster.pb"])
		for _, e := range res.Errors {
			if strings.Contains(e.Error(), "syntax") || strings.Contains(e.Error(), "unexpected") {
				t.Fatalf("rendered cluster.pb does not parse: %v\n%s", e, files["cluster.pb"])
			}
		}
	})
}
